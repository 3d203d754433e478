"""A lecture and a feedback page in a real browser (Debian's Chromium, driven by Playwright), on loopback only.

The first test opens ``lectures/04_attention.ipynb`` in JupyterLab, runs the cell with the scaled dot-product
attention demo, moves its temperature slider with the mouse and checks that the figure changed. The server's root
is a copy of ``lectures/`` under build/ (and autosave is off), so the committed notebook is never written. The
second opens a student's feedback page of the fixture course (served from the course's ``feedback/`` folder) with
every request off the loopback refused: its maths must be typeset by the course's own MathJax, and the failure
message must come first and wrap. Screenshots are kept under ``build/test-artifacts/browser/``.

Nothing is downloaded: Playwright drives the system browser ``/usr/bin/chromium`` (``apt-get install chromium``);
without it the test is skipped.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from seqcourse.paths import jupyter_env

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build"
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.part3]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LECTURE = "lectures/04_attention.ipynb"
ARTIFACTS = BUILD / "test-artifacts" / "browser"

if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium (Debian: apt-get install chromium); "
                "the browser test drives the system browser and never downloads one", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="the Python package playwright is not installed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """A JupyterLab server on 127.0.0.1 with a random token; Jupyter's state lives under build/."""
    env = dict(os.environ, **jupyter_env())
    env["JUPYTER_CONFIG_DIR"] = str(BUILD / "jupyter" / "browser-config")  # a clean config for the test server
    Path(env["JUPYTER_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir(exist_ok=True)
    # no "would you like news?" toast over the notebook
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    workspaces = BUILD / "jupyter" / "browser-workspaces"
    workspaces.mkdir(parents=True, exist_ok=True)
    settings = BUILD / "jupyter" / "browser-settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    # the server's root is a copy of the repository's lectures, so nothing the browser does can touch them
    root = BUILD / "test-artifacts" / "browser-root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(REPO / "lectures", root / "lectures")
    port, token = free_port(), secrets.token_hex(16)
    log = (ARTIFACTS / "jupyterlab.log")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.workspaces_dir={workspaces}", f"--LabApp.user_settings_dir={settings.parent.parent}",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--ServerApp.open_browser=False", "--allow-root"]
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        start = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() - start > 45:
                pytest.fail(f"JupyterLab did not start; see {log}")
            time.sleep(0.3)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_idle(page, timeout_ms=60_000):
    """Wait until the notebook's kernel has started and is idle (the toolbar's execution indicator)."""
    page.wait_for_function(
        "() => { const el = document.querySelector('.jp-Notebook-ExecutionIndicator');"
        " return el && el.getAttribute('data-status') === 'idle'; }", timeout=timeout_ms)


def test_lecture_widget_in_chromium(lab):
    base, token = lab
    start = time.monotonic()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            # the page may talk to our server only
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                       or route.request.url.startswith(("data:", "blob:")) else route.abort())
            page.goto(f"{base}/lab/tree/{LECTURE}?reset&token={token}", wait_until="domcontentloaded")
            cell = page.locator(".jp-CodeCell").filter(has_text="attention_demo(").first
            cell.wait_for(state="visible", timeout=45_000)
            wait_idle(page)
            # the demo attends over the lecture's slide tables: run the imports and the cell that defines them
            for text in ("import seqlib", "SLIDE_K = "):
                setup = page.locator(".jp-CodeCell").filter(has_text=text).first
                setup.locator(".cm-content").first.click()
                page.keyboard.press("Shift+Enter")
                wait_idle(page)

            # run the demo cell, wait for the figure
            cell.locator(".cm-content").first.click()
            page.keyboard.press("Shift+Enter")
            figure = cell.locator(".jp-OutputArea-output img").first
            try:
                figure.wait_for(state="visible", timeout=90_000)
            except playwright_api.TimeoutError:
                page.screenshot(path=str(ARTIFACTS / "no_figure.png"))
                outputs = cell.locator(".jp-OutputArea").first.inner_text(timeout=5_000)
                pytest.fail(f"the demo drew no figure in 90 s; its cell shows: {outputs[-800:]!r}")
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.element_handle())
            output = cell.locator(".jp-Cell-outputWrapper").first
            output.scroll_into_view_if_needed()
            src_before = figure.get_attribute("src")
            shot_before = output.screenshot(path=str(ARTIFACTS / "attention_demo_before.png"))

            # move the temperature slider with the mouse: drag its handle to the left end of the track
            slider = cell.locator(".widget-slider").filter(has_text="temperature").first
            readout = slider.locator(".widget-readout").first
            value_before = readout.text_content()
            handle = slider.locator(".noUi-handle").first
            track = slider.locator(".noUi-target, .slider").first
            hb, tb = handle.bounding_box(), track.bounding_box()
            page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
            page.mouse.down()
            page.mouse.move(tb["x"] + 2, hb["y"] + hb["height"] / 2, steps=8)
            page.mouse.up()
            page.wait_for_function("el => parseFloat(el.textContent) < 0.5", arg=readout.element_handle(),
                                   timeout=15_000)
            value_after = readout.text_content()

            # the kernel redraws: the image's src (a blob URL of the new PNG) changes, then the kernel is idle
            page.wait_for_function("([img, old]) => img.getAttribute('src') !== old && img.complete",
                                   arg=[figure.element_handle(), src_before], timeout=30_000)
            wait_idle(page)
            time.sleep(0.5)
            shot_after = output.screenshot(path=str(ARTIFACTS / "attention_demo_after.png"))
            page.screenshot(path=str(ARTIFACTS / "lecture_page.png"))
        finally:
            browser.close()

    assert float(value_before) == 1.0 and float(value_after) < 0.5, (value_before, value_after)
    assert shot_after != shot_before, "the plot looks the same after moving the slider"
    print(f"the browser test took {time.monotonic() - start:.0f} s")


