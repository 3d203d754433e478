r"""Two-party computation on additive secret shares, simulated in one process, every message counted (C32).

Two parties want :math:`y = F(\text{party 0's secret}, \text{party 1's secret})` and nothing else. A number
:math:`x` in the ring :math:`\mathbb{Z}_{2^\ell}` (``ring_bits`` :math:`\ell`, 64 by default: int64 arithmetic
wraps around modulo :math:`2^{64}` by itself) is **shared** as

.. math::
    x = x_0 + x_1 \bmod 2^\ell, \qquad x_0 \text{ uniformly random}, \quad x_1 = x - x_0,

party :math:`i` holding :math:`x_i`; either share alone is a uniformly random number and says nothing about
:math:`x`. A bit :math:`b` is shared the same way modulo 2, :math:`b = b_0 \oplus b_1` (:class:`BitShared`).

- **Local** (no message): sums of shares, products with a public number (each party multiplies its share),
  adding a public number (party 0 adds it).
- **Products** of two shared values by a **Beaver triple** :math:`(A, B, C = AB)` that a trusted **dealer**
  handed out before the inputs were known (*offline*): open :math:`D = X - A` and :math:`E = Y - B` (uniformly
  random, so they leak nothing), then :math:`XY = DE + DB + AE + C` is local. Any bilinear product works the same
  way (``x @ W.T`` too); a fixed operand (a weight) is masked and opened once and reused.
- **Comparisons** by masking: the dealer picks a random :math:`r`; the parties open :math:`c = x + r`
  (uniform), so :math:`x = c - r`, and everything about :math:`x`'s bits is a comparison of the *public*
  digits of :math:`c` with the dealer's digits of :math:`r`. The dealer hands out, per digit, shares of the
  tables :math:`[v < r_k]` and :math:`[v = r_k]` (:math:`v = 0 .. 2^w-1`); the parties read them at
  :math:`c_k` without talking, and combine the digits like a long subtraction: the borrow out of digits
  :math:`0..k` is :math:`\beta_{k+1} = \text{lt}_k \oplus (\text{eq}_k \wedge \beta_k)`, computed for all
  :math:`k` at once by a prefix tree of AND gates (Beaver triples on bits) in :math:`\lceil\log_2 K\rceil` rounds
  (:meth:`TwoParty.decompose`). From the borrows: the sign (:meth:`TwoParty.msb`), exact truncation
  :math:`\lfloor x/2^f \rfloor` (:meth:`TwoParty.trunc`), and the digits of :math:`x` themselves.
- **Table lookups** of a digit :math:`x_k = (c_k - r_k - \beta_k) \bmod 2^w`: the dealer hands out a
  secretly rotated copy :math:`U[v][u] = T[(v - r_k - (u \oplus s)) \bmod 2^w]` of the table; the parties open
  the borrow bit masked by the dealer's bit :math:`s` and read entry :math:`U[c_k][\beta_k \oplus s] = T[x_k]`
  (:meth:`TwoParty.decompose` with ``lookups``).

Every message goes through :class:`Channel`, which counts bits and rounds per layer and per operation
(``with tp.scope("sigmoid"):``), online, and the dealer's material offline; it can also record what each
party received, for the test that a party's view does not depend on the other party's secret.

Plain functions for the lecture: :func:`share` and :func:`reveal`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._checks import check_choice
from .fixedpoint import check_bits, check_int_tensor

__all__ = ["share", "reveal", "uniform", "Channel", "Dealer", "Shared", "BitShared", "TwoParty", "Decomposition",
           "split_widths"]

RING_BITS = 64


# ---------------------------------------------------------------------------------------------------------------------
# the ring Z_{2^l} on int64
# ---------------------------------------------------------------------------------------------------------------------
def _mod(x: Tensor, bits: int) -> Tensor:
    """Canonical representative: any int64 for l = 64 (int64 wraps modulo 2^64), else ``[0, 2^l)``."""
    return x if bits == 64 else x & ((1 << bits) - 1)


def _signed(x: Tensor, bits: int) -> Tensor:
    return x if bits == 64 else torch.where(x >= (1 << (bits - 1)), x - (1 << bits), x)


def uniform(shape: Sequence[int], bits: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniformly random ``bits``-bit ring elements (int64, canonical representatives)."""
    shape = tuple(shape)
    hi = torch.randint(0, 1 << 32, shape, generator=generator)
    lo = torch.randint(0, 1 << 32, shape, generator=generator)
    return _mod((hi << 32) | lo, bits)  # (hi << 32) wraps into the sign bit for l = 64: still uniform


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
    return q0, _mod(q - q0, bits)


