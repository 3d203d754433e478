"""Executing and rendering notebooks headless (used by ``make course`` and the tests)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .paths import jupyter_env


def execute_notebook(path: Path, timeout: int = 600, cwd: Path | None = None) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` in a fresh kernel and return the executed notebook.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first cell that fails.
    """
    jupyter_env()  # the settings already made by the caller win
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd or Path(path).parent)}},
        store_widget_state=True,
    )
    client.execute()
    return nb


# --- rendering to a self-contained, offline HTML site -------------------------------------------------------------
#
# nbconvert's "lab" template loads require.js, MathJax and the widget HTML manager from CDNs (cdnjs, unpkg) and
# mermaid.js on demand. The course site must open without a network, so render_html() points every script at a
# copy under ``<site>/_static/``:
#   - MathJax 2.7 from the ``jupyter-server-mathjax`` package (a dependency; the same MathJax nbconvert asks for).
#     That copy ships only the STIX-Web fonts, so the page's MathJax configuration asks for them;
#   - the widget manager ``@jupyter-widgets/html-manager`` (its standalone ``dist/embed.js``), fetched once with
#     ``npm pack`` into ``build/vendor/`` and copied from there; without npm it falls back to a small built-in
#     renderer (below) that draws the saved widget state (plots, labels, control values) without interaction;
#   - require.js and mermaid are not needed by the lectures and are left out.

HTML_MANAGER_VERSION = "1.0.15"
_HTML_MANAGER_NPM = f"@jupyter-widgets/html-manager@{HTML_MANAGER_VERSION}"
_MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"

#: the <script> tags of a page whose MathJax is the course's own copy (see mathjax_head)
_MATHJAX_HEAD = r"""<script type="text/x-mathjax-config">
MathJax.Hub.Config({
    tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
              processEscapes: true, processEnvironments: true},
    TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
    "HTML-CSS": {availableFonts: [], imageFont: null, preferredFont: null, webFont: "STIX-Web",
                 linebreaks: {automatic: true}},
    displayAlign: "center",
    messageStyle: "none"
});
</script>
<script src="MATHJAX_URL"></script>"""

_OFFLINE_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{{ resources.mathjax_head }}{%- endblock html_head_js_mathjax -%}
{%- block jupyter_widgets -%}
{%- if "widgets" in nb.metadata -%}
{%- if resources.widget_renderer_url -%}
<script src="{{ resources.widget_renderer_url }}"></script>
{%- else -%}
<script>{{ resources.builtin_widget_renderer }}</script>
{%- endif -%}
{%- endif -%}
{%- endblock jupyter_widgets -%}
"""

# A small renderer for saved widget state, used when the HTML manager is not available. It draws what the state
# holds (boxes, Output widgets' outputs, Image widgets, labels and the current value of each control) read-only.
_BUILTIN_WIDGET_RENDERER = r"""
(function () {
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var stateEl = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
    if (!stateEl) { return; }
    var models = (JSON.parse(stateEl.textContent) || {}).state || {};
    function model(ref) { return models[String(ref).replace(/^IPY_MODEL_/, "")]; }
    function buffer(m, name) {
      var bufs = m.buffers || [];
      for (var i = 0; i < bufs.length; i++) { if (bufs[i].path && bufs[i].path[0] === name) { return bufs[i].data; } }
      return null;
    }
    function output(o) {
      var el = document.createElement("div");
      var data = o.data || {};
      if (data["image/png"]) {
        var img = document.createElement("img");
        img.src = "data:image/png;base64," + String(data["image/png"]).replace(/\s/g, "");
        el.appendChild(img);
      } else if (data["text/html"]) {
        el.innerHTML = [].concat(data["text/html"]).join("");
      } else {
        var pre = document.createElement("pre");
        pre.textContent = [].concat(o.text || data["text/plain"] || "").join("");
        el.appendChild(pre);
      }
      return el;
    }
    function render(m) {
      var el = document.createElement("div");
      if (!m) { return el; }
      var s = m.state || {};
      var name = m.model_name;
      el.className = "seqcourse-widget seqcourse-" + name;
      if (/Box|Tab|Accordion|Stack/.test(name)) {
        el.style.display = "flex";
        el.style.flexDirection = name === "HBoxModel" ? "row" : "column";
        el.style.flexWrap = "wrap";
        el.style.gap = "4px 16px";
        (s.children || []).forEach(function (c) { el.appendChild(render(model(c))); });
      } else if (name === "OutputModel") {
        (s.outputs || []).forEach(function (o) { el.appendChild(output(o)); });
      } else if (name === "ImageModel") {
        var data = buffer(m, "value");
        if (data) {
          var img = document.createElement("img");
          img.src = "data:image/" + (s.format || "png") + ";base64," + data;
          el.appendChild(img);
        }
      } else if (name === "HTMLModel" || name === "HTMLMathModel") {
        el.innerHTML = s.value || "";
      } else if (name === "LabelModel") {
        el.textContent = s.value || "";
      } else if (/Layout|Style/.test(name)) {
        return el;
      } else {
        var value = s.value;
        if (s.index !== undefined && s._options_labels) {
          value = [].concat(s.index).map(function (i) { return s._options_labels[i]; }).join(", ");
        }
        el.textContent = (s.description ? s.description + ": " : "") + String(value);
        el.style.fontFamily = "var(--jp-ui-font-family, sans-serif)";
        el.style.color = "var(--jp-ui-font-color1, #333)";
      }
      return el;
    }
    var views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
    Array.prototype.forEach.call(views, function (view) {
      var ref = JSON.parse(view.textContent);
      var note = document.createElement("div");
      note.style.fontSize = "0.8em";
      note.style.color = "#777";
      note.textContent = "(saved state of a live demo: run the notebook in JupyterLab to use its controls)";
      view.parentNode.insertBefore(note, view);
      view.parentNode.insertBefore(render(model(ref.model_id)), view);
    });
  });
}());
"""


def _copy_tree_once(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` unless a complete copy (marked by ``.complete``) is already there."""
    import shutil

    marker = dst / ".complete"
    if marker.exists():
        return
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    marker.write_text("")


