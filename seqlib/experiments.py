r"""Seeded experiments on gradient flow for the lectures on BPTT (C07-C09, C12): plain data in, plain data out.

Each function builds small recurrent networks, measures or trains them, and returns a dict of tensors, lists and
numbers that :mod:`seqlib.viz` draws (``viz.plot_gradient_norms(result["norms"])``) or a widget animates. Every
one is seeded, deterministic on a given machine, and runs in well under a minute on two CPU cores.

=============================  ===================================================================================
:func:`vanishing_exploding`    (a) tanh RNN, small vs large :math:`W_{hh}`: gradients vanish or explode with time
:func:`identity_relu`          (b) ReLU + identity :math:`W_{hh}` + zero biases keeps the gradient alive
:func:`lstm_vs_rnn`            (c) the LSTM's cell state carries gradient over 100+ steps, the RNN's state does not
:func:`clipping_training`      (d) the adding problem (T = 100) trained with and without gradient clipping
:func:`clipping_landscape`     the cliff of Pascanu et al. (2013) on a one-unit RNN, with and without clipping
=============================  ===================================================================================

The gradient measurements use :func:`seqlib.gradflow.gradient_norms` on inputs of the adding problem
(:func:`seqlib.data.adding_problem`) with a loss on the *last* output only, :math:`L = \sum_j h_{T-1,j}`, so
:math:`\lVert \partial L/\partial h_t \rVert` shows how much of the error signal at the end reaches step ``t``.
They run in float64 so that a gradient of :math:`10^{-40}` is still a number and not zero, and on one CPU thread
(the setting is restored afterwards): at these sizes a second thread does not help.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from . import gradflow
from ._checks import check_positive_int
from .clip import clip_grad_norm_
from .data import adding_problem
from .rnn import GRU, LSTM, RNN, RNNCell
from .threads import torch_threads

__all__ = ["vanishing_exploding", "identity_relu", "lstm_vs_rnn", "clipping_training", "clipping_landscape",
           "last_output_loss", "adding_inputs"]

F64 = torch.float64


def last_output_loss(out: Tensor) -> Tensor:
    r""":math:`L = \sum_{n,j} h_{T-1,n,j}`: a loss that sees only the last step of ``out`` ``(T, N, H)``."""
    return out[-1].sum()


def adding_inputs(batch_size: int, seq_len: int, seed: int = 0, dtype: torch.dtype = F64) -> Tensor:
    """Inputs of the adding problem as one batch ``(T, N, 2)`` (values in [0, 1] and two markers)."""
    data = adding_problem(batch_size, seq_len, seed=seed)
    x = torch.stack([data[i][0] for i in range(batch_size)], dim=1)  # (T, N, 2)
    return x.to(dtype)


def _sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        check_positive_int(name, value)


@torch_threads(1)  # small networks: a second thread buys nothing and may wait for a busy core
def vanishing_exploding(
    scales: tuple[float, ...] = (0.5, 1.0, 2.0),
    seq_len: int = 100,
    hidden_size: int = 64,
    batch_size: int = 16,
    seed: int = 0,
) -> dict:
    r"""(a) Vanishing vs exploding gradients in a tanh RNN, set by the scale of :math:`W_{hh}` (C08).

    For each ``scale``, :math:`W_{hh}` has entries :math:`\mathcal N(0, \text{scale}^2/H)`, so its spectral radius is
    close to ``scale``. The gradient reaching step ``t`` is a product of ``T-1-t`` factors
    :math:`\operatorname{diag}(1 - h_k^2) W_{hh}`: below 1 it shrinks geometrically (vanishes), above 1 it grows
    (explodes). The other weights are torch.nn's default initialisation; all networks share the inputs.

    Returns:
        ``{"norms": {label: (T,)}``, :math:`\lVert \partial L/\partial h_t \rVert`; ``"jacobian_norms": {label: (T,)}``,
        :math:`\lVert \partial h_T/\partial h_t \rVert_2` for the first sequence; ``"spectral_radius": {label: float}``;
        ``"scales": list}``. Labels are ``"scale 0.5"`` etc.
    """
    _sizes(seq_len=seq_len, hidden_size=hidden_size, batch_size=batch_size)
    x = adding_inputs(batch_size, seq_len, seed)
    result: dict = {"norms": {}, "jacobian_norms": {}, "spectral_radius": {}, "scales": list(scales)}
    for scale in scales:
        torch.manual_seed(seed)
        model = RNN(2, hidden_size, dtype=F64)
        with torch.no_grad():
            model.weight_hh_l0.normal_(0.0, scale / math.sqrt(hidden_size))
        label = f"scale {scale:g}"
        result["norms"][label] = gradflow.gradient_norms(model, x, last_output_loss)
        cell = RNNCell(2, hidden_size, dtype=F64)
        cell.load_state_dict({name[:-3]: p for name, p in model.state_dict().items()})  # weight_ih_l0 -> weight_ih
        result["jacobian_norms"][label] = gradflow.jacobian_norms(cell, x[:, 0])
        result["spectral_radius"][label] = gradflow.spectral_radius(model.weight_hh_l0)
    return result


@torch_threads(1)  # small networks: a second thread buys nothing and may wait for a busy core
def identity_relu(seq_len: int = 100, hidden_size: int = 64, batch_size: int = 16, seed: int = 0) -> dict:
    r"""(b) ReLU with :math:`W_{hh} = I` and zero biases (Le et al., 2015) keeps the gradient alive (C09).

    With :math:`h_t = \text{ReLU}(W_{ih} x_t + h_{t-1})` the step Jacobian is :math:`\operatorname{diag}([h_t > 0])`: a
    unit that stays active passes its gradient back unchanged, so the norm can only drop by the units that switch
    off. For comparison, the same sizes with torch.nn's default initialisation, ReLU and tanh.

    Returns:
        ``{"norms": {"ReLU, W_hh = I, zero biases": (T,), "ReLU, default init": (T,), "tanh, default init": (T,)}}``.
    """
    _sizes(seq_len=seq_len, hidden_size=hidden_size, batch_size=batch_size)
    x = adding_inputs(batch_size, seq_len, seed)
    norms = {}
    for label, nonlinearity, identity in (("ReLU, W_hh = I, zero biases", "relu", True),
                                          ("ReLU, default init", "relu", False),
                                          ("tanh, default init", "tanh", False)):
        torch.manual_seed(seed)
        model = RNN(2, hidden_size, nonlinearity=nonlinearity, dtype=F64)
        if identity:
            with torch.no_grad():
                model.weight_hh_l0.copy_(torch.eye(hidden_size, dtype=F64))
                model.bias_ih_l0.zero_()
                model.bias_hh_l0.zero_()
        norms[label] = gradflow.gradient_norms(model, x, last_output_loss)
    return {"norms": norms}


@torch_threads(1)  # small networks: a second thread buys nothing and may wait for a busy core
def lstm_vs_rnn(
    seq_len: int = 150,
    hidden_size: int = 64,
    batch_size: int = 16,
    forget_bias: float = 1.0,
    seed: int = 0,
) -> dict:
    r"""(c) Gradient norms of an LSTM, a GRU and a tanh RNN over 100+ steps (C12).

    Through the cell state the gradient is multiplied only by the forget gate,
    :math:`\partial c_t/\partial c_{t-1} = \operatorname{diag}(f_t)`, with no weight matrix and no squashing
    derivative in between. How open that highway is at the start depends on :math:`f_t`: with torch.nn's default
    initialisation :math:`f_t \approx \sigma(0) = 0.5` and the gradient still decays like :math:`0.5^t`; the usual
    remedy sets the forget gate's bias to 1 (Gers et al., 2000; Jozefowicz et al., 2015), so :math:`f \approx 0.73`
    and the gradient travels much further. Both LSTMs are shown.

    Args:
        forget_bias: the forget-gate bias (``b_if``; ``b_hf`` is set to 0) of the second LSTM.

    Returns:
        ``{"norms": {label: (T,)}, "cell_norms": {label: (T,)}}`` with labels ``"RNN (tanh)"``, ``"GRU"``,
        ``"LSTM"`` and ``"LSTM, forget bias 1"``; ``cell_norms`` (LSTMs only) holds
        :math:`\lVert \partial L/\partial c_t \rVert`.
    """
    _sizes(seq_len=seq_len, hidden_size=hidden_size, batch_size=batch_size)
    x = adding_inputs(batch_size, seq_len, seed)
    H = hidden_size
    norms, cell_norms = {}, {}
    for label in ("RNN (tanh)", "GRU", "LSTM", f"LSTM, forget bias {forget_bias:g}"):
        torch.manual_seed(seed)
        kind = RNN if label.startswith("RNN") else GRU if label == "GRU" else LSTM
        model = kind(2, H, dtype=F64)
        if label.startswith("LSTM, forget"):
            with torch.no_grad():
                model.bias_ih_l0[H: 2 * H].fill_(forget_bias)
                model.bias_hh_l0[H: 2 * H].zero_()
        norms[label] = gradflow.gradient_norms(model, x, last_output_loss)
        if kind is LSTM:
            cell_norms[label] = gradflow.cell_state_norms(model, x, last_output_loss)
    return {"norms": norms, "cell_norms": cell_norms}


class _Regressor(nn.Module):
    """A one-layer tanh RNN read out at the last step: ``(T, N, 2) -> (N,)``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.rnn = RNN(2, hidden_size)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (T, N, H)
        return self.head(out[-1]).squeeze(-1)  # (N,)


