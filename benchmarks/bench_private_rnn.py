"""Fixed-point and secret-shared inference of the sensor classifier: accuracy, time, bytes; tables against generic math.

Everything is measured in this run, on one CPU thread:

1. accuracy of the trained classifier (``seqlib.sensor_models.sensor_classifier``, cached after the first run) on
   1000 fresh windows, in float and in fixed point at 16/12/8/6/4 fractional bits (storage ``f + 8`` bits) with
   8/6/4-bit digit tables (256/64/16 entries);
2. two-party inference (``seqlib.secure_rnn.secure_inference``) of the same model at 12 fractional bits and 8-bit
   tables: checked equal to the cleartext integers, time per sequence against the cleartext fixed-point model,
   bytes and rounds per sequence, and where the bytes go;
3. the math functions alone, SIRNN's tables against CrypTen's recipes at equal fractional bits: largest error on
   [-8, 8] and communication per element.

    python benchmarks/bench_private_rnn.py            # GRU and FastGRNN, the full tables (a few minutes)
    python benchmarks/bench_private_rnn.py --quick    # GRU only, fewer settings
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import median_ms

from seqlib import lut
from seqlib import secure_math as sm
from seqlib.classifiers import accuracy
from seqlib.data import sensor_activity
from seqlib.fixedpoint_rnn import FixedPointRNN
from seqlib.secure_rnn import secure_inference
from seqlib.sensor_models import fixed_point_accuracy, sensor_classifier


def accuracy_table(kinds, frac_bits, digit_bits, test) -> None:
    print("\n### Accuracy of the sensor classifier (1000 test windows, 6 classes)\n")
    header = "| model | float | " + " | ".join(f"f={f}" for f in frac_bits) + " |"
    print(header)
    print("|---|---:|" + "---:|" * len(frac_bits))
    for kind in kinds:
        model = sensor_classifier(kind)
        float_acc = accuracy(model, test)
        acc = fixed_point_accuracy(model, test.inputs, test.targets, tuple(frac_bits), tuple(digit_bits))
        for d in digit_bits:
            cells = " | ".join(f"{100 * acc[(f, d)]:.1f}" for f in frac_bits)
            print(f"| {kind}, {2**d}-entry tables (d={d}) | {100 * float_acc:.1f} | {cells} |")


def secure_table(kinds, batch, repeats, test) -> None:
    print(f"\n### Two-party inference, f=12, 8-bit tables, {batch} sequences of 32 steps at once\n")
    print("| model | equal to cleartext | 2PC s / seq | cleartext ms / seq | ratio | online kB / seq | "
          "offline MB / seq | rounds (whole run) | math functions' share |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    reports = {}
    for kind in kinds:
        fx = FixedPointRNN.from_float(sensor_classifier(kind), frac_bits=12, bits=20, digit_bits=8)
        x = test.inputs[:batch]
        q = fx.quantize_input(x)
        result = secure_inference(fx, q, seed=0)
        equal = torch.equal(result.output, fx.forward_int(q))
        t_secure = median_ms({"2pc": lambda fx=fx, q=q: secure_inference(fx, q, seed=1)}, 0, repeats)["2pc"]
        t_clear = median_ms({"clear": lambda fx=fx, q=q: fx.forward_int(q)}, 0, 5 * repeats)["clear"]
        t_secure, t_clear = t_secure / 1e3 / batch, t_clear / 1e3 / batch  # seconds per sequence
        r = result.report
        by_op = r.by("op")
        share = sum(by_op.get(k, {}).get("online_share", 0.0) for k in ("sigmoid", "tanh"))
        print(f"| {kind} | {'yes' if equal else 'NO'} | {t_secure:.2f} | {1e3 * t_clear:.2f} | "
              f"{t_secure / t_clear:.0f}x | {r.online_bytes / batch / 1e3:.0f} | {r.offline_bytes / batch / 1e6:.1f} | "
              f"{r.rounds} | {100 * share:.0f} % |")
        reports[kind] = r
    for kind, r in reports.items():
        print(f"\n{kind}: where the bytes go (per sequence)\n")
        print(r.table("op"))


def functions_table(frac_bits) -> None:
    print("\n### The math functions alone: tables (d=8) against the generic recipes, per element\n")
    print("| function | f | method | largest error on [-8, 8] | online B | offline kB | rounds |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name in ("exp", "sigmoid", "tanh"):
        for f in frac_bits:
            for kind in ("lut", "generic"):
                method = f"{name}_{kind}"
                err = float(lut.function_error(method, f)["max_error"])
                cost = sm.function_cost(method, f, 8)
                label = "SIRNN tables" if kind == "lut" else "CrypTen recipe"
                print(f"| {name} | {f} | {label} | {err:.1e} | {cost['online_bytes']:.0f} | "
                      f"{cost['offline_bytes'] / 1e3:.1f} | {cost['rounds']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="GRU only, fewer settings")
    parser.add_argument("--batch", type=int, default=8, help="sequences per secure run (default 8)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    kinds = ["gru"] if args.quick else ["gru", "fastgrnn"]
    frac_bits = [12, 8, 4] if args.quick else [16, 12, 8, 6, 4]
    digit_bits = [8, 4] if args.quick else [8, 6, 4]
    test = sensor_activity(1000, seq_len=32, seed=123)
    print(f"torch {torch.__version__}, 1 thread; models: hidden 16, trained on 2000 windows of 32 steps "
          f"(cached after the first run)")
    start = time.perf_counter()
    accuracy_table(kinds, frac_bits, digit_bits, test)
    secure_table(kinds, 2 if args.quick else args.batch, 1 if args.quick else args.repeats, test)
    functions_table([8, 12] if args.quick else [8, 12, 16])
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
