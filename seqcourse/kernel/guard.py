"""The grader's side of the grading kernel: undo tampering between cells, and make runs reproducible.

This module is imported *inside* the kernel that runs a submission. The executor
(:mod:`seqcourse.execute`) calls it through ``user_expressions`` of a silent execute request, which the
kernel evaluates without passing it through IPython's input transformers, so a student cell that rewrites later
cells cannot rewrite these calls.

- :func:`install` runs before the first cell: it records the pristine builtins, the IPython shell's execution
  machinery (input/AST transformers, exception handlers, display hook, event callbacks, patched methods) and the
  kernel's own methods.
- :func:`after_instructor_cell` runs after each read-only instructor cell (the setup cell that imports
  ``seqcourse.kernel.checks`` and the libraries): the names it bound and the attributes of the libraries it loaded
  (torch, torch.testing, torch.nn.functional, numpy, numpy.testing, math, the checks module, ...) become
  protected.
- :func:`before_cell` runs before every cell: it puts the shell's execution machinery back; before a *test*
  cell it also puts back the protected names, builtins and library attributes; and it seeds ``random``,
  ``numpy.random`` and ``torch`` from the cell's grade id so that grading the same work twice gives the same
  score. It returns a short report of what it had to restore (the grader flags such submissions for review).

The pristine-function capture in :mod:`seqcourse.kernel.checks` is the first line of defence for the comparisons
themselves; this module covers the names and machinery around them. Like anything running in the student's
process it raises the bar rather than proving safety: the grader also flags suspicious code for a human.
"""

from __future__ import annotations

import builtins
import sys
import types
import zlib

# pristine references, captured when the grader imports this module (before any student code runs)
_dict, _list, _set, _tuple, _len, _id = dict, list, set, tuple, len, id
_getattr, _setattr, _delattr, _hasattr, _isinstance = getattr, setattr, delattr, hasattr, isinstance
_callable, _sorted, _str, _type = callable, sorted, str, type
_vars = vars

#: modules whose attributes are protected once an instructor cell has loaded them
WATCHED_MODULES = (
    "math", "random", "builtins", "operator", "functools",
    "numpy", "numpy.testing", "numpy.linalg", "numpy.random",
    "torch", "torch.testing", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.linalg", "torch.autograd",
    "torch.nn.modules", "torch.nn.modules.rnn", "torch.nn.modules.activation", "torch.nn.modules.transformer",
    "torch.nn.modules.linear", "torch.nn.modules.normalization",
    "seqlib", "seqcourse", "seqcourse.kernel",
)
#: and every module whose name starts with one of these (the grading helpers the notebook imported)
WATCHED_PREFIXES = ("seqcourse.kernel.",)
#: classes whose (Python-level) attributes are protected the same way
WATCHED_CLASSES = ("torch.Tensor", "torch.nn.Module", "torch.nn.Parameter", "seqcourse.kernel.diagnose.Diagnosis",
                   "seqcourse.kernel.catalogue.Catalogue", "seqcourse.kernel.mutations.Sites")
_SHELL_HOOK_EVENTS = ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell")
_IPYTHON_PRIVATE = {"In", "Out", "get_ipython", "exit", "quit", "open"}

_state: dict = {}


def _shell():
    from IPython import get_ipython

    return get_ipython()


def _snapshot_attrs(obj) -> dict:
    try:
        return _dict(_vars(obj))
    except TypeError:
        return {}


_IMMUTABLE = (int, float, complex, bool, str, bytes, tuple, frozenset, _type(None))


def _protected_value(value) -> bool:
    """Attributes worth restoring: functions, classes, modules and immutable constants (not caches or state)."""
    return _callable(value) or _isinstance(value, (types.ModuleType, staticmethod, classmethod, property)) \
        or _isinstance(value, _IMMUTABLE)