def reveal(s0: Tensor, s1: Tensor, bits: int = RING_BITS) -> Tensor:
    r"""Put two shares back together: :math:`q = s_0 + s_1 \bmod 2^\ell`, read as a signed number."""
    s0, s1 = check_int_tensor("s0", s0), check_int_tensor("s1", s1)
    check_bits("bits", bits, high=64)
    if s0.shape != s1.shape:
        raise ValueError(f"s0 and s1 must have the same shape, but got {tuple(s0.shape)} and {tuple(s1.shape)}")
    return _signed(_mod(s0 + s1, bits), bits)


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
class _Count:
    bits: int = 0
    rounds: int = 0
    messages: int = 0


@dataclass
class Channel:
    """Carries every message between party 0 and party 1 and counts it.

    ``online[(layer, path)]`` and ``offline[(layer, path)]`` hold :class:`_Count` (bits, rounds, messages), where
    ``path`` is the tuple of operation names open at the time (``("sigmoid", "trunc", "and")``). One
    :meth:`exchange` (both parties send at once) is one round. With ``record=True``, ``views[i]`` lists
    ``(path, tensor)`` for every online message party ``i`` received.
    """

    record: bool = False
    online: dict = field(default_factory=lambda: defaultdict(_Count))
    offline: dict = field(default_factory=lambda: defaultdict(_Count))
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
        return Shared(s0, _mod(value - s0, self.ring_bits), self.ring_bits)

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
        return self.share(a_plain, "triple"), b, self.share(_mod(op(a_plain, b_plain), self.ring_bits), "triple")


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
        return Shared(_mod(s0, self.ring_bits), _mod(s1, self.ring_bits), self.ring_bits)

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


@dataclass
class Decomposition:
    """What :meth:`TwoParty.decompose` returns: the opened ``c = x + r`` (public), the borrow into every digit
    boundary (``borrows[p]``, a :class:`BitShared`, for p in the boundaries; ``borrows[0]`` is 0), the dealer's
    bits of ``r`` asked for (``r_bits[p]``), and one :class:`Shared` per requested lookup."""

    c: Tensor
    borrows: dict[int, BitShared]
    r_bits: dict[int, BitShared]
    lookups: list[Shared]
    r_high: dict[int, Shared]