@torch_threads(1)  # small networks: a second thread buys nothing and may wait for a busy core
def clipping_training(
    seq_len: int = 100,
    hidden_size: int = 32,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 0.1,
    max_norm: float = 1.0,
    w_hh_scale: float = 1.2,
    seed: int = 0,
) -> dict:
    r"""(d) The adding problem trained by SGD with and without gradient clipping (C09).

    A tanh RNN (``hidden_size`` units, :math:`W_{hh}` with entries :math:`\mathcal N(0, \text{w\_hh\_scale}^2/H)`, just
    in the exploding regime) reads a sequence of :func:`seqlib.data.adding_problem` and a linear layer predicts the
    sum from the last state; the loss is the mean squared error. Two copies of the same network see the same
    batches: one takes plain SGD steps, the other clips the gradient norm to ``max_norm`` first
    (:func:`seqlib.clip_grad_norm_`). Without clipping one large gradient throws the weights where the loss and the
    gradients blow up, and training ends in ``inf``/``nan``; with clipping the same steps stay small and the loss
    settles. Predicting the mean, 1, scores :math:`\mathrm{Var}(y) = 1/6`; solving the task needs far more training
    than this demonstration takes.

    Returns:
        ``{"losses": {label: list[float]}, "grad_norms": {label: list[float]}, "baseline": 1/6}`` with labels
        ``"no clipping"`` and ``"clip_grad_norm_(max_norm=1)"``; ``grad_norms`` are the norms *before* clipping.
        A run whose loss is no longer finite stops, and the rest of its list is ``nan``.
    """
    _sizes(seq_len=seq_len, hidden_size=hidden_size, steps=steps, batch_size=batch_size)
    data = adding_problem(steps * batch_size, seq_len, seed=seed)
    xs = torch.stack([data[i][0] for i in range(len(data))])  # (steps*B, T, 2)
    ys = torch.stack([data[i][1] for i in range(len(data))])  # (steps*B,)
    torch.manual_seed(seed)
    start = _Regressor(hidden_size)
    with torch.no_grad():
        start.rnn.weight_hh_l0.normal_(0.0, w_hh_scale / math.sqrt(hidden_size))
    result: dict = {"losses": {}, "grad_norms": {}, "baseline": 1.0 / 6.0}
    for label, clip in (("no clipping", None), (f"clip_grad_norm_(max_norm={max_norm:g})", max_norm)):
        model = copy.deepcopy(start)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        losses: list[float] = []
        grad_norms: list[float] = []
        for step in range(steps):
            batch = slice(step * batch_size, (step + 1) * batch_size)
            x = xs[batch].transpose(0, 1)  # (T, B, 2)
            loss = ((model(x) - ys[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            norm = clip_grad_norm_(model.parameters(), math.inf if clip is None else clip)
            losses.append(loss.item())
            grad_norms.append(norm.item())
            if not (math.isfinite(losses[-1]) and math.isfinite(grad_norms[-1])):
                break
            optimizer.step()
        pad = [math.nan] * (steps - len(losses))
        result["losses"][label] = losses + pad
        result["grad_norms"][label] = grad_norms + pad
    return result


def _one_unit_rnn(w: Tensor, b: Tensor, seq_len: int, target: float) -> Tensor:
    r"""Pascanu et al.'s one-unit network :math:`h_t = w\,\sigma(h_{t-1}) + b`, :math:`h_0 = 0.5`.

    Returns the loss :math:`(h_T - \text{target})^2`, elementwise over broadcast ``w`` and ``b``.
    """
    h = torch.full_like(w, 0.5)
    for _ in range(seq_len):
        h = w * torch.sigmoid(h) + b
    return (h - target) ** 2


@torch_threads(1)  # small networks: a second thread buys nothing and may wait for a busy core
def clipping_landscape(
    seq_len: int = 50,
    start: tuple[float, float] = (5.0, -2.0),
    lr: float = 0.002,
    steps: int = 150,
    max_norm: float = 5.0,
    target: float = 0.7,
    w_range: tuple[float, float] = (1.0, 10.0),
    b_range: tuple[float, float] = (-6.0, 6.0),
    resolution: int = 200,
) -> dict:
    r"""The loss surface of a one-unit RNN with a cliff, and gradient descent on it with and without clipping.

    Pascanu, Mikolov and Bengio (2013, section 3) use :math:`h_t = w\,\sigma(h_{t-1}) + b` with :math:`h_0 = 0.5` and
    the loss :math:`L(w, b) = (h_{50} - 0.7)^2`. Where the map :math:`h \mapsto w\sigma(h) + b` changes from one to
    two stable fixed points, :math:`h_{50}` jumps and the surface has a wall: the gradient there is orders of
    magnitude larger than around it. Plain gradient descent that reaches the wall is thrown far away, onto the
    plateau, and has to start over; with the gradient norm clipped to ``max_norm`` the same step stays short and
    descent carries on down the valley (zigzagging across it: clipping bounds the step, it does not fix the
    learning rate).

    Returns:
        ``{"w": (R,), "b": (R,), "loss": (R, R)`` with ``loss[i, j] = L(w[i], b[j])``;
        ``"trajectories": {label: (steps+1, 2)}`` of ``(w, b)``; ``"losses": {label: list[float]}``;
        ``"grad_norms": {label: list[float]}`` (before clipping)``}``, labels ``"no clipping"`` and
        ``"clipped at 5"``.
    """
    _sizes(seq_len=seq_len, steps=steps, resolution=resolution)
    w = torch.linspace(*w_range, resolution, dtype=F64)
    b = torch.linspace(*b_range, resolution, dtype=F64)
    with torch.no_grad():
        loss = _one_unit_rnn(w[:, None], b[None, :], seq_len, target)  # (R, R)
    result: dict = {"w": w, "b": b, "loss": loss, "trajectories": {}, "losses": {}, "grad_norms": {}}
    for label, clip in (("no clipping", None), (f"clipped at {max_norm:g}", max_norm)):
        p = torch.tensor(start, dtype=F64)  # (w, b)
        points, losses, norms = [p.clone()], [], []
        for _ in range(steps):
            q = p.clone().requires_grad_(True)
            value = _one_unit_rnn(q[0], q[1], seq_len, target)
            value.backward()
            norm = clip_grad_norm_(q, math.inf if clip is None else clip)  # the norm before clipping
            losses.append(value.item())
            norms.append(norm.item())
            p = p - lr * q.grad
            points.append(p.clone())
        result["trajectories"][label] = torch.stack(points)  # (steps+1, 2)
        result["losses"][label] = losses
        result["grad_norms"][label] = norms
    return result
