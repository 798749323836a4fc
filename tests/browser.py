"""Headless Chromium driven through the DevTools protocol over a pipe (--remote-debugging-pipe): the tests
open pages from disk, read the DOM, click like a person and keep what the page downloads, with no driver
package and no network port.

Chromium reads commands on fd 3 and writes replies and events on fd 4, each message JSON ended by a NUL.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# The network is closed here: without these Chromium waits on connections it will never get.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--mute-audio", "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars"]


def find_chromium() -> str | None:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """Chromium's path: a missing browser fails the test under CI=true (`make test` installs it) and skips it
    elsewhere."""
    path = find_chromium()
    if path is None:
        message = "Chromium missing (make browser-packages installs Debian's chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class BrowserError(RuntimeError):
    pass


def _high_fd(fd: int) -> int:
    """`fd` moved above 4, so that putting the pipes at 3 and 4 in the child cannot overwrite one of them."""
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    """One headless Chromium with a fresh profile and one tab. Use as a context manager."""

    def __init__(self, downloads: Path | None = None, width: int = 1280, height: int = 900, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="artify-chromium-"))
        self.downloads = Path(downloads) if downloads else self.profile / "downloads"
        self.downloads.mkdir(parents=True, exist_ok=True)
        cmd_r, cmd_w = (_high_fd(fd) for fd in os.pipe())
        out_r, out_w = (_high_fd(fd) for fd in os.pipe())

        def child_fds():  # Chromium's protocol fds are 3 (commands in) and 4 (messages out)
            os.dup2(cmd_r, 3, inheritable=True)
            os.dup2(out_w, 4, inheritable=True)

        self.proc = subprocess.Popen(
            [require_chromium(), *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.profile / "stderr.log", "wb"),
            close_fds=False, preexec_fn=child_fds)  # Python opens its own fds non-inheritable (PEP 446)
        os.close(cmd_r)
        os.close(out_w)
        self._to, self._from = os.fdopen(cmd_w, "wb", buffering=0), os.fdopen(out_r, "rb", buffering=0)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(self.downloads),
                  eventsEnabled=True)

    # ------------------------------------------------------------------------------------------ protocol

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout} s; its log: "
                                   f"{(self.profile / 'stderr.log').read_text(errors='replace')[-2000:]}")
            chunk = os.read(self._from.fileno(), 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params):
        """Send a command and wait for its reply; events that arrive meanwhile are kept in self.events."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._to.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def send(self, method: str, **params):
        """A command to the tab."""
        return self.call(method, session=self.session, **params)

    def wait_event(self, method: str, timeout: float | None = None, where=lambda params: True) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and where(event.get("params", {})):
                    return self.events.pop(i)["params"]
            self.events.append(self._read_message(deadline))

    # -------------------------------------------------------------------------------------------- page

    def open(self, path: Path) -> None:
        """Load a file from disk and wait for its load event (every image and the page's scripts)."""
        self.events.clear()
        self.send("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str, timeout: float | None = None):
        """The value of a JavaScript expression in the page (promises awaited); a thrown error fails."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=int(1000 * (timeout or self.timeout)))
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:80]}...: {details.get('exception', {}).get('description', details)}")
        return result["result"].get("value")

    def media(self) -> list[dict]:
        """Every <img> and <video> of the page once it has loaded or failed: {tag, name, width, height, ready}
        (natural size for images; for videos the decoded size and readyState, 4 = playable through)."""
        return self.js("""Promise.all([...document.querySelectorAll('img, video')].map(e => new Promise(done => {
            const name = e.id || e.alt || (e.currentSrc || e.src || '').slice(0, 60);
            const report = () => done(e.tagName === 'IMG'
                ? {tag: 'img', name, width: e.naturalWidth, height: e.naturalHeight, ready: e.complete ? 4 : 0}
                : {tag: 'video', name, width: e.videoWidth, height: e.videoHeight, ready: e.readyState,
                   error: e.error && e.error.message});
            if (e.tagName === 'IMG' ? e.complete : e.readyState >= 2) return report();
            e.addEventListener(e.tagName === 'IMG' ? 'load' : 'loadeddata', report);
            e.addEventListener('error', report);
            if (e.tagName === 'VIDEO') { e.preload = 'auto'; e.load(); }
            setTimeout(report, 20000);
        })))""")

    def plays(self, selector: str, seconds: float = 0.3) -> float:
        """Play a video (muted) until `seconds` of it have passed; returns its currentTime then (0 if it never
        advanced within the timeout)."""
        return self.js(f"""(async () => {{ const v = document.querySelector({json.dumps(selector)});
            v.muted = true; v.currentTime = 0; await v.play();
            const t0 = performance.now();
            while (v.currentTime < {seconds} && performance.now() - t0 < 20000) await new Promise(r => setTimeout(r, 50));
            v.pause(); return v.currentTime; }})()""")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) in the middle of the element, scrolled into view."""
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) throw new Error('no element ' + {json.dumps(selector)});
            e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2, r.width, r.height]; }})()""")
        x, y, w, h = box
        if w <= 0 or h <= 0:
            raise BrowserError(f"{selector} is not visible ({w}x{h})")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, out_png: Path) -> Path:
        """The whole page (not only the window) as a PNG."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        out_png = Path(out_png)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        out_png.write_bytes(base64.b64decode(data["data"]))
        return out_png

    def wait_download(self, timeout: float | None = None) -> Path:
        """The file of the next finished download (saved under self.downloads by its suggested name)."""
        begin = self.wait_event("Browser.downloadWillBegin", timeout)
        self.wait_event("Browser.downloadProgress", timeout,
                        where=lambda p: p.get("guid") == begin["guid"] and p.get("state") == "completed")
        return self.downloads / begin["suggestedFilename"]

    # ------------------------------------------------------------------------------------------- close

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._to.close()
        self._from.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
