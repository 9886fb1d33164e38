"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe, with no package beyond the
browser: the README's screenshots of the MLflow UI (docs/screenshots.py) and the tests that open the pages users
open (the fleet report), waiting for what they show, recording console errors and network requests."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
    ending in NUL, commands on the browser's fd 3, answers on its fd 4), so a page can be waited for, clicked and
    captured without any package beyond the browser."""

    def __init__(self, binary: str = "chromium", init_script: str | None = None):
        self.profile = tempfile.mkdtemp(prefix="gf-chromium-")
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # Both browser ends at fds >= 10, so placing them at 3 and 4 cannot overwrite one with the other.
        r = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
        w = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
        os.close(to_browser)
        os.close(from_browser)
        command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                   "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
                   f"--user-data-dir={self.profile}", "--window-size=1600,1000", "about:blank"]
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', "chromium", *command],
                                     pass_fds=(r, w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        os.close(r)
        os.close(w)
        self._buffer = b""
        self.events: list[dict] = []  # what the page reported (console, exceptions, requests): see record()
        self._id = 0
        self.session = ""
        pages = [t for t in self.send("Target.getTargets", browser=True)["targetInfos"] if t["type"] == "page"]
        target = pages[0]["targetId"] if pages else self.send("Target.createTarget", {"url": "about:blank"},
                                                               browser=True)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        self.send("Page.enable")
        if init_script:
            self.send("Page.addScriptToEvaluateOnNewDocument", {"source": f"try {{ {init_script} }} catch (e) {{}}"})

    def send(self, method: str, params: dict | None = None, browser: bool = False, timeout: float = 60) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not browser:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for answer in self._messages():
                if answer.get("id") == self._id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer {method} within {timeout:.0f} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited ({self.proc.poll()}) during {method}")
            self._buffer += chunk

    def record(self) -> None:
        """From now on keep the page's console messages, uncaught exceptions and network requests in `events`."""
        for domain in ("Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.events.clear()

    def drain(self, seconds: float = 0.5) -> list[dict]:
        """Read what the browser sends for `seconds` (events arrive between answers) and return every event."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and select.select([self._in], [], [], left)[0]:
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                break
            self._buffer += chunk
            for _ in self._messages():
                pass
        return self.events

    def _messages(self):
        """The complete messages read so far (each ends in NUL); events are also kept in `events`."""
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            message = json.loads(raw)
            if "method" in message and "id" not in message:
                self.events.append(message)
            yield message

    def eval(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def open(self, url: str, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})
        self.send("Page.navigate", {"url": "about:blank"})  # a full load per page: no state from the one before
        self.send("Page.navigate", {"url": url})

    def wait_for(self, expression: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not self.eval(f"(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not appear within {timeout:.0f} s")
            time.sleep(0.5)

    def settle(self, quiet: float = 1.5, timeout: float = 30) -> None:
        """Wait until the page stops changing for `quiet` seconds (data loaded, tables and charts drawn)."""
        probe = "document.body ? document.body.innerText.length + ':' + document.getElementsByTagName('*').length : ''"
        deadline = time.monotonic() + timeout
        last, since = self.eval(probe), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = self.eval(probe)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def mouse_move(self, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def key(self, name: str) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": name, "code": name,
                                                 "windowsVirtualKeyCode": 27 if name == "Escape" else 0})

    def type_into(self, selector: str, text: str) -> bool:
        """Replace the text of an input as typing would (React sees the change); False if there is no such input."""
        found = self.eval(f"(() => {{ const i = document.querySelector({json.dumps(selector)}); if (!i) return false;"
                          "i.focus(); i.select(); return true; })()")
        if found:
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Backspace", "code": "Backspace",
                                                 "windowsVirtualKeyCode": 8})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Backspace", "code": "Backspace",
                                                 "windowsVirtualKeyCode": 8})
            if text:
                self.send("Input.insertText", {"text": text})
            self.eval("document.activeElement && document.activeElement.blur()")
        return bool(found)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.send("Browser.close", browser=True, timeout=10)  # asked first; killed below if it did not go
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)
        shutil.rmtree(self.profile, ignore_errors=True)
