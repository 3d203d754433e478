r"""ClimbQ: quantization that keeps the minority classes alive (Chen, Yang and Chen, NeurIPS 2022) (C39).

A model trained on imbalanced classes and then quantized loses its rare classes first: the quantization grid is
fitted to *all* values, which are mostly the majority class's, so the rare classes' values fall between coarse
levels or into the clipped tails. ClimbQ attacks the cause, the heterogeneity of the class distributions:

1. **Class-wise variance scaling** (:func:`scale_class_variances`): move every class's spread towards a common one,
   so that one grid serves all classes alike.
2. **Projection to the uniform space** (Theorem 3.1, :func:`seqlib.cdf_quant.cdf_quantize`): quantize
   :math:`F(x)`, which is uniform, instead of :math:`x`.
3. **Class sizes that pass Levene's test** (Theorem 3.2, :func:`class_size_bounds`): Levene's statistic
   :math:`W = S_B / S_W` (:func:`seqlib.stats.levene`) accepts equal variances at level :math:`\alpha` when
   :math:`W < F_\alpha(K-1, N-K)`. Holding every other class fixed, that is a quadratic inequality in the size
   :math:`n_k` of class :math:`k` (with :math:`\bar z` the mean of all :math:`z`, :math:`S_k = \sum_i z_{ki}`):

   .. math::
       \bar z^2 n_k^2 - (2 \bar z S_k + C_k)\, n_k + S_k^2 < 0, \qquad
       C_k = (K - 1)\, F_\alpha(K-1, N-K)\, S_W - \sum_{j \ne k} n_j (\bar z_{j\cdot} - \bar z)^2

   whose roots are the bounds :math:`n_k^L < n_k < n_k^U`.
4. **The HomoVar loss** (:func:`homovar_weights`, :class:`HomoVarLoss`): a class-weighted cross-entropy whose
   weight grows when the class is smaller than its bounds allow and shrinks when it is larger. With
   :math:`d_k = \max(1, \operatorname{dist}(n_k, [n_k^L, n_k^U]))` (1 inside the bounds) and
   :math:`\beta_k = \beta^{1/d_k}`, :math:`\beta \in (0, 1)`:

   .. math::
       \omega_k = \frac{1 - \beta_k}{1 - \beta_k^{n_k}} = \frac{1}{\sum_{i=0}^{n_k - 1} \beta_k^{\,i}}

   The supplement's limits follow: :math:`d_k \to 1` gives :math:`1 / \sum_{i<n_k} \beta^i`, :math:`d_k \to \infty`
   gives :math:`1/n_k`; a class of one example gets :math:`\omega_k = 1`; a huge class gets :math:`1 - \beta` (inside
   its bounds) or :math:`0` (far outside them); always :math:`\max(1 - \beta, 0) \le \omega_k \le 1`.

:func:`cdf_quantize` and :func:`levene` live in :mod:`seqlib.cdf_quant` and :mod:`seqlib.stats` and are importable
from here too.

Notes on the reading of the supplement. It prints the weight as :math:`(1-\beta)/(1-\beta^{1/|n_k - n_k^e|})` but
derives its limits from :math:`(1 - x)/(1 - x^{n_k})` with :math:`x = \beta^{1/|n_k - n_k^e|}`; the formula above is
the one whose limits it derives, and it matches the authors' published code, where the distance is measured to the
violated bound and is 1 inside the bounds. When no size can pass (:math:`C_k < 0`: the other classes alone already
reject equal variances) the bounds are NaN and the weight falls back to the inside value (:math:`d_k = 1`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_floating, check_positive_int, check_rank, check_size, check_tensor, shape_str
from .cdf_quant import cdf_quantize
from .stats import f_isf, levene

__all__ = ["cdf_quantize", "levene", "scale_class_variances", "class_size_bounds", "ClassSizeBounds",
           "homovar_weights", "HomoVarLoss", "class_groups", "homovar_class_weights", "ClassWiseCDFQuantize",
           "class_labels"]


def _check_labels(x: Tensor, labels: Tensor, num_classes: int) -> None:
    check_tensor("labels", labels, "(N,)")
    check_rank("labels", labels, (1,), "(N,)")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor of class indices, but got dtype {labels.dtype}")
    check_size("x", x, 0, labels.shape[0], "N", "(N, *)")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], but got values from {int(labels.min())} to "
                         f"{int(labels.max())}")


def class_groups(x: Tensor, labels: Tensor, num_classes: int) -> list[Tensor]:
    """The rows of ``x`` :math:`(N, *)` of each class, ``[x[labels == k] for k in range(K)]``; an empty class raises."""
    check_tensor("x", x, "(N, *)")
    check_positive_int("num_classes", num_classes)
    _check_labels(x, labels, num_classes)
    groups = [x[labels == k] for k in range(num_classes)]
    for k, g in enumerate(groups):
        if len(g) == 0:
            raise ValueError(f"class {k} has no examples in labels; every class needs at least one")
    return groups


def scale_class_variances(x: Tensor, labels: Tensor, num_classes: int, strength: float = 1.0,
                          target: float | None = None) -> Tensor:
    r"""Rescale each class about its mean so that the class standard deviations move towards a common one.

    .. math::
        x'_{ki} = \mu_k + (x_{ki} - \mu_k) \Big(\frac{\sigma_\star}{\sigma_k}\Big)^{\lambda}

    :math:`\mu_k, \sigma_k` are the mean and standard deviation of all values of class :math:`k`; :math:`\sigma_\star`
    defaults to :math:`\sqrt{\frac1K \sum_k \sigma_k^2}` (every class counted once, however large). ``strength``
    :math:`\lambda \in [0, 1]`: 0 changes nothing, 1 makes all class variances equal. Classes with fewer than two
    values (or no spread) are left as they are; the statistics are not differentiated (a fixed affine map per class).

    Inputs/Outputs:
        - x: :math:`(N, *)` floating; labels: :math:`(N,)` integers in ``[0, K)``; output: :math:`(N, *)`.
    """
    check_tensor("x", x, "(N, *)")
    check_floating("x", x)
    check_positive_int("num_classes", num_classes)
    _check_labels(x, labels, num_classes)
    if not isinstance(strength, int | float) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], but got {strength!r}")
    flat = x.detach().reshape(x.shape[0], -1)  # (N, D)
    means, stds = [], []
    for k in range(num_classes):
        rows = flat[labels == k]
        means.append(rows.mean() if rows.numel() else torch.zeros((), dtype=x.dtype))
        stds.append(rows.std() if rows.numel() > 1 else torch.zeros((), dtype=x.dtype))
    mu, sigma = torch.stack(means), torch.stack(stds)  # (K,), (K,)
    present = sigma > 0
    if target is None:
        if not bool(present.any()):
            return x
        sigma_star = sigma[present].pow(2).mean().sqrt()
    else:
        if not target > 0:
            raise ValueError(f"target must be a positive standard deviation, but got {target}")
        sigma_star = torch.tensor(float(target), dtype=x.dtype)
    factor = torch.where(present, (sigma_star / sigma.clamp(min=1e-12)) ** strength, torch.ones_like(sigma))
    shape = (-1,) + (1,) * (x.dim() - 1)
    m, f = mu[labels].reshape(shape), factor[labels].reshape(shape)  # (N, 1, ..)
    return m + (x - m) * f


class ClassSizeBounds(NamedTuple):
    """Theorem 3.2's bounds ``lower``, ``upper`` (``(K,)`` float64, NaN where no size passes), the class sizes
    ``counts``, the critical value ``critical`` :math:`F_\\alpha(K-1, N-K)` and Levene's ``statistic`` :math:`W`."""

    lower: Tensor
    upper: Tensor
    counts: Tensor
    critical: float
    statistic: float

    def inside(self) -> Tensor:
        """``(K,)`` bool: does each class's size lie strictly between its bounds?"""
        return (self.counts > self.lower) & (self.counts < self.upper)


