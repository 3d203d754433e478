"""seqlib's multi-head attention and Transformer encoder layer against torch.nn, on the CPU, in one run.

What is measured (both sides on the same machine, same process, same weights and inputs):

1. ``MultiheadAttention`` forward + backward, self-attention with a causal mask and ``need_weights=False``,
   at B=32, E=256, 8 heads, L=128 (target: seqlib <= 1.25x torch) and L=512 (reported). torch gets the causal
   mask *and* ``is_causal=True``, which lets it use its fused causal kernel (its fastest path); seqlib gets the
   same arguments.
2. A ``TransformerEncoderLayer`` training step (forward + backward + ``AdamW.step``) at B=32, L=128, E=256,
   8 heads, ``dim_feedforward=1024``, ``dropout=0.1``, ``batch_first=True``, causal ``src_mask``, post-norm
   (target: <= 1.25x) and pre-norm (reported).

Timing: warm-up calls first, then ``--repeats`` rounds in which the two sides alternate (so a busy machine
slows both alike); the figure is the median wall-clock time per call, the ratio is seqlib / torch.

Peak memory: each (side, L) runs in a fresh subprocess that initialises torch with a small warm-up call and
builds the module and input; then the resident-set high-water mark is reset (``echo 5 > /proc/self/clear_refs``),
the current resident size is read (``VmRSS`` in ``/proc/self/status``), one forward + backward runs, and the
high-water mark (``VmHWM``) is read. The difference is the peak extra resident memory of that step: the
activations kept for backward plus the largest temporaries. (``tracemalloc`` cannot see torch's allocations;
large tensors are ``mmap``-ed by the allocator and returned to the system when freed, so the high-water mark
follows the live tensors. ``ru_maxrss`` is not used: Linux carries the parent's peak over into a child.)
Without ``/proc`` (not Linux) the memory figures are skipped.

    python benchmarks/bench_attention.py                 # everything, default repeats
    python benchmarks/bench_attention.py --quick         # fewer repeats
    python benchmarks/bench_attention.py --threads 1     # torch.set_num_threads(1)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import seqlib  # noqa: E402

B, E, HEADS, FF = 32, 256, 8, 1024
TARGET = 1.25


def interleaved(fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, the functions alternating within every round."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeats):
        order = list(fns.items()) if r % 2 == 0 else list(reversed(fns.items()))
        for name, f in order:
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def mha_pair(L: int) -> tuple[Callable[[], None], Callable[[], None]]:
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(E, HEADS, batch_first=True)
    ours = seqlib.MultiheadAttention(E, HEADS, batch_first=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(B, L, E, requires_grad=True)
    mask = nn.Transformer.generate_square_subsequent_mask(L)

    def step(m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            out = m(x, x, x, attn_mask=mask, need_weights=False, is_causal=True)[0]
            out.sum().backward()
        return run

    return step(theirs), step(ours)


def encoder_pair(norm_first: bool, L: int = 128) -> tuple[Callable[[], None], Callable[[], None]]:
    torch.manual_seed(0)
    kw = {"dim_feedforward": FF, "dropout": 0.1, "batch_first": True, "norm_first": norm_first}
    theirs = nn.TransformerEncoderLayer(E, HEADS, **kw)
    ours = seqlib.TransformerEncoderLayer(E, HEADS, **kw)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(B, L, E)
    mask = nn.Transformer.generate_square_subsequent_mask(L)

    def step(m: nn.Module) -> Callable[[], None]:
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)

        def run() -> None:
            opt.zero_grad(set_to_none=True)
            m(x, src_mask=mask, is_causal=True).square().mean().backward()
            opt.step()
        return run

    return step(theirs), step(ours)


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(side: str, L: int, threads: int) -> None:
    """Runs in a fresh process: print the peak extra resident memory (KiB) of one forward + backward."""
    torch.set_num_threads(threads)
    small_t, small_o = mha_pair(8)
    (small_t if side == "torch" else small_o)()  # initialise torch's kernels and thread pool
    run_t, run_o = mha_pair(L)
    run = run_t if side == "torch" else run_o
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current VmRSS
    before = _proc_status_kib("VmRSS")
    run()
    print(json.dumps({"kib": _proc_status_kib("VmHWM") - before}))


def peak_memory_mib(side: str, L: int, threads: int) -> float | None:
    if not Path("/proc/self/clear_refs").exists():
        return None
    out = subprocess.run([sys.executable, __file__, "--memory-child", side, str(L), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["kib"] / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="5 repeats, L=512 with 3")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if a target is missed")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        side, L, threads = args.memory_child
        _memory_child(side, int(L), int(threads))
        return 0
    torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch.get_num_threads() = {torch.get_num_threads()}, repeats = {repeats} (interleaved, medians)")
    if hasattr(os, "getloadavg"):
        print("load average at start (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    missed = []

    print(f"\nMultiheadAttention forward+backward, causal, need_weights=False, B={B}, E={E}, heads={HEADS}")
    for L, reps, target in [(128, repeats, TARGET), (512, max(3, repeats // 3), None)]:
        t_fn, o_fn = mha_pair(L)
        med = interleaved({"torch": t_fn, "seqlib": o_fn}, reps, warmup=1 if L > 128 else 2)
        ratio = med["seqlib"] / med["torch"]
        verdict = "" if target is None else (" (target <= 1.25: " + ("met)" if ratio <= target else "MISSED)"))
        if target is not None and ratio > target:
            missed.append(f"MHA L={L}")
        print(f"  L={L:4d}: torch {med['torch'] * 1e3:8.1f} ms   seqlib {med['seqlib'] * 1e3:8.1f} ms   "
              f"ratio {ratio:.2f}{verdict}")
        mt, mo = (None, None) if args.no_memory else (peak_memory_mib(s, L, args.threads) for s in ("torch", "seqlib"))
        if mt is not None and mo is not None:
            print(f"          peak extra resident memory of one step: torch {mt:7.1f} MiB   "
                  f"seqlib {mo:7.1f} MiB   ratio {mo / max(mt, 1e-9):.2f}")

    print(f"\nTransformerEncoderLayer training step (forward+backward+AdamW), B={B}, L=128, E={E}, heads={HEADS}, "
          f"dim_feedforward={FF}, dropout=0.1, causal src_mask")
    for norm_first, target in [(False, TARGET), (True, None)]:
        t_fn, o_fn = encoder_pair(norm_first)
        med = interleaved({"torch": t_fn, "seqlib": o_fn}, repeats)
        ratio = med["seqlib"] / med["torch"]
        verdict = "" if target is None else (" (target <= 1.25: " + ("met)" if ratio <= target else "MISSED)"))
        if target is not None and ratio > target:
            missed.append(f"encoder layer norm_first={norm_first}")
        print(f"  norm_first={norm_first!s:5}: torch {med['torch'] * 1e3:8.1f} ms   "
              f"seqlib {med['seqlib'] * 1e3:8.1f} ms   ratio {ratio:.2f}{verdict}")
    if hasattr(os, "getloadavg"):
        print("\nload average at end (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    if missed:
        print("missed targets: " + ", ".join(missed))
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
