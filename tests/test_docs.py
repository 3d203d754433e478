"""The library documents itself where it is read: written-out docstrings on every public name, complete module tables.

- every public class and function (the ``__all__`` of every seqlib module) has a docstring;
- no docstring holds an unfilled ``{placeholder}`` (documentation is written out, not assembled with ``.format``);
- the module tables of ``seqlib``, ``seqlib.viz`` and ``seqlib.widgets`` name every module of the package, and
  their lazy ``_SUBMODULES``/``_EXPORTS`` tables resolve.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import seqlib

pytestmark = pytest.mark.foundation

#: a ``str.format`` field: ``{name}`` not preceded by a letter, ``\``, ``_``, ``^`` or a brace (LaTeX: ``h_{t-1}``,
#: ``\frac{a}{b}``, ``\mathcal{U}`` are not fields)
PLACEHOLDER = re.compile(r"(?<![\w\\^{}])\{[A-Za-z_][A-Za-z0-9_]*\}")


def library_modules() -> list[str]:
    """Every module of seqlib except the instructor's grading package."""
    names = []
    for info in pkgutil.walk_packages(seqlib.__path__, "seqlib."):
        if info.name.startswith("seqlib.grading"):
            continue
        names.append(info.name)
    return sorted(names)


def public_objects(module_name: str):
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield f"{module_name}.{name}", obj


def docstrings(module_name: str):
    """(where, docstring) of the module, its public classes and functions, and their methods."""
    module = importlib.import_module(module_name)
    yield module_name, module.__doc__ or ""
    for where, obj in public_objects(module_name):
        yield where, obj.__doc__ or ""
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if inspect.isfunction(member) and member.__doc__:
                    yield f"{where}.{attr}", member.__doc__


def test_the_placeholder_check_can_fail():
    assert PLACEHOLDER.search("- **{hx_name}**: {hx_doc} Zeros if not given.")
    assert not PLACEHOLDER.search(r"h_{t-1} W_{hh}^\top, \frac{\partial L}{\partial h_t}, \mathcal{U}(-k, k)")
    assert not PLACEHOLDER.search('``{"input", "forget"}`` and ``{name: control}``')


@pytest.mark.parametrize("module_name", library_modules())
def test_public_names_have_docstrings_written_out(module_name):
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no module docstring"
    missing = [where for where, obj in public_objects(module_name) if not (obj.__doc__ or "").strip()]
    assert not missing, f"no docstring: {missing}"
    unfilled = [(where, m.group()) for where, doc in docstrings(module_name) for m in PLACEHOLDER.finditer(doc)]
    assert not unfilled, f"unfilled placeholders: {unfilled}"


def test_no_docstring_is_assembled_at_import_time():
    """No ``X.__doc__ = ...`` in the library: a docstring is read in the source, where it is written."""
    assigned = []
    for path in sorted(Path(seqlib.__file__).parent.rglob("*.py")):
        if "grading" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
            assigned += [f"{path.name}:{node.lineno}" for t in targets
                         if isinstance(t, ast.Attribute) and t.attr == "__doc__"]
    assert not assigned, f"docstrings assembled in code: {assigned}"


def test_the_recurrent_layers_document_their_inputs_outputs_and_attributes():
    for cls, state in ((seqlib.RNN, "h_n"), (seqlib.LSTM, "c_n"), (seqlib.GRU, "h_n")):
        doc = cls.__doc__
        for part in (".. math::", "Args:", "Inputs: input", "Outputs: output", "Attributes:", state,
                     r"(D \cdot \text{num\_layers}, N, H_{out})", "weight_ih_l[k]"):
            assert part in doc, f"{cls.__name__}'s docstring has no {part!r}"


@pytest.mark.parametrize("package", ["seqlib", "seqlib.viz", "seqlib.widgets"])
def test_module_tables_are_complete(package):
    pkg = importlib.import_module(package)
    found = {info.name for info in pkgutil.iter_modules(pkg.__path__) if not info.name.startswith("_")} - {"grading"}
    assert set(pkg._SUBMODULES) == found, f"{package}._SUBMODULES differs from its modules {sorted(found)}"
    for name in found:
        assert f"``{name}``" in pkg.__doc__, f"{package}'s module table does not name {name}"
        assert getattr(pkg, name) is importlib.import_module(f"{package}.{name}")
    for name, module in pkg._EXPORTS.items():
        assert getattr(pkg, name) is getattr(importlib.import_module(f"{package}.{module}"), name)
    assert set(pkg._EXPORTS) <= set(dir(pkg))
