"""The delegation guard: a graded part earns nothing when the student's code calls what it should write.

:func:`run_student` calls the student's function under a :class:`Guard` (``TASKS``): the student's code and the
notebook helpers it calls are scanned for the guard's entry points (torch.nn layers, fused kernels, seqlib's own
layers), and during the call those entry points are replaced by tripwires (always restored). ``uses=`` swaps
notebook helpers for correct references during the call, so that each part is graded on its own.
"""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import dis  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from ._pristine import _MISSING, _NN, KERNEL_DIR, seal  # noqa: E402
from .assignments import reference  # noqa: E402
from .expect import GradingError, _no_tampering, fail  # noqa: E402


def user_namespace() -> dict[str, Any]:
    """The globals of the first caller outside the grading helpers: the notebook's namespace."""
    frame = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("seqcourse.kernel"):
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


@dataclass(frozen=True)
class Guard:
    """Entry points that would do an exercise for the student.

    ``targets``: dotted paths; a class gets tripwires on ``__init__`` and ``forward`` (catching every alias), a
    function is replaced where it lives. ``names``: attribute names whose mere use in the student's code is
    delegation (``nn.LSTM``, ``torch.autograd.grad``). ``exercise``: what the part asks the student to write.
    """

    exercise: str
    targets: tuple[str, ...]
    names: frozenset[str]


_RECURRENT = ("torch.nn.RNN", "torch.nn.RNNCell", "torch.nn.GRU", "torch.nn.GRUCell", "torch.nn.LSTM",
              "torch.nn.LSTMCell", "torch.rnn_tanh", "torch.rnn_tanh_cell", "torch.rnn_relu", "torch.rnn_relu_cell",
              "torch.lstm", "torch.lstm_cell", "torch.gru", "torch.gru_cell", "seqlib.rnn.RNN", "seqlib.rnn.RNNCell",
              "seqlib.rnn.LSTM", "seqlib.rnn.LSTMCell", "seqlib.rnn.GRU", "seqlib.rnn.GRUCell",
              "seqlib.rnn.rnn_sequence", "seqlib.rnn.lstm_sequence", "seqlib.rnn.gru_sequence",
              "seqlib.bptt_fast.rnn_sequence", "seqlib.bptt_fast.lstm_sequence", "seqlib.bptt_fast.gru_sequence")
_BPTT = ("seqlib.bptt.rnn_forward", "seqlib.bptt.rnn_backward", "seqlib.bptt.lstm_forward", "seqlib.bptt.lstm_backward",
         "seqlib.bptt.gru_forward", "seqlib.bptt.gru_backward", "seqlib.bptt_fast.rnn_forward",
         "seqlib.bptt_fast.rnn_backward", "seqlib.bptt_fast.lstm_forward", "seqlib.bptt_fast.lstm_backward",
         "seqlib.bptt_fast.gru_forward", "seqlib.bptt_fast.gru_backward", "seqlib.gradflow.gradient_norms",
         "seqlib.gradflow.jacobian_norms", "seqlib.gradflow.cell_state_norms")
_RECURRENT_NAMES = {"RNN", "RNNCell", "GRU", "GRUCell", "LSTM", "LSTMCell", "rnn_tanh", "rnn_tanh_cell", "rnn_relu",
                    "rnn_relu_cell", "lstm_cell", "gru_cell", "_VF", "rnn_sequence", "lstm_sequence", "gru_sequence"}
_ATTENTION = ("torch.nn.functional.scaled_dot_product_attention", "torch._C._nn.scaled_dot_product_attention",
              "torch.nn.functional.multi_head_attention_forward", "torch.nn.MultiheadAttention",
              "seqlib.attention.scaled_dot_product_attention", "seqlib.attention.attention_weights",
              "seqlib.attention.MultiheadAttention", "seqlib.attention.AdditiveAttention")
_ATTENTION_NAMES = {"scaled_dot_product_attention", "multi_head_attention_forward", "MultiheadAttention",
                    "attention_weights", "AdditiveAttention", "_scaled_dot_product_attention_math"}
