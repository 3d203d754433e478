r"""Quantizing whole models: post-training quantization (PTQ) and quantization-aware training (QAT) (C38).

:func:`quantize_model` returns a copy of a model in which

- every weight of a ``seqlib.LSTM`` / ``GRU`` / ``RNN``, ``nn.Linear`` and ``Embedding`` (``weight``,
  ``weight_ih_l0``, ``weight_hh_l0``, ...) is fake-quantized to ``bits`` bits each time the module reads it (a
  :mod:`torch.nn.utils.parametrize` parametrization, so the module's own code is unchanged and gradients reach the
  float weight through the straight-through estimator); biases stay in floating point, as on integer hardware
  (they are added to the 32-bit accumulator);
- with ``activations``, the floating-point input of each recurrent and linear layer is fake-quantized too (a
  :class:`FakeQuantize` stored as the layer's ``input_quantizer``, applied by a forward pre-hook), since that is
  what an integer matrix multiply consumes.

Weights use a symmetric signed grid (zero-point 0), one per tensor or, with ``per_channel=True``, one per output row.
Their range is re-read from the current weight on every forward, so it follows the weights during QAT. Activations
use an unsigned affine grid whose range an observer collects while the model runs in training mode, or inside
:func:`calibrate`; in eval mode the range is frozen.

PTQ::

    qmodel = quantize_model(model, bits=4)
    calibrate(qmodel, batches)      # a few batches in observe mode; the model is returned in eval mode
    qmodel(x)                       # float numbers on a 4-bit grid

QAT: train ``qmodel`` like any model (``seqlib.train.fit``); the rounding is in the forward pass, the STE in the
backward pass. ``scheme="cdf"`` swaps the uniform grid for the distribution-function grid of :mod:`seqlib.cdf_quant`.
The recurrence inside an LSTM keeps its hidden state in floating point here; :mod:`seqlib.dynamic_quant` runs the
integer path that also quantizes it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ._checks import check_bool, check_choice
from .observers import OBSERVERS, make_observer
from .quant import check_bits, fake_quantize

__all__ = ["FakeQuantize", "WeightFakeQuantize", "quantize_model", "calibrate", "quantized_modules",
           "model_size_bytes", "SCHEMES"]

SCHEMES = ("uniform", "cdf", "climbq")


class FakeQuantize(nn.Module):
    r"""An observer and a fake quantizer: ``x -> fake_quantize(x, s, z)`` with :math:`(s, z)` from the observer.

    Args:
        bits: bit-width 2-16.
        signed, symmetric: the integer range and grid (see :mod:`seqlib.observers`).
        observer: ``"minmax"``, ``"moving_average"`` or ``"percentile"``.
        ch_axis: one grid per slice along this axis (``None``: per tensor).
        observer_kwargs: e.g. ``percentile=99.9``, ``averaging_constant=0.01``.

    The observer watches every call while the module is in training mode (``observe`` overrides that: ``True``
    always, ``False`` never). ``enabled = False`` turns the quantizer into the identity.
    """

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, observer: str = "minmax",
                 ch_axis: int | None = None, **observer_kwargs: Any):
        super().__init__()
        self.bits = check_bits(bits)
        self.signed, self.ch_axis = check_bool("signed", signed), ch_axis
        self.observer = make_observer(observer, bits=bits, signed=signed, symmetric=symmetric, ch_axis=ch_axis,
                                      **observer_kwargs)
        self.observe: bool | None = None
        self.enabled = True

    def _observing(self) -> bool:
        return self.training if self.observe is None else self.observe

    def forward(self, x: Tensor) -> Tensor:
        if self._observing():
            self.observer(x)
        if not self.enabled:
            return x
        scale, zero_point = self.observer.qparams()
        axis = self.ch_axis
        if axis is None:
            scale, zero_point = scale[0], zero_point[0]
        return fake_quantize(x, scale.to(x.device), zero_point.to(x.device), self.bits, self.signed,
                             per_channel_axis=axis)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}, ch_axis={self.ch_axis}, enabled={self.enabled}"


class WeightFakeQuantize(FakeQuantize):
    """The fake quantizer of a weight: its range is the *current* weight's (re-read on every call), grid symmetric."""

    def __init__(self, bits: int = 8, per_channel: bool = False, observer: str = "minmax", **observer_kwargs: Any):
        super().__init__(bits, signed=True, symmetric=True, observer=observer,
                         ch_axis=0 if per_channel else None, **observer_kwargs)

    def forward(self, weight: Tensor) -> Tensor:
        self.observer.reset()
        self.observer(weight)
        if not self.enabled:
            return weight
        scale, zero_point = self.observer.qparams()
        if self.ch_axis is None:
            scale, zero_point = scale[0], zero_point[0]
        return fake_quantize(weight, scale, zero_point, self.bits, True, per_channel_axis=self.ch_axis)


