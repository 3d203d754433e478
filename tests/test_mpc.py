"""seqlib.mpc and seqlib.twoparty: shares are uniform, every protocol equals its cleartext operation (exhaustively on
a small ring), and the channel's counters equal the formulas of the lecture; MPyC as an optional reference."""

from __future__ import annotations

import math

import pytest
import torch

from seqlib import mpc
from seqlib.mpc import BitShared, Shared, reveal, share, split_widths
from seqlib.twoparty import TwoParty

pytestmark = pytest.mark.part4


def byte_chi2(values: torch.Tensor, byte: int) -> float:
    """Chi-square statistic of one byte of the values against the uniform distribution on 256 bins."""
    counts = torch.bincount(((values >> (8 * byte)) & 255).flatten(), minlength=256).double()
    expected = values.numel() / 256
    return float(((counts - expected) ** 2 / expected).sum())


# 255 degrees of freedom: mean 255, standard deviation sqrt(2 * 255); five of them above the mean
CHI2_LIMIT = 255 + 5 * math.sqrt(2 * 255)


# -- sharing -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [64, 32, 16])
@pytest.mark.parametrize("secret", [0, -1, 12345, 2**14 - 1])
def test_each_share_is_uniform_whatever_the_secret(bits, secret):
    g = torch.Generator().manual_seed(bits + secret)
    q = torch.full((60_000,), secret)
    s0, s1 = share(q, bits, g)
    for s in (s0, s1):
        for byte in range(bits // 8):
            assert byte_chi2(s, byte) < CHI2_LIMIT
        if bits < 64:
            assert int(s.min()) >= 0 and int(s.max()) < 2**bits  # canonical representatives
    assert torch.equal(reveal(s0, s1, bits), q)


def test_the_uniformity_test_catches_a_biased_share():
    g = torch.Generator().manual_seed(0)
    biased = torch.randint(0, 2**48, (60_000,), generator=g)  # the top two bytes are always zero
    assert byte_chi2(biased, 7) > CHI2_LIMIT and byte_chi2(biased, 6) > CHI2_LIMIT
    assert byte_chi2(biased, 0) < CHI2_LIMIT


def test_share_reveal_round_trip_and_wrap_around():
    q = torch.tensor([0, 1, -1, 2**62, -(2**62), 2**63 - 1, -(2**63)])
    assert torch.equal(reveal(*share(q)), q)
    q16 = torch.tensor([0, 1, -1, 2**15 - 1, -(2**15)])
    assert torch.equal(reveal(*share(q16, 16), 16), q16)
    a0, a1 = share(torch.tensor([2**15 - 1]), 16)
    assert reveal(a0 + 1, a1, 16).tolist() == [-(2**15)]  # the ring wraps around


# -- protocols equal their cleartext operation -------------------------------------------------------------------------
def all_values(bits: int) -> torch.Tensor:
    return torch.arange(-(2 ** (bits - 1)), 2 ** (bits - 1))


@pytest.mark.parametrize("ring,cmp", [(12, 4), (12, 3), (10, 1)])
def test_msb_and_trunc_exhaustively_on_a_small_ring(ring, cmp):
    tp = TwoParty(ring_bits=ring, compare_bits=cmp, seed=ring + cmp)
    x = all_values(ring)
    xs = tp.share_input(1, x)
    sign = tp.msb(xs)
    assert torch.equal((sign.s0 ^ sign.s1).long(), (x < 0).long())
    for s in range(1, ring):
        assert torch.equal(tp.reveal(tp.trunc(xs, s)), x >> s), s


def test_protocols_on_the_64_bit_ring():
    tp = TwoParty(seed=1)
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randint(-(2**61), 2**61, (3000,), generator=g), torch.tensor([0, -1, 2**62, -(2**62)])])
    y = torch.randint(-(2**30), 2**30, x.shape, generator=g)
    xs, ys = tp.share_input(1, x), tp.share_input(0, y)
    assert torch.equal(tp.reveal(xs + ys - 5), x + y - 5)
    assert torch.equal(tp.reveal(tp.mul(tp.trunc(xs, 32), ys)), (x >> 32) * y)
    assert torch.equal(tp.reveal(tp.trunc(xs, 13)), x >> 13)
    b = tp.msb(xs)
    assert torch.equal((b.s0 ^ b.s1).long(), (x < 0).long())
    assert torch.equal(tp.reveal(tp.b2a(b)), (x < 0).long())


