"""Atomic writes: a file appears under its name only when it is complete, so nothing half-written looks
finished (a killed job, a full disk, a failed encoder leave the old file or none, never a broken one).

Every writer in artify goes through `atomic_path`: it gives a temporary name beside the target (same folder,
so the final rename is atomic on one filesystem; ending in the target's name, so ffmpeg, matplotlib, PIL and
numpy pick the format from its extension), renames it into place when the block ends normally and removes it
when the block raises. The name is fixed (`.tmp.<name>`), so a rerun after a hard kill overwrites what the
killed run left; `unique=True` adds a random part for files that parallel jobs may write at once (shared
caches, downloads). Nothing here imports numpy or torch: probe and other short commands use it too.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TMP_PREFIX = ".tmp."  # temporary files and folders start with this (tests look for leftovers by it)


def temporary_sibling(path, unique: bool = False) -> Path:
    """The name beside `path` to write to before the rename: `.tmp.<name>`, or `.tmp.<random>.<name>`."""
    path = Path(path)
    return path.with_name(f"{TMP_PREFIX}{secrets.token_hex(4) + '.' if unique else ''}{path.name}")


@contextmanager
def atomic_path(path, unique: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to; on success it is renamed onto `path` (replacing
    an existing file at once), on an exception it is removed and an existing `path` is left as it was.
    The parent folder is created, and a leftover of a killed run at the temporary name removed. Works for a
    folder too: the writer makes it, and must remove an existing non-empty `path` before the block ends
    (os.replace replaces only an empty folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, unique)
    _remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes, unique: bool = False) -> None:
    with atomic_path(path, unique) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path, text: str, unique: bool = False) -> None:
    with atomic_path(path, unique) as tmp:
        tmp.write_text(text)
