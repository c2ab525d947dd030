"""``orchestrate data``: inspect a data source, download the Braatz TEP files.

Standard library, click and rich only: ``inspect`` runs ``python -m workers.data.inspect`` in a
subprocess (the parent never imports the worker side, numpy-heavy loaders included).

The Braatz files (Russell, Chiang & Braatz; d00.dat .. d21_te.dat, 44 files, 26 MB) are
fetched from the public GitHub mirror of the Braatz group's archive,
https://github.com/camaramm/tennessee-eastman-profBraatz (branch ``master``, the layout of
the original http://brahms.scs.uiuc.edu distribution). Sizes and sha256 below were computed
from a verified copy; a file that does not match is refused, never saved.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from artifacts import atomic_write_bytes
from orchestrator.supervise import with_project_on_path

BRAATZ_URL = "https://raw.githubusercontent.com/camaramm/tennessee-eastman-profBraatz/master/"
_READ_BYTES = 1 << 16

#: file name -> (size in bytes, sha256)
BRAATZ_FILES: dict[str, tuple[int, str]] = {
    "d00.dat": (416049, "4c3c0b11eefacf93e5d2529e2866d7a625e37aa9153d0f95fae17a6c9e560deb"),
    "d00_te.dat": (799680, "57d56da4199e3d73582855d810be1d13d931386fd728bf1694798c7b0a03678c"),
    "d01.dat": (399840, "b0da22ac7561d82b0ba0b48bf87d2b3a8655cb23a3dc37330dd03cdd126c387c"),
    "d01_te.dat": (799680, "e7e6992fb39664e739fccbc001a1c5d5f7cb21829544f734ca3f282c26f680e5"),
    "d02.dat": (399840, "af1a46ba3a5482be3e7b143606f22ae509138544af2a2d0eb7389459257f8179"),
    "d02_te.dat": (799680, "a34bd9c3693fa96bd3ee533fb7fbe29a9d226a4e3250b585ef1308e1136dbfb0"),
    "d03.dat": (399840, "df39c57bdac7ea476ee236c289e0f59b0cbf868adfbbbaf213f692d8cd96e52a"),
    "d03_te.dat": (799680, "b7bf6f2ed7cff0a5577898b009edd252b9bdf6ee9ff7dbeacf9af9aa4c6abace"),
    "d04.dat": (399840, "346702fce33d9707f0b4ec5b8f533ccb08be60313607d5156d7e237b80a87b3f"),
    "d04_te.dat": (799680, "1ccb488dd5feac11aad54623451168abef066229e685872597897800363916f9"),
    "d05.dat": (399840, "3a47bfce4010ce0c634ae828409cce657ecd03bf0c4d59f8dd4a3d4f792f493f"),
    "d05_te.dat": (799680, "1def7258a2865aeead699d52c8cf926fbf34c1467aaf298121987ab858fd0888"),
    "d06.dat": (399840, "ff0882a44bb74f5d2d1a864425ac7e5ae82420391c7060232cefc08ad5bf7331"),
    "d06_te.dat": (799680, "8a3adc7121eaa9b9300c27f9c57a8ab356315401cb964310a4a8244dd34bf79d"),
    "d07.dat": (399840, "e3fd272ed53f899ab0c8278c7eede55418b01a2339b5fcff14a87fefaa3d181d"),
    "d07_te.dat": (799680, "e01b7c81daf9fccc4495cbde5658296918276b3c078044893f6e945dd91d3446"),
    "d08.dat": (399840, "4817735e339449bec909d1cbe77e421acc79c7357b8c6b5bb82c6e5788b72449"),
    "d08_te.dat": (799680, "c0637f02f23b79890b43cfee9604818ad6d7f81532223d76acf1da0d6e2a2cc1"),
    "d09.dat": (399840, "cb9146da760cdd52cad575d745413a5cfb4b447af2db9fb6a424cf6881ff0fcd"),
    "d09_te.dat": (799680, "513df6c3a4fd48e0eaddb0002cd8cdab3a78a5c83c47883bb52d2dc6c2472428"),
    "d10.dat": (399840, "e08697b5d074aea2345434bc4d26296f5dbdbb7efbf37a1bbee292b2ce765e8f"),
    "d10_te.dat": (799680, "3a278be79d8d111fc60be3cfb4f961c28e2dc632f17eb519886aa0f95864ffc6"),
    "d11.dat": (399840, "8294734d6f6e8f6b8643b9dc72f38ce40afd868d30dee9368a0d26b963a0af9f"),
    "d11_te.dat": (799680, "6d60a4c932d918e1ab26ae5d16320936a665f3aad3f05482d23f5c4550b9f29a"),
    "d12.dat": (399840, "62fcb3c71c0eda8eaaaf707f35296e60b17baaf9a9aef588687532cf4c560d38"),
    "d12_te.dat": (799680, "2180fcecb01d1b110b429ba2969d6b18dcc625599e3640e54f69afa32dccbe50"),
    "d13.dat": (399840, "f755d4ab6dc1d30e36c2e4604eeb0baff4b91032f487398b97fb1220eda861dd"),
    "d13_te.dat": (799680, "2e34e0c427d6e41d77d6cae76550b7e95004f9f13bc093278ecf5c282a1c9f03"),
    "d14.dat": (399840, "29fda7d5cae58cb7240e569e2d2d436371d077d282187d9205c7dc01df8755af"),
    "d14_te.dat": (799680, "e8976d056c0769cebbcec3bcba89d2468040ccae7acbea55ebc3b2e56b217396"),
    "d15.dat": (399840, "4c82fe0864cce2521e91a2c3e59d8630627c5e633cffe83f5e34ebc9901b5bca"),
    "d15_te.dat": (799680, "a7242b956837bec8ca7f224d01805247f2aea6ea868eaa064e068b5c0761b1e5"),
    "d16.dat": (399840, "ca1dfc5e31292052e83dcf6b4f60a73da197eb8a47e65d908ed7ac3cbcccb007"),
    "d16_te.dat": (799680, "8381d7371aac49b498e7bf93149b77a0a6bbeffe73520881dcbe8ae96277244d"),
    "d17.dat": (399840, "596aad6421a64d257bfa098cd5c4664d46dc49d88d1bad86cbc9518e6cd69e42"),
    "d17_te.dat": (799680, "27d2d72052064e3cbb7a45df8073f15bb83b77403f532616e73c8869b043e7c9"),
    "d18.dat": (399840, "b4d182c070036104cf150bc33f7aa879805f19943eb298bc05bdc8647dc70291"),
    "d18_te.dat": (799680, "1db5b93a7daa58ed1b641845b58ad818546ced7f3de866c086da18a7ebef5041"),
    "d19.dat": (399840, "ee3d2a50285cb3ba5e52ec05ea7cb39dc2b574bec592af9d44c192be132aeea6"),
    "d19_te.dat": (799680, "c24dd77f787f89347273addc8a453d79f0b99edd64d43be11a5e0907bd515c5f"),
    "d20.dat": (399840, "acdfe6c256fa6de74a811d6c7df1b710a9f0ed60f48242be92f3fa30db3df6b3"),
    "d20_te.dat": (799680, "e54035eda95311f13dd095f87607d97a89b7541afa2a3f68af098f33a5e2e6e5"),
    "d21.dat": (399840, "f34a9fefffef04ef1f49b3fb74e3def0010cda27a8577d814dd50604e2f8dc09"),
    "d21_te.dat": (799680, "b6823aa09638cd59cb168bc24f991b6d4d557d8aea62b0b2a87ee67c21ba5a83"),
}


class DataCommandError(click.ClickException):
    """Bad input or a failed download: exit status 2, like every input error of orchestrate."""

    exit_code = 2


@click.group("data")
def data() -> None:
    """Look at a data source, or download the public TEP data.

    \b
    Examples:
      orchestrate data inspect braatz:~/data/braatz
      orchestrate data inspect rieth:~/data/rieth --option runs=5 --option faults=[1,2]
      orchestrate data download braatz --dest ~/data/braatz
    """


@data.command("inspect")
@click.argument("source")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Loader option (repeatable), value read as JSON when it parses: faults=[1,2], runs=10.")
def inspect_command(source: str, options: tuple[str, ...]) -> None:
    """Prepare SOURCE in a temporary folder, exactly as a run would, and print its shapes, runs,
    faults, onsets, per-variable ranges and problems. Exit 2 on bad input.

    \b
    SOURCE: synthetic | braatz:DIR | rieth:DIR | csv:PATH | parquet:PATH | npz:PATH
    Examples:
      orchestrate data inspect synthetic --option size=tiny
      orchestrate data inspect csv:plant.csv --option run_column=batch --option onset=20
    """
    result = run_inspect(source, options)
    click.echo(result.stdout, nl=False)
    click.echo(result.stderr, nl=False, err=True)
    click.get_current_context().exit(result.returncode)


def run_inspect(source: str, options: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Run the worker-side inspector in a fresh interpreter; its exit status is passed through."""
    command = [sys.executable, "-m", "workers.data.inspect", source]
    for option in options:
        command += ["--option", option]
    return subprocess.run(command, capture_output=True, text=True, env=with_project_on_path(dict(os.environ)))


