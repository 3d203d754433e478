"""Pristine references, captured when the grading helpers are imported (before any student cell runs).

Every module of :mod:`seqcourse.kernel` computes only with what is captured here: torch functions and
``Tensor`` methods called as plain functions (``_t.mul(a, b)``, ``_t.detach(x)``), the torch.nn reference classes
with their ``forward`` functions, and a private copy of ``builtins`` (:func:`private_builtins`). A student cell that
later monkeypatches ``torch.allclose``, ``torch.Tensor.__eq__``, ``builtins.isinstance`` or rebinds ``torch.nn.LSTM``
changes none of them. :func:`seal` makes a module read-only, so that ``checks.expect_close = ...`` raises.
"""

from __future__ import annotations

import builtins as _builtins_module

_BUILTINS = dict(vars(_builtins_module))


def private_builtins(namespace: dict) -> None:
    """Give a module its own copy of the builtins (call first thing, at import): later patches do not reach it."""
    namespace["__builtins__"] = dict(_BUILTINS)


private_builtins(globals())

import math  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.optim.optimizer import register_optimizer_step_pre_hook  # noqa: E402

RTOL = 1e-5
ATOL = 1e-6

_t = types.SimpleNamespace(
    Tensor=torch.Tensor, Generator=torch.Generator, float64=torch.float64, bool=torch.bool, long=torch.long,
    equal=torch.equal, isclose=torch.isclose, abs=torch.abs, sub=torch.sub, add=torch.add, mul=torch.mul,
    div=torch.div, argmax=torch.argmax, isfinite=torch.isfinite, isnan=torch.isnan, all=torch.all, sum=torch.sum,
    where=torch.where, zeros=torch.zeros, ones=torch.ones, zeros_like=torch.zeros_like, ones_like=torch.ones_like,
    full=torch.full, arange=torch.arange, randn=torch.randn, randint=torch.randint, stack=torch.stack, cat=torch.cat,
    matmul=torch.matmul, tanh=torch.tanh, sigmoid=torch.sigmoid, relu=torch.relu, exp=torch.exp, sin=torch.sin,
    cos=torch.cos, softmax=torch.softmax, tril=torch.tril, triu=torch.triu, topk=torch.topk,
    masked_fill=torch.masked_fill, transpose=torch.transpose, reshape=torch.reshape, unsqueeze=torch.unsqueeze,
    squeeze=torch.squeeze, remainder=torch.remainder, eq=torch.eq, ne=torch.ne, numel=torch.numel,
    permute=torch.permute, le=torch.le, ge=torch.ge, lt=torch.lt, gt=torch.gt, float32=torch.float32,
    flip=torch.flip, chunk=torch.chunk, pow=torch.pow, linalg_vector_norm=torch.linalg.vector_norm,
    no_grad=torch.no_grad, enable_grad=torch.enable_grad, manual_seed=torch.manual_seed,
    autograd_grad=torch.autograd.grad, vf_rnn_tanh=torch._VF.rnn_tanh, lstm_cell=torch.lstm_cell,
    vf_lstm=torch._VF.lstm, linear=F.linear, embedding=F.embedding, layer_norm=F.layer_norm,
    set_num_threads=torch.set_num_threads,
    # used by the references of the diagnosis catalogues (seqcourse.kernel.mutations, assignments.*)
    gelu=F.gelu, log_softmax=torch.log_softmax, mean=torch.mean, amax=torch.amax, clamp=torch.clamp,
    neg=torch.neg, sqrt=torch.sqrt, multinomial=torch.multinomial, cross_entropy=F.cross_entropy,
    nll_loss=F.nll_loss, get_rng_state=torch.get_rng_state, set_rng_state=torch.set_rng_state,
    full_like=torch.full_like, logical_not=torch.logical_not, logical_and=torch.logical_and, randperm=torch.randperm,
    erf=torch.erf,
    Adam=torch.optim.Adam, SGD=torch.optim.SGD, tensor=torch.tensor, any=torch.any,
    step_pre_hook=register_optimizer_step_pre_hook,
    # Tensor methods, called as functions so that patching torch.Tensor cannot reach them
    detach=torch.Tensor.detach, to=torch.Tensor.to, clone=torch.Tensor.clone, size=torch.Tensor.size,
    dim=torch.Tensor.dim, item=torch.Tensor.item, tolist=torch.Tensor.tolist,
    requires_grad_=torch.Tensor.requires_grad_, copy_=torch.Tensor.copy_,
    is_floating_point=torch.Tensor.is_floating_point, uniform_=torch.Tensor.uniform_,
    contiguous=torch.Tensor.contiguous,
    DisableTorchFunction=torch._C.DisableTorchFunction, len_function_stack=torch._C._len_torch_function_stack,
    len_dispatch_stack=torch._C._len_torch_dispatch_stack,
)
_np_seed = np.random.seed
_np_unravel_index = np.unravel_index
_clip_grad_norm_ = torch.nn.utils.clip_grad_norm_