def _restore_attrs(obj, snapshot: dict, label: str, restored: list, remove_new_callables: bool = False,
                   callables_only: bool = False) -> None:
    try:
        current = _vars(obj)
    except TypeError:
        return
    for key, value in snapshot.items():
        if callables_only and not _callable(value):
            continue
        if not callables_only and not _protected_value(value):
            continue
        if key not in current or current[key] is not value:
            try:
                _setattr(obj, key, value)
                restored.append(f"{label}.{key}")
            except (AttributeError, TypeError):
                pass
    if remove_new_callables:
        for key in _list(current.keys()):
            if key not in snapshot and _callable(current[key]) and not key.startswith("__"):
                try:
                    _delattr(obj, key)
                    restored.append(f"{label}.{key}")
                except (AttributeError, TypeError):
                    pass


def _shell_machinery(ip) -> dict:
    classes = [c for c in _type(ip).__mro__ if c.__module__.split(".")[0] in ("IPython", "ipykernel")]
    kernel = _getattr(ip, "kernel", None)
    kclasses = [c for c in _type(kernel).__mro__ if c.__module__.split(".")[0] in ("IPython", "ipykernel")] \
        if kernel is not None else []
    return {
        "transformers": {name: _list(_getattr(ip, name, [])) for name in
                         ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")},
        "custom_exceptions": ip.custom_exceptions,
        "events": {ev: _list(ip.events.callbacks.get(ev, [])) for ev in _SHELL_HOOK_EVENTS},
        "instance": _snapshot_attrs(ip),
        "classes": [(c, _snapshot_attrs(c)) for c in classes],
        "kernel": (kernel, _snapshot_attrs(kernel)) if kernel is not None else None,
        "kclasses": [(c, _snapshot_attrs(c)) for c in kclasses],
        "sys": {name: _getattr(sys, name) for name in ("displayhook", "excepthook", "stdout", "stderr")},
        "builtins_module": builtins,
    }


def install(seed: int = 0) -> str:
    """Record the pristine state of the kernel. Called by the grader before the first cell."""
    ip = _shell()
    _state.clear()
    _state["builtins"] = _dict(_vars(builtins))
    _state["machinery"] = _shell_machinery(ip)
    _state["names"] = {}
    _state["modules"] = {}
    _state["classes"] = {}
    _state["before_instructor"] = None
    _state["seed"] = seed
    _state["threads"] = _thread_ids()
    return "installed"


def _thread_ids() -> set:
    import threading

    return {t.ident for t in threading.enumerate()}


def before_instructor_cell() -> str:
    """Remember the user namespace, to learn which names the next instructor cell binds."""
    _state["before_instructor"] = _dict(_shell().user_ns)
    return "ok"


def after_instructor_cell() -> str:
    """Protect the names the instructor cell just bound and the libraries loaded so far."""
    ns = _shell().user_ns
    before = _state.get("before_instructor") or {}
    for key, value in ns.items():
        if key.startswith("_") or key in _IPYTHON_PRIVATE:
            continue
        if key not in before or before[key] is not value:
            _state["names"][key] = value
    # hooks an instructor cell installed (an extension, an event callback) are part of the protected state
    ip = _shell()
    m = _state["machinery"]
    for name in m["transformers"]:
        m["transformers"][name] = _list(_getattr(ip, name, []))
    m["events"] = {ev: _list(ip.events.callbacks.get(ev, [])) for ev in _SHELL_HOOK_EVENTS}
    m["custom_exceptions"] = ip.custom_exceptions
    names = [*WATCHED_MODULES, *(n for n in _list(sys.modules) if n.startswith(WATCHED_PREFIXES))]
    for name in names:
        module = sys.modules.get(name)
        if module is not None and name not in _state["modules"]:
            _state["modules"][name] = (module, _snapshot_attrs(module))
    for dotted in WATCHED_CLASSES:
        mod_name, _, cls_name = dotted.rpartition(".")
        module = sys.modules.get(mod_name)
        cls = _getattr(module, cls_name, None) if module is not None else None
        if cls is not None and dotted not in _state["classes"]:
            _state["classes"][dotted] = (cls, _snapshot_attrs(cls))
    _state["before_instructor"] = None
    return "ok"


def _students(items) -> bool:
    """True when one of ``items`` was defined in a notebook cell (``__main__``), not by a library or extension."""
    for item in items:
        module = _getattr(item, "__module__", None) or _getattr(_getattr(item, "__func__", None), "__module__", None)
        if module in (None, "__main__") or _str(module).startswith("<"):
            return True
    return False


def _restore_machinery(restored: list) -> None:
    """Put back the shell's execution machinery. What a library added (``%matplotlib inline`` registers event
    callbacks) is removed quietly; what a notebook cell defined is reported."""
    ip = _shell()
    m = _state["machinery"]
    for name, value in m["transformers"].items():
        current = _getattr(ip, name, None)
        if current is None or _list(current) != value:
            added = [t for t in (current or []) if t not in value]
            try:
                current[:] = value  # some are read-only properties returning the live list
            except TypeError:
                _setattr(ip, name, _list(value))
            if _students(added):
                restored.append(f"shell.{name}")
    if ip.custom_exceptions and not m["custom_exceptions"]:
        handler = ip.CustomTB
        ip.set_custom_exc((), None)
        if _students([_getattr(handler, "__func__", handler)]):
            restored.append("shell.set_custom_exc")
    for ev, callbacks in m["events"].items():
        current = ip.events.callbacks.get(ev, [])
        if _list(current) != callbacks:
            added = [c for c in current if c not in callbacks]
            current[:] = callbacks
            if _students(added):
                restored.append(f"shell.events.{ev}")
    _restore_attrs(ip, m["instance"], "shell", restored, remove_new_callables=True, callables_only=True)
    for cls, snap in m["classes"] + m["kclasses"]:
        _restore_attrs(cls, snap, cls.__name__, restored, callables_only=True)
    if m["kernel"] is not None:
        kernel, snap = m["kernel"]
        _restore_attrs(kernel, snap, "kernel", restored, remove_new_callables=True, callables_only=True)
    for name, value in m["sys"].items():
        if name in ("stdout", "stderr"):
            continue  # ipykernel swaps these per execution; a student replacing them only hides their own output
        if _getattr(sys, name) is not value:
            _setattr(sys, name, value)
            restored.append(f"sys.{name}")


def _restore_protected(restored: list) -> None:
    bdict = _vars(builtins)
    for key, value in _state["builtins"].items():
        if key not in bdict or bdict[key] is not value:
            bdict[key] = value
            restored.append(f"builtins.{key}")
    ns = _shell().user_ns
    if ns.get("__builtins__") is not builtins and ns.get("__builtins__") is not bdict:
        ns["__builtins__"] = builtins
        restored.append("__builtins__")
    for key, value in _state["names"].items():
        if key not in ns or ns[key] is not value:
            ns[key] = value
            # a student reusing a data name (``text``, ``x``) is normal; replacing a module or a function the
            # tests call (``checks``, ``torch``, a helper) is what tampering looks like
            if _callable(value) or _isinstance(value, types.ModuleType):
                restored.append(key)
    for name, (module, snap) in _state["modules"].items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            restored.append(f"sys.modules[{name!r}]")
        _restore_attrs(module, snap, name, restored)
    for dotted, (cls, snap) in _state["classes"].items():
        _restore_attrs(cls, snap, dotted, restored)


def _seed(seed: int) -> None:
    import random

    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def before_cell(kind: str, grade_id: str | None = None, index: int = 0) -> str:
    """Called by the grader before each code cell; ``kind`` is ``"test"``, ``"locked"``, ``"solution"``, ... .

    Returns ``"ok"`` or ``"restored: <what>"``.
    """
    if "machinery" not in _state:
        return "not installed"
    restored: list = []
    _restore_machinery(restored)
    if kind == "test":
        _restore_protected(restored)
    new_threads = _thread_ids() - _state["threads"]
    if new_threads:
        restored.append(f"{_len(new_threads)} thread(s) started by the submission are running")
        _state["threads"] |= new_threads
    label = grade_id or f"cell-{index}"
    _seed((zlib.crc32(label.encode()) + _state.get("seed", 0)) % 2**31)
    if not restored:
        return "ok"
    return "restored: " + ", ".join(_sorted(_set(restored)))


__all__ = ["install", "before_cell", "before_instructor_cell", "after_instructor_cell"]
