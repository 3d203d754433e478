"""seqlib.stats (Levene, the F distribution: against scipy), seqlib.cdf_quant and seqlib.climbq (Theorems 3.1-3.2)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlib import cdf_quant, climbq, stats

pytestmark = pytest.mark.part4



@pytest.fixture(scope="module")
def scipy_stats():
    """scipy is the reference of the test extra (``pip install -e '.[test]'``); seqlib itself never imports it."""
    return pytest.importorskip("scipy.stats", reason="scipy (the reference of the test extra) is not installed")


@pytest.fixture(scope="module")
def scipy_special():
    return pytest.importorskip("scipy.special", reason="scipy (the reference of the test extra) is not installed")


# ------------------------------------------------------------------------------------------------ F distribution
@pytest.mark.parametrize(("a", "b", "x"), [(0.5, 0.5, 0.3), (10, 3, 0.99), (200, 0.5, 0.999), (1e-3, 5, 0.5),
                                           (3000, 2000, 0.6), (1.5, 4000, 1e-4), (2, 2, 0.0), (2, 2, 1.0)])
def test_betainc_equals_scipy(a, b, x, scipy_special):
    assert stats.betainc(a, b, x) == pytest.approx(float(scipy_special.betainc(a, b, x)), rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("dfn", [1, 2, 3, 5, 10, 100])
@pytest.mark.parametrize("dfd", [1, 2, 7, 50, 1000, 100_000])
def test_f_survival_and_critical_value_equal_scipy(dfn, dfd, scipy_stats):
    for w in [0.0, 0.01, 0.5, 1.0, 2.0, 5.0, 30.0, 1e3, 1e6, math.inf]:
        assert stats.f_sf(w, dfn, dfd) == pytest.approx(float(scipy_stats.f.sf(w, dfn, dfd)), rel=1e-8, abs=1e-300)
    for alpha in [0.5, 0.05, 0.01, 1e-6]:
        assert stats.f_isf(alpha, dfn, dfd) == pytest.approx(float(scipy_stats.f.isf(alpha, dfn, dfd)), rel=1e-9)


def test_f_bad_input():
    with pytest.raises(ValueError, match="dfn > 0"):
        stats.f_sf(1.0, 0, 5)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        stats.f_isf(1.0, 2, 5)
    with pytest.raises(ValueError, match="0 <= x <= 1"):
        stats.betainc(1, 1, 1.5)
    assert math.isnan(stats.f_sf(math.nan, 2, 3))


# ------------------------------------------------------------------------------------------------ Levene
@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("seed", range(4))
def test_levene_equals_scipy(center, seed, scipy_stats):
    g = torch.Generator().manual_seed(seed)
    sizes = [int(s) for s in torch.randint(2, 60, (int(torch.randint(2, 6, (1,), generator=g)),), generator=g)]
    groups = [torch.randn(n, generator=g, dtype=torch.float64) * (0.3 + 2 * torch.rand(1, generator=g).item())
              for n in sizes]
    ours = stats.levene(*groups, center=center)
    theirs = scipy_stats.levene(*[x.numpy() for x in groups], center=center)
    assert ours.statistic == pytest.approx(float(theirs.statistic), rel=1e-10)
    assert ours.pvalue == pytest.approx(float(theirs.pvalue), rel=1e-8, abs=1e-300)


def test_levene_accepts_lists_and_the_long_tailed_sizes(scipy_stats):
    g = torch.Generator().manual_seed(0)
    groups = [torch.randn(n, generator=g).tolist() for n in (2000, 500, 100, 20)]
    ours, theirs = stats.levene(*groups), scipy_stats.levene(*groups, center="mean")
    assert ours.statistic == pytest.approx(float(theirs.statistic), rel=1e-9)
    assert ours.pvalue == pytest.approx(float(theirs.pvalue), rel=1e-8)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(2, 40), min_size=2, max_size=5), seed=st.integers(0, 10_000))
def test_levene_random_groups_equal_scipy(sizes, seed, scipy_stats):
    g = torch.Generator().manual_seed(seed)
    groups = [torch.randn(n, generator=g, dtype=torch.float64) * (k + 1) for k, n in enumerate(sizes)]
    ours, theirs = stats.levene(*groups), scipy_stats.levene(*[x.numpy() for x in groups], center="mean")
    assert ours.statistic == pytest.approx(float(theirs.statistic), rel=1e-9)
    assert ours.pvalue == pytest.approx(float(theirs.pvalue), rel=1e-7, abs=1e-300)


def test_levene_bad_input():
    with pytest.raises(ValueError, match="at least 2 groups"):
        stats.levene([1.0, 2.0])
    with pytest.raises(ValueError, match="group 1 is empty"):
        stats.levene([1.0, 2.0], [])
    with pytest.raises(ValueError, match="N - K > 0"):
        stats.levene([1.0], [2.0])
    with pytest.raises(ValueError, match="center must be"):
        stats.levene([1.0, 2.0], [3.0, 5.0], center="trimmed")
    with pytest.raises(ValueError, match="1-D"):
        stats.levene(torch.zeros(2, 2), [1.0, 2.0])


# ------------------------------------------------------------------------------------------------ CDF quantization
def test_cdf_projection_is_uniform_and_levels_are_equally_filled(scipy_stats):
    """Theorem 3.1 in numbers: F(X) of normal data is uniform, so each of the 2^b bins gets ~1/2^b of the values."""
    x = torch.randn(50_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3 + 1
    u = cdf_quant._cdf((x - 1) / 3, "normal")
    assert scipy_stats.kstest(u.numpy(), "uniform").pvalue > 0.01
    for bits in (2, 3, 4):
        y = cdf_quant.cdf_quantize(x, bits, "normal", loc=1.0, scale=3.0)
        levels = cdf_quant.cdf_levels(bits, "normal", 1.0, 3.0)
        values, counts = torch.unique(y, return_counts=True)
        torch.testing.assert_close(values, levels)
        torch.testing.assert_close(counts.double() / len(x), torch.full((2**bits,), 1 / 2**bits, dtype=torch.float64),
                                   atol=1e-2, rtol=0)
        reference = scipy_stats.norm.ppf((torch.arange(2**bits) + 0.5).numpy() / 2**bits, loc=1.0, scale=3.0)
        torch.testing.assert_close(levels, torch.from_numpy(reference), rtol=1e-6, atol=1e-9)  # torch.erfinv's accuracy


@pytest.mark.parametrize("dist", ["normal", "laplace"])
def test_cdf_quantize_maps_each_value_to_the_level_of_its_bin(dist, scipy_stats):
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    y = cdf_quant.cdf_quantize(x, 3, dist, loc=0.5, scale=1.5)
    levels = cdf_quant.cdf_levels(3, dist, 0.5, 1.5)
    reference = scipy_stats.norm if dist == "normal" else scipy_stats.laplace
    bins = torch.clamp(torch.floor(torch.from_numpy(reference.cdf(x.numpy(), loc=0.5, scale=1.5)) * 8), 0, 7).long()
    torch.testing.assert_close(y, levels[bins])
    assert torch.all(y[1:] >= y[:-1])  # monotone


def test_cdf_quantize_straight_through_gradient_fits_and_per_channel():
    w = torch.randn(6, 50, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.1, 3, 6)[:, None]
    w.requires_grad_(True)
    y = cdf_quant.cdf_quantize(w, 2, per_channel_axis=0)
    (y * torch.arange(50.0)).sum().backward()
    assert torch.equal(w.grad, torch.arange(50.0).expand(6, 50))
    for row in range(6):
        loc, scale = w[row].detach().mean(), w[row].detach().std()
        torch.testing.assert_close(torch.unique(y[row]), cdf_quant.cdf_levels(2, "normal", float(loc),
                                                                              float(scale)).float(), rtol=1e-5,
                                   atol=1e-6)
    dist = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(2.0))
    torch.testing.assert_close(cdf_quant.cdf_quantize(w.detach(), 3, dist),
                               cdf_quant.cdf_quantize(w.detach(), 3, "normal", loc=0.0, scale=2.0))


def test_cdf_quantize_bad_input():
    x = torch.randn(10)
    with pytest.raises(ValueError, match="bits must be from 2 to 16"):
        cdf_quant.cdf_quantize(x, 1)
    with pytest.raises(ValueError, match="scale must be positive"):
        cdf_quant.cdf_quantize(x, 4, loc=0.0, scale=0.0)
    with pytest.raises(ValueError, match="dist must be one of"):
        cdf_quant.cdf_quantize(x, 4, dist="cauchy")
    with pytest.raises(ValueError, match="leave loc, scale"):
        cdf_quant.cdf_quantize(x, 4, torch.distributions.Normal(0.0, 1.0), loc=0.0)
    with pytest.raises(TypeError, match="floating-point"):
        cdf_quant.cdf_quantize(torch.arange(4), 4)
    with pytest.raises(ValueError, match="at least 2 values"):
        cdf_quant.cdf_quantize(torch.tensor([1.0]), 4)


# ------------------------------------------------------------------------------------------------ class-wise scaling
def test_scale_class_variances_equalises_the_class_spreads():
    g = torch.Generator().manual_seed(0)
    sizes, spreads = (500, 100, 20), (0.2, 1.0, 3.0)
    x = torch.cat([torch.randn(n, 3, generator=g) * s + k for k, (n, s) in enumerate(zip(sizes, spreads, strict=True))])
    labels = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    scaled = climbq.scale_class_variances(x, labels, 3)
    stds = torch.stack([scaled[labels == k].std() for k in range(3)])
    target = torch.stack([x[labels == k].std() for k in range(3)]).pow(2).mean().sqrt()
    torch.testing.assert_close(stds, target.expand(3), rtol=1e-5, atol=1e-6)
    for k in range(3):  # class means stay where they were
        torch.testing.assert_close(scaled[labels == k].mean(), x[labels == k].mean(), rtol=1e-5, atol=1e-5)
    before = stats.levene(*[x[labels == k].flatten() for k in range(3)]).statistic
    after = stats.levene(*[scaled[labels == k].flatten() for k in range(3)]).statistic
    assert after < before / 10  # Levene's test sees (nearly) homogeneous variances after scaling
    torch.testing.assert_close(climbq.scale_class_variances(x, labels, 3, strength=0.0), x)
    half = climbq.scale_class_variances(x, labels, 3, strength=0.5)
    assert float(half[labels == 0].std()) == pytest.approx(float(x[labels == 0].std() * (target / x[labels == 0].std())
                                                                 ** 0.5), rel=1e-4)


def test_scale_class_variances_bad_input():
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        climbq.scale_class_variances(x, torch.tensor([0, 1, 2, 0]), 2)
    with pytest.raises(ValueError, match="N = 3"):
        climbq.scale_class_variances(x, torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="strength"):
        climbq.scale_class_variances(x, y, 2, strength=2.0)
    with pytest.raises(TypeError, match="integer tensor"):
        climbq.scale_class_variances(x, y.float(), 2)
    with pytest.raises(ValueError, match="class 2 has no examples"):
        climbq.class_groups(x, y, 3)


# ------------------------------------------------------------------------------------------------ Theorem 3.2
@pytest.mark.parametrize("seed", range(6))
def test_class_size_bounds_agree_with_levenes_test(seed, scipy_stats):
    """At the actual sizes, n_k lies inside its bounds exactly when Levene's test accepts (W < F_alpha)."""
    g = torch.Generator().manual_seed(seed)
    spreads = [1.0, 1.0 + 0.15 * seed, 1.0, 1.0 - 0.05 * seed]
    groups = [torch.randn(n, generator=g, dtype=torch.float64) * s for n, s in zip((300, 120, 60, 30), spreads,
                                                                                   strict=True)]
    bounds = climbq.class_size_bounds(*groups, alpha=0.05)
    result = scipy_stats.levene(*[x.numpy() for x in groups], center="mean")
    assert bounds.statistic == pytest.approx(float(result.statistic), rel=1e-9)
    assert bounds.critical == pytest.approx(float(scipy_stats.f.isf(0.05, 3, 506)), rel=1e-9)
    accepts = float(result.pvalue) > 0.05
    inside = bounds.inside()
    assert bool(inside.all()) == accepts and bool(inside.any()) == accepts, (bounds, result)
    finite = torch.isfinite(bounds.lower)
    z_bar = torch.cat([(x - x.mean()).abs() for x in groups]).mean()
    sums = torch.stack([(x - x.mean()).abs().sum() for x in groups])
    torch.testing.assert_close(bounds.lower[finite] * bounds.upper[finite], (sums / z_bar)[finite] ** 2)  # Vieta