def test_and_gates_and_bit_conversion():
    tp = TwoParty(seed=2)
    a = torch.tensor([0, 0, 1, 1], dtype=torch.uint8)
    b = torch.tensor([0, 1, 0, 1], dtype=torch.uint8)
    sa = BitShared(*(lambda r: (r, r ^ a))(torch.randint(0, 2, (4,), dtype=torch.uint8)))
    sb = BitShared(*(lambda r: (r, r ^ b))(torch.randint(0, 2, (4,), dtype=torch.uint8)))
    z = tp.and_(sa, sb)
    assert (z.s0 ^ z.s1).tolist() == [0, 0, 0, 1]
    assert tp.reveal(tp.b2a(sa)).tolist() == [0, 0, 1, 1]


def test_products_with_a_fixed_operand_open_it_once():
    tp = TwoParty(seed=3)
    W = torch.randint(-1000, 1000, (5, 7))
    ws = tp.share_input(0, W, fixed=True)
    for _ in range(3):
        v = torch.randint(-1000, 1000, (4, 7))
        assert torch.equal(tp.reveal(tp.mul(tp.share_input(1, v), ws, lambda a, b: a @ b.T)), v @ W.T)
    opened = tp.channel.online[("", ("beaver", "open"))]
    assert opened.rounds == 3 and opened.bits == 2 * 64 * (3 * 4 * 7 + 5 * 7)  # D three times, E = W - B once


def test_decompose_reads_digits_and_tables():
    tp = TwoParty(seed=4)
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 2**20, (500,), generator=g)
    identity = torch.arange(256)
    square = torch.arange(16) ** 2
    dec = tp.decompose(tp.share_input(1, x), split_widths([8, 12, 20], 4),
                       lookups=[(0, 8, identity), (8, 4, square), (12, 8, identity)])
    got = [tp.reveal(s) for s in dec.lookups]
    assert torch.equal(got[0], x & 255)
    assert torch.equal(got[1], ((x >> 8) & 15) ** 2)
    assert torch.equal(got[2], (x >> 12) & 255)
    assert split_widths([3, 10], 4) == [3, 4, 3]