def _deviations(groups: Sequence[object], center: str) -> list[Tensor]:
    """Levene's :math:`z_{ki}`: absolute deviation from the class centre, summed over features for ``(n_k, D)``."""
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median', but got {center!r}")
    if len(groups) < 2:
        raise ValueError(f"the bounds need at least 2 classes, but got {len(groups)}")
    out = []
    for k, g in enumerate(groups):
        t = g.detach().double() if isinstance(g, Tensor) else torch.as_tensor(g, dtype=torch.float64)
        if t.dim() not in (1, 2):
            raise ValueError(f"class {k} must have shape (n_k,) or (n_k, D), but got shape {shape_str(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"class {k} is empty: every class needs at least one example")
        t = t.reshape(t.shape[0], -1)  # (n_k, D)
        c = t.mean(0) if center == "mean" else t.quantile(0.5, dim=0)
        out.append((t - c).abs().sum(1))  # (n_k,)
    return out


def class_size_bounds(*groups: object, alpha: float = 0.05, center: str = "mean") -> ClassSizeBounds:
    r"""The class-size bounds :math:`n_k^L < n_k < n_k^U` of Theorem 3.2 (see the module docstring).

    Args:
        groups: the values of each class, ``(n_k,)`` or ``(n_k, D)`` (features: :math:`z_{ki}` is then the absolute
            deviation summed over the :math:`D` features).
        alpha: the significance level :math:`\alpha \in (0, 1)` of Levene's test.
        center: ``"mean"`` (Levene) or ``"median"``.

    At the actual class sizes, ``bounds.inside()[k]`` is true exactly when Levene's test accepts equal variances
    (:math:`W < F_\alpha`), for every :math:`k`: the bounds say how far each class may shrink or grow.
    """
    if not isinstance(alpha, int | float) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), but got {alpha!r}")
    z = _deviations(groups, center)
    k = len(z)
    n = torch.tensor([float(g.numel()) for g in z], dtype=torch.float64)  # (K,)
    total = float(n.sum())
    if total <= k:
        raise ValueError(f"the bounds need more examples than classes (N - K > 0), but got N = {int(total)}, K = {k}")
    sums = torch.stack([g.sum() for g in z])  # (K,) S_k
    z_means = sums / n  # (K,)
    z_grand = float(torch.cat(z).mean())
    s_w = float(sum(((g - m) ** 2).sum() for g, m in zip(z, z_means, strict=True))) / (total - k)
    between = n * (z_means - z_grand) ** 2  # (K,) n_k (z_k - z)^2
    critical = f_isf(alpha, k - 1, total - k)
    statistic = float(between.sum()) / (k - 1) / s_w if s_w > 0 else math.inf
    c = (k - 1) * critical * s_w - (between.sum() - between)  # (K,) C_k
    b = 2 * z_grand * sums + c
    disc = b**2 - 4 * z_grand**2 * sums**2
    ok = (c >= 0) & (disc >= 0)
    root = torch.sqrt(disc.clamp(min=0))
    lower = torch.where(ok, (b - root) / (2 * z_grand**2), torch.full_like(b, math.nan))
    upper = torch.where(ok, (b + root) / (2 * z_grand**2), torch.full_like(b, math.nan))
    return ClassSizeBounds(lower, upper, n, critical, statistic)


