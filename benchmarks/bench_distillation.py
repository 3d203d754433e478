"""Distillation on the sensor task: teacher vs student size, CPU latency and accuracy; the gain of each way of
distilling over the same student trained on labels alone, with its spread over seeds.

Everything is measured in this run (seqlib.distill_demo holds the data, the models and the recipe):

- the teacher: seqlib.distill_demo.sensor_teacher(), a 2-layer Transformer trained on 4000 labelled windows
  (loaded from the model cache, or trained there first and timed);
- the student: a 16-unit LSTM, trained from the same initial weights (per seed) with the same optimiser, schedule
  and number of steps by each method of seqlib.distill_demo.METHODS: labels only (120 labelled windows), soft
  targets on the same 120 windows, logit matching on 10 augmented copies of them, logit matching on 3000
  unlabelled windows, and, as a reference, the 120 + 3000 windows with their true labels;
- accuracy on 2000 test windows; multiply-adds per window of the matrix products (the teacher's checked against
  torch.utils.flop_counter); CPU latency per window: the median of classifying one window on one thread, for
  seqlib's model and for its torch.nn twin loaded with the same weights.

    python benchmarks/bench_distillation.py                    # 5 seeds, 1200 steps per student (1-3 minutes)
    python benchmarks/bench_distillation.py --steps 3000 --retrain-teacher
    python benchmarks/bench_distillation.py --quick            # 3 seeds, 300 steps, three methods (seconds)
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from _common import mean_sd, median_ms
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seqlib import distill_demo as E
from seqlib.cache import model_path
from seqlib.classifiers import RNNClassifier, TransformerClassifier
from seqlib.threads import torch_threads

_SOFT, _AUG = E.METHODS["soft"], E.METHODS["augmented"]
NAMES = {
    "labels": "labels only (120 windows)",
    "soft": f"soft targets, T = {_SOFT['temperature']:g}, alpha = {_SOFT['alpha']:g} (same 120)",
    "augmented": f"logit matching, 120 + {_AUG['copies']} augmented copies each",
    "unlabelled": "logit matching, 120 + 3000 unlabelled",
    "all_labels": "reference: 3120 windows with true labels",
}


def torch_teacher(model: TransformerClassifier) -> nn.Module:
    """The teacher rebuilt from torch.nn layers with the same weights (the fused reference for latency)."""

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_proj = model.input_proj
            self.layers = nn.ModuleList()
            for ours in model.layers:
                theirs = nn.TransformerEncoderLayer(model.d_model, ours.self_attn.num_heads,
                                                    ours.linear1.out_features, 0.0, activation="gelu",
                                                    batch_first=True, norm_first=True)
                theirs.load_state_dict(ours.state_dict(), strict=True)
                self.layers.append(theirs)
            self.norm = nn.LayerNorm(model.d_model)
            self.norm.load_state_dict(model.norm.state_dict(), strict=True)
            self.head = model.head
            self.register_buffer("pe", model.pos_encoding.pe.clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.input_proj(x) + self.pe[: x.shape[1]]  # (N, L, E)
            for layer in self.layers:
                h = layer(h)
            return self.head(self.norm(h).mean(1))  # (N, C)

    return Twin().eval()


def torch_student(model: RNNClassifier) -> nn.Module:
    """The student rebuilt on torch.nn.LSTM with the same weights."""

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(model.input_size, model.hidden_size, batch_first=True)
            self.rnn.load_state_dict(model.rnn.state_dict(), strict=True)
            self.head = model.head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, (h_n, _) = self.rnn(x)
            return self.head(h_n[-1])

    return Twin().eval()


@torch_threads(1)
@torch.no_grad()
def latencies_ms(models: dict[str, nn.Module], x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median ms of ``model(x)`` without gradients; the models take turns so that load changes hit them alike."""
    return median_ms({k: lambda m=m: m(x) for k, m in models.items()}, warmup=5, repeats=repeats)