# ---------------------------------------------------------------------------------------------------------------------
# the protocols
# ---------------------------------------------------------------------------------------------------------------------
class TwoParty:
    r"""Two parties, a dealer and a channel: the protocols of the module docstring.

    Args:
        ring_bits: :math:`\ell`, 8..64. Default: 64.
        compare_bits: digit width of the comparison tables (:math:`2^w`-entry tables per digit). Default: 4.
        seed: seeds three generators: the dealer's (``seed``), party 0's and party 1's (``seed + 1``, ``+ 2``).
        record: keep every message each party receives (``channel.views``).
    """

    def __init__(self, ring_bits: int = RING_BITS, compare_bits: int = 4, seed: int = 0, record: bool = False):
        self.ring_bits = check_bits("ring_bits", ring_bits, low=8, high=64)
        self.compare_bits = check_bits("compare_bits", compare_bits, low=1, high=8)
        self.channel = Channel(record=record)
        gens = [torch.Generator().manual_seed(seed + k) for k in range(3)]
        self.dealer = Dealer(self.channel, ring_bits, gens[0])
        self.party_generators = (gens[1], gens[2])
        self._fixed_open: dict[int, tuple[Shared, Tensor]] = {}  # id(operand) -> (operand, its opened E = y - B)

    def scope(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Attribute the messages sent inside the block to operation ``name``."""
        return self.channel.scope(name)

    # -- inputs and outputs -------------------------------------------------------------------------------------------
    def share_input(self, owner: int, value: Tensor, fixed: bool = False) -> Shared:
        """``owner`` (0 or 1) shares its secret integers: it keeps ``value - x_other`` and sends the other party a
        uniformly random share ``x_other``."""
        check_choice("owner", owner, (0, 1))
        value = check_int_tensor("value", value)
        mine, theirs = share(value, self.ring_bits, self.party_generators[owner])[::-1]
        with self.scope("input"):
            self.channel.exchange(theirs if owner == 0 else None, theirs if owner == 1 else None, self.ring_bits,
                                  "share")
        s0, s1 = (mine, theirs) if owner == 0 else (theirs, mine)
        return Shared(s0, s1, self.ring_bits, fixed)

    def reveal(self, x: Shared, what: str = "reveal") -> Tensor:
        """Both parties send their shares; both learn :math:`x` (signed)."""
        self.channel.exchange(x.s0, x.s1, self.ring_bits, what)
        return _signed(_mod(x.s0 + x.s1, self.ring_bits), self.ring_bits)

    def _open_bits(self, b: BitShared, what: str) -> Tensor:
        self.channel.exchange(b.s0, b.s1, 1, what)
        return b.s0 ^ b.s1

    def public(self, value: Tensor | int, shape: Sequence[int] | None = None) -> Shared:
        """A public constant as a sharing (party 0 holds it, party 1 holds 0); no message."""
        v = torch.as_tensor(value, dtype=torch.long)
        v = v.expand(tuple(shape)).clone() if shape is not None else v
        return Shared(_mod(v, self.ring_bits), torch.zeros_like(v), self.ring_bits)

    # -- products -----------------------------------------------------------------------------------------------------
    def mul(self, x: Shared, y: Shared, op: Callable[[Tensor, Tensor], Tensor] = torch.mul) -> Shared:
        r"""``op(x, y)`` for a bilinear ``op`` (elementwise product, ``x @ W.T`` ...) by a Beaver triple.

        One round; opens :math:`D = x - A` and, unless ``y`` is ``fixed`` and was opened before, :math:`E = y - B`.
        """
        a, b, c = self.dealer.triple(op, x.shape, y, y.fixed)
        dx = x - a
        e_pub = self._fixed_open[id(y)][1] if y.fixed and id(y) in self._fixed_open else None
        with self.scope("beaver"):
            if e_pub is not None:  # a fixed operand whose E = y - B is already public
                self.channel.exchange(dx.s0, dx.s1, self.ring_bits, "open")
            else:
                ey = y - b
                self.channel.exchange(torch.cat([dx.s0.flatten(), ey.s0.flatten()]),
                                      torch.cat([dx.s1.flatten(), ey.s1.flatten()]), self.ring_bits, "open")
                e_pub = _mod(ey.s0 + ey.s1, self.ring_bits)
                if y.fixed:
                    self._fixed_open[id(y)] = (y, e_pub)
        d_pub = _mod(dx.s0 + dx.s1, self.ring_bits)
        s0 = op(d_pub, e_pub) + op(d_pub, b.s0) + op(a.s0, e_pub) + c.s0
        s1 = op(d_pub, b.s1) + op(a.s1, e_pub) + c.s1
        return Shared(_mod(s0, self.ring_bits), _mod(s1, self.ring_bits), self.ring_bits)

    def and_(self, x: BitShared, y: BitShared) -> BitShared:
        r""":math:`x \wedge y` by a Beaver triple on bits: open :math:`x \oplus a`, :math:`y \oplus b` (one round)."""
        dealer = self.dealer
        a_plain, b_plain = dealer.bits(x.shape), dealer.bits(x.shape)
        a, b = dealer.share_bits(a_plain, "and triple"), dealer.share_bits(b_plain, "and triple")
        c = dealer.share_bits(a_plain & b_plain, "and triple")
        d = self._open_bits(BitShared.stack([x ^ a, y ^ b]), "and")  # (2, *)
        d, e = d[0], d[1]
        z0 = c.s0 ^ (d & b.s0) ^ (e & a.s0) ^ (d & e)  # x y = (d + a)(e + b) = de + db + ae + c
        z1 = c.s1 ^ (d & b.s1) ^ (e & a.s1)
        return BitShared(z0, z1)

    def b2a(self, x: BitShared) -> Shared:
        r"""A shared bit as an arithmetic sharing of 0/1: open :math:`e = x \oplus t` for a dealer bit :math:`t`
        held both ways, then :math:`x = e + (1 - 2e)\,t` (one round, one bit each way)."""
        t_plain = self.dealer.bits(x.shape)
        t_bits = self.dealer.share_bits(t_plain, "b2a")
        t_ring = self.dealer.share(t_plain.long(), "b2a")
        e = self._open_bits(x ^ t_bits, "b2a").long()
        return (t_ring * (1 - 2 * e)) + e

    # -- comparisons, truncation, digits ------------------------------------------------------------------------------
    def decompose(self, x: Shared, widths: Sequence[int], r_bits: Sequence[int] = (), r_high: Sequence[int] = (),
                  lookups: Sequence[tuple[int, int, Tensor]] = (), lookup_of: int | None = None) -> Decomposition:
        r"""Open :math:`c = x + r` and compute the borrows of :math:`c - r` into every digit boundary.

        Args:
            x: the shared value :math:`(*)`.
            widths: digit widths, lowest first, each at most ``compare_bits``; they sum to at most :math:`\ell`.
            r_bits: positions :math:`p` whose bit :math:`r_p` the dealer shares (bits, for :meth:`msb`).
            r_high: positions :math:`p` for which the dealer shares :math:`\lfloor r / 2^p \rfloor` (ring).
            lookups: ``(position, width, table)``: read ``table`` (a 1-D int64 tensor of :math:`2^w` entries) at the
                digit of :math:`x` in bits ``[position, position + width)``; ``position`` is a boundary.
            lookup_of: look up the digits of ``x[lookup_of]`` only (``x`` stacks several values); default: all of x.

        Rounds: 1 (open) + :math:`\lceil\log_2 K\rceil` (prefix tree) + 1 if there are lookups.
        """
        ell, dealer = self.ring_bits, self.dealer
        starts = [0]
        for w in widths:
            starts.append(starts[-1] + w)
        if any(w > self.compare_bits or w < 1 for w in widths) or starts[-1] > ell:
            raise ValueError(f"widths must be 1..{self.compare_bits} bits each and sum to at most {ell}, got {widths}")
        # offline: the mask, its comparison tables, its bits, its high parts, the rotated lookup tables
        r = dealer.ring(x.shape)
        lt_tabs, eq_tabs = [], []
        for s, w in zip(starts, widths, strict=False):
            r_k = (r >> s) & ((1 << w) - 1)  # (*) the dealer's digit
            v = torch.arange(1 << w)
            lt_tabs.append(dealer.share_bits((v < r_k[..., None]).to(torch.uint8), "compare tables"))
            eq_tabs.append(dealer.share_bits((v == r_k[..., None]).to(torch.uint8), "compare tables"))
        r_shared = dealer.share(r, "mask")
        bits_sh = {p: dealer.share_bits(((r >> p) & 1).to(torch.uint8), "mask bits") for p in r_bits}
        high_sh = {p: dealer.share(_mod((r >> p) & ((1 << (ell - p)) - 1) if p else r, ell), "mask high")
                   for p in r_high}
        rows = slice(None) if lookup_of is None else lookup_of
        r_rows = r[rows]
        rotated = []
        for pos, w, table in lookups:
            s_bit = dealer.bits(r_rows.shape)
            r_k = (r_rows >> pos) & ((1 << w) - 1)
            v = torch.arange(1 << w)  # (2^w,)
            u = torch.arange(2)  # (2,)
            idx = (v[:, None] - r_k[..., None, None] - (u ^ s_bit[..., None, None].long())) & ((1 << w) - 1)
            rotated.append((dealer.share_bits(s_bit, "lookup masks"), dealer.share(table[idx], "lookup tables")))
        # online: open c = x + r
        with self.scope("open"):
            c = self.reveal(x + r_shared, "mask")
        c = _mod(c, ell)
        # read the tables at the public digits of c (local), then the prefix tree of borrows
        lt, eq = [], []
        for s, w, lt_t, eq_t in zip(starts, widths, lt_tabs, eq_tabs, strict=False):
            c_k = ((c >> s) & ((1 << w) - 1))[..., None]  # (*, 1)
            lt.append(BitShared(lt_t.s0.gather(-1, c_k)[..., 0], lt_t.s1.gather(-1, c_k)[..., 0]))
            eq.append(BitShared(eq_t.s0.gather(-1, c_k)[..., 0], eq_t.s1.gather(-1, c_k)[..., 0]))
        with self.scope("borrows"):
            prefix = self._prefix(lt, eq)
        zero = BitShared(torch.zeros(x.shape, dtype=torch.uint8), torch.zeros(x.shape, dtype=torch.uint8))
        borrows = {0: zero} | {starts[k + 1]: prefix[k] for k in range(len(widths))}
        results = []
        if lookups:
            with self.scope("lookup"):
                masked = BitShared.stack([borrows[pos][rows] ^ sb for (pos, _, _), (sb, _) in zip(lookups, rotated,
                                                                                                    strict=True)])
                opened = self._open_bits(masked, "masked borrow").long()  # (n_lookups, *)
            c_rows = c[rows]
            for j, ((pos, w, _), (_, tab)) in enumerate(zip(lookups, rotated, strict=True)):
                index = (((c_rows >> pos) & ((1 << w) - 1)) * 2 + opened[j])[..., None]  # (*, 1): v * 2 + u
                flat0, flat1 = tab.s0.flatten(-2), tab.s1.flatten(-2)  # (*, 2^w * 2)
                results.append(Shared(flat0.gather(-1, index)[..., 0], flat1.gather(-1, index)[..., 0], ell))
        return Decomposition(c, borrows, bits_sh, results, high_sh)

    def _prefix(self, lt: list[BitShared], eq: list[BitShared]) -> list[BitShared]:
        r"""Borrow out of digits ``0..k`` for every ``k``: combine ``(lt, eq)`` pairs, the higher digit over the lower,
        :math:`(L, E) \circ (L', E') = (L \oplus (E \wedge L'), E \wedge E')`, in a Sklansky prefix tree."""
        L, E = list(lt), list(eq)
        K, span = len(L), 1
        while span < K:
            targets = [(i, (i // span) * span - 1) for i in range(K) if (i // span) % 2 == 1]
            lefts = BitShared.stack([E[i] for i, _ in targets] * 2)
            rights = BitShared.stack([L[j] for _, j in targets] + [E[j] for _, j in targets])
            prod = self.and_(lefts, rights)  # one round for the whole level
            n = len(targets)
            for m, (i, _) in enumerate(targets):
                L[i] = L[i] ^ prod[m]
                E[i] = prod[n + m]
            span *= 2
        return L

    def msb(self, x: Shared) -> BitShared:
        r"""The sign bit of :math:`x` (1 for negative): :math:`c_{\ell-1} \oplus r_{\ell-1} \oplus \beta_{\ell-1}`."""
        ell = self.ring_bits
        with self.scope("msb"):
            dec = self.decompose(x, split_widths([ell - 1], self.compare_bits), r_bits=[ell - 1])
            top = ((dec.c >> (ell - 1)) & 1).to(torch.uint8)
            return dec.borrows[ell - 1] ^ dec.r_bits[ell - 1] ^ top

    def trunc(self, x: Shared, shift: int) -> Shared:
        r"""Exact :math:`\lfloor x / 2^{s} \rfloor` of a signed shared :math:`x` (what ``x >> s`` gives in the clear).

        With :math:`x_u = x + 2^{\ell-1}` (unsigned), :math:`c = x_u + r`, :math:`\beta_s = [c \bmod 2^s < r \bmod
        2^s]` and the wrap :math:`w = [c < r]`:
        :math:`\lfloor x / 2^s \rfloor = \lfloor c/2^s \rfloor - \lfloor r/2^s \rfloor - \beta_s + 2^{\ell-s} w
        - 2^{\ell-1-s}`.
        """
        ell = self.ring_bits
        if shift == 0:
            return x
        if not 0 < shift < ell:
            raise ValueError(f"shift must be in [0, {ell}), but got {shift}")
        with self.scope("trunc"):
            x_u = x + (1 << (ell - 1))
            dec = self.decompose(x_u, split_widths([shift, ell], self.compare_bits), r_high=[shift])
            both = self.b2a(BitShared.stack([dec.borrows[shift], dec.borrows[ell]]))  # (2, *) one round
            c_high = (dec.c >> shift) & ((1 << (ell - shift)) - 1)
            out = -dec.r_high[shift] - both[0] + (both[1] << (ell - shift))
            return out + (c_high - (1 << (ell - 1 - shift)))

    # -- the cost report's raw numbers --------------------------------------------------------------------------------
    def totals(self, online: bool = True) -> _Count:
        """Bits, rounds and messages summed over everything so far."""
        out = _Count()
        for count in (self.channel.online if online else self.channel.offline).values():
            out.bits += count.bits
            out.rounds += count.rounds
            out.messages += count.messages
        return out