def test_class_size_bounds_bad_input():
    with pytest.raises(ValueError, match="class 1 is empty"):
        climbq.class_size_bounds([1.0, 2.0, 3.0], [])
    with pytest.raises(ValueError, match="at least 2 classes"):
        climbq.class_size_bounds([1.0, 2.0])
    with pytest.raises(ValueError, match="alpha"):
        climbq.class_size_bounds([1.0, 2.0], [2.0, 4.0], alpha=0)


# ------------------------------------------------------------------------------------------------ HomoVar weights
@pytest.mark.parametrize("beta", [0.8, 0.9, 0.99, 0.999])
def test_homovar_weights_reach_the_supplements_limits(beta):
    n = torch.tensor([1.0, 5.0, 50.0, 500.0, 1e5])
    inside = climbq.homovar_weights(n, lower=n - 1, upper=n + 1, beta=beta)  # d_k = 1
    geometric = torch.tensor([1 / sum(beta**i for i in range(int(k))) for k in n[:-1]], dtype=torch.float64)
    torch.testing.assert_close(inside[:-1], geometric, rtol=1e-10, atol=0)  # Case I: 1 / sum_i beta^i
    assert inside[0].item() == pytest.approx(1.0)  # n_k -> 1: weight 1
    assert inside[-1].item() == pytest.approx(1 - beta, rel=1e-6)  # n_k -> infinity inside the bounds: 1 - beta
    far = climbq.homovar_weights(n, lower=n + 1e12, upper=n + 2e12, beta=beta)  # |n_k - n_k^e| -> infinity
    torch.testing.assert_close(far, 1 / n.double(), rtol=1e-5, atol=0)  # Case II: 1 / n_k
    huge = torch.tensor([1e3, 1e5, 1e7], dtype=torch.float64)
    above = climbq.homovar_weights(huge, lower=torch.zeros(3), upper=torch.zeros(3), beta=beta)  # d_k = n_k
    # (1 - beta^(1/n)) / (1 - beta) ~ -log(beta) / ((1 - beta) n) -> 0 as n_k -> infinity far above the bound
    torch.testing.assert_close(above * huge, torch.full((3,), -math.log(beta) / (1 - beta), dtype=torch.float64),
                               rtol=1e-3, atol=0)
    grid = climbq.homovar_weights(torch.arange(1.0, 3000.0), beta=beta)
    assert bool(torch.all((grid <= 1 + 1e-12) & (grid >= max(1 - beta, 0) - 1e-12)))  # max(1 - beta, 0) <= w <= 1
    assert bool(torch.all(grid[1:] <= grid[:-1]))  # larger classes weigh less


