"""seqlib.fixedpoint_rnn: integer-only inference of GRU / LSTM / FastGRNN against an integer reference written out
here, against the float model across bit-widths, and on the sensor task; seqlib.sensor_models."""

from __future__ import annotations

import pytest
import torch

import seqlib
from seqlib import lut
from seqlib.classifiers import RNNClassifier, accuracy
from seqlib.data import sensor_activity
from seqlib.fastgrnn import FastGRNN
from seqlib.fixedpoint import dequantize, quantize
from seqlib.fixedpoint_rnn import FixedPointRNN
from seqlib.sensor_models import build_sensor_classifier, fixed_point_accuracy, train_sensor_classifier

pytestmark = pytest.mark.part4


def models():
    torch.manual_seed(0)
    return {
        "seqlib.GRU": seqlib.GRU(3, 6, batch_first=True),
        "torch.GRU x2": torch.nn.GRU(3, 6, num_layers=2),
        "seqlib.LSTM": seqlib.LSTM(3, 5),
        "torch.LSTM": torch.nn.LSTM(3, 5, batch_first=True),
        "FastGRNN": FastGRNN(3, 7, batch_first=True),
        "classifier": build_sensor_classifier("gru", hidden_size=6),
    }


def sample_input(model, L=12, N=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    rnn = getattr(model, "rnn", model)
    x = torch.randn(N, L, 3, generator=g) * 1.5
    return x if getattr(rnn, "batch_first", False) else x.transpose(0, 1)


# -- an integer reference, written out once more ---------------------------------------------------------------------
def reference_gru(x, w_ih, w_hh, b_ih, b_hh, f, d):
    """x (L, N, H_in) floats; the module docstring's GRU step, spelled out with Python-level integer steps."""
    q = lambda t: quantize(t.detach().double(), f, 32)  # noqa: E731
    X, Wi, Wh, Bi, Bh = q(x), q(w_ih), q(w_hh), q(b_ih) << f, q(b_hh) << f
    H = w_hh.shape[1]
    h = torch.zeros(X.shape[1], H, dtype=torch.long)
    outs = []
    for t in range(X.shape[0]):
        a, c = X[t] @ Wi.T, h @ Wh.T  # 2f bits
        r = lut.sigmoid_lut((a[:, :H] + c[:, :H] + Bi[:H] + Bh[:H]) >> f, f, d)
        z = lut.sigmoid_lut((a[:, H:2 * H] + c[:, H:2 * H] + Bi[H:2 * H] + Bh[H:2 * H]) >> f, f, d)
        n = lut.tanh_lut((a[:, 2 * H:] + Bi[2 * H:] + r * ((c[:, 2 * H:] + Bh[2 * H:]) >> f)) >> f, f, d)
        h = n + ((z * (h - n)) >> f)
        outs.append(h)
    return torch.stack(outs)


def test_gru_program_equals_the_written_out_reference():
    torch.manual_seed(3)
    gru = torch.nn.GRU(3, 5)
    x = torch.randn(10, 4, 3)
    for f, d in [(12, 8), (8, 4), (16, 6)]:
        fx = FixedPointRNN.from_float(gru, frac_bits=f, bits=32, digit_bits=d)
        ref = reference_gru(x, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0, f, d)
        assert torch.equal(fx.forward_int(fx.quantize_input(x)), ref)


def test_fastgrnn_and_lstm_programs_follow_their_equations():
    torch.manual_seed(4)
    f, d = 10, 8
    q = lambda t: quantize(t.detach().double(), f, 32)  # noqa: E731
    m = FastGRNN(2, 4)
    x = torch.randn(6, 3, 2)
    X, W, U = q(x), q(m.weight_ih_l0), q(m.weight_hh_l0)
    zeta, nu = q(torch.sigmoid(m.zeta_l0)), q(torch.sigmoid(m.nu_l0))
    h = torch.zeros(3, 4, dtype=torch.long)
    for t in range(6):
        s = (X[t] @ W.T + h @ U.T) >> f
        z = lut.sigmoid_lut(s + q(m.bias_gate_l0), f, d)
        ht = lut.tanh_lut(s + q(m.bias_update_l0), f, d)
        gamma = (((zeta + nu) << f) - zeta * z) >> f
        h = (gamma * ht + z * h) >> f
    fx = FixedPointRNN.from_float(m, frac_bits=f, bits=32, digit_bits=d)
    assert torch.equal(fx.forward_int(fx.quantize_input(x))[-1], h)

    lstm = seqlib.LSTM(2, 3)
    X, Wi, Wh = q(x), q(lstm.weight_ih_l0), q(lstm.weight_hh_l0)
    B = (q(lstm.bias_ih_l0) << f) + (q(lstm.bias_hh_l0) << f)
    h = c = torch.zeros(3, 3, dtype=torch.long)
    for t in range(6):
        p = (X[t] @ Wi.T + h @ Wh.T + B) >> f
        i, fg, g, o = p.chunk(4, dim=-1)
        i, fg, o = (lut.sigmoid_lut(v, f, d) for v in (i, fg, o))
        g = lut.tanh_lut(g, f, d)
        c = (fg * c + i * g) >> f
        h = (o * lut.tanh_lut(c, f, d)) >> f
    fx = FixedPointRNN.from_float(lstm, frac_bits=f, bits=32, digit_bits=d)
    assert torch.equal(fx.forward_int(fx.quantize_input(x))[-1], h)


@pytest.mark.parametrize("name", list(models()))
def test_error_against_float_shrinks_with_every_fractional_bit(name):
    model = models()[name]
    x = sample_input(model)
    with torch.no_grad():
        out = model(x)
    ref = (out if isinstance(out, torch.Tensor) else out[0]).double()
    errors = []
    for f in (4, 8, 12, 16):
        fx = FixedPointRNN.from_float(model, frac_bits=f, bits=f + 10)
        y = fx(x)
        assert y.shape == ref.shape and y.dtype == torch.float64
        errors.append(float((y - ref).abs().max()))
    # every 4 more fractional bits divide the rounding error by about 16; ask for a factor of 4
    for coarse, fine in zip(errors, errors[1:], strict=False):
        assert fine < coarse / 4
    assert errors[-1] < 1e-3


def test_integer_end_to_end_and_layouts():
    model = models()["classifier"]
    fx = FixedPointRNN.from_float(model, frac_bits=10, bits=16, digit_bits=6)
    x = sample_input(model, N=3)
    q = fx.quantize_input(x)
    assert q.dtype == torch.int64 and int(q.abs().max()) < 2**15
    logits = fx.forward_int(q)
    assert logits.dtype == torch.int64 and logits.shape == (3, 6)
    assert torch.equal(fx.forward_int(q[1]), logits[1])  # unbatched (L, H_in)
    assert torch.equal(fx.predict(x), logits.argmax(-1))
    torch.testing.assert_close(fx(x), dequantize(logits, 10))
    for p in fx.layers:
        assert all(v.dtype == torch.int64 for v in p.values())
    assert "GRU" in repr(fx) and "frac_bits=10" in repr(fx)


@pytest.mark.slow
def test_sensor_classifier_keeps_its_accuracy_in_fixed_point():
    torch.manual_seed(0)
    model = build_sensor_classifier("gru", hidden_size=12)
    history = train_sensor_classifier(model, n_train=800, epochs=10)
    assert history.train_loss[-1] < history.train_loss[0] and set(history.lr) == {0.02}  # a constant rate
    model.eval()
    test = sensor_activity(400, seq_len=32, seed=99)
    assert accuracy(model, test) > 0.5  # well above chance (1/6)
    with torch.no_grad():
        float_pred = model(test.inputs).argmax(-1)
    agree = fixed_point_accuracy(model, test.inputs, float_pred, frac_bits=(12, 8, 2), digit_bits=(8,), int_bits=8)
    assert agree[(12, 8)] >= 0.98 and agree[(8, 8)] >= 0.9  # the same decisions as the float model, nearly always
    assert agree[(2, 8)] < agree[(12, 8)]  # two fractional bits are too few
    direct = FixedPointRNN.from_float(model, frac_bits=8, bits=16).predict(test.inputs)
    assert agree[(8, 8)] == float((direct == float_pred).double().mean())


def test_sensor_classifier_is_cached(tmp_path, monkeypatch):
    from seqlib import sensor_models

    monkeypatch.setenv("SEQLIB_CACHE", str(tmp_path))
    calls = []

    def quick(model, seq_len, seed):
        calls.append(seed)
        return train_sensor_classifier(model, n_train=100, seq_len=seq_len, epochs=1, seed=seed)

    monkeypatch.setattr(sensor_models, "train_sensor_classifier", quick)
    a = sensor_models.sensor_classifier("lstm", hidden_size=4, seq_len=8, seed=5)
    b = sensor_models.sensor_classifier("lstm", hidden_size=4, seq_len=8, seed=5)
    assert calls == [5] and not a.training
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    assert list(tmp_path.rglob("*.pt"))


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="bidirectional"):
        FixedPointRNN.from_float(torch.nn.GRU(3, 4, bidirectional=True))
    with pytest.raises(TypeError, match="GRU, LSTM or FastGRNN"):
        FixedPointRNN.from_float(torch.nn.Linear(3, 4))
    with pytest.raises(TypeError, match="GRU, LSTM or FastGRNN"):
        FixedPointRNN.from_float(seqlib.RNN(3, 4))
    with pytest.raises(ValueError, match="frac_bits < bits"):
        FixedPointRNN.from_float(seqlib.GRU(3, 4), frac_bits=16, bits=16)
    with pytest.raises(ValueError, match="digit_bits"):
        FixedPointRNN.from_float(seqlib.GRU(3, 4), digit_bits=0)
    fx = FixedPointRNN.from_float(seqlib.GRU(3, 4))
    with pytest.raises(TypeError, match="integer tensor"):
        fx.forward_int(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="H_in = 3"):
        fx.forward_int(torch.zeros(5, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="predict needs a classifier"):
        fx.predict(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="cell must be one of"):
        build_sensor_classifier("transformer")
    with pytest.raises(ValueError, match="pool='mean'"):
        FixedPointRNN.from_float(RNNClassifier(3, 4, cell="gru", pool="mean", input_size=3))
    with pytest.raises(ValueError, match="token embedding"):
        FixedPointRNN.from_float(RNNClassifier(3, 4, cell="gru", vocab_size=10))