_TRANSFORMER = ("torch.nn.TransformerEncoderLayer", "torch.nn.TransformerEncoder", "torch.nn.TransformerDecoderLayer",
                "torch.nn.TransformerDecoder", "torch.nn.Transformer", "torch._transformer_encoder_layer_fwd",
                "seqlib.transformer.TransformerEncoderLayer", "seqlib.transformer.TransformerEncoder",
                "seqlib.transformer.TransformerDecoderLayer", "seqlib.transformer.Transformer",
                "seqlib.positional.PositionalEncoding", "seqlib.lm.TransformerLM", "seqlib.lm.RNNLM")
_TRANSFORMER_NAMES = {"TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer", "TransformerDecoder",
                      "Transformer", "_transformer_encoder_layer_fwd", "PositionalEncoding", "TransformerLM", "RNNLM"}

TASKS: dict[str, Guard] = {
    "rnn": Guard("write the RNN update h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh) yourself",
                 _RECURRENT, frozenset(_RECURRENT_NAMES)),
    "embedding": Guard("write the lookup yourself (an embedding is a row of the weight matrix per index)",
                       ("torch.nn.Embedding", "torch.nn.functional.embedding", "torch.embedding",
                        "seqlib.embedding.Embedding"), frozenset({"Embedding", "embedding_bag"})),
    "bptt": Guard("compute the gradients by hand, step by step backwards through time",
                  ("torch.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward", *_RECURRENT, *_BPTT),
                  frozenset({"backward", "autograd", "gradient_norms", "jacobian_norms", "cell_state_norms",
                             "rnn_backward", "lstm_backward", "gru_backward", *_RECURRENT_NAMES})),
    "clip": Guard("compute the total norm and the clipping coefficient yourself",
                  ("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad.clip_grad_norm_",
                   "torch.nn.utils.get_total_norm", "torch.nn.utils.clip_grads_with_norm_",
                   "torch.nn.utils.clip_grad.get_total_norm", "torch.nn.utils.clip_grad.clip_grads_with_norm_",
                   "seqlib.clip.clip_grad_norm_"),
                  frozenset({"clip_grad_norm_", "clip_grad_norm", "get_total_norm", "clip_grads_with_norm_"})),
    "lstm": Guard("write the gates yourself", _RECURRENT, frozenset(_RECURRENT_NAMES)),
    "attention": Guard("write the attention computation yourself (scores, scale, mask, softmax, weighted sum)",
                       _ATTENTION, frozenset(_ATTENTION_NAMES)),
    "transformer": Guard("wire the block yourself (attention, add & norm, feed-forward, add & norm)",
                         _TRANSFORMER, frozenset(_TRANSFORMER_NAMES)),
    "lm": Guard("build the language model yourself (token embedding + positions, a causal mask, the blocks, the "
                "output layer)", _TRANSFORMER, frozenset(_TRANSFORMER_NAMES)),
    "sampling": Guard("write the sampling step yourself",
                      ("seqlib.lm.TransformerLM", "seqlib.lm.RNNLM"), frozenset({"TransformerLM", "RNNLM"})),
}

_LABELS = {"torch.nn.functional": "F", "torch.nn": "nn", "torch._C._nn": "F", "torch.Tensor": "Tensor"}


class _Tripped(BaseException):
    """Raised by a tripwire; a BaseException so that a student's ``except Exception`` cannot swallow it."""


class _TimeUp(BaseException):
    """Raised when a student call runs past its time limit."""


def _label(path: str) -> str:
    parent, _, name = path.rpartition(".")
    if parent.startswith("seqlib"):
        return f"seqlib's {name}"
    return f"{_LABELS.get(parent, parent)}.{name}"


