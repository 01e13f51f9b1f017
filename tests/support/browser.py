"""Open a page in headless Chromium (Debian's ``chromium``) and look at it as rendered.

Driven over the DevTools protocol on a websocket: the page's console errors, uncaught
exceptions, browser log errors (a blocked load, a CSP violation) and every network request
are recorded while it loads; then an in-page script measures what the browser laid out and a
full-page PNG is taken. Nothing here reads the HTML source.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
SKIP_REASON = "chromium is not installed (apt-get install chromium; .ci/run installs it)"

#: What the test asserts on: each chart's laid-out size and the data marks the browser drew.
CHART_PROBE = """(() => {
  const charts = [...document.querySelectorAll('svg.chart, canvas')].map(el => {
    const box = el.getBoundingClientRect();
    const marks = [...el.querySelectorAll('path.series, rect.bar, circle.point')].filter(m => {
      const b = m.getBBox();
      return b.width > 0 || b.height > 0;
    }).length;
    const series = [...el.querySelectorAll('path.series')].filter(m => (m.getAttribute('d') || '') !== '').length;
    return {label: el.getAttribute('aria-label'), width: box.width, height: box.height, marks, series,
            points: Number(el.dataset.points || 0), rules: el.querySelectorAll('line.rule').length,
            breaches: el.querySelectorAll('circle.breach').length,
            empty: el.querySelector('.no-data') !== null};
  });
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  return {title: document.title, charts, links, text: document.body.innerText};
})()"""


@dataclass
class Rendered:
    probe: dict[str, Any]
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def render(page: Path, screenshot: Path, probe: str = CHART_PROBE, width: int = 1200,
           timeout: float = 60.0, scale: float = 1.0, max_height: int | None = None) -> Rendered:
    """Load *page* (a local file) in a fresh headless Chromium; probe it; save a PNG of it
    (the whole page, or its top *max_height* CSS pixels, scaled by *scale*)."""
    if CHROMIUM is None:
        raise RuntimeError(SKIP_REASON)
    with tempfile.TemporaryDirectory(prefix="botctl-chromium-") as profile:
        proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-extensions", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", f"--window-size={width},900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            endpoint = _endpoint(Path(profile) / "DevToolsActivePort", proc, timeout)
            return asyncio.run(asyncio.wait_for(
                _session(endpoint, page.resolve().as_uri(), screenshot, probe, width, scale, max_height), timeout))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _endpoint(port_file: Path, proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited {proc.returncode} before opening its DevTools port")
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise RuntimeError("chromium did not open its DevTools port")


class _Cdp:
    def __init__(self, ws):
        self.ws, self.ids, self.pending, self.events = ws, itertools.count(1), {}, []
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            else:
                self.events.append(msg)

    async def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        ident = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.ws.send(json.dumps(message))
        reply = await future
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_for(self, method: str) -> dict:
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            await asyncio.sleep(0.05)


async def _session(endpoint: str, url: str, screenshot: Path, probe: str, width: int, scale: float,
                   max_height: int | None) -> Rendered:
    import websockets

    async with websockets.connect(endpoint, max_size=None) as ws:
        cdp = _Cdp(ws)
        target = (await cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            await cdp.send(f"{domain}.enable", session=session)
        await cdp.send("Page.navigate", {"url": url}, session=session)
        await cdp.wait_for("Page.loadEventFired")
        await asyncio.sleep(0.3)  # let late console messages or requests arrive
        value = await cdp.send("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session)
        if "exceptionDetails" in value:
            raise RuntimeError(f"the probe failed: {value['exceptionDetails']}")
        metrics = await cdp.send("Page.getLayoutMetrics", session=session)
        height = int(metrics.get("cssContentSize", metrics.get("contentSize"))["height"])
        await cdp.send("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, max_height or height), "scale": scale}
        shot = await cdp.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                         "clip": clip}, session=session)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        rendered = Rendered(value["result"]["value"], screenshot=screenshot)
        for event in cdp.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                rendered.console_errors.append(" ".join(str(a.get("value", a.get("description")))
                                                        for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                rendered.console_errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                rendered.console_errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent" and params["request"]["url"] != url:
                rendered.requests.append(params["request"]["url"])
        cdp.reader.cancel()
        return rendered