@pytest.fixture(scope="module")
def feedback_server(graded_course):
    """The fixture course's feedback folder (pages and ``_static/mathjax``) over HTTP on 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(graded_course.course.feedback))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def test_feedback_page_renders_its_maths_offline(feedback_server):
    base = feedback_server
    refused: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})

            def route(r):  # the network is off: only this machine's loopback server answers
                if r.request.url.startswith(base) or r.request.url.startswith(("data:", "blob:")):
                    return r.continue_()
                refused.append(r.request.url)
                return r.abort()

            page.route("**/*", route)
            page.add_init_script("window.MathJax = {AuthorInit: function () {"
                                 " MathJax.Hub.Register.StartupHook('End', function () { window.__typeset = true; });"
                                 "}};")
            page.goto(f"{base}/delegate-torch/fx_torch/fx_torch.html", wait_until="load")
            page.wait_for_function("() => window.__typeset === true", timeout=45_000)
            maths = page.locator(".MathJax, .MathJax_Display").count()
            prose = " ".join(page.locator(".text_cell_render").all_inner_texts())
            error = page.locator("div.output_error pre").first
            error.scroll_into_view_if_needed()
            sizes = error.evaluate("el => [el.scrollWidth, el.clientWidth, el.getBoundingClientRect().right,"
                                   " document.documentElement.clientWidth]")
            message = error.inner_text()
            page.screenshot(path=str(ARTIFACTS / "feedback_page.png"), full_page=True)
        finally:
            browser.close()
    assert not refused, f"the page asked the network for {refused}"
    assert maths >= 3, "the inline and display maths of the markdown are typeset"
    assert "$" not in prose and "\\frac" not in prose and "d_k" not in prose, prose
    scroll_width, client_width, right, page_width = sizes
    assert scroll_width <= client_width + 1 and right <= page_width, sizes  # wrapped, not scrolled or cut
    assert message.startswith("AssertionError: ") and "earns no points" in message.splitlines()[0], message
