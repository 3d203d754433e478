"""seqlib.secure_rnn: the secret-shared RNN reveals exactly FixedPointRNN's integers on many random models and inputs;
its cost report adds up and follows the formulas; neither party's received messages depend on the other's secret."""

from __future__ import annotations

import math

import pytest
import torch

import seqlib
from seqlib.fastgrnn import FastGRNN
from seqlib.fixedpoint_rnn import FixedPointRNN
from seqlib.mpc import Dealer
from seqlib.secure_rnn import CostReport, secure_inference
from seqlib.sensor_models import build_sensor_classifier

pytestmark = pytest.mark.part4


def random_model(kind: str, seed: int):
    """A model with random sizes and weights large enough to push the activations into saturation sometimes."""
    g = torch.Generator().manual_seed(seed)
    H = int(torch.randint(2, 6, (1,), generator=g))
    builders = {
        "gru": lambda: seqlib.GRU(3, H, batch_first=True),
        "torch-gru-2": lambda: torch.nn.GRU(3, H, num_layers=2),
        "lstm": lambda: seqlib.LSTM(3, H),
        "fastgrnn": lambda: FastGRNN(3, H, batch_first=True),
        "classifier-lstm": lambda: build_sensor_classifier("lstm", hidden_size=H, num_classes=4),
        "classifier-fastgrnn": lambda: build_sensor_classifier("fastgrnn", hidden_size=H, num_classes=3),
    }
    torch.manual_seed(seed)
    model = builders[kind]()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 2 * torch.rand(p.shape, generator=g))
    f = int(torch.randint(6, 15, (1,), generator=g))
    d = int(torch.randint(2, 9, (1,), generator=g))
    L, N = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 4, (1,), generator=g))
    rnn = getattr(model, "rnn", model)
    x = 3 * torch.randn(N, L, 3, generator=g)
    x = x if getattr(rnn, "batch_first", False) or hasattr(model, "head") else x.transpose(0, 1)
    return FixedPointRNN.from_float(model, frac_bits=f, bits=f + 6, digit_bits=d), x


