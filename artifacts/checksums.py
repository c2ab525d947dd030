"""sha256 + size of artifact files, and their verification before anything is trusted."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


class ChecksumError(Exception):
    """An artifact on disk does not match the checksum its result record holds."""


def file_digest(path: str | os.PathLike) -> dict:
    """Return ``{"sha256": hex, "size": bytes}`` of one file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def digest_tree(root: str | os.PathLike, relative_paths: list[str]) -> dict[str, dict]:
    """Digest every file named (relative to ``root``); folders are walked."""
    root = Path(root)
    digests: dict[str, dict] = {}
    for relative in relative_paths:
        target = root / relative
        files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        for file in files:
            digests[file.relative_to(root).as_posix()] = file_digest(file)
    return digests


def verify_files(root: str | os.PathLike, expected: dict[str, dict]) -> None:
    """Raise ``ChecksumError`` naming the first file that is missing or differs.

    Size is compared first so a truncated file is caught without hashing it.
    """
    root = Path(root)
    for relative, want in sorted(expected.items()):
        path = root / relative
        if not path.is_file():
            raise ChecksumError(f"{path} is missing")
        if path.stat().st_size != want["size"]:
            raise ChecksumError(f"{path} has {path.stat().st_size} bytes, its record says {want['size']}")
        if file_digest(path)["sha256"] != want["sha256"]:
            raise ChecksumError(f"{path} does not match its sha256 in result.json (corrupted or edited)")