def _resolve(path: str) -> tuple[object, str, object] | None:
    """``"torch.nn.LSTM"`` -> (parent object, attribute, value), importing modules as needed; None if absent."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        modname = ".".join(parts[:cut])
        if modname.startswith("seqlib") and modname not in sys.modules:
            try:
                __import__(modname)
            except Exception:  # a seqlib module that does not exist (yet) has nothing to guard
                return None
        module = sys.modules.get(modname)
        if module is None:
            continue
        parent: object = module
        try:
            for attr in parts[cut:-1]:
                parent = getattr(parent, attr)
            return parent, parts[-1], getattr(parent, parts[-1])
        except AttributeError:
            return None
    return None


def _forbidden_objects(guard: Guard) -> dict[int, str]:
    found = {}
    for path in guard.targets:
        resolved = _resolve(path)
        if resolved is not None:
            found[id(resolved[2])] = _label(path)
    return found


@contextmanager
def _tripwires(guard: Guard | None, hits: list[str]):
    """Replace the guard's entry points by tripwires for the duration; always restored."""
    patched: list[tuple[object, str, object]] = []

    def tripwire(label: str) -> Callable:
        def wire(*args: Any, **kwargs: Any) -> Any:
            hits.append(label)
            raise _Tripped(label)

        return wire

    try:
        for path in guard.targets if guard else ():
            resolved = _resolve(path)
            if resolved is None:
                continue
            parent, attr, value = resolved
            label = _label(path)
            if isinstance(value, type):  # every instance, whatever name it was reached by
                for method in ("__init__", "forward"):
                    patched.append((value, method, vars(value).get(method, _MISSING)))
                    setattr(value, method, tripwire(label))
            else:
                own = vars(parent).get(attr, _MISSING) if hasattr(parent, "__dict__") else _MISSING
                patched.append((parent, attr, own))
                setattr(parent, attr, tripwire(label))
        yield
    finally:
        for parent, attr, original in reversed(patched):
            if original is _MISSING:
                try:
                    delattr(parent, attr)
                except AttributeError:
                    pass
            else:
                setattr(parent, attr, original)


def _code_objects(obj: object) -> list[tuple[types.CodeType, dict[str, Any], tuple]]:
    """(code, globals, closure values) for a function, method, class (its own methods) or module instance."""
    if isinstance(obj, _NN["Module"]) and not isinstance(obj, type):
        obj = type(obj)
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        closure = tuple(c.cell_contents for c in obj.__closure__ or () if _cell_filled(c))
        defaults = tuple(obj.__defaults__ or ()) + tuple((obj.__kwdefaults__ or {}).values())
        return [(obj.__code__, obj.__globals__, closure + defaults)]
    out = []
    if isinstance(obj, type):
        for cls in obj.__mro__:
            if cls.__module__.startswith(("torch", "builtins", "seqlib", "seqcourse")) or cls is object:
                continue
            for value in vars(cls).values():
                if isinstance(value, staticmethod | classmethod):
                    value = value.__func__
                if isinstance(value, property):
                    value = value.fget
                if isinstance(value, types.FunctionType):
                    out += _code_objects(value)
    return out


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _is_users(obj: object) -> bool:
    """Defined in the notebook (not in a library)."""
    module = getattr(obj, "__module__", None)
    return isinstance(obj, types.FunctionType | type) and module in ("__main__", None)


_LOAD_NAME_OPS = {"LOAD_GLOBAL", "LOAD_NAME"}
_ATTR_OPS = {"LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM", "LOAD_SUPER_ATTR"}


def _static_delegation(fn: object, guard: Guard, skip: set[str]) -> str | None:
    """Scan the student's code (and the notebook helpers it calls) for the guard's entry points."""
    forbidden = _forbidden_objects(guard)
    seen: set[int] = set()
    todo = list(_code_objects(fn))
    while todo:
        code, glob, extras = todo.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        for value in extras:
            if id(value) in forbidden:
                return forbidden[id(value)]
        for ins in dis.get_instructions(code):
            name = ins.argval if isinstance(ins.argval, str) else None
            if name is None:
                continue
            if ins.opname in _ATTR_OPS and name in guard.names:
                return _label_for_name(name, guard)
            if ins.opname == "IMPORT_NAME" and any(part in guard.names for part in name.split(".")):
                return _label_for_name(name.split(".")[-1], guard)
            if ins.opname in _LOAD_NAME_OPS and name not in skip:
                value = glob.get(name, _MISSING)
                if value is _MISSING:
                    continue
                if id(value) in forbidden:
                    return forbidden[id(value)]
                if _is_users(value):
                    todo += _code_objects(value)
        todo += [(c, glob, ()) for c in code.co_consts if isinstance(c, types.CodeType)]
    return None


