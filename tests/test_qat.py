"""seqlib.qat (PTQ and QAT of whole models) and seqlib.dynamic_quant (8-bit dynamic LSTM against torch's)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import seqlib
from seqlib.cdf_quant import CDFQuantize
from seqlib.dynamic_quant import DynamicQuantLinear, DynamicQuantLSTM, quantize_dynamic
from seqlib.qat import FakeQuantize, calibrate, model_size_bytes, quantize_model, quantized_modules
from seqlib.quant import fake_quantize

pytestmark = pytest.mark.part4


class Tagger(nn.Module):
    """Embedding -> recurrent layer -> Linear: every module kind quantize_model handles."""

    def __init__(self, cell: str = "LSTM", vocab: int = 20, emb: int = 8, hidden: int = 12, classes: int = 3):
        super().__init__()
        self.embedding = seqlib.Embedding(vocab, emb)
        self.rnn = getattr(seqlib, cell)(emb, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(tokens))  # (N, T, H)
        return self.head(out[:, -1])  # (N, K)


def _tokens(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 20, (n, 7), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_weights_are_on_the_grid_and_outputs_equal_the_float_model_with_those_weights(cell, bits, per_channel):
    torch.manual_seed(0)
    model = Tagger(cell).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_model(model, bits, activations=False, per_channel=per_channel).eval()
    assert {name for name, _ in quantized_modules(q)} == {"embedding", "rnn", "head"}
    reference = Tagger(cell).eval()
    state = {}
    for name, param in model.state_dict().items():
        if name.split(".")[-1].startswith("weight"):
            w = param
            if per_channel:
                amax = w.abs().amax(1)
                scale = torch.clamp(amax / ((2**bits - 1) / 2), min=torch.finfo(torch.float32).eps)
                state[name] = fake_quantize(w, scale, torch.zeros_like(scale, dtype=torch.int32), bits,
                                            per_channel_axis=0)
            else:
                scale = max(float(w.abs().max()) / ((2**bits - 1) / 2), torch.finfo(torch.float32).eps)
                state[name] = fake_quantize(w, scale, 0, bits)
        else:
            state[name] = param
    reference.load_state_dict(state)
    x = _tokens()
    torch.testing.assert_close(q(x), reference(x))
    levels = q.rnn.weight_hh_l0.unique(dim=None) if not per_channel else q.rnn.weight_hh_l0[0].unique()
    assert levels.numel() <= 2**bits
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the float model is untouched


def test_activations_are_quantized_with_calibrated_ranges():
    torch.manual_seed(0)
    model = Tagger("LSTM").eval()
    q = quantize_model(model, 4, activations=True)
    with pytest.raises(RuntimeError, match="not seen any data"):
        q.eval()(_tokens())
    calibrate(q, [_tokens(seed=s) for s in range(3)])
    assert not q.training
    seen = []
    q.head.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    q(_tokens(seed=5))
    fq = q.head.input_quantizer
    scale, zp = fq.observer.qparams()
    assert torch.equal(seen[0], fake_quantize(seen[0], scale[0], zp[0], 4, signed=False))  # the head read grid values
    assert seen[0].unique().numel() <= 16
    before = fq.observer.min_val.clone()
    q(_tokens(seed=9) * 0 + 3)  # eval: ranges stay frozen
    assert torch.equal(fq.observer.min_val, before)


@pytest.mark.parametrize("observer", ["minmax", "moving_average", "percentile"])
def test_each_observer_kind_drives_the_activation_grid(observer):
    torch.manual_seed(0)
    q = quantize_model(Tagger("GRU"), 8, observer=observer)
    calibrate(q, [_tokens(seed=s) for s in range(4)])
    fq = q.rnn.input_quantizer
    assert isinstance(fq, FakeQuantize) and type(fq.observer).__name__.lower().startswith(observer.split("_")[0][:4])
    out = q(_tokens())
    assert out.shape == (16, 3) and torch.isfinite(out).all()


def test_qat_trains_through_the_straight_through_estimator():
    torch.manual_seed(0)
    model = Tagger("LSTM")
    q = quantize_model(model, 4)
    x, y = _tokens(64), torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(q.parameters(), 1e-2)
    first = None
    for _ in range(40):
        loss = F.cross_entropy(q(x), y)
        optimizer.zero_grad()
        loss.backward()
        assert q.rnn.parametrizations.weight_ih_l0.original.grad.abs().sum() > 0  # gradients reach the float weights
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < first * 0.7
    assert q.rnn.weight_ih_l0.unique().numel() <= 16


def test_cdf_and_climbq_schemes_build_and_run():
    torch.manual_seed(0)
    q = quantize_model(Tagger("LSTM"), 3, scheme="cdf")
    assert isinstance(q.head.input_quantizer, CDFQuantize)
    calibrate(q, [_tokens()])
    assert q.head.weight.unique().numel() <= 8
    c = quantize_model(Tagger("LSTM"), 3, scheme="climbq", num_classes=3)
    calibrate(c, [(_tokens(), torch.randint(0, 3, (16,)))])
    assert torch.isfinite(c(_tokens())).all()
    with pytest.raises(ValueError, match="num_classes"):
        quantize_model(Tagger("LSTM"), 3, scheme="climbq")


def test_model_size_in_bytes():
    model = Tagger("LSTM")
    floats = sum(p.numel() for p in model.parameters())
    assert model_size_bytes(model) == 4 * floats
    weights = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[-1].startswith("weight"))
    biases = floats - weights
    for bits in (8, 4, 2):
        q = quantize_model(model, bits, activations=False)
        n_weights = 4  # embedding, weight_ih, weight_hh, head: one grid each
        assert model_size_bytes(q) == 4 * biases + (weights * bits + 7 * n_weights) // 8 * 0 + sum(
            (p.numel() * bits + 7) // 8 for n, p in model.named_parameters() if n.split(".")[-1].startswith("weight")
        ) + 8 * n_weights
    per_channel = quantize_model(model, 4, activations=False, per_channel=True)
    rows = model.embedding.weight.shape[0] + 2 * model.rnn.weight_ih_l0.shape[0] + model.head.weight.shape[0]
    assert model_size_bytes(per_channel) == model_size_bytes(quantize_model(model, 4, activations=False)) + 8 * (
        rows - 4)
    assert model_size_bytes(quantize_dynamic(nn.Sequential(nn.Linear(10, 5)))) == 50 + 4 + 4 * 5


def test_quantize_model_bad_input():
    with pytest.raises(ValueError, match="bits must be from 2 to 16"):
        quantize_model(Tagger(), 1)
    with pytest.raises(ValueError, match="bits must be from 2 to 16"):
        quantize_model(Tagger(), 17)
    with pytest.raises(ValueError, match="activations must be from 2 to 16"):
        quantize_model(Tagger(), 4, activations=20)
    with pytest.raises(ValueError, match="scheme must be one of"):
        quantize_model(Tagger(), 4, scheme="log")
    with pytest.raises(ValueError, match="no module to quantize"):
        quantize_model(nn.Sequential(nn.ReLU()), 4)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(quantize_model(Tagger(), 4), 4)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        quantize_model("model", 4)
    with pytest.raises(ValueError, match="no activation quantizer"):
        calibrate(quantize_model(Tagger(), 4, activations=False), [_tokens()])


# ------------------------------------------------------------------------------------------------ dynamic int8
class LSTMClassifier(nn.Module):
    def __init__(self, lstm: nn.Module, classes: int = 4):
        super().__init__()
        self.lstm = lstm
        self.head = nn.Linear(lstm.hidden_size * (2 if lstm.bidirectional else 1), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out.mean(1 if self.lstm.batch_first else 0))


def _torch_dynamic_available() -> bool:
    """torch's dynamic quantization is deprecated: compare only while it exists, on the x86 kernels whose rounding
    seqlib.dynamic_quant follows (ARM's qnnpack kernels round differently)."""
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return torch.backends.quantized.engine in ("x86", "fbgemm")


@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"), [(1, False, True), (2, True, False)])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dynamic_int8_lstm_classifier_equals_torch_quantize_dynamic(num_layers, bidirectional, batch_first, seed):
    """Tolerance 1e-5: both compute the same integer products exactly and round the same way (zero-point added
    before rounding, fused multiply-adds), so on x86 the outputs agree to float32 rounding (~1e-7), usually exactly.
    A single activation rounded to the other level would move the outputs by ~1e-4 from then on, and the
    quantization error itself (float vs int8) is ~1e-3: 1e-5 tells "the same algorithm" from "almost the same"."""
    if not _torch_dynamic_available():
        pytest.skip("this torch no longer ships torch.ao.quantization.quantize_dynamic or an int8 CPU engine")
    from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic

    torch.manual_seed(seed)
    float_model = LSTMClassifier(nn.LSTM(3, 16, num_layers=num_layers, bidirectional=bidirectional,
                                         batch_first=batch_first)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch_quantize_dynamic(float_model, {nn.LSTM, nn.Linear}, dtype=torch.qint8)
    assert type(theirs.lstm).__module__.startswith("torch.ao.nn.quantized.dynamic")  # really converted
    ours = quantize_dynamic(float_model)
    assert isinstance(ours.lstm, DynamicQuantLSTM) and isinstance(ours.head, DynamicQuantLinear)
    x = torch.randn(24, 30, 3) if batch_first else torch.randn(30, 24, 3)
    with torch.no_grad():
        a, b, f = ours(x), theirs(x), float_model(x)
        (oa, (ha, ca)), (ob, (hb, cb)) = ours.lstm(x), theirs.lstm(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    for mine, reference in ((oa, ob), (ha, hb), (ca, cb)):
        torch.testing.assert_close(mine, reference, atol=1e-5, rtol=0)
    assert (f - b).abs().max() > 1e-4  # and quantization did change the numbers


def test_dynamic_lstm_from_seqlib_lstm_equals_from_its_torch_twin():
    torch.manual_seed(0)
    ours_float = seqlib.LSTM(3, 8, batch_first=True)
    twin = nn.LSTM(3, 8, batch_first=True)
    twin.load_state_dict(ours_float.state_dict())
    x = torch.randn(5, 11, 3)
    a = DynamicQuantLSTM.from_float(ours_float)(x)[0]
    b = DynamicQuantLSTM.from_float(twin)(x)[0]
    assert torch.equal(a, b)
    unbatched = DynamicQuantLSTM.from_float(ours_float)(x[0])[0]  # scales read off this one sequence
    assert torch.equal(unbatched, DynamicQuantLSTM.from_float(ours_float)(x[:1])[0][0])
    torch.testing.assert_close(a, ours_float(x)[0], atol=0.05, rtol=0)  # close to the float LSTM
    with pytest.raises(TypeError, match="seqlib.LSTM or torch.nn.LSTM"):
        DynamicQuantLSTM.from_float(nn.GRU(3, 8))
    with pytest.raises(ValueError, match="H_in = 3"):
        DynamicQuantLSTM.from_float(ours_float)(torch.randn(5, 11, 4))
