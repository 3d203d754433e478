"""Spiking networks: seqlib.spiking.LIF against snnTorch, a spiking RNN against a GRU on the sensor task, STDP features.

1. **Speed.** Forward+backward time of ``seqlib.spiking.LIF`` (its hand-written BPTT, and the plain autograd loop
   with ``fast=False``) against snnTorch on the same sequence, weights and settings (fast-sigmoid surrogate, reset by
   subtraction). snnTorch is given its best case: the input projection
   ``nn.Linear`` of all steps at once, then ``snn.RLeaky`` (recurrent) or ``snn.Leaky`` step by step. Each figure is
   the median of ``--repeats`` runs after ``--warmup``, the two taking turns; ratio = seqlib / snnTorch, target
   <= 1.0x.
2. **Sensor task** (``seqlib.neuromorphic.compare_on_sensor``, several seeds, mean ± standard deviation): test
   accuracy, firing rate and the operations per window of a recurrent spiking net (LIF, learned per-neuron decay) fed
   the readings as current or as delta spikes, and of a GRU of the same hidden size.
3. **STDP** (``seqlib.stdp.WTALayer``): accuracy on held-out 8x8 digits of a winner-take-all layer trained without
   labels, its neurons labelled afterwards by the class they fire most for.

    python benchmarks/bench_spiking.py            # the full run, a few minutes on 2 cores
    python benchmarks/bench_spiking.py --quick    # one seed, fewer epochs
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import snntorch as snn
import torch
from _common import mean_sd, median_ms
from snntorch import surrogate

from seqlib.data import digits_8x8
from seqlib.neuromorphic import compare_on_sensor
from seqlib.spiking import LIF
from seqlib.stdp import WTALayer, assign_labels, predict_labels

# (L, N, H_in, H, recurrent)
SIZES = [(64, 64, 3, 64, True), (100, 32, 32, 128, True), (100, 32, 32, 128, False), (200, 16, 16, 256, True)]


def bench_speed(L: int, N: int, H_in: int, H: int, recurrent: bool, warmup: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    ours = LIF(H_in, H, beta=0.9, recurrent=recurrent)
    plain = LIF(H_in, H, beta=0.9, recurrent=recurrent, fast=False)
    plain.load_state_dict(ours.state_dict())
    fc = torch.nn.Linear(H_in, H)
    grad = surrogate.fast_sigmoid(slope=25)
    neuron = snn.RLeaky(beta=0.9, linear_features=H, spike_grad=grad) if recurrent else snn.Leaky(beta=0.9,
                                                                                                  spike_grad=grad)
    with torch.no_grad():
        fc.weight.copy_(ours.weight_ih)
        fc.bias.copy_(ours.bias_ih)
        if recurrent:
            neuron.recurrent.weight.copy_(ours.weight_hh)
            neuron.recurrent.bias.copy_(ours.bias_hh)
    x = 2 * torch.randn(L, N, H_in)

    def theirs_forward(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        current = fc(inp)  # (L, N, H) all steps at once
        spk, mem = torch.zeros(N, H), torch.zeros(N, H)
        spikes, membranes = [], []
        for t in range(L):
            spk, mem = neuron(current[t], spk, mem) if recurrent else neuron(current[t], mem)
            spikes.append(spk)
            membranes.append(mem)
        return torch.stack(spikes), torch.stack(membranes)

    s_ref, u_ref = theirs_forward(x)  # sanity: the same numbers before timing them
    for model in (ours, plain):
        s, u = model(x)
        assert torch.equal(s, s_ref), "spikes differ from snnTorch's"
        torch.testing.assert_close(u, u_ref, rtol=1e-4, atol=1e-4)

    def run(forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], module: torch.nn.Module):
        def go() -> None:
            inp = x.clone().requires_grad_(True)
            spikes, membranes = forward(inp)
            (spikes.sum() + membranes.sum()).backward()
            module.zero_grad(set_to_none=True)
        return go

    both = torch.nn.ModuleList([fc, neuron])
    return median_ms({"snntorch": run(theirs_forward, both), "seqlib": run(ours, ours), "plain": run(plain, plain)},
                     warmup, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, fewer epochs and repeats")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for everything (default 1)")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    repeats = 5 if args.quick else args.repeats
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, snntorch {snn.__version__}, {torch.get_num_threads()} thread(s), float32\n")

    print("## 1. LIF forward+backward: seqlib.spiking.LIF vs snnTorch (same weights, fast-sigmoid surrogate)\n")
    print(f"median of {repeats} runs after {args.warmup} warm-up runs, interleaved; ratio = seqlib / snnTorch, "
          "target <= 1.0x\n")
    print("`seqlib` is `LIF(...)` (hand-written BPTT, `seqlib.spiking_bptt`); `plain` is `LIF(..., fast=False)`, the "
          "loop of `lif_step` differentiated by autograd\n")
    print("| L | N | H_in | H | recurrent | snnTorch (ms) | seqlib (ms) | plain (ms) | seqlib / snnTorch | "
          "plain / snnTorch |")
    print("|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|")
    for L, N, H_in, H, recurrent in SIZES:
        ms = bench_speed(L, N, H_in, H, recurrent, args.warmup, repeats)
        ratio = ms["seqlib"] / ms["snntorch"]
        flag = "" if ratio <= 1.0 else " (target NOT met)"
        print(f"| {L} | {N} | {H_in} | {H} | {'yes' if recurrent else 'no'} | {ms['snntorch']:.1f} | "
              f"{ms['seqlib']:.1f} | {ms['plain']:.1f} | {ratio:.2f}x{flag} | {ms['plain'] / ms['snntorch']:.2f}x |",
              flush=True)

    epochs, snn_epochs, n_train = (5, 8, 1000) if args.quick else (15, 25, 2000)
    print(f"\n## 2. Sensor task: spiking RNN vs GRU, hidden 64, six classes, windows of 64 steps; {n_train} training "
          f"and 1000 test windows; GRU {epochs} epochs, spiking {snn_epochs}; seeds {seeds} (mean ± std)\n")
    runs: dict[str, list[dict[str, float]]] = {"current": [], "delta": []}
    for seed in seeds:
        for encoding in runs:
            runs[encoding].append(compare_on_sensor(seed, encoding=encoding, epochs=epochs, spiking_epochs=snn_epochs,
                                                    n_train=n_train))
    gru = runs["current"]
    print("| model | test accuracy (%) | firing rate (%) | MACs / window | ACs (SynOps) / window | "
          "arithmetic energy / window (nJ) | training (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| GRU | {mean_sd([r['gru_accuracy'] for r in gru], scale=100)} | – | "
          f"{gru[0]['gru_macs']:,.0f} | 0 | {gru[0]['gru_energy_pj'] / 1000:.0f} | "
          f"{mean_sd([r['gru_seconds'] for r in gru])} |")
    for encoding, label in (("current", "spiking, readings as current"), ("delta", "spiking, delta spikes in")):
        rs = runs[encoding]
        print(f"| {label} | {mean_sd([r['snn_accuracy'] for r in rs], scale=100)} | "
              f"{mean_sd([r['firing_rate'] for r in rs], scale=100)} | {rs[0]['snn_macs']:,.0f} | "
              f"{mean_sd([r['snn_acs'] for r in rs], fmt='{:,.0f}')} | "
              f"{mean_sd([r['snn_energy_pj'] / 1000 for r in rs])} | "
              f"{mean_sd([r['snn_seconds'] for r in rs])} |", flush=True)
    ratio = [r["gru_macs"] / (r["snn_acs"] + r["snn_macs"]) for r in runs["current"]]
    print(f"\nGRU multiply-adds / spiking operations (current input): {mean_sd(ratio)}x; energy 45 nm estimate "
          f"(MAC 4.6 pJ, add 0.9 pJ, memory traffic left out).")

    print("\n## 3. STDP: winner-take-all layer on the 8x8 digits, no labels during learning\n")
    data = digits_8x8()
    x, y = data.inputs.reshape(-1, 64), data.targets
    neurons, passes = (30, 1) if args.quick else (50, 2)
    accs, secs = [], []
    for seed in seeds:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        train, test = order[:1200], order[1200:]
        start = time.perf_counter()
        wta = WTALayer(64, neurons, seed=seed).fit(x[train], epochs=passes, seed=seed)
        secs.append(time.perf_counter() - start)
        labels = assign_labels(wta.spike_counts(x[train], seed=seed + 1), y[train], 10)
        predicted = predict_labels(wta.spike_counts(x[test], seed=seed + 2), labels, 10)
        accs.append(float((predicted == y[test]).float().mean()))
    print("| neurons | passes over 1,200 digits | held-out accuracy (%) | training (s) |")
    print("|---:|---:|---:|---:|")
    print(f"| {neurons} | {passes} | {mean_sd(accs, scale=100)} | {mean_sd(secs)} |")


if __name__ == "__main__":
    main()