def _label_for_name(name: str, guard: Guard) -> str:
    for path in guard.targets:
        if path.rsplit(".", 1)[-1] == name:
            return _label(path)
    return {"autograd": "torch.autograd", "backward": "Tensor.backward", "_VF": "torch._VF"}.get(name, name)


def resolve_uses(uses: Iterable[str] | dict[str, Any]) -> dict[str, Any]:
    """``uses=`` as ``{name: correct helper}`` (names are looked up in ``REFERENCES``)."""
    return dict(uses) if isinstance(uses, dict) else {u: reference(u) for u in uses}


@contextmanager
def substituted(namespace: dict[str, Any], uses: dict[str, Any]):
    """The notebook helpers ``uses`` swapped into ``namespace`` for the duration (always put back)."""
    saved = {name: namespace.get(name, _MISSING) for name in uses}
    try:
        namespace.update(uses)
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


@contextmanager
def _time_limit(seconds: float | None, what: str):
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise _TimeUp(what)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _name_of(fn: object) -> str:
    if isinstance(fn, _NN["Module"]) and not isinstance(fn, type):
        return f"{type(fn).__name__}.forward"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _student_frames(exc: BaseException) -> list[str]:
    """The frames of the student's code (and what it called), without the grading helpers' or the test cell's."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(KERNEL_DIR)]
    return traceback.format_list(frames[-6:])


def run_student(fn: Callable, *args: Any, task: str | None = None, uses: Iterable[str] | dict[str, Any] = (),
                time_limit: float | None = 20.0, hint: str = "", **kwargs: Any) -> Any:
    """Call the student's ``fn(*args, **kwargs)`` under the delegation guard ``task`` and return its result.

    ``uses``: names of notebook helpers to replace by ``REFERENCES`` during the call (or ``{name: object}``).
    Any failure becomes a :class:`GradingError` with a curated message; ``hint`` is added when the student's
    code raised an exception (e.g. where to look for a shape mismatch).
    """
    name = _name_of(fn)
    if fn is None or not callable(fn):
        fail(f"`{name}` is not defined as a function or class: run the cell that defines it")
    _no_tampering()
    namespace = user_namespace()
    uses = resolve_uses(uses)
    guard = TASKS[task] if task else None
    if guard is not None:
        used = _static_delegation(fn, guard, set(uses))
        if used:
            fail(f"{name} is implemented by calling {used}; the exercise is to {guard.exercise}. "
                 f"This part earns no points.")
    hits: list[str] = []
    try:
        with substituted(namespace, uses), _tripwires(guard, hits), _time_limit(time_limit, name):
            result = fn(*args, **kwargs)
    except GradingError:
        raise
    except _TimeUp:
        fail(f"{name} took longer than {time_limit:g} s; the exercise needs far less (look for a loop that "
             f"does too much work, or too many epochs)")
    except _Tripped:
        pass
    except NotImplementedError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = frames[-1].name if frames else name
        fail(f"{name} is not implemented yet: `{where}` still raises NotImplementedError")
    except Exception as exc:
        extra = f" {hint}" if hint else ""
        fail(f"{name} raised {type(exc).__name__}: {exc}.{extra}", _student_frames(exc), exc)
    if hits:
        assert guard is not None
        fail(f"{name} is implemented by calling {hits[0]}; the exercise is to {guard.exercise}. "
             f"This part earns no points.")
    return result


__all__ = ["TASKS", "Guard", "resolve_uses", "run_student", "substituted", "user_namespace"]


seal(__name__)
