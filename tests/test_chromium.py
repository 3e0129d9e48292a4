"""JupyterLab really renders the explorer of notebook 01: serve it headless, screenshot it with chromium.

JupyterLab 4 does not rebuild widgets from the state saved in a notebook file, so the test does what
a user does: a kernel session for the notebook runs its cells (on the tiny mini dataset, through the
notebook's ``DATA_ROOT`` parameter), then the browser opens the notebook, attaches to that running
kernel and draws the widgets from it. The screenshot must contain a patch of the very PNG the
explorer rendered in the kernel, which the text fallback of a widget that failed could never show.

The browser is driven through the DevTools protocol: the test takes screenshots until the explorer's
picture is on the page (or a generous deadline passes), never after a fixed time, so that a loaded
machine, which only makes the page slower to draw, cannot fail it.

Skipped when Debian's chromium (``/usr/bin/chromium``) is absent. ``TPSLAB_SCREENSHOT_DIR`` keeps the
screenshot for a person to look at.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_explore_data.ipynb"
WINDOW = (1400, 2300)
TOKEN = "tpslab-chromium-check"
PAGE_DEADLINE = 300  # seconds for the page to show the explorer's picture (a few on a quiet machine)

pytestmark = [pytest.mark.chromium, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, path: str, method: str = "GET", body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


def wait_for_server(port: int, server: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            api(port, "/api/status")
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer on port {port} within {timeout} s:\n{log.read_text()[-3000:]}")


def wait_for(condition, timeout: float, interval: float = 0.2):
    """Poll ``condition()`` until it returns something true (returned) or ``timeout`` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result or None
        time.sleep(interval)


class DevTools:
    """The Chrome DevTools protocol on one page of a browser started with ``--remote-debugging-port``."""

    def __init__(self, profile: Path, browser: subprocess.Popen, timeout: float = 120):
        import websocket  # websocket-client, which jupyter_server requires

        def port():
            if browser.poll() is not None:
                raise RuntimeError(f"chromium exited with {browser.returncode}")
            found = profile / "DevToolsActivePort"  # written once the port is open: "PORT\nPATH"
            lines = found.read_text().split() if found.exists() else []
            return int(lines[0]) if lines else None

        devtools_port = wait_for(port, timeout)
        assert devtools_port, f"chromium opened no DevTools port within {timeout} s"

        def page():
            with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=30) as response:
                return next((t for t in json.loads(response.read()) if t.get("type") == "page"), None)

        target = wait_for(page, timeout)
        assert target, f"chromium showed no page within {timeout} s"
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=120, suppress_origin=True)
        self.last_id = 0

    def call(self, method: str, **params) -> dict:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:  # events come in between; the answer carries the call's id
            message = json.loads(self.ws.recv())
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self.ws.close()


def run_cell(kc, source: str, timeout: float = 120) -> list:
    """Execute ``source`` in the kernel; return its outputs as notebook outputs."""
    import nbformat

    msg_id = kc.execute(source)
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            return outputs
        if kind in ("stream", "display_data", "execute_result", "error"):
            outputs.append(nbformat.v4.output_from_msg(msg))


def find_patch(image: np.ndarray, patch: np.ndarray, tolerance: int = 6):
    """(row, col) where ``patch`` appears in ``image`` (every channel within ``tolerance``), or None."""
    image, patch = image.astype(np.int16), patch.astype(np.int16)
    ph, pw = patch.shape[:2]
    first = np.abs(image[: image.shape[0] - ph + 1, : image.shape[1] - pw + 1] - patch[0, 0]).max(-1) <= tolerance
    for r, c in zip(*np.nonzero(first)):
        if np.abs(image[r:r + ph, c:c + pw] - patch).max() <= tolerance:
            return int(r), int(c)
    return None