# ---------------------------------------------------------------------------------------------------------------------
# whole models
# ---------------------------------------------------------------------------------------------------------------------
def _supported() -> tuple[type[nn.Module], ...]:
    from .embedding import Embedding
    from .rnn import GRU, LSTM, RNN

    return (LSTM, GRU, RNN, nn.Linear, Embedding, nn.Embedding)


def _quantize_input(module: nn.Module, args: tuple) -> tuple | None:
    """Forward pre-hook: fake-quantize the first positional argument (the layer's input) when it is a float tensor."""
    if args and isinstance(args[0], Tensor) and args[0].is_floating_point():
        return (module.input_quantizer(args[0]), *args[1:])
    return None


def quantize_model(model: nn.Module, bits: int = 8, *, activations: bool | int = True, per_channel: bool = False,
                   observer: str = "minmax", scheme: str = "uniform", num_classes: int | None = None,
                   inplace: bool = False, **observer_kwargs: Any) -> nn.Module:
    r"""A copy of ``model`` whose LSTM/GRU/RNN/Linear/Embedding weights (and layer inputs) are fake-quantized.

    Args:
        model: any ``nn.Module``; its ``seqlib.LSTM``/``GRU``/``RNN``, ``nn.Linear`` and ``Embedding`` /
            ``nn.Embedding`` submodules are quantized (``torch.nn.LSTM`` keeps flattened weights that a
            parametrization cannot reach: use ``seqlib.LSTM``, which loads the same ``state_dict``).
        bits: weight bit-width, 2-8 for the course's experiments (up to 16 accepted).
        activations: ``True``: quantize layer inputs at ``bits`` too; an int: at that bit-width; ``False``:
            weights only.
        per_channel: one weight grid per output row instead of one per tensor.
        observer: how activation ranges are collected: ``"minmax"``, ``"moving_average"``, ``"percentile"``.
        scheme: ``"uniform"`` (affine grid), ``"cdf"`` (grid uniform in distribution-function space,
            :func:`seqlib.cdf_quant.cdf_quantize`, one normal fitted to all values) or ``"climbq"`` (the same grid,
            fitted after class-wise variance scaling: :class:`seqlib.climbq.ClassWiseCDFQuantize`).
        num_classes: :math:`K`, needed by ``scheme="climbq"``.
        inplace: change ``model`` itself instead of a deep copy.
        observer_kwargs: passed to the activation observers (``percentile=99.9``, ``averaging_constant=0.01``).

    Returns:
        The quantized model (same class, same forward), in the training mode ``model`` was in.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, but got {type(model).__name__}")
    check_bits(bits)
    check_bool("per_channel", per_channel)
    check_bool("inplace", inplace)
    check_choice("scheme", scheme, SCHEMES)
    check_choice("observer", observer, tuple(OBSERVERS))
    if scheme == "climbq" and num_classes is None:
        raise ValueError("scheme='climbq' fits its grid class by class: pass num_classes")
    if isinstance(activations, bool):
        act_bits = bits if activations else None
    else:
        act_bits = check_bits(activations, "activations")
    if quantized_modules(model):
        raise ValueError("model is already quantized (it has fake-quantized weights); quantize the float model")
    model = model if inplace else copy.deepcopy(model)
    targets = [m for m in model.modules() if isinstance(m, _supported())]
    if not targets:
        raise ValueError(f"model has no module to quantize: it needs a seqlib.LSTM/GRU/RNN, nn.Linear or Embedding, "
                         f"but has only {sorted({type(m).__name__ for m in model.modules()})}")
    is_embedding = _supported()[-2:]
    for module in targets:
        names = [n for n, p in module.named_parameters(recurse=False) if n.startswith("weight") and p is not None]
        for name in names:
            parametrize.register_parametrization(module, name, _weight_quantizer(scheme, bits, per_channel))
        if act_bits is not None and not isinstance(module, is_embedding):
            module.input_quantizer = _activation_quantizer(scheme, act_bits, observer, num_classes, **observer_kwargs)
            module.register_forward_pre_hook(_quantize_input)
    return model


def _weight_quantizer(scheme: str, bits: int, per_channel: bool) -> nn.Module:
    if scheme in ("cdf", "climbq"):
        from .cdf_quant import CDFWeightQuantize

        return CDFWeightQuantize(bits, per_channel=per_channel)
    return WeightFakeQuantize(bits, per_channel=per_channel)


def _activation_quantizer(scheme: str, bits: int, observer: str, num_classes: int | None,
                          **observer_kwargs: Any) -> nn.Module:
    if scheme == "climbq":
        from .climbq import ClassWiseCDFQuantize

        return ClassWiseCDFQuantize(bits, num_classes=num_classes, **observer_kwargs)
    if scheme == "cdf":
        from .cdf_quant import CDFQuantize

        return CDFQuantize(bits, **observer_kwargs)
    return FakeQuantize(bits, signed=False, symmetric=False, observer=observer, **observer_kwargs)


def quantized_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every submodule with fake-quantized weights."""
    return [(name, m) for name, m in model.named_modules() if parametrize.is_parametrized(m)]


