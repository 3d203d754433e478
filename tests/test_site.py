"""The HTML course site (``make course`` -> course/site/) works without a network.

A small notebook with maths and a live widget is executed and rendered; the page must load every script and
style sheet from the site folder (no http(s) URL), embed the widget state, and find MathJax under _static/.
Where Debian's Chromium is installed, the page is also opened from disk with every network request refused:
the maths must typeset without errors and the widget's figure must appear.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from seqcourse.notebooks import execute_notebook, render_html, widget_manager_dir

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build"
pytestmark = [pytest.mark.course, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = BUILD / "test-artifacts" / "site"

WIDGET_CELL = """\
import io
import ipywidgets as widgets
import matplotlib.pyplot as plt

slider = widgets.IntSlider(value=3, min=1, max=9, description="n")
image = widgets.Image(format="png")

def draw(*_):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot(range(slider.value))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    image.value = buf.getvalue()

slider.observe(draw, "value")
draw()
widgets.VBox([slider, image])
"""


class _Refs(HTMLParser):
    """Collects the URLs a page loads: script src, link href, and url(...)/@import in inline styles."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src") is not None:
            self.urls.append(a["src"])
        if tag == "link" and a.get("href") is not None:
            self.urls.append(a["href"])
        if tag in ("img", "iframe", "source") and a.get("src") is not None:
            self.urls.append(a["src"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            text = re.sub(r"/\*.*?\*/", "", data, flags=re.S)  # comments load nothing
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", text)
            self.urls += re.findall(r"@import\s+['\"]([^'\"]+)", text)


def loaded_urls(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nb")
    nb = new_notebook(cells=[
        new_markdown_cell("# Attention\n\n$$\\mathrm{Attention}(Q,K,V) = \\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V$$"),
        new_code_cell(WIDGET_CELL),
    ])
    path = folder / "demo.ipynb"
    nbformat.write(nb, path)
    return execute_notebook(path, timeout=120)


def check_offline_page(out: Path, nb) -> str:
    html = out.read_text(encoding="utf-8")
    urls = loaded_urls(html)
    remote = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert not remote, f"the page loads from the network: {remote}"
    for url in urls:
        if url.startswith("data:"):
            continue
        local = out.parent / url.split("?")[0]
        assert local.is_file(), f"{url} is referenced but {local} is missing"
    # MathJax is loaded from the site folder and the maths is left for it to typeset
    assert any(u.startswith("_static/mathjax/MathJax.js") for u in urls)
    assert 'webFont: "STIX-Web"' in html  # the fonts that the shipped MathJax has
    assert (out.parent / "_static" / "mathjax" / "fonts" / "HTML-CSS" / "STIX-Web").is_dir()
    assert "\\sqrt{d_k}" in html
    # the widget state is embedded and the view refers to a model in it
    state_json = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S)
    assert state_json, "no widget state in the page"
    state = json.loads(state_json.group(1))
    assert state == nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    views = re.findall(r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>', html, re.S)
    assert views and json.loads(views[0])["model_id"] in state["state"]
    names = {m["model_name"] for m in state["state"].values()}
    assert {"VBoxModel", "IntSliderModel", "ImageModel"} <= names
    return html


def test_builtin_renderer_page_is_offline(executed, tmp_path):
    out = render_html(executed, tmp_path / "site" / "demo.html", widget_manager="builtin")
    html = check_offline_page(out, executed)
    assert "application/vnd.jupyter.widget-view+json" in html and "ImageModel" in html
    assert "html-manager" not in "".join(loaded_urls(html))


@pytest.mark.skipif(widget_manager_dir(fetch=False) is None,
                    reason="@jupyter-widgets/html-manager is not in build/vendor yet (`make course` fetches it)")
def test_html_manager_page_is_offline(executed, tmp_path):
    out = render_html(executed, tmp_path / "site" / "demo.html", widget_manager="html-manager")
    html = check_offline_page(out, executed)
    assert "_static/html-manager/embed.js" in loaded_urls(html)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium (apt-get install "
                    "chromium); the offline page is then only checked as text")
@pytest.mark.parametrize("manager", ["builtin", "html-manager"])
def test_page_renders_offline_in_chromium(executed, tmp_path, manager):
    if manager == "html-manager" and widget_manager_dir(fetch=False) is None:
        pytest.skip("@jupyter-widgets/html-manager is not in build/vendor yet (`make course` fetches it)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the Python package playwright is missing")
    out = render_html(executed, tmp_path / "site" / "demo.html", widget_manager=manager)
    refused = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                       else (refused.append(route.request.url), route.abort()))
            page.goto(out.as_uri())
            page.wait_for_function("() => document.querySelectorAll('.MathJax_Display').length > 0", timeout=30_000)
            figure = page.locator("img[src^='data:image/png'], .widget-image").first
            figure.wait_for(state="visible", timeout=30_000)
            page.wait_for_timeout(500)
            assert page.locator("text=Math Processing Error").count() == 0
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"offline_page_{manager}.png"), full_page=True)
        finally:
            browser.close()
    assert not [u for u in refused if u.startswith("http")], f"the page tried the network: {refused}"


def test_unknown_widget_manager_is_refused(executed, tmp_path):
    with pytest.raises(ValueError, match="widget_manager"):
        render_html(executed, tmp_path / "x.html", widget_manager="cdn")