@data.command("download")
@click.argument("dataset", type=click.Choice(["braatz"]))
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to put the files in (created if needed).")
@click.option("--url", "base_url", default=BRAATZ_URL, show_default=True,
              help="Base URL the file names are appended to (a mirror).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for each server response.")
def download_command(dataset: str, dest: Path, base_url: str, timeout: float) -> None:
    """Download the Braatz TEP files d00.dat .. d21_te.dat into DEST, verifying size and sha256.

    Files already in DEST and intact are kept; run it again after a failure to resume.

    \b
    Examples:
      orchestrate data download braatz --dest ~/data/braatz
      orchestrate run --all --data braatz:~/data/braatz
    """
    downloaded, kept = download_files(dest.expanduser(), base_url, BRAATZ_FILES, timeout)
    click.echo(f"{len(downloaded)} file(s) downloaded, {len(kept)} already present and verified, in {dest}.")
    click.echo(f"Use them with: orchestrate run --all --data braatz:{dest}")


def download_files(dest: Path, base_url: str, expected: dict[str, tuple[int, str]],
                   timeout: float) -> tuple[list[str], list[str]]:
    """Fetch every file of ``expected`` not already intact in ``dest``; returns (downloaded, kept)."""
    dest.mkdir(parents=True, exist_ok=True)
    kept = [name for name in expected if is_intact(dest / name, expected[name])]
    todo = [name for name in expected if name not in kept]
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True)) as progress:
        task = progress.add_task("Braatz TEP files", total=sum(expected[name][0] for name in todo))
        for name in todo:
            url = base_url.rstrip("/") + "/" + name
            payload = fetch(url, timeout, lambda n: progress.advance(task, n))
            check_payload(name, url, payload, expected[name])
            atomic_write_bytes(dest / name, payload)
    return todo, kept


