"""The download helper against files served by http.server on 127.0.0.1 (nothing leaves the machine)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest
import torch

from artify.weights import WeightsError, download_path, fetch


@pytest.fixture
def server(tmp_path):
    """A directory served over HTTP on 127.0.0.1: (root folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def checkpoint(server):
    root, base = server
    torch.save({"layer.weight": torch.arange(6.0).reshape(2, 3)}, root / "good model.pth")
    return root / "good model.pth", f"{base}/good%20model.pth"


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def test_downloads_verifies_and_reuses(checkpoint, tmp_path):
    source, url = checkpoint
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "models"
    path = fetch(url, dest, sha256=sha)
    assert path == download_path(url, dest) and path.name == "good model.pth"
    assert path.read_bytes() == source.read_bytes() and (path.parent / "source.url").read_text() == url + "\n"
    assert torch.load(path, weights_only=True)["layer.weight"].shape == (2, 3)
    source.unlink()  # a second call reuses the verified file without the network
    assert fetch(url, dest, sha256=sha.upper()) == path
    assert _leftovers(dest) == []


def test_two_urls_with_the_same_file_name_keep_their_own_weights(server, tmp_path):
    root, base = server
    for folder, value in (("a", 1.0), ("b", 2.0)):
        (root / folder).mkdir()
        torch.save({"w": torch.full((2,), value)}, root / folder / "decoder.pth")
    dest = tmp_path / "models"
    first, second = fetch(f"{base}/a/decoder.pth", dest), fetch(f"{base}/b/decoder.pth", dest)
    assert first != second and first.name == second.name == "decoder.pth"
    assert torch.load(first, weights_only=True)["w"].tolist() == [1.0, 1.0]
    assert torch.load(second, weights_only=True)["w"].tolist() == [2.0, 2.0]
    # each is reused for its own URL (the server no longer has them)
    for folder in ("a", "b"):
        (root / folder / "decoder.pth").unlink()
    assert fetch(f"{base}/a/decoder.pth", dest) == first and fetch(f"{base}/b/decoder.pth", dest) == second


def test_a_cached_file_that_fails_the_checksum_is_downloaded_again(server, tmp_path):
    root, base = server
    torch.save({"w": torch.zeros(1)}, root / "decoder.pth")
    url, dest = f"{base}/decoder.pth", tmp_path / "models"
    old = fetch(url, dest)
    torch.save({"w": torch.ones(1)}, root / "decoder.pth")  # the URL now serves other bytes
    new_sha = hashlib.sha256((root / "decoder.pth").read_bytes()).hexdigest()
    assert fetch(url, dest) == old and torch.load(old, weights_only=True)["w"].item() == 0  # no sha: cached
    path = fetch(url, dest, sha256=new_sha)  # a sha the cached copy fails: fetched again, replaced
    assert path == old and torch.load(path, weights_only=True)["w"].item() == 1
    assert _leftovers(path.parent) == []


def test_wrong_checksum_names_url_and_leaves_nothing(checkpoint, tmp_path):
    _, url = checkpoint
    dest = tmp_path / "models"
    with pytest.raises(WeightsError, match=r"good%20model\.pth: SHA-256 mismatch"):
        fetch(url, dest, sha256="0" * 64)
    assert list(dest.iterdir()) == []


def test_html_error_page_is_not_a_checkpoint(server, tmp_path):
    root, base = server
    (root / "sam.pth").write_text("<!DOCTYPE html><html><body>Sign in to continue</body></html>")
    dest = tmp_path / "models"
    with pytest.raises(WeightsError, match=r"sam\.pth: not a PyTorch checkpoint.*DOCTYPE"):
        fetch(f"{base}/sam.pth", dest)
    assert list(dest.iterdir()) == []
    # expected="any" skips the format check (for non-torch files)
    assert fetch(f"{base}/sam.pth", dest, expected="any").read_text().startswith("<!DOCTYPE")


def test_pickle_needing_code_is_refused(server, tmp_path):
    root, base = server
    torch.save({"f": functools.partial(print, "x")}, root / "evil.pth")  # loads only with full pickle
    with pytest.raises(WeightsError, match="weights_only"):
        fetch(f"{base}/evil.pth", tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_404_names_url(server, tmp_path):
    _, base = server
    with pytest.raises(WeightsError, match=r"/missing\.pth: download failed: HTTP 404"):
        fetch(f"{base}/missing.pth", tmp_path / "models")
    assert _leftovers(tmp_path / "models") == []


def test_local_paths(tmp_path):
    f = tmp_path / "local ü.pth"
    torch.save({"a": torch.zeros(1)}, f)
    assert fetch(f) == f
    assert fetch(str(f), sha256=hashlib.sha256(f.read_bytes()).hexdigest()) == f
    with pytest.raises(WeightsError, match="SHA-256 mismatch"):
        fetch(f, sha256="1" * 64)
    with pytest.raises(WeightsError, match="nope.pth: weights file not found"):
        fetch(tmp_path / "nope.pth")
