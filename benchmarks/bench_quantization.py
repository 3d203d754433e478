"""Quantizing a sequence classifier trained on long-tailed data: size, latency, overall and worst-class accuracy.

For each seed it trains the float classifier of seqlib.quant_demo (an LSTM over 64 accelerometer readings,
classes 2000/500/100/20 windows, class-balanced loss), then quantizes it at 8, 4 and 2 bits with every scheme of
seqlib.quant_demo.SCHEMES (weights and layer inputs), and measures on the balanced test set (200 windows a class):

- ``size``      bytes of the parameters (quantized weights packed at b bits, a float32 scale + int32 zero-point per
                grid, float32 biases), seqlib.qat.model_size_bytes;
- ``overall``   accuracy on the balanced test set (= mean of the class accuracies);
- ``worst``     the lowest class accuracy (mostly the rarest class's);

as mean ± standard deviation over the seeds. A second table times inference of one batch (64 windows) on one
thread: the float model (seqlib.LSTM, and its torch.nn.LSTM twin with the same weights), the fake-quantized model
(float arithmetic on an 8-bit grid, what QAT runs), seqlib's 8-bit dynamic path (seqlib.dynamic_quant, integer
products in float64, written for reading) and torch's int8 kernels (torch.ao.quantization.quantize_dynamic, where
this torch still has them), with ratios to the seqlib float model and how often each predicts what it predicts.

    python benchmarks/bench_quantization.py            # 3 seeds, about 4 minutes on one core
    python benchmarks/bench_quantization.py --quick    # 1 seed, 4 and 2 bits, about 1 minute
    python benchmarks/bench_quantization.py --json build/quantization_results.json
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from _common import mean_sd, median_ms
from torch import nn

from seqlib import quant_demo
from seqlib.classifiers import RNNClassifier, accuracy
from seqlib.data import sensor_long_tailed
from seqlib.dynamic_quant import quantize_dynamic
from seqlib.qat import model_size_bytes, quantize_model


class TorchTwin(nn.Module):
    """The classifier with torch.nn.LSTM in place of seqlib.LSTM (same weights): torch converts only its own modules."""

    def __init__(self, model: RNNClassifier):
        super().__init__()
        self.rnn = nn.LSTM(model.rnn.input_size, model.rnn.hidden_size, batch_first=True)
        self.rnn.load_state_dict(model.rnn.state_dict())
        self.head = nn.Linear(model.head.in_features, model.head.out_features)
        self.head.load_state_dict(model.head.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0].mean(1))


def torch_dynamic(model: nn.Module) -> nn.Module | None:
    """torch's own 8-bit dynamic quantization of the same float model, if this torch still ships it."""
    try:
        from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic
    except ImportError:
        return None
    if not {"fbgemm", "x86", "qnnpack"} & set(torch.backends.quantized.supported_engines):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch_quantize_dynamic(TorchTwin(model).eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4, 2])
    parser.add_argument("--qat-epochs", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 and 2 bits")
    parser.add_argument("--json", help="also write every run's per-class accuracies to this file (a few kB), e.g. "
                                       "for a widget that shows measured numbers without training")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.bits = 1, [4, 2]
    torch.set_num_threads(1)
    train, test = sensor_long_tailed([2000, 500, 100, 20], test_per_class=200, seed=0)
    print(f"torch {torch.__version__}, 1 thread; classes {train.classes}, training counts "
          f"{train.class_counts().tolist()}, test {test.class_counts().tolist()}; {args.seeds} seed(s), "
          f"QAT {args.qat_epochs} epochs; accuracy in %, mean ± std over seeds", flush=True)
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    sizes: dict[tuple[str, int], int] = {}
    per_class_rows: dict[tuple[str, int], list[list[float]]] = {}
    start = time.perf_counter()
    models = []
    for seed in range(args.seeds):
        model = quant_demo.float_classifier(train, seed=seed)
        models.append(model)
        acc = accuracy(model, test, per_class=True)
        entry = results.setdefault(("float", 32), {"overall": [], "worst": []})
        entry["overall"].append(float(acc.mean()))
        entry["worst"].append(float(acc.min()))
        per_class_rows.setdefault(("float", 32), []).append(acc.tolist())
        sizes[("float", 32)] = model_size_bytes(model)
        for bits in args.bits:
            for scheme in quant_demo.SCHEMES:
                quantized = quant_demo.quantize_scheme(model, scheme, bits, train, qat_epochs=args.qat_epochs,
                                                       seed=seed)
                acc = accuracy(quantized, test, per_class=True)
                entry = results.setdefault((scheme, bits), {"overall": [], "worst": []})
                entry["overall"].append(float(acc.mean()))
                entry["worst"].append(float(acc.min()))
                per_class_rows.setdefault((scheme, bits), []).append(acc.tolist())
                sizes[(scheme, bits)] = model_size_bytes(quantized)
        print(f"seed {seed} done after {time.perf_counter() - start:.0f} s", flush=True)

    print("\n| scheme | bits | size (bytes) | overall acc. | worst-class acc. | per-class acc. (mean) |")
    print("|---|---:|---:|---:|---:|---|")
    for (scheme, bits), entry in results.items():
        rows = per_class_rows[(scheme, bits)]
        means = [100 * statistics.mean(col) for col in zip(*rows, strict=True)]
        print(f"| {scheme} | {bits} | {sizes[(scheme, bits)]} | {mean_sd(entry['overall'], '{:5.1f}', 100)} | "
              f"{mean_sd(entry['worst'], '{:5.1f}', 100)} | {' / '.join(f'{m:.0f}' for m in means)} |")

    if args.json:
        import json

        runs = {scheme: {} for scheme, _ in per_class_rows}
        for (scheme, bits), rows in per_class_rows.items():
            runs[scheme][str(bits)] = {"per_class": rows, "size_bytes": sizes[(scheme, bits)]}
        with open(args.json, "w") as f:
            json.dump({"classes": train.classes, "train_counts": train.class_counts().tolist(),
                       "test_per_class": 200, "seeds": args.seeds, "qat_epochs": args.qat_epochs, "runs": runs},
                      f, indent=1)

    model = models[0]
    x = test.inputs[:64]
    contestants = {"float (seqlib.LSTM)": model, "float (torch.nn.LSTM twin)": TorchTwin(model).eval(),
                   "fake-quant 8-bit (QAT path)": quantize_model(model, 8).eval(),
                   "seqlib dynamic int8": quantize_dynamic(model)}
    from seqlib.qat import calibrate

    calibrate(contestants["fake-quant 8-bit (QAT path)"], [train.inputs[:512]])
    reference = torch_dynamic(model)
    if reference is not None:
        contestants["torch quantize_dynamic int8"] = reference
    with torch.no_grad():
        times = median_ms({name: lambda m=m: m(x) for name, m in contestants.items()})
        agree = {name: float((m(test.inputs).argmax(1) == model(test.inputs).argmax(1)).float().mean())
                 for name, m in contestants.items()}
    print("\n| inference, batch of 64 windows (L = 64), 1 thread | size (bytes) | ms | ratio to float | "
          "predictions equal to float |")
    print("|---|---:|---:|---:|---:|")
    for name, ms in times.items():
        twin = {"torch quantize_dynamic int8": "seqlib dynamic int8",
                "float (torch.nn.LSTM twin)": "float (seqlib.LSTM)"}
        size = model_size_bytes(contestants[twin.get(name, name)])  # the twins store the same numbers
        print(f"| {name} | {size} | {ms:.2f} | {ms / times['float (seqlib.LSTM)']:.2f}x | {100 * agree[name]:.1f} % |")
    if reference is None:
        print("(torch.ao.quantization.quantize_dynamic is not available in this torch: no int8 kernel timed)")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