def stop(process: subprocess.Popen) -> None:
    """Terminate ``process``, killing it when it has not exited within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def read_png(data) -> np.ndarray:
    import matplotlib.image as mpimg

    rgba = mpimg.imread(io.BytesIO(data) if isinstance(data, bytes) else data, format="png")
    return np.round(rgba[..., :3] * 255).astype(np.uint8) if rgba.dtype != np.uint8 else rgba[..., :3]


def test_jupyterlab_renders_the_explorer(tiny_record, tmp_path):
    import nbformat
    from jupyter_client import BlockingKernelClient

    pytest.importorskip("websocket", reason="needs websocket-client (a jupyter_server requirement)")
    data = tiny_record.root
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    for d in (root, runtime, tmp_path / "config", tmp_path / "data", tmp_path / "workspaces", tmp_path / "profile"):
        d.mkdir()
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no news or update toasts over the notebook
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = dict(os.environ, TPSLAB_FAST="1", JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    port = free_port()
    log = tmp_path / "lab.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}"],
            env=env, stdout=log_file, stderr=subprocess.STDOUT)
    kc = session = browser = devtools = None
    try:
        wait_for_server(port, server, log)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        params.source += f"\nDATA_ROOT = {str(data)!r}"
        nbformat.write(nb, root / NOTEBOOK.name)
        session = api(port, "/api/sessions", "POST", {"path": NOTEBOOK.name, "type": "notebook",
                                                       "name": NOTEBOOK.name, "kernel": {"name": "python3"}})
        kc = BlockingKernelClient(connection_file=str(runtime / f"kernel-{session['kernel']['id']}.json"))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        for number, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.outputs = run_cell(kc, cell.source)
            cell.execution_count = number + 1
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"cell {number} failed: {errors[0].ename}: {errors[0].evalue}"
        shown = read_png(base64.b64decode(
            run_cell(kc, "import base64; base64.b64encode(bytes(explorer.image.value)).decode()")[0]
            ["data"]["text/plain"].strip("'")))
        # fold every other cell: the explorer lies inside the window, and no other output (the static
        # fallback draws the same frame) can stand in for it
        explorer_cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("explorer = "))
        for cell in nb.cells:
            if cell is not explorer_cell and not cell.source.startswith("## The explorer"):
                cell.metadata["jupyter"] = {"source_hidden": True, "outputs_hidden": True}
        nbformat.write(nb, root / NOTEBOOK.name)
        # outputs the browser did not produce itself render only in a trusted notebook
        subprocess.run([sys.executable, "-m", "jupyter", "trust", str(root / NOTEBOOK.name)], env=env, check=True,
                       capture_output=True)

        # a piece of the frame inside the explorer's picture (centre of its upper half)
        h, w = shown.shape[:2]
        patch = shown[h // 4 - 16: h // 4 + 16, w // 2 - 16: w // 2 + 16]
        assert len(np.unique(patch.reshape(-1, 3), axis=0)) > 20, "the reference patch is too plain to find"

        profile = tmp_path / "profile"
        with open(tmp_path / "chromium.log", "wb") as browser_log:
            browser = subprocess.Popen(
                [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1",
                 "--force-color-profile=srgb", "--hide-scrollbars", "--remote-debugging-port=0",
                 f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={TOKEN}"],
                stdout=subprocess.DEVNULL, stderr=browser_log)
        devtools = DevTools(profile, browser)
        devtools.call("Emulation.setDeviceMetricsOverride", width=WINDOW[0], height=WINDOW[1], deviceScaleFactor=1,
                      mobile=False)
        # JupyterLab loads, opens the notebook, attaches to the kernel and draws the widgets: screenshots
        # until the explorer's picture is there, each taken when the search in the last one is done
        shot = tmp_path / "explorer.png"

        def explorer_on_page():
            shot.write_bytes(devtools.screenshot())
            return find_patch(read_png(shot), patch) is not None

        found = wait_for(explorer_on_page, PAGE_DEADLINE, interval=1.0)
        if os.environ.get("TPSLAB_SCREENSHOT_DIR"):
            shutil.copy(shot, Path(os.environ["TPSLAB_SCREENSHOT_DIR"]) / "explorer_jupyterlab.png")
        pixels = read_png(shot)
        assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
        assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500, "the page is blank"
        assert found, f"the explorer's picture is not on the page after {PAGE_DEADLINE} s (last screenshot: {shot})"
    finally:
        if devtools is not None:
            devtools.close()
        if browser is not None:
            stop(browser)
        if kc is not None:
            kc.stop_channels()
        if session is not None and server.poll() is None:
            api(port, f"/api/sessions/{session['id']}", "DELETE")
        stop(server)
