"""``orchestrate data download braatz`` against a real local HTTP server serving the Braatz files."""
from __future__ import annotations

import functools
import hashlib
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli_data import BRAATZ_FILES, data

SHARED_BRAATZ = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tep-braatz"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):   # keep the test output readable
        pass


@pytest.fixture
def serve():
    """``serve(folder)`` -> base URL of an HTTP server on 127.0.0.1 serving ``folder``."""
    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def braatz_copy(tmp_path) -> Path:
    if not (SHARED_BRAATZ / "d00.dat").is_file():
        pytest.skip(f"the Braatz files are not at {SHARED_BRAATZ}")
    folder = tmp_path / "served"
    shutil.copytree(SHARED_BRAATZ, folder)
    return folder


def download(dest: Path, url: str):
    return CliRunner().invoke(data, ["download", "braatz", "--dest", str(dest), "--url", url, "--timeout", "10"])


def test_download_verifies_every_file_and_skips_intact_ones(serve, braatz_copy, tmp_path):
    url = serve(braatz_copy)
    result = download(tmp_path / "dest", url)
    assert result.exit_code == 0, result.output
    assert "44 file(s) downloaded" in result.output
    for name, (size, sha256) in BRAATZ_FILES.items():
        content = (tmp_path / "dest" / name).read_bytes()
        assert len(content) == size and hashlib.sha256(content).hexdigest() == sha256
    (tmp_path / "dest" / "d05_te.dat").write_bytes(b"damaged")
    result = download(tmp_path / "dest", url)
    assert result.exit_code == 0 and "1 file(s) downloaded, 43 already present and verified" in result.output
    assert not list((tmp_path / "dest").glob(".*.tmp"))


def test_corrupted_served_file_is_refused_with_exit_2(serve, braatz_copy, tmp_path):
    content = bytearray((braatz_copy / "d07_te.dat").read_bytes())
    content[1000:1004] = b"9999"
    (braatz_copy / "d07_te.dat").write_bytes(bytes(content))
    result = download(tmp_path / "dest", serve(braatz_copy))
    assert result.exit_code == 2
    assert "d07_te.dat from http://127.0.0.1" in result.output and "does not match its checksum" in result.output
    assert "It was not saved" in result.output and not (tmp_path / "dest" / "d07_te.dat").exists()


def test_missing_file_on_server_is_an_http_error(serve, braatz_copy, tmp_path):
    (braatz_copy / "d21_te.dat").unlink()
    result = download(tmp_path / "dest", serve(braatz_copy))
    assert result.exit_code == 2 and "HTTP 404" in result.output and "d21_te.dat" in result.output


def test_unreachable_server_gives_a_clear_error(tmp_path):
    result = download(tmp_path / "dest", "http://127.0.0.1:9/")   # discard port: nothing listens
    assert result.exit_code == 2
    assert "downloading http://127.0.0.1:9/d00.dat failed" in result.output and "network" in result.output


def test_inspect_passes_the_exit_code_through(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(data, ["inspect", "synthetic", "--option", "size=tiny"])
    assert ok.exit_code == 0, ok.output
    assert "test runs by fault:" in ok.output
    bad = runner.invoke(data, ["inspect", f"braatz:{tmp_path}"])
    assert bad.exit_code == 2 and "lacks" in bad.output and "orchestrate data download braatz" in bad.output