# Reference classes and their forward functions: references are called through these, never through the
# (patchable) ``torch.nn`` namespace or ``Module.__call__``.
_NN = {name: getattr(nn, name) for name in (
    "RNNCell", "RNN", "LSTMCell", "LSTM", "GRUCell", "GRU", "Embedding", "Linear", "LayerNorm", "Dropout",
    "MultiheadAttention", "TransformerEncoderLayer", "Module", "ModuleList", "Parameter",
)}
_FORWARD = {cls: cls.forward for cls in _NN.values() if isinstance(cls, type) and "forward" in vars(cls)}
_MISSING = object()

#: the file names of the grading helpers: their frames are never shown to a student
KERNEL_DIR = __file__.rsplit("/", 1)[0] + "/"


def shape_str(shape) -> str:
    """``(2, 3)``, ``(5,)``, ``()``."""
    shape = tuple(int(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def bias_or_zero(b: torch.Tensor | None) -> torch.Tensor | float:
    """A bias, or ``0.0`` for a layer built with ``bias=False``."""
    return 0.0 if b is None else b


def sqrt(x: float) -> float:
    return math.sqrt(x)


_SEALED: dict[str, dict] = {}


class Sealed(type):
    """Metaclass of the grading helpers' classes: once :func:`seal_class` ran, a class's attributes are read-only,
    so that a student cell cannot replace a method (``checks.Diagnosis.verdict = ...`` raises)."""

    def __setattr__(cls, name: str, value: object) -> None:
        sealed = vars(cls).get("__sealed__")
        if sealed is not None and sealed.get(name, _MISSING) is not value:  # putting back the original is allowed
            raise AttributeError(f"{cls.__name__} is read-only (cannot set {name!r})")
        type.__setattr__(cls, name, value)

    def __delattr__(cls, name: str) -> None:
        if vars(cls).get("__sealed__") is not None:
            raise AttributeError(f"{cls.__name__} is read-only (cannot delete {name!r})")
        type.__delattr__(cls, name)


def seal_class(cls: type) -> type:
    """Make a class made with ``metaclass=Sealed`` read-only (a decorator: put it above ``@dataclass``)."""
    type.__setattr__(cls, "__sealed__", dict(vars(cls)))
    return cls


class _ReadOnlyModule(types.ModuleType):
    """Student cells cannot rebind a sealed module's names; putting back the original object is allowed, so
    that the grader can repair a module whose ``__dict__`` was written to directly."""

    def __setattr__(self, name: str, value: object) -> None:
        if _SEALED.get(self.__name__, {}).get(name, _MISSING) is not value:
            raise AttributeError(f"{self.__name__} is read-only (cannot set {name!r})")
        types.ModuleType.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self.__name__} is read-only (cannot delete {name!r})")


def seal(name: str) -> None:
    """Make module ``name`` read-only (call last thing in the module)."""
    module = sys.modules[name]
    _SEALED[name] = dict(vars(module))
    module.__class__ = _ReadOnlyModule


seal(__name__)
