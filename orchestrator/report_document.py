"""A tiny document model rendered twice: Markdown (``report.md``) and one self-contained HTML file.

The report's content is written once as sections of paragraphs, tables and
figures; the two renderers only decide the syntax. The HTML embeds every
figure as a base64 data URI and carries its CSS inline, so it can be mailed or
opened from anywhere without the run directory.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG figure: Markdown links ``relpath``; HTML embeds ``png``."""

    title: str
    relpath: str
    png: bytes


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list = field(default_factory=list)     # str (a paragraph) | list[str] (bullets) | Table | Image


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f2f2; } tbody tr:nth-child(even) { background: #fafafa; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; }
"""


def render_markdown(title: str, sections: list[Section]) -> str:
    """The whole document as GitHub-flavoured Markdown."""
    parts = [f"# {title}\n"]
    for section in sections:
        parts.append(f"## {section.title}\n")
        parts.extend(_markdown_block(block) for block in section.blocks)
    return "\n".join(parts)


def _markdown_block(block) -> str:
    if isinstance(block, Table):
        return _markdown_table(block)
    if isinstance(block, Image):
        return f"![{block.title}]({block.relpath})\n"
    if isinstance(block, list):
        return "".join(f"- {item}\n" for item in block)
    return f"{block}\n"


def _markdown_table(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"
    lines = [f"**{table.caption}**\n"] if table.caption else []
    lines += [line(table.header), "|" + "|".join([" --- "] * len(table.header)) + "|"]
    lines += [line(row) for row in table.rows]
    return "\n".join(lines) + "\n"


def render_html(title: str, sections: list[Section]) -> str:
    """The whole document as one HTML file with no reference to any other file."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body.extend(_html_block(block) for block in section.blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _html_block(block) -> str:
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return (f"<figure><img alt=\"{html.escape(block.title)}\" src=\"data:image/png;base64,{data}\">"
                f"<figcaption>{html.escape(block.title)}</figcaption></figure>")
    if isinstance(block, list):
        return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block) + "</ul>"
    return f"<p>{html.escape(block)}</p>"


def _html_table(table: Table) -> str:
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table.header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table.rows)
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
