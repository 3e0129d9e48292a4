"""JupyterLab really renders the explorer of notebook 01: serve it headless, screenshot it with chromium.

JupyterLab 4 does not rebuild widgets from the state saved in a notebook file, so the test does what
a user does: a kernel session for the notebook runs its cells (on the tiny mini dataset, through the
notebook's ``DATA_ROOT`` parameter), then the browser opens the notebook, attaches to that running
kernel and draws the widgets from it. The screenshot must contain a patch of the very PNG the
explorer rendered in the kernel, which the text fallback of a widget that failed could never show.

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


def read_png(data) -> np.ndarray:
    import matplotlib.image as mpimg

    rgba = mpimg.imread(io.BytesIO(data) if isinstance(data, bytes) else data, format="png")
    return np.round(rgba[..., :3] * 255).astype(np.uint8) if rgba.dtype != np.uint8 else rgba[..., :3]


def test_jupyterlab_renders_the_explorer(tmp_path):
    import nbformat
    from jupyter_client import BlockingKernelClient

    from tpslab.synthetic import generate

    data = generate(tmp_path / "tiny", preset="tiny", seed=0, progress=False).root
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
    kc = session = None
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

        shot = tmp_path / "explorer.png"
        browser = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}",
             f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1", "--force-color-profile=srgb",
             "--hide-scrollbars", "--virtual-time-budget=30000", f"--screenshot={shot}",
             f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={TOKEN}"],
            capture_output=True, text=True, timeout=240)
        assert shot.is_file(), f"chromium wrote no screenshot (exit {browser.returncode}):\n{browser.stderr[-2000:]}"
        if os.environ.get("TPSLAB_SCREENSHOT_DIR"):
            shutil.copy(shot, Path(os.environ["TPSLAB_SCREENSHOT_DIR"]) / "explorer_jupyterlab.png")

        pixels = read_png(shot)
        assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
        assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500, "the page is blank"
        # a piece of the frame inside the explorer's picture (centre of its upper half)
        h, w = shown.shape[:2]
        patch = shown[h // 4 - 16: h // 4 + 16, w // 2 - 16: w // 2 + 16]
        assert len(np.unique(patch.reshape(-1, 3), axis=0)) > 20, "the reference patch is too plain to find"
        assert find_patch(pixels, patch) is not None, "the explorer's picture is not on the page"
    finally:
        if kc is not None:
            kc.stop_channels()
        if session is not None and server.poll() is None:
            api(port, f"/api/sessions/{session['id']}", "DELETE")
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
