r"""Additive secret sharing, simulated in one process, every message counted (C32).

Two parties want :math:`y = F(\text{party 0's secret}, \text{party 1's secret})` and nothing else. A number
:math:`x` in the ring :math:`\mathbb{Z}_{2^\ell}` (``ring_bits`` :math:`\ell`, 64 by default: int64 arithmetic
wraps around modulo :math:`2^{64}` by itself) is **shared** as

.. math::
    x = x_0 + x_1 \bmod 2^\ell, \qquad x_0 \text{ uniformly random}, \quad x_1 = x - x_0,

party :math:`i` holding :math:`x_i`; either share alone is a uniformly random number and says nothing about
:math:`x`. A bit :math:`b` is shared the same way modulo 2, :math:`b = b_0 \oplus b_1`.

This module holds the pieces every protocol uses:

- :func:`share` and :func:`reveal` (for the lecture), :func:`uniform` ring elements;
- :class:`Shared` (arithmetic shares) and :class:`BitShared` (XOR shares), with the **local** operations: sums of
  shares, products with a public number (each party multiplies its share), adding a public number (party 0
  adds it), slicing, stacking;
- :class:`Channel`, through which every message between the parties goes: it counts bits and rounds per layer
  and per operation (``with channel.scope("sigmoid"):``), online, and the dealer's material offline, and it can
  record what each party received (for the test that a party's view does not depend on the other's secret);
- :class:`Dealer`, the trusted third party that hands out correlated randomness (Beaver triples, masks,
  tables) before the inputs exist.

The protocols themselves (products, comparisons, truncation, table lookups) are in :mod:`seqlib.twoparty`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .fixedpoint import check_bits, check_int_tensor

__all__ = ["share", "reveal", "uniform", "split_widths", "Channel", "Dealer", "Shared", "BitShared", "Count",
           "ring_mod", "ring_signed", "RING_BITS"]

RING_BITS = 64


# ---------------------------------------------------------------------------------------------------------------------
# the ring Z_{2^l} on int64
# ---------------------------------------------------------------------------------------------------------------------
def ring_mod(x: Tensor, bits: int) -> Tensor:
    r""":math:`x \bmod 2^\ell` as the canonical representative: any int64 for :math:`\ell = 64` (int64 wraps
    modulo :math:`2^{64}` by itself), else the integer in :math:`[0, 2^\ell)`."""
    return x if bits == 64 else x & ((1 << bits) - 1)


def ring_signed(x: Tensor, bits: int) -> Tensor:
    r"""A canonical ring element read as a signed number in :math:`[-2^{\ell-1}, 2^{\ell-1})`."""
    return x if bits == 64 else torch.where(x >= (1 << (bits - 1)), x - (1 << bits), x)


def uniform(shape: Sequence[int], bits: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniformly random ``bits``-bit ring elements (int64, canonical representatives)."""
    shape = tuple(shape)
    hi = torch.randint(0, 1 << 32, shape, generator=generator)
    lo = torch.randint(0, 1 << 32, shape, generator=generator)
    return ring_mod((hi << 32) | lo, bits)  # (hi << 32) wraps into the sign bit for l = 64: still uniform