def homovar_weights(counts: Sequence[float] | Tensor, lower: Sequence[float] | Tensor | None = None,
                    upper: Sequence[float] | Tensor | None = None, beta: float = 0.999,
                    normalize: bool = False) -> Tensor:
    r"""The HomoVar class weights :math:`\omega_k = (1 - \beta_k) / (1 - \beta_k^{n_k})`, :math:`\beta_k =
    \beta^{1/d_k}` (see the module docstring).

    Args:
        counts: :math:`n_k \ge 1`, the class sizes.
        lower, upper: Theorem 3.2's bounds (``None``, or NaN entries: treated as inside, :math:`d_k = 1`).
        beta: :math:`\beta \in (0, 1)`; the supplement finds 0.999 best.
        normalize: rescale so that the weights sum to :math:`K` (the scale a weighted cross-entropy expects).

    Returns:
        ``(K,)`` float64 weights.
    """
    n = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)  # (K,)
    if n.numel() == 0:
        raise ValueError("counts must hold one size per class, but got none")
    if not bool(torch.all(n >= 1)):
        raise ValueError(f"every class size must be at least 1 (an empty class has no weight), but got {n.tolist()}")
    if not isinstance(beta, int | float) or not 0.0 < beta < 1.0:
        raise ValueError(f"beta must be in (0, 1), but got {beta!r}")
    nan = torch.full_like(n, math.nan)
    lo = nan if lower is None else torch.as_tensor(lower, dtype=torch.float64).reshape(-1)  # (K,)
    hi = nan if upper is None else torch.as_tensor(upper, dtype=torch.float64).reshape(-1)  # (K,)
    if lo.shape != n.shape or hi.shape != n.shape:
        raise ValueError(f"lower and upper must have shape (K,) with K = {n.numel()}, but got {shape_str(lo.shape)} "
                         f"and {shape_str(hi.shape)}")
    below = torch.nan_to_num(lo - n, nan=0.0).clamp(min=0)  # how far under the lower bound
    above = torch.nan_to_num(n - hi, nan=0.0).clamp(min=0)  # how far over the upper bound
    d = torch.clamp(torch.maximum(below, above), min=1.0)  # (K,) 1 inside the bounds
    log_beta_k = math.log(beta) / d  # log(beta_k) = log(beta) / d_k, kept in logs for accuracy
    weights = torch.expm1(log_beta_k) / torch.expm1(n * log_beta_k)  # (1 - beta_k) / (1 - beta_k ** n_k)
    if normalize:
        weights = weights * n.numel() / weights.sum()
    return weights


def homovar_class_weights(features: Tensor, labels: Tensor, num_classes: int, alpha: float = 0.05,
                          beta: float = 0.999, normalize: bool = True) -> Tensor:
    """HomoVar weights from features ``(N, *)`` grouped by ``labels``: Theorem 3.2's bounds, then
    :func:`homovar_weights` at the classes' sizes."""
    groups = class_groups(features.reshape(features.shape[0], -1), labels, num_classes)  # K x (n_k, D)
    bounds = class_size_bounds(*groups, alpha=alpha)
    return homovar_weights(bounds.counts, bounds.lower, bounds.upper, beta=beta, normalize=normalize)