def mathjax_dir() -> Path:
    """The MathJax 2.7 tree shipped by the ``jupyter-server-mathjax`` package."""
    import jupyter_server_mathjax

    return Path(jupyter_server_mathjax.__file__).parent / "static"


def mathjax_head(url: str) -> str:
    """The ``<script>`` tags that load MathJax 2.7 from ``url`` (the course's own copy, never a CDN), configured for
    the notebooks' ``$...$`` and ``$$...$$`` maths and the STIX-Web fonts that copy ships."""
    return _MATHJAX_HEAD.replace("MATHJAX_URL", url)


def install_mathjax(static: Path) -> str:
    """Copy MathJax into ``static/mathjax`` (once) and return the script's path relative to ``static``'s parent."""
    _copy_tree_once(mathjax_dir(), Path(static) / "mathjax")
    return f"{Path(static).name}/mathjax/MathJax.js?config={_MATHJAX_CONFIG}"


def widget_manager_dir(fetch: bool = True, vendor: Path | None = None) -> Path | None:
    """The ``dist/`` folder of ``@jupyter-widgets/html-manager``, kept in ``vendor`` (default ``build/vendor/``).

    On first use it is fetched from the npm registry with ``npm pack`` (when ``fetch`` is true and npm is
    installed). Returns ``None`` when no copy can be had; the caller then uses the built-in renderer.
    """
    import shutil
    import subprocess
    import tarfile
    import tempfile

    from .paths import default_build

    cache = (vendor or default_build() / "vendor") / f"html-manager-{HTML_MANAGER_VERSION}"
    if (cache / "dist" / "embed.js").exists():
        return cache / "dist"
    npm = shutil.which("npm")
    if not fetch or npm is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = subprocess.run([npm, "pack", "--silent", _HTML_MANAGER_NPM], cwd=tmp, capture_output=True,
                                    text=True, timeout=300, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            return None
        staging = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and (
                m.name.startswith("package/dist/") and not m.name.endswith(".map")
                or m.name in ("package/LICENSE", "package/package.json"))]
            tar.extractall(staging, members=members, filter="data")
        if cache.exists():
            shutil.rmtree(cache)
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging / "package", cache)
    return cache / "dist" if (cache / "dist" / "embed.js").exists() else None


def site_assets(site: Path, widget_manager: str = "auto") -> dict[str, str]:
    """Copy MathJax (and the widget manager, if available) into ``site/_static``; return the URLs to use.

    ``widget_manager``: ``"auto"`` uses ``@jupyter-widgets/html-manager`` when a copy can be had and the built-in
    renderer otherwise; ``"html-manager"`` insists on it (``RuntimeError`` if unavailable); ``"builtin"`` never
    uses it.
    """
    if widget_manager not in ("auto", "html-manager", "builtin"):
        raise ValueError(f"widget_manager must be 'auto', 'html-manager' or 'builtin', but got {widget_manager!r}")
    static = site / "_static"
    urls = {"mathjax_url": install_mathjax(static), "widget_renderer_url": ""}
    if widget_manager != "builtin":
        dist = widget_manager_dir(fetch=True)
        if dist is None and widget_manager == "html-manager":
            raise RuntimeError(f"{_HTML_MANAGER_NPM} is not in build/vendor and could not be fetched with npm")
        if dist is not None:
            _copy_tree_once(dist, static / "html-manager")
            urls["widget_renderer_url"] = "_static/html-manager/embed.js"
    return urls


def render_html(nb: nbformat.NotebookNode, out: Path, widget_manager: str = "auto") -> Path:
    """Write an executed notebook as standalone HTML (widget state embedded, maths rendered offline).

    The page loads scripts only from ``<out's folder>/_static`` (see :func:`site_assets`), never from a network.
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    urls = site_assets(out.parent, widget_manager)
    exporter = HTMLExporter(
        template_name="lab",
        template_file="seqcourse_offline.html.j2",
        extra_loaders=[DictLoader({"seqcourse_offline.html.j2": _OFFLINE_TEMPLATE})],
        mathjax_url=urls["mathjax_url"],
        widget_renderer_url=urls["widget_renderer_url"],
        require_js_url="",
        mermaid_js_url="",
        mermaid_layout_elk_js_url="",
        jquery_url="",
    )
    resources = {"builtin_widget_renderer": _BUILTIN_WIDGET_RENDERER, "mathjax_head": mathjax_head(urls["mathjax_url"])}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    out.write_text(body, encoding="utf-8")
    return out
