"""seqlib.neuromorphic: operation counts against torch's own FLOP counter and explicit event counts, encodings, and
the spiking-vs-GRU comparison on the sensor task."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from seqlib.classifiers import RNNClassifier
from seqlib.data import sensor_activity
from seqlib.neuromorphic import (
    E_AC_PJ,
    E_MAC_PJ,
    OpCount,
    compare_on_sensor,
    encode_sensor,
    firing_rate,
    gru_ops,
    sparsity,
    spiking_ops,
)
from seqlib.spike_coding import delta_encode

pytestmark = pytest.mark.part4


@pytest.mark.parametrize(("L", "H_in", "H", "C"), [(20, 3, 16, 6), (7, 5, 9, 0)])
def test_gru_macs_equal_torch_flop_counter(L, H_in, H, C):
    """Every multiply-add of seqlib's GRU (and the head) as torch's FLOP counter sees them: FLOPs = 2 x MACs."""
    model = RNNClassifier(max(C, 1), H, cell="gru", input_size=H_in)
    x = torch.randn(4, L, H_in)
    with FlopCounterMode(display=False) as counter:
        if C:
            model(x)
        else:
            model.rnn(x)
    assert counter.get_total_flops() == 2 * 4 * gru_ops(L, H_in, H, C).macs


def test_spiking_ops_count_each_event_times_its_fan_out():
    L, N, H, H_in, C = 4, 2, 3, 2, 5
    hidden = torch.zeros(L, N, H)
    hidden[0, 0, 1] = hidden[1, 0, 2] = hidden[3, 1, 0] = 1.0  # three spikes; the last one is at the last step
    inputs = torch.zeros(L, N, H_in)
    inputs[0, 0, 0], inputs[2, 1, 1] = 1.0, -1.0  # an ON and an OFF event
    ops = spiking_ops(hidden, inputs, input_is_spikes=True, num_classes=C)
    input_acs = 2 * H  # each input event reaches the H neurons
    recurrent_acs = 2 * H  # the spikes at steps 0 and 1 reach the H neurons one step later; step 3's does not
    readout_acs = 3 * C
    assert ops.acs == (input_acs + recurrent_acs + readout_acs) / N and ops.macs == 0
    assert ops.neuron_updates == L * (H + C)
    dense = spiking_ops(hidden, inputs, input_is_spikes=False, recurrent=False, num_classes=0)
    assert dense.macs == L * H_in * H and dense.acs == 0
    # the same count from the products the layer actually evaluates: nonzero terms of W_hh s_{t-1}
    w_hh = torch.randn(H, H)
    terms = (hidden[:-1, :, None, :] * w_hh).ne(0).sum()  # (L-1, N, H, H) terms of the recurrent products
    assert float(terms) / N == recurrent_acs / N
    assert firing_rate(hidden) == 3 / hidden.numel() and sparsity(hidden) == 1 - 3 / hidden.numel()


def test_energy_estimate_and_sum():
    a, b = OpCount(macs=10, acs=4, neuron_updates=1), OpCount(acs=6)
    total = a + b
    assert (total.macs, total.acs, total.neuron_updates) == (10, 10, 1)
    assert total.energy_pj() == pytest.approx(10 * E_MAC_PJ + 11 * E_AC_PJ)
    assert total.energy_pj(e_mac=1.0, e_ac=0.0) == 10


def test_sensor_encodings():
    data = sensor_activity(20, seq_len=32, seed=0)
    x = data.inputs  # (N, L, 3)
    z = encode_sensor(x, "current")
    torch.testing.assert_close(z.mean(dim=(0, 1)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 1)), torch.ones(3), atol=1e-5, rtol=0)
    d = encode_sensor(x, "delta", threshold=0.05)
    assert d.shape == (20, 32, 6) and set(d.unique().tolist()) <= {0.0, 1.0}
    code = delta_encode(x.transpose(0, 1), 0.05).transpose(0, 1)  # (N, L, 3)
    assert torch.equal(d[..., :3] - d[..., 3:], code)
    r = encode_sensor(x, "rate", seed=3)
    assert r.shape == (20, 32, 3) and set(r.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(r, encode_sensor(x, "rate", seed=3))
    with pytest.raises(ValueError, match="encoding"):
        encode_sensor(x, "phase")
    with pytest.raises(ValueError, match=r"\(N, L, 3\)"):
        encode_sensor(x[0], "current")


@pytest.mark.slow
def test_compare_on_sensor_small():
    r = compare_on_sensor(0, hidden_size=16, n_train=300, n_test=200, seq_len=32, epochs=3, spiking_epochs=3)
    assert set(r) == {"snn_accuracy", "gru_accuracy", "firing_rate", "snn_acs", "snn_macs", "snn_energy_pj",
                      "gru_macs", "gru_energy_pj", "snn_seconds", "gru_seconds"}
    assert r["gru_macs"] == gru_ops(32, 3, 16, 6).macs
    assert r["snn_macs"] == 32 * 3 * 16  # analog input current: the first layer is dense
    assert 0 < r["firing_rate"] < 1 and r["snn_acs"] > 0
    assert r["snn_accuracy"] > 0.25 and r["gru_accuracy"] > 0.25  # chance: 1/6
    delta = compare_on_sensor(0, hidden_size=16, n_train=100, n_test=50, seq_len=32, epochs=1, spiking_epochs=1,
                              encoding="delta")
    assert delta["snn_macs"] == 0  # spikes in, spikes inside: only accumulates


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="hidden_size"):
        gru_ops(10, 3, 0)
    with pytest.raises(ValueError, match=r"\(L, N, H\)"):
        spiking_ops(torch.zeros(3, 4), torch.zeros(3, 4, 2), input_is_spikes=True)
    with pytest.raises(ValueError, match="share L and N"):
        spiking_ops(torch.zeros(3, 4, 2), torch.zeros(3, 5, 2), input_is_spikes=True)
    with pytest.raises(TypeError, match="torch.Tensor"):
        firing_rate([0, 1])