def test_homovar_weights_move_from_the_inside_value_to_one_over_n_with_the_distance_to_the_bounds():
    n = torch.full((5,), 100.0, dtype=torch.float64)
    lower = torch.tensor([50.0, 110.0, 200.0, 1e4, 1e9], dtype=torch.float64)  # 0, 10, 100, ~1e4, ~1e9 below
    w = climbq.homovar_weights(n, lower=lower, upper=lower + 100, beta=0.99)
    inside = (1 - 0.99) / (1 - 0.99**100)
    assert w[0].item() == pytest.approx(inside)
    assert bool(torch.all(w[1:] < w[:-1]))  # the further from the bounds, the closer to 1/n_k
    assert w[-1].item() == pytest.approx(1 / 100, rel=1e-6) and bool(torch.all(w > 1 / 100))
    mirrored = climbq.homovar_weights(n, lower=torch.zeros(5), upper=200 - lower, beta=0.99)  # the same distances above
    torch.testing.assert_close(mirrored[1:4], w[1:4])
    normalised = climbq.homovar_weights(n, lower=lower, upper=lower + 100, beta=0.99, normalize=True)
    assert float(normalised.sum()) == pytest.approx(5.0)


def test_homovar_weights_and_loss_bad_input():
    with pytest.raises(ValueError, match="at least 1"):
        climbq.homovar_weights([10, 0, 3])
    with pytest.raises(ValueError, match="beta must be in"):
        climbq.homovar_weights([10, 3], beta=1.0)
    with pytest.raises(ValueError, match=r"lower and upper must have shape \(K,\)"):
        climbq.homovar_weights([10, 3], lower=[1.0])
    with pytest.raises(ValueError, match="not all zero"):
        climbq.HomoVarLoss([0.0, 0.0])
    loss = climbq.HomoVarLoss([1.0, 3.0])
    logits, targets = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    expected = torch.nn.functional.cross_entropy(logits, targets, weight=torch.tensor([0.5, 1.5]))
    torch.testing.assert_close(loss(logits, targets), expected)
    with pytest.raises(ValueError, match="K = 2"):
        loss(torch.randn(5, 3), targets)