@pytest.mark.parametrize("kind", ["gru", "torch-gru-2", "lstm", "fastgrnn", "classifier-lstm", "classifier-fastgrnn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_secure_output_equals_the_cleartext_bit_for_bit(kind, seed):
    fx, x = random_model(kind, seed)
    result = secure_inference(fx, x, seed=seed, compare_bits=2 + seed * 2)
    expected = fx.forward_int(fx.quantize_input(x))
    assert result.output.dtype == torch.int64 and result.output.shape == expected.shape
    assert torch.equal(result.output, expected)


def test_integer_input_and_unbatched_input():
    fx, x = random_model("classifier-lstm", 3)
    q = fx.quantize_input(x)
    assert torch.equal(secure_inference(fx, q).output, fx.forward_int(q))
    assert torch.equal(secure_inference(fx, q[0]).output, fx.forward_int(q[0]))


# -- the cost report ---------------------------------------------------------------------------------------------------
def test_cost_report_adds_up_and_the_math_functions_dominate():
    torch.manual_seed(0)
    model = build_sensor_classifier("gru", hidden_size=4, num_classes=3)
    fx = FixedPointRNN.from_float(model, frac_bits=10, bits=16, digit_bits=6)
    N, L, H, H_in, C, ell = 2, 5, 4, 3, 3, 64
    result = secure_inference(fx, torch.randn(N, L, H_in))
    report = result.report
    assert isinstance(report, CostReport) and report.sequences == N and report.seconds > 0
    by_op = report.by("op")
    assert set(by_op) == {"input", "linear", "mul", "trunc", "sigmoid", "tanh", "output"}
    assert sum(d["online_bytes"] for d in by_op.values()) == report.online_bytes
    assert sum(d["rounds"] for d in by_op.values()) == report.rounds
    assert by_op["sigmoid"]["online_share"] + by_op["tanh"]["online_share"] > 0.6
    assert set(report.by("layer")) == {"input", "rnn.l0", "head", "output"}
    channel_bits = sum(c.bits for c in result.channel.online.values())
    assert report.online_bytes == channel_bits / 8
    # linear layers: the input projection opens D (L N H_in) and W_ih - B (3H H_in) once; every step opens D (N H)
    # and W_hh - B (3H H) the first time; the head opens D (N H) and its weight (C H); l bits each way
    expected = 2 * ell * ((L * N * H_in + 3 * H * H_in) + (L * N * H + 3 * H * H) + (N * H + C * H))
    assert by_op["linear"]["online_bytes"] == expected / 8
    # sharing: party 0 sends one share of every parameter, party 1 one of its input; the output: both shares of C N
    n_params = sum(v.numel() for p in fx.layers for v in p.values()) + sum(v.numel() for v in fx.head.values())
    assert by_op["input"]["online_bytes"] == ell * (n_params + L * N * H_in) / 8
    assert by_op["output"]["online_bytes"] == 2 * ell * N * C / 8
    table = report.table("op")
    assert table.splitlines()[0].startswith("| op |") and "| total |" in table and "sigmoid" in table
    with pytest.raises(ValueError, match="key"):
        report.by("party")


# -- privacy: a party's received messages do not depend on the other party's secret ------------------------------------
def view(fx: FixedPointRNN, x: torch.Tensor, party: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ring element and every bit ``party`` received online, the output excepted (it is meant to be learnt)."""
    channel = secure_inference(fx, x, seed=seed, record=True).channel
    ring, bits = [], []
    for path, message in channel.views[party]:
        if path[0] != "output":
            (bits if message.dtype == torch.uint8 else ring).append(message.flatten())
    return torch.cat(ring), torch.cat(bits).long()


def z_squared(group_a: list[torch.Tensor], group_b: list[torch.Tensor], positions: list[int]) -> torch.Tensor:
    """For each message element and each chosen bit position: (p_A - p_B)^2 R / 0.5, where p is the fraction of runs
    with that bit set; for independent fair bits it is about chi-square with one degree of freedom (mean 1)."""
    a, b = torch.stack(group_a), torch.stack(group_b)  # (R, M)
    R = a.shape[0]
    out = []
    for p in positions:
        pa, pb = ((a >> p) & 1).double().mean(0), ((b >> p) & 1).double().mean(0)
        out.append((pa - pb) ** 2 * R / 0.5)
    return torch.cat(out)


def independence_statistics(secret_a, secret_b, party: int, runs: int) -> tuple[float, float, float]:
    """(mean and max of z^2 over the ring elements' bits 0, 31, 63, mean over the bit messages)."""
    views_a = [view(*secret_a, party, seed=s) for s in range(runs)]
    views_b = [view(*secret_b, party, seed=1000 + s) for s in range(runs)]
    z_ring = z_squared([v[0] for v in views_a], [v[0] for v in views_b], [0, 31, 63])
    z_bits = z_squared([v[1] for v in views_a], [v[1] for v in views_b], [0])
    return float(z_ring.mean()), float(z_ring.max()), float(z_bits.mean())


def two_models_and_inputs():
    torch.manual_seed(0)
    model_a = build_sensor_classifier("fastgrnn", hidden_size=2, num_classes=2)
    model_b = build_sensor_classifier("fastgrnn", hidden_size=2, num_classes=2)
    with torch.no_grad():
        for p in model_b.parameters():
            p.copy_(-3 * p + 0.5)  # very different weights
    fx_a = FixedPointRNN.from_float(model_a, frac_bits=8, bits=16, digit_bits=4)
    fx_b = FixedPointRNN.from_float(model_b, frac_bits=8, bits=16, digit_bits=4)
    x_a, x_b = torch.zeros(1, 2, 3), torch.full((1, 2, 3), 2.5)
    return fx_a, fx_b, x_a, x_b


RUNS = 16
# under independence z^2 has mean 1; a message that leaks a secret bit gives 2 R = 32 at that element
MEAN_LIMIT, MAX_LIMIT = 1.25, 2 * RUNS - 2


@pytest.mark.slow
def test_received_messages_do_not_depend_on_the_other_partys_secret():
    fx_a, fx_b, x_a, x_b = two_models_and_inputs()
    # party 1 (the data owner) sees the same distribution whichever model party 0 holds
    mean, top, bits = independence_statistics((fx_a, x_a), (fx_b, x_a), party=1, runs=RUNS)
    assert mean < MEAN_LIMIT and top < MAX_LIMIT and bits < MEAN_LIMIT
    # party 0 (the model owner) sees the same distribution whichever input party 1 holds
    mean, top, bits = independence_statistics((fx_a, x_a), (fx_a, x_b), party=0, runs=RUNS)
    assert mean < MEAN_LIMIT and top < MAX_LIMIT and bits < MEAN_LIMIT
    # and every ring element a party receives is uniform: each of its bytes
    ring, _ = view(fx_a, x_a, 1, seed=7)
    for byte in range(8):
        counts = torch.bincount((ring >> (8 * byte)) & 255, minlength=256).double()
        chi2 = float(((counts - ring.numel() / 256) ** 2 / (ring.numel() / 256)).sum())
        assert chi2 < 255 + 5 * math.sqrt(2 * 255)


@pytest.mark.slow
def test_the_independence_test_catches_a_dealer_without_masks(monkeypatch):
    fx_a, fx_b, x_a, _ = two_models_and_inputs()
    monkeypatch.setattr(Dealer, "ring", lambda self, shape: torch.zeros(tuple(shape), dtype=torch.long))
    result = secure_inference(fx_a, x_a, seed=0)  # still correct: zero masks are valid, just not secret
    assert torch.equal(result.output, fx_a.forward_int(fx_a.quantize_input(x_a)))
    runs = 8
    _, top, _ = independence_statistics((fx_a, x_a), (fx_b, x_a), party=1, runs=runs)
    assert top == 2 * runs  # the largest possible: the opened "masked" weights are now the weights themselves


def test_bad_input_raises_clear_errors():
    fx, x = random_model("gru", 0)
    with pytest.raises(TypeError, match="FixedPointRNN"):
        secure_inference(seqlib.GRU(3, 2), x)
    with pytest.raises(ValueError, match="H_in = 3"):
        secure_inference(fx, torch.randn(2, 3, 5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        secure_inference(fx, [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="ring_bits"):
        secure_inference(fx, x, ring_bits=4)