def share(q: Tensor, bits: int = RING_BITS, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    r"""Split integers into two additive shares modulo :math:`2^\ell`: :math:`q = q_0 + q_1 \bmod 2^\ell`.

    :math:`q_0` is uniformly random and :math:`q_1 = q - q_0`, so each share alone is uniformly distributed
    whatever :math:`q` is.

    Args:
        q: an integer tensor :math:`(*)` (signed values, :math:`|q| < 2^{\ell-1}`).
        bits: :math:`\ell`, 2..64. Default: 64.
        generator: the source of randomness.

    Outputs: (q0, q1)
        - two int64 tensors :math:`(*)`, canonical ring elements.
    """
    q = check_int_tensor("q", q)
    check_bits("bits", bits, high=64)
    q0 = uniform(q.shape, bits, generator)
    return q0, ring_mod(q - q0, bits)


def reveal(s0: Tensor, s1: Tensor, bits: int = RING_BITS) -> Tensor:
    r"""Put two shares back together: :math:`q = s_0 + s_1 \bmod 2^\ell`, read as a signed number."""
    s0, s1 = check_int_tensor("s0", s0), check_int_tensor("s1", s1)
    check_bits("bits", bits, high=64)
    if s0.shape != s1.shape:
        raise ValueError(f"s0 and s1 must have the same shape, but got {tuple(s0.shape)} and {tuple(s1.shape)}")
    return ring_signed(ring_mod(s0 + s1, bits), bits)


def split_widths(boundaries: Sequence[int], max_width: int) -> list[int]:
    """Digit widths (lowest first) whose boundaries include every position in ``boundaries`` (sorted, the last is
    the top), each digit at most ``max_width`` bits: ``split_widths([3, 10], 4) == [3, 4, 3]``."""
    widths, low = [], 0
    for top in sorted(set(boundaries)):
        while low < top:
            w = min(max_width, top - low)
            widths.append(w)
            low += w
    return widths


# ---------------------------------------------------------------------------------------------------------------------
# the channel and the dealer
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class Count:
    bits: int = 0
    rounds: int = 0
    messages: int = 0


@dataclass
class Channel:
    """Carries every message between party 0 and party 1 and counts it.

    ``online[(layer, path)]`` and ``offline[(layer, path)]`` hold :class:`Count` (bits, rounds, messages), where
    ``path`` is the tuple of operation names open at the time (``("sigmoid", "trunc", "and")``). One
    :meth:`exchange` (both parties send at once) is one round. With ``record=True``, ``views[i]`` lists
    ``(path, tensor)`` for every online message party ``i`` received.
    """

    record: bool = False
    online: dict = field(default_factory=lambda: defaultdict(Count))
    offline: dict = field(default_factory=lambda: defaultdict(Count))
    views: tuple[list, list] = field(default_factory=lambda: ([], []))
    layer: str = ""
    path: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        self.path.append(name)
        try:
            yield
        finally:
            self.path.pop()

    @contextlib.contextmanager
    def in_layer(self, name: str) -> Iterator[None]:
        before, self.layer = self.layer, name
        try:
            yield
        finally:
            self.layer = before

    def _key(self, what: str) -> tuple[str, tuple[str, ...]]:
        return self.layer, (*self.path, what)

    def exchange(self, m0: Tensor | None, m1: Tensor | None, width: int, what: str) -> tuple[Tensor | None, ...]:
        """One round: party 0 sends ``m0`` to party 1 while party 1 sends ``m1`` to party 0 (``width`` bits per
        element; ``None``: that party sends nothing). Returns ``(what party 1 received, what party 0 received)``."""
        count = self.online[self._key(what)]
        count.rounds += 1
        for receiver, message in ((1, m0), (0, m1)):
            if message is not None:
                count.bits += message.numel() * width
                count.messages += 1
                if self.record:
                    self.views[receiver].append(((*self.path, what), message.clone()))
        return m0, m1

    def deal(self, numel: int, width: int, what: str) -> None:
        """The dealer sends ``numel`` elements of ``width`` bits to each party (offline)."""
        count = self.offline[self._key(what)]
        count.bits += 2 * numel * width
        count.messages += 2


class Dealer:
    """The trusted dealer: correlated randomness, made before the inputs exist and counted as offline cost.

    It never sees a share or an opened value; each method draws fresh randomness from its own generator.
    """

    def __init__(self, channel: Channel, ring_bits: int, generator: torch.Generator) -> None:
        self.channel, self.ring_bits, self.generator = channel, ring_bits, generator
        self._fixed: dict[int, tuple[Shared, Tensor, Shared]] = {}  # id(operand) -> (operand, its mask B, shares)

    def ring(self, shape: Sequence[int]) -> Tensor:
        return uniform(shape, self.ring_bits, self.generator)

    def bits(self, shape: Sequence[int]) -> Tensor:
        return torch.randint(0, 2, tuple(shape), dtype=torch.uint8, generator=self.generator)

    def share(self, value: Tensor, what: str) -> Shared:
        """Arithmetic shares of ``value`` for the two parties."""
        s0 = self.ring(value.shape)
        self.channel.deal(value.numel(), self.ring_bits, what)
        return Shared(s0, ring_mod(value - s0, self.ring_bits), self.ring_bits)

    def share_bits(self, value: Tensor, what: str) -> BitShared:
        """XOR shares of a 0/1 ``value`` (uint8)."""
        s0 = self.bits(value.shape)
        self.channel.deal(value.numel(), 1, what)
        return BitShared(s0, s0 ^ value.to(torch.uint8))

    def triple(self, op: Callable[[Tensor, Tensor], Tensor], x_shape: Sequence[int], y: Shared,
               fixed: bool) -> tuple[Shared, Shared, Shared]:
        """A Beaver triple ``(A, B, C = op(A, B))`` for ``op(x, y)``; for a ``fixed`` operand ``y`` the same
        mask ``B`` is used every time (it is opened only once)."""
        a_plain = self.ring(x_shape)
        if fixed and id(y) in self._fixed:
            _, b_plain, b = self._fixed[id(y)]
        else:
            b_plain = self.ring(y.shape)
            b = self.share(b_plain, "triple")
            if fixed:
                self._fixed[id(y)] = (y, b_plain, b)  # holding y keeps its id from being reused
        return self.share(a_plain, "triple"), b, self.share(ring_mod(op(a_plain, b_plain), self.ring_bits), "triple")


# ---------------------------------------------------------------------------------------------------------------------
# shared values
# ---------------------------------------------------------------------------------------------------------------------
class Shared:
    r"""An arithmetic sharing :math:`x = x_0 + x_1 \bmod 2^\ell`: ``s0`` is party 0's share, ``s1`` party 1's.

    Local operations: ``+``, ``-`` with shares or public integers/tensors (party 0 adds the public part),
    ``*`` and ``<<`` by public integers, indexing, ``reshape``, ``unsqueeze``, :meth:`cat`, :meth:`stack`.
    ``fixed`` marks a value used again and again as the same operand (a weight).
    """

    def __init__(self, s0: Tensor, s1: Tensor, ring_bits: int = RING_BITS, fixed: bool = False) -> None:
        self.s0, self.s1, self.ring_bits, self.fixed = s0, s1, ring_bits, fixed

    @property
    def shape(self) -> torch.Size:
        return self.s0.shape

    def numel(self) -> int:
        return self.s0.numel()

    def _new(self, s0: Tensor, s1: Tensor) -> Shared:
        return Shared(ring_mod(s0, self.ring_bits), ring_mod(s1, self.ring_bits), self.ring_bits)

    def __add__(self, other: Shared | Tensor | int) -> Shared:
        if isinstance(other, Shared):
            return self._new(self.s0 + other.s0, self.s1 + other.s1)
        return self._new(self.s0 + other, self.s1.expand_as(self.s0 + other))  # party 0 adds the public part

    __radd__ = __add__

    def __neg__(self) -> Shared:
        return self._new(-self.s0, -self.s1)

    def __sub__(self, other: Shared | Tensor | int) -> Shared:
        return self + (-other)

    def __rsub__(self, other: Tensor | int) -> Shared:
        return (-self) + other

    def __mul__(self, k: Tensor | int) -> Shared:
        if isinstance(k, Shared):
            raise TypeError("the product of two shared values needs a protocol: use TwoParty.mul(x, y)")
        return self._new(self.s0 * k, self.s1 * k)

    __rmul__ = __mul__

    def __lshift__(self, k: int) -> Shared:
        return self._new(self.s0 << k, self.s1 << k)

    def __getitem__(self, index: object) -> Shared:
        return Shared(self.s0[index], self.s1[index], self.ring_bits)

    def reshape(self, *shape: int) -> Shared:
        return Shared(self.s0.reshape(*shape), self.s1.reshape(*shape), self.ring_bits)

    def unsqueeze(self, dim: int) -> Shared:
        return Shared(self.s0.unsqueeze(dim), self.s1.unsqueeze(dim), self.ring_bits)

    @staticmethod
    def cat(values: Sequence[Shared], dim: int = -1) -> Shared:
        return Shared(torch.cat([v.s0 for v in values], dim), torch.cat([v.s1 for v in values], dim),
                      values[0].ring_bits)

    @staticmethod
    def stack(values: Sequence[Shared], dim: int = 0) -> Shared:
        return Shared(torch.stack([v.s0 for v in values], dim), torch.stack([v.s1 for v in values], dim),
                      values[0].ring_bits)

    def __repr__(self) -> str:
        return f"Shared(shape={tuple(self.shape)}, ring_bits={self.ring_bits})"


class BitShared:
    r"""An XOR sharing of bits :math:`b = b_0 \oplus b_1` (uint8 tensors of 0/1). ``^`` with shares or public
    bits is local (party 0 applies the public part)."""

    def __init__(self, s0: Tensor, s1: Tensor) -> None:
        self.s0, self.s1 = s0, s1

    @property
    def shape(self) -> torch.Size:
        return self.s0.shape

    def __xor__(self, other: BitShared | Tensor | int) -> BitShared:
        if isinstance(other, BitShared):
            return BitShared(self.s0 ^ other.s0, self.s1 ^ other.s1)
        other = torch.as_tensor(other, dtype=torch.uint8)
        return BitShared(self.s0 ^ other, self.s1.expand_as(self.s0 ^ other).clone())

    def __getitem__(self, index: object) -> BitShared:
        return BitShared(self.s0[index], self.s1[index])

    @staticmethod
    def stack(values: Sequence[BitShared], dim: int = 0) -> BitShared:
        return BitShared(torch.stack([v.s0 for v in values], dim), torch.stack([v.s1 for v in values], dim))
