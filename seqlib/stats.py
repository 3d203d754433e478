r"""Levene's test for equal variances, and the F distribution it needs, written from scratch (C39).

**Levene's test.** Given :math:`K` groups (classes) :math:`x_{k1}, \dots, x_{kn_k}`, replace each value by its
absolute deviation from its group's centre, :math:`z_{ki} = |x_{ki} - \bar x_{k\cdot}|` (``center="mean"``; the
median for the Brown-Forsythe variant ``center="median"``), and run a one-way analysis of variance on the
:math:`z`:

.. math::
    W = \frac{N - K}{K - 1} \cdot
        \frac{\sum_{k=1}^{K} n_k (\bar z_{k\cdot} - \bar z_{\cdot\cdot})^2}
             {\sum_{k=1}^{K} \sum_{i=1}^{n_k} (z_{ki} - \bar z_{k\cdot})^2}
      = \frac{S_B}{S_W}

with :math:`N = \sum_k n_k`, :math:`\bar z_{k\cdot}` the group means and :math:`\bar z_{\cdot\cdot}` the mean of all
:math:`z`. Under the hypothesis that all groups have the same variance, :math:`W` follows (approximately) an
:math:`F(K - 1, N - K)` distribution, so the p-value is its survival function :math:`P(F \ge W)`.

**The F distribution.** Its survival function is a regularized incomplete beta function,

.. math::
    P(F \ge w) = I_{y}\Big(\frac{d_2}{2}, \frac{d_1}{2}\Big), \qquad y = \frac{d_2}{d_2 + d_1 w}, \qquad
    I_y(a, b) = \frac{1}{B(a, b)} \int_0^y t^{a-1} (1 - t)^{b-1}\, dt

which :func:`betainc` evaluates with the continued fraction of the incomplete beta function (modified Lentz
algorithm), using the symmetry :math:`I_y(a, b) = 1 - I_{1-y}(b, a)` where that converges faster.
:func:`f_isf` inverts it (the critical value :math:`F_\alpha(d_1, d_2)` of Theorem 3.2 in :mod:`seqlib.climbq`) by
bisection. Everything is plain float64 Python: these are a handful of scalars, not tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

__all__ = ["betainc", "f_sf", "f_isf", "levene", "LeveneResult", "levene_deviations"]

_EPS = 1e-16
_FPMIN = 1e-300


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of :math:`I_x(a, b)` (without its front factor), by the modified Lentz method."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _FPMIN else _FPMIN)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for numerator in (even, odd):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _FPMIN else _FPMIN)
            c = 1.0 + numerator / c
            c = c if abs(c) > _FPMIN else _FPMIN
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise RuntimeError(f"the incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float, complement: float | None = None) -> float:
    r"""The regularized incomplete beta function :math:`I_x(a, b)` for :math:`a, b > 0`, :math:`0 \le x \le 1`.

    ``complement``: :math:`1 - x` computed by the caller without cancellation (used by :func:`f_sf`).
    """
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a > 0 and b > 0, but got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, but got x={x}")
    y = 1.0 - x if complement is None else complement
    if x == 0.0:
        return 0.0
    if y == 0.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log(y) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, y) / b


def f_sf(w: float, dfn: float, dfd: float) -> float:
    r"""Survival function :math:`P(F \ge w)` of the F distribution with :math:`(d_1, d_2)` = ``(dfn, dfd)``."""
    if not (dfn > 0 and dfd > 0):
        raise ValueError(f"the F distribution needs dfn > 0 and dfd > 0, but got dfn={dfn}, dfd={dfd}")
    if math.isnan(w):
        return math.nan
    if w <= 0:
        return 1.0
    if math.isinf(w):
        return 0.0
    denominator = dfd + dfn * w
    return betainc(dfd / 2, dfn / 2, dfd / denominator, complement=dfn * w / denominator)


def f_isf(alpha: float, dfn: float, dfd: float) -> float:
    r"""The critical value :math:`F_\alpha(d_1, d_2)`: the :math:`w` with :math:`P(F \ge w) = \alpha`."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), but got {alpha}")
    lo, hi = 0.0, 1.0
    while f_sf(hi, dfn, dfd) > alpha:  # f_sf decreases: bracket the root
        lo, hi = hi, 2.0 * hi
    for _ in range(200):  # bisection to float64 resolution
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if f_sf(mid, dfn, dfd) > alpha else (lo, mid)
    return 0.5 * (lo + hi)


class LeveneResult(NamedTuple):
    """``statistic`` :math:`W` and its ``pvalue`` :math:`P(F(K-1, N-K) \\ge W)`."""

    statistic: float
    pvalue: float


def _groups(groups: Sequence[object]) -> list[torch.Tensor]:
    if len(groups) < 2:
        raise ValueError(f"Levene's test needs at least 2 groups, but got {len(groups)}")
    out = []
    for k, g in enumerate(groups):
        t = torch.as_tensor(g, dtype=torch.float64) if not isinstance(g, torch.Tensor) else g.detach().double()
        if t.dim() != 1:
            raise ValueError(f"group {k} must be a 1-D sequence of values (n_k,), but got shape {tuple(t.shape)}")
        if t.numel() == 0:
            raise ValueError(f"group {k} is empty: every group (class) needs at least one value")
        out.append(t)
    return out


def levene_deviations(*groups: object, center: str = "mean") -> list[torch.Tensor]:
    r"""The transformed values :math:`z_{ki} = |x_{ki} - c_k|` of each group (:math:`c_k` its mean or median)."""
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median', but got {center!r}")
    tensors = _groups(groups)
    return [(g - (g.mean() if center == "mean" else g.quantile(0.5))).abs() for g in tensors]


def levene(*groups: object, center: str = "mean") -> LeveneResult:
    r"""Levene's test that all ``groups`` have the same variance (see the module docstring); equals
    ``scipy.stats.levene(*groups, center=center)`` for ``center="mean"`` and ``"median"``.

    Args:
        groups: two or more 1-D sequences of numbers (tensors, arrays or lists) :math:`(n_k,)`.
        center: ``"mean"`` (Levene) or ``"median"`` (Brown-Forsythe).

    Returns:
        :class:`LeveneResult` ``(statistic, pvalue)``. If every group is constant within itself the statistic is
        ``nan`` (0/0) or ``inf``, as in scipy.
    """
    z = levene_deviations(*groups, center=center)
    k = len(z)
    n = torch.tensor([float(g.numel()) for g in z], dtype=torch.float64)
    total = float(n.sum())
    if total <= k:
        raise ValueError(f"Levene's test needs more values than groups (N - K > 0), but got N = {int(total)} values "
                         f"in K = {k} groups")
    z_means = torch.stack([g.mean() for g in z])  # (K,)
    z_grand = torch.cat(z).mean()
    between = float((n * (z_means - z_grand) ** 2).sum()) / (k - 1)  # S_B
    within = float(sum(((g - m) ** 2).sum() for g, m in zip(z, z_means, strict=True))) / (total - k)  # S_W
    if within == 0.0:
        statistic = math.nan if between == 0.0 else math.inf
    else:
        statistic = between / within
    return LeveneResult(statistic, f_sf(statistic, k - 1, total - k))