# -- the counters against the formulas ---------------------------------------------------------------------------------
def prefix_and_gates(K: int) -> int:
    """AND gates of a Sklansky prefix over K digits: at each of ceil(log2 K) levels, every digit in the upper half of a
    block combines with the top of the lower half, two ANDs each (the new lt and the new eq)."""
    gates, span = 0, 1
    while span < K:
        gates += 2 * sum(1 for i in range(K) if (i // span) % 2 == 1)
        span *= 2
    return gates


def levels(K: int) -> int:
    return math.ceil(math.log2(K)) if K > 1 else 0


@pytest.mark.parametrize("ring,cmp,n", [(64, 4, 100), (32, 4, 37), (64, 2, 10), (16, 3, 5)])
def test_msb_and_trunc_costs_equal_the_formulas(ring, cmp, n):
    tp = TwoParty(ring_bits=ring, compare_bits=cmp)
    xs = tp.share_input(1, torch.arange(n) - n // 2)
    tp.channel.online.clear()
    tp.channel.offline.clear()
    tp.msb(xs)
    K = math.ceil((ring - 1) / cmp)
    # open c = x + r: both send l bits; an AND gate: both send 2 bits
    assert tp.totals().bits == n * (2 * ring + 4 * prefix_and_gates(K))
    assert tp.totals().rounds == 1 + levels(K)
    # offline: r (l bits), one bit of r, two tables of 2^w bits per digit, 3 bits per AND triple, to each party
    widths = split_widths([ring - 1], cmp)
    assert tp.totals(online=False).bits == 2 * n * (ring + 1 + sum(2 * 2**w for w in widths) + 3 * prefix_and_gates(K))

    shift = 12
    tp.channel.online.clear()
    tp.channel.offline.clear()
    tp.trunc(xs, shift)
    widths = split_widths([shift, ring], cmp)
    K = len(widths)
    assert tp.totals().bits == n * (2 * ring + 4 * prefix_and_gates(K) + 2 * 2)  # + two bits to convert, each way
    assert tp.totals().rounds == 1 + levels(K) + 1
    # offline: r and floor(r / 2^s) (l bits each), the tables, the AND triples, two conversion pairs (1 + l bits)
    table_bits = sum(2 * 2**w for w in widths)
    assert tp.totals(online=False).bits == 2 * n * (2 * ring + table_bits + 3 * prefix_and_gates(K) + 2 * (1 + ring))


def test_beaver_and_and_costs():
    tp = TwoParty(ring_bits=32)
    x, y = tp.share_input(0, torch.arange(10)), tp.share_input(1, torch.arange(10))
    tp.channel.online.clear()
    tp.channel.offline.clear()
    tp.mul(x, y)
    assert tp.totals().bits == 2 * 32 * 20 and tp.totals().rounds == 1  # D and E, from both parties
    assert tp.totals(online=False).bits == 2 * 32 * 30  # A, B, C to each party
    bits = BitShared(torch.zeros(10, dtype=torch.uint8), torch.zeros(10, dtype=torch.uint8))
    tp.channel.online.clear()
    tp.and_(bits, bits)
    assert tp.totals().bits == 4 * 10 and tp.totals().rounds == 1


def test_channel_counts_by_scope_and_records_views():
    tp = TwoParty(ring_bits=16, record=True)
    x = tp.share_input(1, torch.tensor([3, -4]))
    with tp.channel.in_layer("l0"), tp.scope("my op"):
        tp.trunc(x, 1)
    keys = {k for k in tp.channel.online if k[0] == "l0"}
    assert {k[1][:2] for k in keys} == {("my op", "trunc")}
    assert tp.channel.views[0][0][0] == ("input", "share")  # party 0 received party 1's input share first
    assert all(isinstance(m, torch.Tensor) for _, m in tp.channel.views[1])


# -- MPyC as an optional reference -------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_against_mpyc_secure_integers():
    pytest.importorskip("mpyc", reason="mpyc (a reference package of the test extra) is missing")
    from mpyc.runtime import mpc as mpyc_runtime

    g = torch.Generator().manual_seed(5)
    xs = torch.randint(-(2**30), 2**30, (40,), generator=g)
    ys = torch.randint(-(2**15), 2**15, (40,), generator=g)
    secint = mpyc_runtime.SecInt(64)

    async def reference():
        await mpyc_runtime.start()
        a, b = [secint(int(v)) for v in xs], [secint(int(v)) for v in ys]
        out = (await mpyc_runtime.output([u < 0 for u in a]), await mpyc_runtime.output([u // 2**7 for u in a]),
               await mpyc_runtime.output([u * v for u, v in zip(a, b, strict=True)]))
        await mpyc_runtime.shutdown()
        return out

    sign, floor, prod = mpyc_runtime.run(reference())
    tp = TwoParty(seed=5)
    x, y = tp.share_input(1, xs), tp.share_input(0, ys)
    b = tp.msb(x)
    assert (b.s0 ^ b.s1).tolist() == [int(s) for s in sign]
    assert tp.reveal(tp.trunc(x, 7)).tolist() == [int(v) for v in floor]
    assert tp.reveal(tp.mul(x, y)).tolist() == [int(v) for v in prod]


# -- bad input ---------------------------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    with pytest.raises(TypeError, match="integer tensor"):
        share(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="same shape"):
        reveal(torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="from 2 to 64"):
        share(torch.tensor([1]), bits=65)
    tp = TwoParty(ring_bits=16)
    x = tp.share_input(0, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="owner"):
        tp.share_input(2, torch.tensor([1]))
    with pytest.raises(TypeError, match="TwoParty.mul"):
        _ = x * x
    with pytest.raises(ValueError, match="shift"):
        tp.trunc(x, 16)
    with pytest.raises(ValueError, match="widths"):
        tp.decompose(x, [8, 8])
    with pytest.raises(ValueError, match="ring_bits"):
        TwoParty(ring_bits=4)
    assert isinstance(x, Shared) and "ring_bits=16" in repr(x)
    assert mpc.RING_BITS == 64
