"""The README is part of the product: its commands and tables must match the code."""
from __future__ import annotations

import re
import subprocess

from conftest import REPO_ROOT

from artifacts.registry import builtin_registry

README = (REPO_ROOT / "README.md").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    extracted = subprocess.run(
        ["awk", "/<!-- test-command -->/{flag=!flag; next} flag && /^[^`]/", "README.md"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert extracted == "python3 -m venv .venv && .venv/bin/pip install -e \".[all]\" && .venv/bin/pytest"
    assert "test-command" in (REPO_ROOT / ".ci" / "run").read_text()


def test_the_first_command_runs_the_main_job():
    first_block = re.search(r"```bash\n(.+?)\n```", README).group(1)
    assert first_block.endswith("orchestrate run --all")


def test_the_parameter_table_matches_the_registry():
    for name, info in builtin_registry().items():
        row = next(line for line in README.splitlines() if line.startswith(f"| `{name}` | `"))
        for profile in ("fast", "production"):
            for key, value in info.profiles[profile].items():
                assert f"`{key}={value}`" in row, (name, profile, key)
