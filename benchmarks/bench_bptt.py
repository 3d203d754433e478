"""The manual-BPTT fast path against torch.nn's fused kernels and against autograd, forward+backward on the CPU.

For each size it times, in this process and on the same weights and inputs:

- ``torch``    torch.nn.LSTM (GRU, RNN): the fused oneDNN/ATen kernel;
- ``seqlib``   seqlib.LSTM (GRU, RNN), which runs through seqlib.bptt_fast's autograd.Function (manual BPTT);
- ``function`` seqlib.bptt_fast.lstm_sequence (gru_sequence, rnn_sequence) called directly;
- ``plain``    seqlib.bptt.lstm_forward + lstm_backward (gru_*, rnn_*): the BPTT the lecture reads, a line per
  equation, which computes the same numbers as the fast path;
- ``autograd`` a plain loop over time of seqlib.rnn's step function, differentiated by autograd.

Each figure is the median of ``--repeats`` timed runs after ``--warmup`` untimed ones; the contestants take turns
run by run, so a change in machine load hits them alike. Ratios are ``x / torch``; the targets of the course are
``seqlib`` <= 1.25x at hidden 256 and <= 2x at hidden 128 (LSTM, T=100, B=32, input 64, float32). The table is
markdown.

    python benchmarks/bench_bptt.py                      # LSTM at the target sizes, 1 thread
    python benchmarks/bench_bptt.py --threads 2 --repeats 21 --kinds LSTM GRU RNN
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _common import median_ms

import seqlib
from seqlib import bptt, bptt_fast
from seqlib.rnn import gru_step, lstm_step, rnn_step

# (T, B, H_in, H, target ratio of seqlib / torch)
SIZES = [(100, 32, 64, 256, 1.25), (100, 32, 64, 128, 2.0)]


def autograd_loop(kind: str, x, h0, w_ih, w_hh, b_ih, b_hh):
    """The baseline: the step equations in a Python loop, backpropagated by autograd's unrolled graph."""
    gi = F.linear(x, w_ih, b_ih)  # (T, N, G*H) all input projections at once
    h, c, outs = h0, h0, []
    for t in range(x.shape[0]):
        if kind == "LSTM":
            h, c = lstm_step(gi[t], h, c, w_hh, b_hh)
        elif kind == "GRU":
            h = gru_step(gi[t], h, w_hh, b_hh)
        else:
            h = rnn_step(gi[t], h, w_hh, b_hh)
        outs.append(h)
    return torch.stack(outs)  # (T, N, H)


def fast_function(kind: str, x, h0, w_ih, w_hh, b_ih, b_hh):
    if kind == "LSTM":
        return bptt_fast.lstm_sequence(x, h0, h0, w_ih, w_hh, b_ih, b_hh)[0]
    if kind == "GRU":
        return bptt_fast.gru_sequence(x, h0, w_ih, w_hh, b_ih, b_hh)[0]
    return bptt_fast.rnn_sequence(x, h0, w_ih, w_hh, b_ih, b_hh)[0]


def plain_bptt(kind: str, x, h0, w_ih, w_hh, b_ih, b_hh) -> None:
    """seqlib.bptt's forward and backward (no autograd), with the gradient of ``out.sum()`` flowing in."""
    w = [t.detach() for t in (w_ih, w_hh, b_ih, b_hh)]
    if kind == "LSTM":
        out, _, _, cache = bptt.lstm_forward(x, h0, h0, *w)
        bptt.lstm_backward(cache, torch.ones_like(out))
    elif kind == "GRU":
        out, _, cache = bptt.gru_forward(x, h0, *w)
        bptt.gru_backward(cache, torch.ones_like(out))
    else:
        out, _, cache = bptt.rnn_forward(x, h0, *w)
        bptt.rnn_backward(cache, torch.ones_like(out))


def bench(kind: str, T: int, B: int, H_in: int, H: int, warmup: int, repeats: int, baseline: bool) -> dict[str, float]:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(H_in, H)
    ours = getattr(seqlib, kind)(H_in, H)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(T, B, H_in)
    weights = [getattr(ours, f"{n}_l0") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    h0 = torch.zeros(B, H)

    def module(m: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            x_leaf = x.clone().requires_grad_(True)
            out, _ = m(x_leaf)
            out.sum().backward()
            m.zero_grad(set_to_none=True)
        return run

    def function(fn: Callable[..., torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            x_leaf = x.clone().requires_grad_(True)
            fn(kind, x_leaf, h0, *weights).sum().backward()
            ours.zero_grad(set_to_none=True)
        return run

    # sanity: the same numbers before timing them
    x_check = x.clone().requires_grad_(True)
    out_t, _ = theirs(x_check)
    out_s = fast_function(kind, x, h0, *weights)
    torch.testing.assert_close(out_s, out_t, rtol=1e-4, atol=1e-5)

    fns = {"torch": module(theirs), "seqlib": module(ours), "function": function(fast_function)}
    if baseline:
        fns["plain"] = lambda: plain_bptt(kind, x, h0, *weights)
        fns["autograd"] = function(autograd_loop)
    return median_ms(fns, warmup, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both sides (default 1)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=["LSTM"], choices=["LSTM", "GRU", "RNN"])
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the (slower) plain-BPTT and autograd-loop baselines")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()} (both sides), float32, "
          f"forward+backward, median of {args.repeats} after {args.warmup} warm-up runs, contestants interleaved; "
          f"times in ms; ratio = x / torch\n")
    columns = ["torch", "seqlib", "function"] + ([] if args.no_baseline else ["plain", "autograd"])
    print("| kind | T | B | H_in | H | " + " | ".join(f"{c} ms" for c in columns) + " | "
          + " | ".join(f"{c}/torch" for c in columns[1:]) + " | target |")
    print("|" + " --- |" * (5 + 2 * len(columns) - 1 + 1))
    for kind in args.kinds:
        for T, B, H_in, H, target in SIZES:
            ms = bench(kind, T, B, H_in, H, args.warmup, args.repeats, not args.no_baseline)
            ratio = ms["seqlib"] / ms["torch"]
            verdict = f"<= {target:.2f}x: {'met' if ratio <= target else 'NOT met'}" if kind == "LSTM" else ""
            print(f"| {kind} | {T} | {B} | {H_in} | {H} | " + " | ".join(f"{ms[c]:.1f}" for c in columns) + " | "
                  + " | ".join(f"{ms[c] / ms['torch']:.2f}x" for c in columns[1:]) + f" | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