def is_intact(path: Path, expected: tuple[int, str]) -> bool:
    """Size first, so a truncated file is caught without hashing it."""
    if not path.is_file() or path.stat().st_size != expected[0]:
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() == expected[1]


def fetch(url: str, timeout: float, advance) -> bytes:
    """The body of ``url``; network trouble becomes a ``DataCommandError`` saying what to do."""
    chunks = []
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_READ_BYTES):
                chunks.append(chunk)
                advance(len(chunk))
    except urllib.error.HTTPError as error:
        raise DataCommandError(f"downloading {url} failed: HTTP {error.code} {error.reason}. Check --url "
                               "(it must be the folder holding d00.dat .. d21_te.dat).") from error
    except (urllib.error.URLError, OSError) as error:   # DNS, refused connection, timeout, reset
        reason = getattr(error, "reason", error)
        raise DataCommandError(f"downloading {url} failed: {reason}. Check your network connection or proxy "
                               "and run the command again (verified files are kept), or pass --url with a "
                               "mirror.") from error
    return b"".join(chunks)


def check_payload(name: str, url: str, payload: bytes, expected: tuple[int, str]) -> None:
    digest = hashlib.sha256(payload).hexdigest()
    if (len(payload), digest) != expected:
        raise DataCommandError(
            f"{name} from {url} does not match its checksum: got {len(payload)} bytes, sha256 {digest}; "
            f"expected {expected[0]} bytes, sha256 {expected[1]}. It was not saved. The server sent a "
            "different or damaged file: run the command again, or pass --url with another mirror."
        )
