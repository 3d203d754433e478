r"""How gradients flow back through time: measurements for the lectures on vanishing and exploding gradients.

The gradient that reaches an early step of a recurrent network is a product of many step Jacobians, so it
shrinks (vanishes) or grows (explodes) geometrically with the distance (C08); gates and the LSTM's cell state
change that (C09, C12). This module measures it:

=============================  =================================================================================
:func:`gradient_norms`         :math:`\lVert \partial L/\partial h_t \rVert` for every step, from the manual BPTT
:func:`cell_state_norms`       :math:`\lVert \partial L/\partial c_t \rVert` of an LSTM's cell state
:func:`jacobian_norms`         :math:`\lVert \partial h_T/\partial h_t \rVert`, the product of step Jacobians
:func:`spectral_radius`        :math:`\rho(W) = \max_k |\lambda_k|`, which decides between the two regimes
:func:`recurrent_model`        a one-layer RNN or LSTM whose :math:`W_{hh}` has a chosen spectral radius
=============================  =================================================================================

The per-step gradients come from :mod:`seqlib.bptt` (the backward pass written out by hand); the Jacobians from
autograd. :mod:`seqlib.experiments` runs the lectures' experiments with these functions and :mod:`seqlib.viz`
draws their results.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from . import bptt
from ._checks import check_choice, check_floating, check_positive_int, check_rank, check_tensor, shape_str
from .bptt import Gradients
from .rnn import GRU, LSTM, RNN

__all__ = ["gradient_norms", "cell_state_norms", "jacobian_norms", "spectral_radius", "recurrent_model"]

_MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
Weights = tuple[Tensor, Tensor, Tensor | None, Tensor | None]


def _class_names(obj: object) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _layer_spec(model: object) -> tuple[str, list[Weights], bool]:
    """``(mode, [(w_ih, w_hh, b_ih, b_hh) per layer], batch_first)`` of a recurrent model or cell."""
    mode = getattr(model, "mode", None)
    if mode in _MODES and hasattr(model, "num_layers"):  # seqlib or torch.nn RNN/LSTM/GRU
        if getattr(model, "bidirectional", False):
            raise ValueError("model must be unidirectional (bidirectional=False): the gradient flowing into h_t is "
                             "defined here for one direction of time")
        if getattr(model, "proj_size", 0):
            raise ValueError(f"model must have proj_size=0, but got proj_size={model.proj_size}")  # type: ignore
        layers = []
        for k in range(model.num_layers):  # type: ignore[attr-defined]
            layers.append((getattr(model, f"weight_ih_l{k}"), getattr(model, f"weight_hh_l{k}"),
                           getattr(model, f"bias_ih_l{k}", None), getattr(model, f"bias_hh_l{k}", None)))
        return str(mode), layers, bool(getattr(model, "batch_first", False))
    names = _class_names(model)
    if "LSTMCell" in names:
        mode = "LSTM"
    elif "GRUCell" in names:
        mode = "GRU"
    elif "RNNCell" in names:
        mode = "RNN_RELU" if getattr(model, "nonlinearity", "tanh") == "relu" else "RNN_TANH"
    else:
        raise TypeError("model must be an RNN, LSTM or GRU (seqlib or torch.nn) or an RNNCell, LSTMCell or GRUCell, "
                        f"but got {type(model).__name__}")
    weights = (model.weight_ih, model.weight_hh, getattr(model, "bias_ih", None),  # type: ignore[attr-defined]
               getattr(model, "bias_hh", None))
    return mode, [weights], False


@torch.no_grad()
def _top_layer_gradients(model: object, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> Gradients:
    """Run ``model`` with the manual forward, then the manual BPTT of its top layer from ``loss_fn``'s gradient."""
    mode, layers, batch_first = _layer_spec(model)
    expected = "(N, T, H_in) or (T, H_in)" if batch_first else "(T, N, H_in) or (T, H_in)"
    check_tensor("inputs", inputs, expected)
    check_floating("inputs", inputs)
    check_rank("inputs", inputs, (2, 3), expected)
    batched = inputs.dim() == 3
    x = inputs.detach()
    x = (x.transpose(0, 1) if batch_first else x) if batched else x.unsqueeze(1)  # (T, N, H_in)
    w0 = layers[0][0]
    if x.shape[-1] != w0.shape[1]:
        raise ValueError(f"inputs must have shape {expected} with H_in = {w0.shape[1]}, "
                         f"but got shape {shape_str(inputs.shape)}")
    if x.dtype != w0.dtype:
        raise TypeError(f"inputs has dtype {x.dtype} but the model's weights have dtype {w0.dtype}; they must match")
    T, N, _ = x.shape
    for w_ih, w_hh, b_ih, b_hh in layers:
        w_ih, w_hh = w_ih.detach(), w_hh.detach()
        b_ih = None if b_ih is None else b_ih.detach()
        b_hh = None if b_hh is None else b_hh.detach()
        zeros = x.new_zeros(N, w_hh.shape[1])  # (N, H)
        if mode == "LSTM":
            x, _, _, cache = bptt.lstm_forward(x, zeros, zeros, w_ih, w_hh, b_ih, b_hh)
        elif mode == "GRU":
            x, _, cache = bptt.gru_forward(x, zeros, w_ih, w_hh, b_ih, b_hh)
        else:
            nonlinearity = "relu" if mode == "RNN_RELU" else "tanh"
            x, _, cache = bptt.rnn_forward(x, zeros, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    out = (x.transpose(0, 1) if batch_first else x) if batched else x.squeeze(1)  # the model's layout
    out = out.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(out)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor (one element), but got "
                             f"{type(loss).__name__ if not isinstance(loss, Tensor) else shape_str(loss.shape)}")
        (grad,) = torch.autograd.grad(loss.reshape(()), out, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(out)
    grad = (grad.transpose(0, 1) if batch_first else grad) if batched else grad.unsqueeze(1)  # (T, N, H)
    if mode == "LSTM":
        return bptt.lstm_backward(cache, grad, need=())  # type: ignore[arg-type]
    if mode == "GRU":
        return bptt.gru_backward(cache, grad, need=())  # type: ignore[arg-type]
    return bptt.rnn_backward(cache, grad, need=())  # type: ignore[arg-type]


def gradient_norms(model: torch.nn.Module, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> Tensor:
    r"""How much gradient reaches each time step: :math:`\lVert \partial L/\partial h_t \rVert` for ``t = 0..T-1``.

    :math:`\partial L/\partial h_t` is the *total* gradient flowing into the top layer's hidden state at step
    ``t``, through the output at ``t`` and through all later steps: the per-step ``dh`` of the manual
    backward (:func:`seqlib.bptt.lstm_backward` etc.), which is what this function returns the norms of. With a loss on
    the last output only, the curve shows how the gradient shrinks (vanishes) or grows (explodes) as it
    travels back in time (C08).

    Args:
        model: a unidirectional ``RNN``, ``LSTM`` or ``GRU`` from seqlib or torch.nn (any ``num_layers``,
            ``batch_first``, with or without bias; no ``proj_size``), or an ``RNNCell``, ``LSTMCell`` or
            ``GRUCell`` (seqlib or torch.nn), which is run over time like a one-layer model. The initial
            state is zero; dropout between layers is not applied (measure the deterministic network).
        inputs: ``(T, N, H_in)`` (``(N, T, H_in)`` if ``batch_first``) or unbatched ``(T, H_in)``.
        loss_fn: receives the model's output sequence, in the model's layout (``(T, N, H)`` etc.), and
            returns a scalar tensor.

    Returns:
        ``(T,)``: the norm over batch and hidden units of :math:`\partial L/\partial h_t`, in the dtype of the
        model.
    """
    dh = _top_layer_gradients(model, inputs, loss_fn).dh
    assert dh is not None
    return torch.linalg.vector_norm(dh.flatten(1), dim=1)  # (T,)


def cell_state_norms(model: torch.nn.Module, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> Tensor:
    r""":math:`\lVert \partial L/\partial c_t \rVert` of an LSTM's top layer for ``t = 0..T-1`` (C12).

    The same measurement as :func:`gradient_norms`, for the cell state: the total gradient reaching
    :math:`c_t`, through :math:`h_t` and through :math:`c_{t+1} = f_{t+1} \odot c_t + \dots`. ``model`` must be
    an ``LSTM`` or ``LSTMCell`` (seqlib or torch.nn); the other arguments are as in :func:`gradient_norms`.

    Returns:
        ``(T,)``: the norm over batch and hidden units of :math:`\partial L/\partial c_t`.
    """
    mode, _, _ = _layer_spec(model)
    if mode != "LSTM":
        raise TypeError(f"model must be an LSTM or LSTMCell (only they have a cell state), but got "
                        f"{type(model).__name__}")
    dc = _top_layer_gradients(model, inputs, loss_fn).dc
    assert dc is not None
    return torch.linalg.vector_norm(dc.flatten(1), dim=1)  # (T,)


def jacobian_norms(
    cell: Callable[..., object],
    inputs: Tensor,
    h0: Tensor | None = None,
    norm: str = "spectral",
) -> Tensor:
    r"""How strongly the last state depends on each earlier one: :math:`\lVert \partial h_T/\partial h_t \rVert`.

    With :math:`h_{t+1} = \text{cell}(x_t, h_t)` for ``t = 0..T-1`` (so :math:`h_0` is the initial state and
    :math:`h_T` the state after the last input), entry ``t`` is the norm of the :math:`H \times H` Jacobian

    .. math::
        \frac{\partial h_T}{\partial h_t} = \prod_{k=t+1}^{T} \frac{\partial h_k}{\partial h_{k-1}},
        \qquad \text{for the RNN } \frac{\partial h_k}{\partial h_{k-1}} = \operatorname{diag}(\phi'(a_k)) W_{hh},

    a product of ``T - t`` step Jacobians (C08): it shrinks geometrically when they are contractions and
    grows when they expand. For an LSTM cell it is the Jacobian with respect to :math:`h_t` with
    :math:`c_t` held fixed (the path through later cell states is included).

    All ``H`` rows come from one backward pass: the sequence is copied ``H`` times along the batch and copy
    ``j`` sends back the unit vector :math:`e_j`. So ``cell`` must treat batch rows independently (every
    recurrent cell does).

    Args:
        cell: an ``RNNCell``, ``GRUCell`` or ``LSTMCell`` (seqlib or torch.nn), or any callable
            ``h_next = cell(x_t, h)`` with ``x_t`` ``(N, H_in)`` and ``h`` ``(N, H)``.
        inputs: ``(T, H_in)`` for one sequence, or ``(T, N, H_in)`` for ``N`` of them.
        h0: initial state ``(H,)`` / ``(N, H)``; default zeros (needs ``cell.hidden_size``).
        norm: ``"spectral"`` (largest singular value, the factor by which the Jacobian can stretch a
            vector) or ``"fro"`` (Frobenius).

    Returns:
        ``(T,)`` for ``(T, H_in)`` inputs, ``(T, N)`` for ``(T, N, H_in)``; entry ``t`` is
        :math:`\lVert \partial h_T/\partial h_t \rVert`.
    """
    check_choice("norm", norm, ("spectral", "fro"))
    check_tensor("inputs", inputs, "(T, H_in) or (T, N, H_in)")
    check_floating("inputs", inputs)
    check_rank("inputs", inputs, (2, 3), "(T, H_in) or (T, N, H_in)")
    if not callable(cell):
        raise TypeError(f"cell must be a recurrent cell or a callable cell(x_t, h), but got {type(cell).__name__}")
    batched = inputs.dim() == 3
    x = inputs.detach() if batched else inputs.detach().unsqueeze(1)  # (T, N, H_in)
    T, N, I = x.shape
    if h0 is None:
        H = getattr(cell, "hidden_size", None)
        if not isinstance(H, int):
            raise ValueError("h0 is needed when cell has no integer attribute hidden_size")
        h = x.new_zeros(N, H)
    else:
        check_tensor("h0", h0, "(N, H) or (H,)")
        h = h0.detach() if batched else h0.detach().reshape(1, -1)  # (N, H)
        if h.dim() != 2 or h.shape[0] != N:
            raise ValueError(f"h0 must have shape {'(N, H)' if batched else '(H,)'} with N = {N}, "
                             f"but got shape {shape_str(h0.shape)}")
        H = h.shape[1]
    is_lstm = "LSTMCell" in _class_names(cell)
    xr = x.unsqueeze(2).expand(T, N, H, I).reshape(T, N * H, I)  # (T, N*H, H_in): each sequence H times
    h = h.repeat_interleave(H, dim=0).requires_grad_(True)  # (N*H, H)
    c = torch.zeros_like(h)
    states = []
    with torch.enable_grad():
        for t in range(T):
            states.append(h)
            if is_lstm:
                h, c = cell(xr[t], (h, c))  # type: ignore[misc]
            else:
                h = cell(xr[t], h)  # type: ignore[assignment]
        if not isinstance(h, Tensor) or tuple(h.shape) != (N * H, H):
            raise ValueError(f"cell must return the next state of shape (N, H) = {shape_str((N * H, H))}")
        eye = torch.eye(H, dtype=h.dtype, device=h.device).repeat(N, 1)  # (N*H, H): copy j sends back e_j
        grads = torch.autograd.grad(h, states, grad_outputs=eye, allow_unused=True)
    jac = torch.stack([torch.zeros_like(s) if g is None else g for g, s in zip(grads, states, strict=True)])
    jac = jac.view(T, N, H, H)  # jac[t, n, j] = row j of dh_T/dh_t for sequence n
    norms = torch.linalg.matrix_norm(jac, ord=2 if norm == "spectral" else "fro")  # (T, N)
    return norms if batched else norms[:, 0]


def spectral_radius(W: Tensor) -> float:
    r"""The largest absolute eigenvalue :math:`\rho(W) = \max_k |\lambda_k(W)|` of a square matrix.

    For a linear recurrence :math:`h_t = W h_{t-1}`, :math:`h_t` shrinks to zero when :math:`\rho(W) < 1`
    and blows up (along the top eigenvector) when :math:`\rho(W) > 1`; the gradients of an RNN travel
    through :math:`W_{hh}^\top` in the same way (C08).

    Args:
        W: ``(H, H)``, e.g. an RNN's ``weight_hh`` (for an LSTM/GRU pass one gate's block, ``weight_hh[:H]``).
    """
    check_tensor("W", W, "(H, H)")
    check_floating("W", W)
    check_rank("W", W, (2,), "(H, H)")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, shape (H, H), but got shape {shape_str(W.shape)}")
    return float(torch.linalg.eigvals(W.detach()).abs().max())


def recurrent_model(
    cell: str = "RNN",
    radius: float = 1.0,
    *,
    input_size: int,
    hidden_size: int,
    nonlinearity: str = "tanh",
    init: str = "random",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Module:
    r"""A one-layer ``seqlib.RNN``, ``LSTM`` or ``GRU`` whose :math:`W_{hh}` has spectral radius ``radius``.

    For the gated cells every gate's ``(H, H)`` block of ``weight_hh_l0`` gets that spectral radius. The
    gradient reaching step ``t`` then scales roughly like :math:`\rho^{T-1-t}` (C08), which is what the
    gradient-flow demo of lecture 02 shows.

    Args:
        cell: ``"RNN"``, ``"LSTM"`` or ``"GRU"``.
        radius: the spectral radius :math:`\rho \ge 0` of :math:`W_{hh}` (of each gate's block).
        input_size, hidden_size: the layer's sizes ``H_in`` and ``H``.
        nonlinearity: ``"tanh"`` or ``"relu"`` (``cell="RNN"`` only).
        init: ``"random"``: torch.nn's uniform initialisation, rescaled to the spectral radius; ``"identity"``:
            :math:`W_{hh} = \rho I` and zero biases (Le et al., 2015).
        seed: the parameters are drawn after ``torch.manual_seed(seed)``, without changing the caller's random
            state.
        dtype: of the parameters (drawn in float32, as torch.nn does, then converted). Default: float64, so that
            gradients of :math:`10^{-40}` are still numbers.

    Returns:
        The layer; ``model.weight_hh_l0`` holds the scaled matrix.
    """
    check_choice("cell", cell, ("RNN", "LSTM", "GRU"))
    check_choice("init", init, ("random", "identity"))
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
    check_positive_int("input_size", input_size)
    check_positive_int("hidden_size", hidden_size)
    if not isinstance(radius, int | float) or isinstance(radius, bool) or radius < 0:
        raise ValueError(f"radius must be a number >= 0 (the spectral radius of W_hh), but got {radius!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if cell == "RNN":
            model: nn.Module = RNN(input_size, hidden_size, nonlinearity=nonlinearity)
        else:
            model = (LSTM if cell == "LSTM" else GRU)(input_size, hidden_size)
    model = model.to(dtype)
    with torch.no_grad():
        for block in model.weight_hh_l0.split(hidden_size, dim=0):  # one (H, H) block per gate
            if init == "identity":
                block.copy_(torch.eye(hidden_size, dtype=block.dtype) * radius)
            else:
                block.mul_(radius / spectral_radius(block))
        if init == "identity":
            model.bias_ih_l0.zero_()
            model.bias_hh_l0.zero_()
    return model