def test_homovar_class_weights_from_features():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(640, 8, generator=g)
    labels = torch.repeat_interleave(torch.arange(3), torch.tensor([500, 120, 20]))
    w = climbq.homovar_class_weights(features, labels, 3, beta=0.999)
    groups = climbq.class_groups(features, labels, 3)
    bounds = climbq.class_size_bounds(*groups)
    expected = climbq.homovar_weights(bounds.counts, bounds.lower, bounds.upper, beta=0.999, normalize=True)
    torch.testing.assert_close(w, expected)
    assert w[0] < w[1] < w[2]


def test_class_wise_cdf_quantizer_fits_every_class_alike():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(2000, 1, generator=g) * 0.1, torch.randn(20, 1, generator=g) * 2 + 1])
    y = torch.cat([torch.zeros(2000, dtype=torch.long), torch.ones(20, dtype=torch.long)])
    q = climbq.ClassWiseCDFQuantize(bits=2, num_classes=2, momentum=1.0).train()
    with climbq.class_labels(q, y):
        q(x)
    scaled = climbq.scale_class_variances(x, y, 2)
    assert float(q.scale) == pytest.approx(float(scaled.std()), rel=1e-5)
    pooled = cdf_quant.CDFQuantize(bits=2, momentum=1.0).train()
    pooled(x)
    assert float(q.scale) > 3 * float(pooled.scale)  # the rare, wide class widens the grid
    q.eval()
    out = q(x)  # no labels needed once frozen
    assert torch.unique(out).numel() <= 4
    with pytest.raises(RuntimeError, match="not seen any data"):
        climbq.ClassWiseCDFQuantize(bits=2, num_classes=2).eval()(x)