def _activation_quantizers(model: nn.Module) -> list[nn.Module]:
    return [m.input_quantizer for m in model.modules() if isinstance(getattr(m, "input_quantizer", None), nn.Module)]


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[Any], num_batches: int | None = None) -> nn.Module:
    """Run ``model`` on ``batches`` (inputs, or ``(inputs, targets)`` pairs: the targets reach the class-wise grids of
    ``scheme="climbq"``) with every activation observer on, then freeze the ranges and return the model in eval mode
    (post-training quantization)."""
    quantizers = _activation_quantizers(model)
    if not quantizers:
        raise ValueError("model has no activation quantizer to calibrate; build it with quantize_model(..., "
                         "activations=True)")
    for q in quantizers:
        q.observe = True
    model.eval()
    from .climbq import class_labels

    seen = 0
    try:
        for batch in batches:
            inputs, targets = (batch[0], batch[1]) if isinstance(batch, tuple | list) else (batch, None)
            with class_labels(model, targets):  # the "climbq" grid is fitted class by class
                model(*inputs) if isinstance(inputs, tuple | list) else model(inputs)
            seen += 1
            if num_batches is not None and seen >= num_batches:
                break
    finally:
        for q in quantizers:
            q.observe = None
    if seen == 0:
        raise ValueError("batches yielded nothing to calibrate on")
    return model


def model_size_bytes(model: nn.Module, bits: int | None = None) -> int:
    r"""Bytes to store the model's parameters: quantized weights at their bit-width (packed, :math:`\lceil nb/8
    \rceil`) plus a float32 scale and an int32 zero-point per grid, every other parameter at its dtype's size.

    ``bits`` overrides the bit-width of the fake-quantized weights. Modules of :mod:`seqlib.dynamic_quant` count
    their int8 weights, scales and float biases.
    """
    total = 0
    skip: set[int] = set()
    for module in model.modules():
        if id(module) in skip or isinstance(module, parametrize.ParametrizationList):
            continue  # counted with the module that owns it
        if hasattr(module, "size_bytes"):  # an integer module (seqlib.dynamic_quant) knows its own size
            total += module.size_bytes()
            skip.update(id(m) for m in module.modules())
            continue
        for param in module.parameters(recurse=False):
            total += param.numel() * param.element_size()
        for plist in getattr(module, "parametrizations", {}).values():
            original, quantizer = plist.original, plist[0]
            width = bits if bits is not None else quantizer.bits
            grids = original.shape[0] if getattr(quantizer, "ch_axis", None) == 0 else 1
            total += (original.numel() * width + 7) // 8 + 8 * grids
    return total
