"""Atomic writes: a file appears under its name only when it is complete, so nothing half-written looks
finished (a killed job, a full disk, a failed encoder leave the old file or none, never a broken one).

Every writer in artify goes through `atomic_path`: it gives a temporary name beside the target (same folder,
so the final rename is atomic on one filesystem; ending in the target's name, so ffmpeg, matplotlib, PIL and
numpy pick the format from its extension), renames it into place when the block ends normally and removes it
when the block raises. The name is fixed (`.tmp.<name>`), so a rerun after a hard kill overwrites what the
killed run left; `unique=True` adds a random part for files that parallel jobs may write at once (shared
caches, downloads); a writer of such a file removes the ones killed writers left (`remove_stale_temporaries`).

A stage whose output is a folder replaces a folder only when it made it: `claim_folder` marks the folders a
stage makes (a file naming the stage inside), and `check_replaceable` and `remove_own_folder` refuse any other
non-empty folder with one line, so `-o` naming a user's folder by mistake never deletes it. Nothing here imports
numpy or torch: probe and other short commands use it too.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TMP_PREFIX = ".tmp."  # temporary files and folders start with this (tests look for leftovers by it)
OWNER_FILE = ".artify-stage"  # in a folder a stage made: the stage's name (only that stage replaces the folder)
# A unique temporary file not written to for this long is a killed writer's: a live one writes at least every
# minute (downloads time out after 60 s without data; the other unique writers write in seconds). An hour leaves
# room for a job suspended a while and for clocks that differ between the machines sharing the folder.
STALE_SECONDS = 3600


class NotOurFolderError(FileExistsError):
    """An output folder that holds files the stage did not make: it is left as it is."""


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
    if unique:
        remove_stale_temporaries(path)
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
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(path, idle_seconds: float = STALE_SECONDS) -> None:
    """Remove the unique temporary files of `path` (`.tmp.<random>.<name>`) that nothing has written to for
    `idle_seconds`: what writers killed mid-write left. Parallel writers' live ones stay."""
    path = Path(path)
    unique = re.compile(re.escape(TMP_PREFIX) + r"[0-9a-f]{8}\." + re.escape(path.name))
    now = time.time()
    for entry in path.parent.iterdir() if path.parent.is_dir() else ():
        try:
            if unique.fullmatch(entry.name) and now - entry.lstat().st_mtime >= idle_seconds:
                _remove(entry)
        except FileNotFoundError:  # another writer removed it first
            pass


def owned_by(folder, stage: str) -> bool:
    """Whether `folder` is one `stage` made (`claim_folder`)."""
    mark = Path(folder) / OWNER_FILE
    return mark.is_file() and not Path(folder).is_symlink() and mark.read_text().strip() == stage


def check_replaceable(folder, stage: str) -> None:
    """Refuse (NotOurFolderError) a `folder` that exists and is neither empty nor `stage`'s."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_dir() and not folder.is_symlink() and (owned_by(folder, stage) or not any(folder.iterdir())):
        return
    what = f"a folder artify {stage} did not make, not empty" if folder.is_dir() else "not a folder"
    raise NotOurFolderError(f"{folder}: {what}: left as it is; name a new or empty folder")


def claim_folder(folder, stage: str) -> Path:
    """`folder`, made if missing, marked as `stage`'s: the temporary folder (a name of artify's own) that
    `stage` builds an output in, so the finished output carries the mark."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER_FILE).write_text(stage + "\n")
    return folder


def remove_own_folder(folder, stage: str) -> None:
    """Remove `folder` to rename a complete one into its place (os.replace replaces only an empty folder):
    only if it is empty or `stage` made it (`claim_folder`); any other is refused with NotOurFolderError and
    left as it is."""
    folder = Path(folder)
    check_replaceable(folder, stage)
    if folder.is_dir():
        shutil.rmtree(folder)


def atomic_write_bytes(path, data: bytes, unique: bool = False) -> None:
    with atomic_path(path, unique) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path, text: str, unique: bool = False) -> None:
    with atomic_path(path, unique) as tmp:
        tmp.write_text(text)
