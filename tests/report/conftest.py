"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so the report's tests need no Python package beyond
the standard library; and a tiny trained run to report on."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One browser tab: navigate, evaluate JavaScript, click and type like a person, take screenshots, and
    collect what the page reported (console errors, exceptions, log entries, network requests)."""

    def __init__(self, executable: str, profile: Path, width: int = 1280, height: int = 900, timeout: float = 30):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the browser reads commands on fd 3 and writes replies on fd 4: bash moves copies numbered >= 10 there
        # (so no redirection overwrites the other end; dash would take one-digit descriptors only)
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        args = [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{ends[0]} 4>&{ends[1]} {ends[0]}<&- {ends[1]}>&-', executable,
             *args], pass_fds=ends, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in ends:
            os.close(fd)
        self.timeout = timeout
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._inbox: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_browser, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._inbox.put(json.loads(message))
        self._inbox.put(None)

    def _call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while ident not in self._replies:
            self._pump(deadline)
        reply = self._replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _pump(self, deadline: float) -> None:
        try:
            message = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("the browser did not answer in time") from None
        if message is None:
            raise RuntimeError("the browser closed its pipe")
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            self.events.append(message)

    def call(self, method: str, params: dict | None = None) -> dict:
        return self._call(method, params, self.session)

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, e in enumerate(self.events):
                if e["method"] == event:
                    return self.events.pop(i)
            self._pump(deadline)

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str):
        """Evaluate an expression; its value (JSON-serialisable) or a RuntimeError with the page's exception."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise RuntimeError(reply["exceptionDetails"])
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                      "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                      "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            self.js("window.scrollTo(0, 0)")  # else the sticky navigation bar is drawn where the view was
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", params)["data"]))
        return path

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries so far."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}")
            elif e["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails']}")
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry']['text']}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self._call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture
def browser_page(tmp_path):
    """A fresh headless Chromium tab (the test skips where Debian's ``chromium`` is not installed)."""
    executable = find_chromium()
    if executable is None:
        pytest.skip("headless Chromium not found: install Debian's `chromium` package (.ci/run does)")
    page = Page(executable, tmp_path / "chromium-profile")
    yield page
    page.close()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_overrides):
    """A tiny DGM-VAE (2 variables × 8 values, z 2-D per variable) trained for 20 steps and evaluated
    (posterior, clusters); read-only. Its test sentences fall into several codes."""
    from demvae.config import compose
    from demvae.evaluation.run import EvalOptions, evaluate_run
    from demvae.runs import train

    cfg = compose(config="builtin/dgm-vae", overrides=tiny_overrides(
        {"model": {"n_values": 8}, "train": {"max_steps": 20, "eval_every": 10, "log_every": 5}}))
    run = train(cfg, tmp_path_factory.mktemp("report") / "dgm-vae")
    evaluate_run(run, EvalOptions(metrics=("posterior", "clusters"), device="cpu"))
    return run


def make_reproduction_folder(root: Path, run: Path) -> Path:
    """A DD Table 2 reproduction folder as ``demvae reproduce --figure`` leaves it: results, a figure, a run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root.mkdir()
    rows = [{"label": "DGM-VAE", "seed": 0, "model": "dgm-vae", "mutual_info": 0.31, "bleu": 5.5, "homog_act": 0.27,
             "homog_emotion": 0.12, "v_measure_act": 0.12, "v_measure_emotion": 0.03}]
    (root / "results.json").write_text(json.dumps({"table": "dd-table2", "scale": "mini", "rows": rows}))
    (root / "results.md").write_text("# Table 2\n\n| model | bleu |\n|---|---|\n| DGM-VAE | 5.50 |\n")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(root / "figure4-dgm-vae-step400.png")
    plt.close(fig)
    (root / "dgm-vae-seed0").mkdir()
    (root / "dgm-vae-seed0" / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text())
    return root


@pytest.fixture(scope="session")
def reproduction_folder():
    """``reproduction_folder(root, run)`` -> a small reproduction folder at ``root`` (records copied from ``run``)."""
    return make_reproduction_folder
