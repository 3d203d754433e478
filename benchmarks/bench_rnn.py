"""seqlib's RNN/LSTM/GRU against torch.nn's fused kernels: forward and forward+backward wall time.

Both run in this process on the same weights and inputs, so the ratios are measured under the same conditions.
Each figure is the median of ``--repeats`` timed runs after ``--warmup`` untimed ones; torch and seqlib take
turns run by run, so a change in machine load hits both alike.

    python benchmarks/bench_rnn.py                 # the default sizes, float32, 1 thread
    python benchmarks/bench_rnn.py --threads 2 --repeats 9
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import median_ms

import seqlib

# (T, B, H_in, H): sequence length, batch size, input features, hidden size
SIZES = [(50, 16, 32, 64), (100, 32, 64, 128), (100, 32, 64, 256)]
KINDS = ["RNN", "LSTM", "GRU"]


def bench(kind: str, T: int, B: int, H_in: int, H: int, dtype: torch.dtype, warmup: int, repeats: int) -> dict:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(H_in, H).to(dtype)
    ours = getattr(seqlib, kind)(H_in, H).to(dtype)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(T, B, H_in, dtype=dtype)
    with torch.no_grad():  # sanity: the same numbers before timing them
        torch.testing.assert_close(ours(x)[0], theirs(x)[0], rtol=1e-4, atol=1e-5)

    def forward(module):
        def run():
            with torch.no_grad():
                module(x)
        return run

    def forward_backward(module):
        def run():
            x_leaf = x.clone().requires_grad_(True)
            out, _ = module(x_leaf)
            out.sum().backward()
            module.zero_grad(set_to_none=True)
        return run

    row = {}
    for p, make in (("fwd", forward), ("fwd+bwd", forward_backward)):
        for label, ms in median_ms({"torch": make(theirs), "seqlib": make(ours)}, warmup, repeats).items():
            row[(p, label)] = ms
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}, dtype {args.dtype}, "
          f"median of {args.repeats} after {args.warmup} warm-up runs; times in ms; ratio = seqlib / torch")
    header = (f"{'model':<6} {'T':>4} {'B':>4} {'H_in':>5} {'H':>5} | "
              f"{'pass':<8} {'torch':>9} {'seqlib':>9} {'ratio':>7}")
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    for kind in KINDS:
        for T, B, H_in, H in SIZES:
            row = bench(kind, T, B, H_in, H, dtype, args.warmup, args.repeats)
            for p in ("fwd", "fwd+bwd"):
                t, s = row[(p, "torch")], row[(p, "seqlib")]
                print(f"{kind:<6} {T:>4} {B:>4} {H_in:>5} {H:>5} | {p:<8} {t:>9.2f} {s:>9.2f} {s / t:>7.2f}")
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