class HomoVarLoss(nn.Module):
    r"""Cross-entropy with HomoVar class weights :math:`\omega_k` (:func:`homovar_weights`), normalised to sum to
    :math:`K`: ``F.cross_entropy(logits, targets, weight=omega)``.

    Args:
        weights: ``(K,)`` the class weights (e.g. from :func:`homovar_class_weights`).

    Inputs: logits :math:`(N, K)`, targets :math:`(N,)`; output: a scalar.
    """

    def __init__(self, weights: Tensor | Sequence[float]):
        super().__init__()
        w = torch.as_tensor(weights, dtype=torch.float32).reshape(-1)  # (K,)
        if w.numel() == 0 or not bool(torch.all(torch.isfinite(w) & (w >= 0))) or not float(w.sum()) > 0:
            raise ValueError(f"weights must be finite, non-negative and not all zero, but got {w.tolist()}")
        self.register_buffer("weight", w * w.numel() / w.sum())

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        check_size("logits", logits, -1, self.weight.numel(), "K", "(N, K)")
        return F.cross_entropy(logits, targets, weight=self.weight.to(logits.dtype))


# ---------------------------------------------------------------------------------------------------------------------
# a quantizer whose grid every class shapes alike
# ---------------------------------------------------------------------------------------------------------------------
class ClassWiseCDFQuantize(nn.Module):
    r"""The activation quantizer of the ``"climbq"`` scheme: :func:`~seqlib.cdf_quant.cdf_quantize` with a normal
    :math:`(\mu, \sigma)` fitted after class-wise variance scaling.

    While it observes (training mode, or inside :func:`seqlib.qat.calibrate`) and the batch's labels are known
    (``with class_labels(model, y):``), the batch is first passed through :func:`scale_class_variances`, so that a
    class of 20 windows spreads the fitted distribution as much as a class of 2000; :math:`\mu, \sigma` are the mean
    and standard deviation of the scaled values (an exponential moving average over batches, ``momentum``). The
    values quantized are the unscaled ones, so at test time no labels are needed: only the frozen grid.

    Args:
        bits: bit-width 2-16.
        num_classes: :math:`K`.
        strength: :math:`\lambda` of :func:`scale_class_variances` (1: equal class variances).
        momentum: weight of each new batch in the running :math:`\mu, \sigma`.
    """

    def __init__(self, bits: int = 8, num_classes: int = 2, strength: float = 1.0, momentum: float = 0.1):
        super().__init__()
        from .quant import check_bits

        self.bits = check_bits(bits)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.strength, self.momentum = float(strength), float(momentum)
        self.register_buffer("loc", torch.tensor(0.0))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("batches", torch.tensor(0))
        self.labels: Tensor | None = None
        self.observe: bool | None = None
        self.enabled = True

    def forward(self, x: Tensor) -> Tensor:
        from .cdf_quant import cdf_quantize

        if self.training if self.observe is None else self.observe:
            values = x.detach()
            if self.labels is not None and len(self.labels) == x.shape[0]:
                values = scale_class_variances(values, self.labels, self.num_classes, self.strength)
            loc, scale = values.mean(), values.std().clamp(min=1e-12)
            m = 1.0 if int(self.batches) == 0 else self.momentum
            self.loc = (1 - m) * self.loc + m * loc.to(self.loc)
            self.scale = (1 - m) * self.scale + m * scale.to(self.scale)
            self.batches += 1
        if not self.enabled:
            return x
        if int(self.batches) == 0:
            raise RuntimeError("ClassWiseCDFQuantize has not seen any data yet: calibrate the model or train it first")
        return cdf_quantize(x, self.bits, "normal", self.loc, self.scale)

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, num_classes={self.num_classes}, strength={self.strength}, "
                f"loc={float(self.loc):.4g}, scale={float(self.scale):.4g}")


class class_labels:  # noqa: N801 - used like a function
    """``with class_labels(model, y):`` lets every :class:`ClassWiseCDFQuantize` in ``model`` see the labels ``y``
    ``(N,)`` of the batch about to run (``y = None`` is allowed and does nothing)."""

    def __init__(self, model: nn.Module, labels: Tensor | None):
        self.quantizers = [m for m in model.modules() if isinstance(m, ClassWiseCDFQuantize)]
        self.labels = labels

    def __enter__(self) -> class_labels:
        for q in self.quantizers:
            q.labels = self.labels
        return self

    def __exit__(self, *exc: object) -> None:
        for q in self.quantizers:
            q.labels = None
