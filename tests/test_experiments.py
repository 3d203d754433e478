"""The lecture experiments at small sizes: each qualitative claim, with references computed here where possible."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seqlib import experiments, gradflow

pytestmark = pytest.mark.part1


def test_vanishing_and_exploding():
    result = experiments.vanishing_exploding(scales=(0.5, 2.0), seq_len=60, hidden_size=32, batch_size=4)
    small, large = result["norms"]["scale 0.5"], result["norms"]["scale 2"]
    assert small.shape == large.shape == (60,)
    assert small[0] < 1e-6 * small[-1]  # vanishing: almost nothing reaches t = 0
    assert large[0] > 100 * large[-1]  # exploding: the early steps get much larger gradients
    assert result["spectral_radius"]["scale 0.5"] < 1 < result["spectral_radius"]["scale 2"]
    jac_small, jac_large = result["jacobian_norms"]["scale 0.5"], result["jacobian_norms"]["scale 2"]
    assert jac_small[0] < 1e-6 * jac_small[-1] and jac_large[0] > 100 * jac_large[-1]
    # the same seed gives the same numbers
    again = experiments.vanishing_exploding(scales=(0.5,), seq_len=60, hidden_size=32, batch_size=4)
    torch.testing.assert_close(again["norms"]["scale 0.5"], small, rtol=0, atol=0)


def test_adding_inputs_and_last_output_loss():
    x = experiments.adding_inputs(3, 10, seed=1)
    assert x.shape == (10, 3, 2) and x.dtype == torch.float64
    assert torch.all(x[:, :, 1].sum(0) == 2)  # two markers per sequence
    out = torch.randn(10, 3, 4)
    assert experiments.last_output_loss(out) == out[-1].sum()


def test_vanishing_matches_an_independent_reference():
    """Rebuild scale 0.5's network from its documented recipe and measure dL/dh_t by autograd with torch.nn."""
    T, H, N, seed = 30, 16, 3, 4
    result = experiments.vanishing_exploding(scales=(0.5,), seq_len=T, hidden_size=H, batch_size=N, seed=seed)
    torch.manual_seed(seed)
    ref_layer = nn.RNN(2, H, dtype=torch.float64)  # the same draws as seqlib.RNN's initialisation
    with torch.no_grad():
        ref_layer.weight_hh_l0.normal_(0.0, 0.5 / math.sqrt(H))
    cell = nn.RNNCell(2, H, dtype=torch.float64)
    cell.load_state_dict({k[:-3]: v for k, v in ref_layer.state_dict().items()})
    x = experiments.adding_inputs(N, T, seed)
    h, hs = torch.zeros(N, H, dtype=torch.float64), []
    for t in range(T):
        h = cell(x[t], h)
        h.retain_grad()
        hs.append(h)
    experiments.last_output_loss(torch.stack(hs)).backward()
    ref = torch.stack([h.grad.norm() for h in hs])
    torch.testing.assert_close(result["norms"]["scale 0.5"], ref, rtol=1e-9, atol=1e-300)
    torch.testing.assert_close(result["spectral_radius"]["scale 0.5"], gradflow.spectral_radius(ref_layer.weight_hh_l0))


def test_identity_relu_keeps_gradients_alive():
    norms = experiments.identity_relu(seq_len=80, hidden_size=32, batch_size=4)["norms"]
    identity = norms["ReLU, W_hh = I, zero biases"]
    assert identity.min() > 0.1 * identity.max()  # within a factor of 10 over 80 steps
    for label in ("ReLU, default init", "tanh, default init"):
        assert norms[label][0] < 1e-6 * norms[label][-1]


def test_lstm_beats_rnn_over_100_steps():
    result = experiments.lstm_vs_rnn(seq_len=100, hidden_size=16, batch_size=4)
    norms = result["norms"]

    def reach(label):  # the fraction of the final gradient that arrives at t = 0
        return float(norms[label][0] / norms[label][-1])

    assert reach("LSTM, forget bias 1") > 1e6 * reach("RNN (tanh)")
    assert reach("LSTM, forget bias 1") > 1e3 * reach("LSTM")  # the forget gate decides how open the highway is
    cell = result["cell_norms"]["LSTM, forget bias 1"]
    assert cell.shape == (100,) and cell[0] > 1e6 * reach("RNN (tanh)") * cell[-1]
    assert set(result["cell_norms"]) == {"LSTM", "LSTM, forget bias 1"}


def test_clipping_training_keeps_training_finite():
    result = experiments.clipping_training(seq_len=100, hidden_size=32, steps=40, batch_size=16)
    plain, clipped = result["losses"]["no clipping"], result["losses"]["clip_grad_norm_(max_norm=1)"]
    assert len(plain) == len(clipped) == 40
    assert all(math.isfinite(v) for v in clipped)
    finite = [v for v in plain if math.isfinite(v)]
    assert len(finite) < len(plain) or max(finite) > 1e3 * max(clipped)  # diverged, or blew up on the way
    assert max(result["grad_norms"]["no clipping"]) > 10 * max(result["grad_norms"]["clip_grad_norm_(max_norm=1)"])
    assert result["baseline"] == pytest.approx(1 / 6)


def test_clipping_landscape():
    result = experiments.clipping_landscape(steps=60, resolution=16)
    # the surface is the one-unit network h_t = w * sigmoid(h_{t-1}) + b, recomputed here
    for i, j in ((0, 0), (5, 11), (15, 7)):
        w, b = float(result["w"][i]), float(result["b"][j])
        h = 0.5
        for _ in range(50):
            h = w / (1 + math.exp(-h)) + b
        assert float(result["loss"][i, j]) == pytest.approx((h - 0.7) ** 2, rel=1e-9)
    plain = result["trajectories"]["no clipping"]
    clipped = result["trajectories"]["clipped at 5"]
    assert plain.shape == clipped.shape == (61, 2)
    jumps = (plain[1:] - plain[:-1]).norm(dim=1)
    assert jumps.max() > 1.0  # thrown off the wall
    assert (clipped[1:] - clipped[:-1]).norm(dim=1).max() <= 0.002 * 5 + 1e-9  # lr * max_norm
    norms = result["grad_norms"]["no clipping"]
    assert max(norms) > 100 * norms[0]
    assert result["losses"]["clipped at 5"][-1] < result["losses"]["no clipping"][-1]


def test_experiments_restore_the_thread_count():
    threads = torch.get_num_threads()
    experiments.identity_relu(seq_len=5, hidden_size=4, batch_size=2)
    assert torch.get_num_threads() == threads


def test_bad_sizes():
    with pytest.raises(ValueError, match="seq_len"):
        experiments.identity_relu(seq_len=0)
    with pytest.raises(TypeError, match="hidden_size"):
        experiments.lstm_vs_rnn(hidden_size=2.5)
