r"""Secure two-party inference of a fixed-point RNN, with the bill for every message (C32).

Party 0 (a company) holds a trained model, party 1 (a wearer) holds a window of sensor readings. With
:func:`secure_inference` they compute the model's output together so that party 0 learns nothing about the
readings and party 1 nothing about the weights, except the output both receive at the end:

1. party 0 shares every integer parameter of a :class:`~seqlib.fixedpoint_rnn.FixedPointRNN`, party 1 its
   quantized input (:meth:`~seqlib.twoparty.TwoParty.share_input`);
2. both run the very integer program of the cleartext model (``fixedpoint_rnn.run_program``), with
   :class:`SecureOps` doing each operation on shares: ``linear`` and ``mul`` by Beaver triples (a weight's mask
   is opened once), ``trunc`` exactly, ``sigmoid``/``tanh`` by the protocols of :mod:`seqlib.secure_math`;
3. the output shares are opened.

Because every protocol computes exactly its cleartext operation, the revealed output equals
``model.forward_int(x)`` bit for bit. The :class:`CostReport` splits the communication by layer, by operation
(``input``, ``linear``, ``mul``, ``trunc``, ``sigmoid``, ``tanh``, ``output``) and by message type, online and
offline (the dealer's triples and tables): the math functions take most of it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from ._checks import check_tensor
from .fixedpoint_rnn import FixedPointRNN, run_program
from .mpc import Channel, Shared
from .secure_math import sigmoid_lut, tanh_lut
from .twoparty import TwoParty

__all__ = ["SecureOps", "secure_inference", "SecureResult", "CostReport", "CostRow"]


def _linear(x: Tensor, w: Tensor) -> Tensor:
    return x @ w.T  # (..., H_in) @ (H_in, G) -> (..., G)


class SecureOps:
    """The arithmetic interface of ``fixedpoint_rnn.run_program`` on shares (the cleartext one: ``IntegerOps``)."""

    def __init__(self, tp: TwoParty, frac_bits: int, digit_bits: int) -> None:
        self.tp, self.frac_bits, self.digit_bits = tp, frac_bits, digit_bits

    def linear(self, x: Shared, weight: Shared) -> Shared:
        with self.tp.scope("linear"):
            return self.tp.mul(x, weight, _linear)

    def mul(self, a: Shared, b: Shared) -> Shared:
        with self.tp.scope("mul"):
            return self.tp.mul(b, a) if a.fixed else self.tp.mul(a, b)  # a fixed operand goes second

    def trunc(self, x: Shared) -> Shared:
        return self.tp.trunc(x, self.frac_bits)

    def sigmoid(self, x: Shared) -> Shared:
        return sigmoid_lut(self.tp, x, self.frac_bits, self.digit_bits)

    def tanh(self, x: Shared) -> Shared:
        return tanh_lut(self.tp, x, self.frac_bits, self.digit_bits)

    def cat(self, values: Sequence[Shared], dim: int = -1) -> Shared:
        return Shared.cat(values, dim)

    def stack(self, values: Sequence[Shared], dim: int = 0) -> Shared:
        return Shared.stack(values, dim)

    def zeros(self, shape: Sequence[int]) -> Shared:
        return self.tp.public(0, shape)

    def layer(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self.tp.channel.in_layer(name)


# ---------------------------------------------------------------------------------------------------------------------
# the bill
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostRow:
    """One line of the bill: a layer, an operation (``path[0]``), a message type (``path[-1]``) and the full path."""

    layer: str
    op: str
    message: str
    path: tuple[str, ...]
    online_bits: int
    offline_bits: int
    rounds: int


@dataclass
class CostReport:
    """Bits and rounds of a secure run, online (between the parties) and offline (from the dealer).

    Attributes:
        rows: one :class:`CostRow` per (layer, path).
        sequences: how many input sequences the run processed (for per-sequence figures).
        seconds: wall time of the run (the simulation of both parties in one process).
    """

    rows: list[CostRow]
    sequences: int = 1
    seconds: float = 0.0

    @classmethod
    def from_channel(cls, channel: Channel, sequences: int = 1, seconds: float = 0.0) -> CostReport:
        keys = set(channel.online) | set(channel.offline)
        rows = []
        for layer, path in sorted(keys):
            on, off = channel.online.get((layer, path)), channel.offline.get((layer, path))
            rows.append(CostRow(layer, path[0], path[-1], path, on.bits if on else 0, off.bits if off else 0,
                                on.rounds if on else 0))
        return cls(rows, sequences, seconds)

    @property
    def online_bytes(self) -> float:
        return sum(r.online_bits for r in self.rows) / 8

    @property
    def offline_bytes(self) -> float:
        return sum(r.offline_bits for r in self.rows) / 8

    @property
    def rounds(self) -> int:
        return sum(r.rounds for r in self.rows)

    def by(self, key: str = "op") -> dict[str, dict[str, float]]:
        """Totals grouped by ``"layer"``, ``"op"`` or ``"message"``: ``{name: {online_bytes, offline_bytes,
        rounds, online_share}}``, largest online first."""
        if key not in ("layer", "op", "message"):
            raise ValueError(f"key must be 'layer', 'op' or 'message', but got {key!r}")
        out: dict[str, dict[str, float]] = {}
        for r in self.rows:
            d = out.setdefault(getattr(r, key), {"online_bytes": 0.0, "offline_bytes": 0.0, "rounds": 0})
            d["online_bytes"] += r.online_bits / 8
            d["offline_bytes"] += r.offline_bits / 8
            d["rounds"] += r.rounds
        total = self.online_bytes or 1.0
        for d in out.values():
            d["online_share"] = d["online_bytes"] / total
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["online_bytes"]))

    def table(self, key: str = "op") -> str:
        """A markdown table of :meth:`by` ``(key)``, per sequence, with a total line."""
        n = max(self.sequences, 1)
        lines = [f"| {key} | online kB / seq | share | offline kB / seq | rounds |", "|---|---:|---:|---:|---:|"]
        for name, d in self.by(key).items():
            lines.append(f"| {name or '-'} | {d['online_bytes'] / n / 1e3:.1f} | {100 * d['online_share']:.0f} % | "
                         f"{d['offline_bytes'] / n / 1e3:.1f} | {d['rounds']} |")
        lines.append(f"| total | {self.online_bytes / n / 1e3:.1f} | 100 % | {self.offline_bytes / n / 1e3:.1f} | "
                     f"{self.rounds} |")
        return "\n".join(lines)


@dataclass
class SecureResult:
    """What :func:`secure_inference` returns: the revealed ``output`` (int64, exactly
    ``model.forward_int(x)``), the cost ``report`` and the ``channel`` (with the parties' views if recorded)."""

    output: Tensor
    report: CostReport
    channel: Channel


def secure_inference(model: FixedPointRNN, x: Tensor, *, ring_bits: int = 64, compare_bits: int = 4, seed: int = 0,
                     record: bool = False) -> SecureResult:
    r"""Run ``model`` on party 1's input ``x`` under two-party secret sharing; party 0 holds the model.

    Args:
        model: the :class:`~seqlib.fixedpoint_rnn.FixedPointRNN` (party 0's secret).
        x: party 1's input in the model's layout (``(N, L, H_in)`` with ``batch_first``, ``(L, N, H_in)``,
            or ``(L, H_in)``): floats (party 1 quantizes them with the model's format) or the integers of
            :meth:`~seqlib.fixedpoint_rnn.FixedPointRNN.quantize_input`.
        ring_bits: :math:`\ell` of the ring :math:`\mathbb{Z}_{2^\ell}` (the accumulators must fit). Default: 64.
        compare_bits: digit width of the comparison tables. Default: 4.
        seed: seeds the dealer and both parties.
        record: keep every message each party receives (``result.channel.views``).

    Returns:
        a :class:`SecureResult`; ``result.output`` equals ``model.forward_int(q)`` bit for bit.
    """
    if not isinstance(model, FixedPointRNN):
        raise TypeError(f"model must be a FixedPointRNN (FixedPointRNN.from_float(trained_model)), "
                        f"but got {type(model).__name__}")
    x = check_tensor("x", x)
    q = model.quantize_input(x) if x.is_floating_point() else x
    q, batched = model.to_time_major(q)  # (L, N, H_in), checked
    start = time.perf_counter()
    tp = TwoParty(ring_bits=ring_bits, compare_bits=compare_bits, seed=seed, record=record)
    with tp.channel.in_layer("input"):
        layers = [{k: tp.share_input(0, v, fixed=True) for k, v in p.items()} for p in model.layers]
        head = None if model.head is None else {k: tp.share_input(0, v, fixed=True) for k, v in model.head.items()}
        xs = tp.share_input(1, q)
    ops = SecureOps(tp, model.frac_bits, model.digit_bits)
    out = run_program(ops, model.mode, layers, head, xs, model.hidden_size, model.frac_bits)
    with tp.channel.in_layer("output"), tp.scope("output"):
        revealed = tp.reveal(out)
    seconds = time.perf_counter() - start
    report = CostReport.from_channel(tp.channel, sequences=q.shape[1], seconds=seconds)
    return SecureResult(model.from_time_major(revealed, batched), report, tp.channel)
