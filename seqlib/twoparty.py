r"""The two-party protocols on :mod:`seqlib.mpc`'s shares: products, comparisons, truncation, lookups (C32).

:class:`TwoParty` holds the two parties' generators, a :class:`~seqlib.mpc.Dealer` and a
:class:`~seqlib.mpc.Channel`. Its protocols, each computing exactly its cleartext operation:

- **Products** of two shared values by a **Beaver triple** :math:`(A, B, C = AB)` from the dealer (*offline*):
  open :math:`D = X - A` and :math:`E = Y - B` (uniformly random, so they leak nothing), then
  :math:`XY = DE + DB + AE + C` is local (:meth:`TwoParty.mul`). Any bilinear product works the same way
  (``x @ W.T`` too); a fixed operand (a weight) is masked and opened once and reused. On bits, the same recipe
  gives AND gates (:meth:`TwoParty.and_`); :meth:`TwoParty.b2a` turns a shared bit into a shared 0/1.
- **Comparisons** by masking: the dealer picks a random :math:`r`; the parties open :math:`c = x + r`
  (uniform), so :math:`x = c - r`, and everything about :math:`x`'s bits is a comparison of the *public*
  digits of :math:`c` with the dealer's digits of :math:`r`. The dealer hands out, per digit, shares of the
  tables :math:`[v < r_k]` and :math:`[v = r_k]` (:math:`v = 0 .. 2^w-1`); the parties read them at
  :math:`c_k` without talking, and combine the digits like a long subtraction: the borrow out of digits
  :math:`0..k` is :math:`\beta_{k+1} = \text{lt}_k \oplus (\text{eq}_k \wedge \beta_k)`, computed for all
  :math:`k` at once by a prefix tree of AND gates in :math:`\lceil\log_2 K\rceil` rounds
  (:meth:`TwoParty.decompose`). From the borrows: the sign (:meth:`TwoParty.msb`), exact truncation
  :math:`\lfloor x/2^f \rfloor` (:meth:`TwoParty.trunc`), and the digits of :math:`x` themselves.
- **Table lookups** of a digit :math:`x_k = (c_k - r_k - \beta_k) \bmod 2^w`: the dealer hands out a
  secretly rotated copy :math:`U[v][u] = T[(v - r_k - (u \oplus s)) \bmod 2^w]` of the table; the parties open
  the borrow bit masked by the dealer's bit :math:`s` and read entry :math:`U[c_k][\beta_k \oplus s] = T[x_k]`
  (:meth:`TwoParty.decompose` with ``lookups``).

Costs, with :math:`n` elements, :math:`\ell`-bit ring, :math:`K` comparison digits (the tests check them):
a product sends :math:`4\ell n` bits in one round; an AND gate 4 bits; the sign
:math:`n(2\ell + 4 G_K)` bits in :math:`1 + \lceil\log_2 K\rceil` rounds, :math:`G_K` the AND gates of the
prefix tree; a truncation the same plus :math:`4n` bits and one round for the conversion of two bits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_choice
from .fixedpoint import check_bits, check_int_tensor
from .mpc import RING_BITS, BitShared, Channel, Count, Dealer, Shared, ring_mod, ring_signed, share, split_widths

__all__ = ["TwoParty", "Decomposition"]


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
        return ring_signed(ring_mod(x.s0 + x.s1, self.ring_bits), self.ring_bits)

    def _open_bits(self, b: BitShared, what: str) -> Tensor:
        self.channel.exchange(b.s0, b.s1, 1, what)
        return b.s0 ^ b.s1

    def public(self, value: Tensor | int, shape: Sequence[int] | None = None) -> Shared:
        """A public constant as a sharing (party 0 holds it, party 1 holds 0); no message."""
        v = torch.as_tensor(value, dtype=torch.long)
        v = v.expand(tuple(shape)).clone() if shape is not None else v
        return Shared(ring_mod(v, self.ring_bits), torch.zeros_like(v), self.ring_bits)

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
                e_pub = ring_mod(ey.s0 + ey.s1, self.ring_bits)
                if y.fixed:
                    self._fixed_open[id(y)] = (y, e_pub)
        d_pub = ring_mod(dx.s0 + dx.s1, self.ring_bits)
        s0 = op(d_pub, e_pub) + op(d_pub, b.s0) + op(a.s0, e_pub) + c.s0
        s1 = op(d_pub, b.s1) + op(a.s1, e_pub) + c.s1
        return Shared(ring_mod(s0, self.ring_bits), ring_mod(s1, self.ring_bits), self.ring_bits)

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
        high_sh = {p: dealer.share(ring_mod((r >> p) & ((1 << (ell - p)) - 1) if p else r, ell), "mask high")
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
        c = ring_mod(c, ell)
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
    def totals(self, online: bool = True) -> Count:
        """Bits, rounds and messages summed over everything so far."""
        out = Count()
        for count in (self.channel.online if online else self.channel.offline).values():
            out.bits += count.bits
            out.rounds += count.rounds
            out.messages += count.messages
        return out
