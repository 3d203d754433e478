"""The repository itself: packaging, set-up, notebook hygiene and the from-scratch rule."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.foundation

REPO = Path(__file__).resolve().parents[1]


def _requirement_names(specs: list[str]) -> dict[str, str]:
    """Map normalised package name -> version spec (whitespace removed)."""
    out = {}
    for spec in specs:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
        assert m, spec
        name = m.group(1).lower().replace("_", "-")
        out[name] = m.group(2).replace(" ", "").lstrip("=") if m.group(2).startswith("==") else m.group(2)
    return out


def test_environment_yml_matches_pyproject():
    import yaml

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = _requirement_names(project["dependencies"] + extras["lectures"] + extras["instructor"] + extras["test"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {}
    pip_section = None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section = dep["pip"]
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", dep)
        name, spec = m.group(1).lower(), m.group(2).replace(" ", "")
        conda[name] = spec
    conda.pop("python"), conda.pop("pip")
    # conda-forge names torch "pytorch" and pins with a single "="
    conda["torch"] = "==" + conda.pop("pytorch").lstrip("=")
    wanted["torch"] = "==" + wanted["torch"]
    assert conda == wanted, "environment.yml and pyproject.toml name different packages or versions"
    assert pip_section == ["-e .[lectures,instructor,test]"]
    assert env["channels"] == ["conda-forge"]


def test_torch_pinned_exactly():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps


def test_layout():
    for name in ["seqlib", "seqcourse", "seqcourse/kernel", "lectures", "exercises", "course", "tests", "benchmarks",
                 "environment.yml", "pyproject.toml", "Makefile", "README.md", ".ci/run", "LICENSE", "SYLLABUS.md",
                 "ARCHITECTURE.md", "course/demo_submissions/expected.json"]:
        assert (REPO / name).exists(), name
    assert "make test" in (REPO / ".ci/run").read_text()
    readme = (REPO / "README.md").read_text()
    for command in ["make test", "make course", "make lab", "environment.yml", "SYLLABUS"]:
        assert command in readme, command


def test_nbgrader_config_points_at_exercises():
    text = (REPO / "course" / "nbgrader_config.py").read_text()
    assert 'source_directory = "../exercises"' in text
    ignored = (REPO / ".gitignore").read_text()
    for generated in ["course/release/", "course/submitted/", "course/autograded/", "course/feedback/",
                      "course/gradebook.db"]:
        assert generated in ignored


def _tracked_notebooks() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO, capture_output=True, text=True)
    listed = [REPO / p for p in out.stdout.split()] if out.returncode == 0 else []
    # untracked notebooks about to be committed count too
    others = [p for d in ("lectures", "exercises") for p in (REPO / d).rglob("*.ipynb")
              if ".ipynb_checkpoints" not in p.parts]
    return sorted(set(listed) | set(others))


def test_committed_notebooks_have_no_outputs():
    dirty = []
    for path in _tracked_notebooks():
        if "demo_submissions" in path.parts:  # students' hand-ins are kept as they were handed in
            continue
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell.get("outputs") or cell.get("execution_count"):
                dirty.append(str(path.relative_to(REPO)))
                break
    assert not dirty, f"notebooks carry outputs or execution counts (strip them): {dirty}"


FORBIDDEN = {
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "MultiheadAttention", "Transformer",
    "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer",
    "LayerNorm", "scaled_dot_product_attention", "multi_head_attention_forward", "layer_norm", "_VF",
    "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
}
TORCH_BASES = {"nn", "torch.nn", "F", "torch.nn.functional", "functional", "torch", "torch._VF", "_VF"}


def _violations(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            if ast.unparse(node.value) in TORCH_BASES:
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
            for alias in node.names:
                if alias.name in FORBIDDEN:
                    found.append(f"{filename}:{node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torch._VF"):
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
    return found


def test_checker_catches_delegation():
    bad = "import torch\nfrom torch import nn\nx = nn.LSTM(2, 3)\n"
    bad += "y = torch.nn.functional.scaled_dot_product_attention\n"
    bad += "from torch.nn import MultiheadAttention\nz = torch._VF.lstm\nw = F.layer_norm\n"
    lines = {int(v.split(":")[1]) for v in _violations(bad, "bad.py")}
    assert lines == {3, 4, 5, 6, 7}
    assert _violations("import torch\nx = torch.tanh(torch.ones(2))\n", "ok.py") == []


def test_seqlib_implements_what_it_teaches():
    """seqlib may not call torch.nn's recurrent/attention/transformer layers or fused kernels.

    seqcourse is exempt: it holds the torch.nn references that student work is checked against.
    """
    found = []
    for path in sorted((REPO / "seqlib").rglob("*.py")):
        found += _violations(path.read_text(), str(path.relative_to(REPO)))
    assert not found, "seqlib delegates taught layers to torch:\n" + "\n".join(found)


def test_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    cmd = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    result = subprocess.run(cmd + ["check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


HEAVY = ("nbgrader", "sqlalchemy", "alembic", "ipywidgets", "matplotlib", "nbconvert", "jupyter_server")


@pytest.mark.parametrize("statement", [
    "import seqlib",
    "import seqlib; seqlib.LSTM, seqlib.TransformerLM, seqlib.data.sensor_activity",
    "from seqcourse.kernel import checks",  # what an assignment's first cell imports
])
def test_imports_are_light(statement):
    code = f"import sys; {statement}; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"{statement!r} imports {out.stdout.strip()}"


def test_the_old_grading_import_still_works_with_a_warning():
    code = ("import warnings; warnings.simplefilter('error', FutureWarning)\n"
            "try:\n    from seqlib.grading import checks\nexcept FutureWarning as w:\n    print('warned:', w)\n"
            "warnings.simplefilter('ignore')\nfrom seqlib.grading import checks\n"
            "import seqcourse.kernel.checks as new\nprint(checks is new)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "warned: seqlib.grading.checks has moved to seqcourse.kernel.checks" in out and out.endswith("True\n")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (at the top or inside functions), from the source."""
    paths = sorted(p for pkg in ("seqlib", "seqcourse") for p in (REPO / pkg).rglob("*.py"))
    modules = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not (name.startswith(target + ".") and
                                                       modules[target].name == "__init__.py"):
                    graph[name].add(target)
    return graph


def test_no_import_cycles_and_seqlib_never_imports_seqcourse():
    graph = _import_graph()
    assert not [m for m, deps in graph.items() if m.startswith("seqlib") and any(d.startswith("seqcourse")
                                                                                 for d in deps)]
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_graph_sees_a_cycle():
    """The cycle test reads relative imports inside functions too (a lazy cycle is still a cycle)."""
    graph = _import_graph()
    assert "seqcourse.runner" in graph["seqcourse.release"] and "seqcourse.worker" in graph["seqcourse.runner"]


def test_no_path_points_outside_the_repository():
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    # the patterns are assembled so that this file does not match itself
    outside = re.compile("|".join(re.escape(a + b) for a, b in (("../", "shared"), ("/wo", "rk/"), ("/ho", "me/"))))
    found = []
    for name in out:
        path = REPO / name
        if path.suffix in (".py", ".md", ".ipynb", ".toml", ".yml", ".cfg", "") and path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            found += [f"{name}: {m.group(0)}" for m in outside.finditer(text)]
    assert not found, found