def counted_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of the matrix products torch dispatches (it does not see inside seqlib's fused LSTM function)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


def transformer_macs(model: TransformerClassifier, L: int) -> int:
    """Multiply-adds of the matrix products for one window of L steps."""
    d, layer = model.d_model, model.layers[0]
    ff, F_in, C = layer.linear1.out_features, model.input_proj.in_features, model.head.out_features
    per_layer = L * d * 3 * d + 2 * L * L * d + L * d * d + 2 * L * d * ff  # q, k, v; scores and mix; out; FF
    return L * F_in * d + len(model.layers) * per_layer + d * C


def lstm_macs(model: RNNClassifier, L: int) -> int:
    """Multiply-adds of the matrix products for one window of L steps (one layer, one direction)."""
    H, F_in, C = model.hidden_size, model.input_size, model.head.out_features
    return L * 4 * H * (F_in + H) + H * C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=1200, help="optimiser steps per student")
    parser.add_argument("--methods", nargs="+", default=list(E.METHODS), choices=list(E.METHODS))
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per latency figure")
    parser.add_argument("--quick", action="store_true", help="3 seeds, 300 steps, labels / soft / unlabelled only")
    parser.add_argument("--retrain-teacher", action="store_true", help="train the teacher again (and time it)")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.methods, args.repeats = [0, 1, 2], 300, ["labels", "soft", "unlabelled"], 50
    if len(args.seeds) < 3:
        parser.error("the spread over seeds needs at least 3 seeds")
    torch.set_num_threads(1)

    cached = model_path(E.TEACHER_NAME).exists() and not args.retrain_teacher
    start = time.perf_counter()
    teacher = E.sensor_teacher(retrain=args.retrain_teacher)
    teacher_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = E.compare(seeds=args.seeds, methods=args.methods, teacher=teacher, steps=args.steps)
    total = time.perf_counter() - start

    splits = E.sensor_splits(n_labelled=1, n_unlabelled=1, n_test=1, n_teacher=1)
    x = splits["test"].inputs[:1]  # (1, L, 3): one window
    student = E.build_student().eval()
    models = {"teacher": teacher, "teacher_torch": torch_teacher(teacher), "student": student,
              "student_torch": torch_student(student)}
    with torch.no_grad():  # the twins compute the same logits
        assert torch.allclose(models["teacher"](x), models["teacher_torch"](x), atol=1e-5)
        assert torch.allclose(models["student"](x), models["student_torch"](x), atol=1e-5)
    ms = latencies_ms(models, x, args.repeats)
    L = x.shape[1]
    macs = {"teacher": transformer_macs(teacher, L), "student": lstm_macs(student, L)}
    assert 2 * macs["teacher"] == counted_flops(teacher, x)  # the formula agrees with torch's own count

    acc = result["accuracy"]
    print(f"\n## Knowledge distillation on the sensor task (L = {E.SEQ_LEN}, 6 classes), seeds {args.seeds}, "
          f"{args.steps} steps per student, torch {torch.__version__}, 1 thread\n")
    print(f"Teacher {'loaded from the cache' if cached else 'trained and cached'} in {teacher_seconds:.1f} s; "
          f"students trained and tested in {total:.0f} s.\n")
    print("| model | parameters | multiply-adds / window | CPU ms / window (seqlib) | (torch.nn twin) | "
          "test accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    t = result["teacher"]
    print(f"| teacher: Transformer, 2 layers x 32 (4000 labels) | {t['parameters']:,} | {macs['teacher']:,} | "
          f"{ms['teacher']:.3f} | {ms['teacher_torch']:.3f} | {t['accuracy']:.3f} |")
    s = result["student"]
    for i, method in enumerate(args.methods):
        size = (f"{s['parameters']:,} | {macs['student']:,} | {ms['student']:.3f} | {ms['student_torch']:.3f}"
                if i == 0 else "〃 | 〃 | 〃 | 〃")
        print(f"| student: LSTM-16, {NAMES[method]} | {size} | {mean_sd(acc[method], '{:.3f}')} |")
    print(f"\nTeacher / student: {t['parameters'] / s['parameters']:.1f}x the parameters, "
          f"{macs['teacher'] / macs['student']:.1f}x the multiply-adds, "
          f"latency ratio {ms['teacher'] / ms['student']:.2f} "
          f"(seqlib) and {ms['teacher_torch'] / ms['student_torch']:.2f} (torch.nn).\n")

    if "labels" in acc:
        print("| method | steps | gain over labels only (mean ± sd over seeds, paired) | min .. max | "
              "seeds with a gain | s / student |")
        print("|---|---:|---:|---:|---:|---:|")
        for method in args.methods:
            if method == "labels":
                continue
            gains = [a - b for a, b in zip(acc[method], acc["labels"], strict=True)]
            wins = sum(g > 0 for g in gains)
            print(f"| {NAMES[method]} | {result['steps'][method]} | {mean_sd(gains, '{:.3f}')} | {min(gains):+.3f} .. "
                  f"{max(gains):+.3f} | {wins}/{len(gains)} | {statistics.mean(result['seconds'][method]):.1f} |")
        print(f"\n(labels only: {result['steps']['labels']} steps, "
              f"{statistics.mean(result['seconds']['labels']):.1f} s / student)")
    gap = result["teacher"]["accuracy"] - statistics.mean(acc.get("labels", [math.nan]))
    print(f"\nTeacher minus the label-only student: {gap:+.3f}.")


if __name__ == "__main__":
    main()
