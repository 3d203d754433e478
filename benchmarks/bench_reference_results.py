"""Reference results: what the course's models learn on seqlib.data's tasks, on a laptop CPU.

Not a timed test: it trains small models with ``seqlib.train.fit`` and prints their quality and wall time.

Sections (run one or several with ``--only adding,negation``):

- ``adding``   the adding problem at T = 100: an LSTM solves it (MSE < 0.01), a vanilla RNN with the same
               number of steps stays at the trivial baseline (MSE ~ 0.167). Concept C12.
- ``negation`` negation sentiment: an LSTM classifier reaches >= 95% accuracy; a bag-of-words classifier stays
               at <= 60% on the negated sentences (pairs of them have the same words). Concept C14.
- ``dates``    date translation with seqlib.Seq2Seq (LSTM encoder-decoder with additive attention): >= 99% of
               held-out dates exactly right. Concept C16.
- ``lm``       character language models on the Python-docs corpus at equal wall time and about equal
               parameter count: seqlib.TransformerLM vs seqlib.RNNLM (LSTM); validation loss and samples. C28.
- ``twin``     seqlib.TransformerLM against the same model built from torch.nn layers (weights copied), trained
               on the same batches: tokens per second and the two loss curves.

Timing is fair under a changing machine load: the models compared in ``lm`` and ``twin`` are trained in
alternating chunks, each chunk timed on its own. ``--threads`` sets torch's intra-op threads (default 1: on a
shared 2-core machine more threads fight over the cores). ``--quick`` runs every section on tiny settings (a
smoke test of the script; no targets are checked). Total: about 6 minutes on a quiet 2-core machine,
more when other work shares it.
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

import seqlib
from seqlib.data import (
    CharDataset,
    adding_problem,
    collate_padded,
    collate_seq2seq,
    date_translation,
    encode_dataset,
    negation_sentiment,
    text_corpus,
    train_val_split,
)
from seqlib.models import next_token_loss
from seqlib.train import evaluate, fit, seed_everything

SECTIONS = ("adding", "negation", "dates", "lm", "twin")
RESULTS: list[tuple[str, str, str]] = []  # (section, measured, verdict)


def _verdict(ok: bool, quick: bool) -> str:
    return "(quick run: not checked)" if quick else ("PASS" if ok else "MISSED")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _header(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.perf_counter()


# ------------------------------------------------------------------------------------------------- adding


class LastStepRegressor(nn.Module):
    """A recurrent layer read to the end; a linear head on the last hidden state: (N, T, 2) -> (N,)."""

    def __init__(self, cell: str, hidden_size: int) -> None:
        super().__init__()
        self.rnn = getattr(seqlib, cell)(2, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (N, T, H)
        return self.head(out[:, -1]).squeeze(-1)  # (N,)


def bench_adding(quick: bool) -> None:
    start = _header("adding problem, T = 100: LSTM vs vanilla RNN (C12)")
    T, H, bs, lr, chunk = (100, 64, 128, 1e-2, 25) if not quick else (20, 16, 32, 1e-2, 5)
    max_steps, target = (1500, 0.005) if not quick else (10, 0.005)
    train = adding_problem(bs * 50, T, seed=0)
    val = adding_problem(1000, T, seed=1)
    baseline = F.mse_loss(torch.full_like(val.targets, float(train.targets.mean())), val.targets).item()
    print(f"train {len(train)} sequences, validation {len(val)}; Adam lr={lr}, batch {bs}, hidden {H}, "
          f"clip_grad_norm=1.0; baseline MSE (predict the mean) = {baseline:.4f}")
    val_loader = DataLoader(val, batch_size=1000)
    results = {}
    steps_used = max_steps
    for cell in ("LSTM", "RNN"):
        seed_everything(0)
        model = LastStepRegressor(cell, H)
        opt = torch.optim.Adam(model.parameters(), lr)
        sampler = RandomSampler(train, replacement=True, num_samples=bs * chunk)
        loader = DataLoader(train, batch_size=bs, sampler=sampler)
        budget = steps_used if cell == "RNN" else max_steps
        t0 = time.perf_counter()

        def solved(epoch, history, model, cell=cell):
            return cell == "LSTM" and history.val_loss[-1] < target

        history = fit(model, loader, F.mse_loss, opt, max(budget // chunk, 1), val_loader=val_loader,
                      clip_grad_norm=1.0, progress=False, callbacks=[solved])
        steps = len(history.step_loss)
        if cell == "LSTM":
            steps_used = max(steps, 200 if not quick else 5)
        every = max(len(history.val_loss) // 8, 1)
        curve = ", ".join(f"{v:.3f}" for v in history.val_loss[every - 1 :: every])
        results[cell] = history.val_loss[-1]
        print(f"  seqlib.{cell:<4} {_params(model):>6} params: validation MSE {history.val_loss[-1]:.4f} after "
              f"{steps} steps, {time.perf_counter() - t0:.0f} s  (every {chunk * every} steps: {curve})", flush=True)
    ok = results["LSTM"] < 0.01 and abs(results["RNN"] - baseline) < 0.03
    line = f"LSTM MSE {results['LSTM']:.4f}, RNN MSE {results['RNN']:.4f} (baseline {baseline:.4f})"
    RESULTS.append(("adding", line, _verdict(ok, quick)))
    print(f"  {line} -> {_verdict(ok, quick)} (target: LSTM < 0.01, RNN ~ baseline); "
          f"{time.perf_counter() - start:.0f} s", flush=True)


# ------------------------------------------------------------------------------------------------- negation


class LSTMClassifier(nn.Module):
    """Embedding -> seqlib.LSTM -> linear head on the hidden state at each sentence's last token."""

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 64, pad_index: int = 0) -> None:
        super().__init__()
        self.embedding = seqlib.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.lstm = seqlib.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(tokens))  # (N, L, H)
        last = out[torch.arange(tokens.shape[0]), lengths.to(tokens.device) - 1]  # (N, H)
        return self.head(last)  # (N, 2)


class BagOfWords(nn.Module):
    """Word counts (order thrown away) -> a two-layer perceptron."""

    def __init__(self, vocab_size: int, hidden_size: int = 64, pad_index: int = 0) -> None:
        super().__init__()
        self.vocab_size, self.pad_index = vocab_size, pad_index
        self.mlp = nn.Sequential(nn.Linear(vocab_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 2))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(tokens.shape[0], self.vocab_size, device=tokens.device)  # (N, V)
        counts.scatter_add_(1, tokens, torch.ones_like(tokens, dtype=counts.dtype))
        counts[:, self.pad_index] = 0
        return self.mlp(counts)


def bench_negation(quick: bool) -> None:
    start = _header("negation sentiment: LSTM vs bag of words (C14)")
    n_train, n_test, epochs = (4000, 2000, 3) if not quick else (200, 100, 1)
    raw_train, raw_test = negation_sentiment(n_train, seed=0), negation_sentiment(n_test, seed=1)
    train = encode_dataset(raw_train)
    test = encode_dataset(raw_test, tokenizer=train.tokenizer)
    collate = partial(collate_padded, padding_value=train.pad_index)
    vocab = len(train.tokenizer.vocab)
    print(f"train {n_train} sentences (seed 0), test {n_test} (seed 1), vocabulary {vocab} words; "
          f"Adam lr=3e-3, batch 64, {epochs} epochs")
    (tokens, lengths), labels = collate([test[i] for i in range(len(test))])
    negated = torch.tensor(raw_test.negated)
    acc = {}
    for name, model in (("bag of words", BagOfWords(vocab, pad_index=train.pad_index)),
                        ("seqlib.LSTM", LSTMClassifier(vocab, pad_index=train.pad_index))):
        seed_everything(0)
        t0 = time.perf_counter()
        fit(model, DataLoader(train, batch_size=64, shuffle=True, collate_fn=collate), F.cross_entropy,
            torch.optim.Adam(model.parameters(), 3e-3), epochs, progress=False)
        model.eval()
        with torch.no_grad():
            right = model(tokens, lengths).argmax(-1) == labels
        acc[name] = (right.float().mean().item(), right[negated].float().mean().item(),
                     right[~negated].float().mean().item())
        print(f"  {name:<13} {_params(model):>6} params: test accuracy {acc[name][0]:.1%} (negated {acc[name][1]:.1%}, "
              f"plain {acc[name][2]:.1%}), {time.perf_counter() - t0:.0f} s", flush=True)
    ok = acc["seqlib.LSTM"][0] >= 0.95 and acc["bag of words"][1] <= 0.60
    line = f"LSTM {acc['seqlib.LSTM'][0]:.1%}; bag of words on negated sentences {acc['bag of words'][1]:.1%}"
    RESULTS.append(("negation", line, _verdict(ok, quick)))
    print(f"  {line} -> {_verdict(ok, quick)} (target: LSTM >= 95%, bag of words <= 60% on negated); "
          f"{time.perf_counter() - start:.0f} s", flush=True)


# ------------------------------------------------------------------------------------------------- dates


def _sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))  # (N*U, V) vs (N*U,)


def bench_dates(quick: bool) -> None:
    start = _header("date translation: seqlib.Seq2Seq with additive attention (C16)")
    n_train, n_test, max_epochs, bs = (6000, 1000, 5, 128) if not quick else (200, 50, 1, 32)
    raw_train, raw_test = date_translation(n_train, seed=0), date_translation(n_test, seed=1)
    train = encode_dataset(raw_train)
    test = encode_dataset(raw_test, tokenizer=train.tokenizer, target_tokenizer=train.target_tokenizer)
    src_vocab, tgt_vocab = train.tokenizer.vocab, train.target_tokenizer.vocab
    collate = partial(collate_seq2seq, pad_index=train.pad_index)
    seed_everything(0)
    model = seqlib.Seq2Seq(len(src_vocab), len(tgt_vocab), embedding_dim=32, hidden_size=64,
                           src_padding_idx=src_vocab.pad_index, tgt_padding_idx=tgt_vocab.pad_index)
    print(f"train {n_train} dates (seed 0), test {n_test} (seed 1); {_params(model)} params; Adam lr=1e-2, "
          f"batch {bs}, clip_grad_norm=1.0, up to {max_epochs} epochs (stop at >= 99.5% exact)")
    (src, src_lengths, _), _ = collate([test[i] for i in range(len(test))])

    def exact_match(model: nn.Module) -> float:
        tokens, _ = model.greedy_decode(src, src_lengths, max_len=12, bos_index=tgt_vocab.bos_index,
                                        eos_index=tgt_vocab.eos_index)
        guesses = [train.target_tokenizer.decode(t.tolist(), skip_specials=True) for t in tokens]
        return sum(g == t for g, (_, t) in zip(guesses, raw_test, strict=True)) / len(raw_test)

    scores: list[float] = []

    def score(epoch, history, model):
        scores.append(exact_match(model))
        print(f"  epoch {epoch}: train loss {history.train_loss[-1]:.4f}, exact match {scores[-1]:.1%}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        return scores[-1] >= 0.995

    fit(model, DataLoader(train, batch_size=bs, shuffle=True, collate_fn=collate), _sequence_cross_entropy,
        torch.optim.Adam(model.parameters(), 1e-2), max_epochs, clip_grad_norm=1.0, progress=False,
        callbacks=[score])
    for i in range(3):
        tokens, _ = model.greedy_decode(src[i : i + 1], src_lengths[i : i + 1], 12, tgt_vocab.bos_index,
                                        tgt_vocab.eos_index)
        guess = train.target_tokenizer.decode(tokens[0].tolist(), skip_specials=True)
        print(f"    {raw_test[i][0]!r:>32} -> {guess!r}")
    line = f"exact match {scores[-1]:.1%} on {n_test} held-out dates after {len(scores)} epochs"
    RESULTS.append(("dates", line, _verdict(scores[-1] >= 0.99, quick)))
    print(f"  {line} -> {_verdict(scores[-1] >= 0.99, quick)} (target >= 99%); {time.perf_counter() - start:.0f} s")


# ------------------------------------------------------------------------------------------------- char LMs


def _char_data(context: int, quick: bool):
    text = text_corpus("python-docs")
    if quick:
        text = text[:60_000]
    train_text, val_text = train_val_split(text, val_fraction=0.1)
    train = CharDataset(train_text, context)
    val = CharDataset(val_text, context, tokenizer=train.tokenizer)
    stride = max(len(val) // (256 if not quick else 16), 1)
    val_subset = torch.utils.data.Subset(val, list(range(0, len(val), stride)))
    return text, train, val_subset


def _chunk_loader(dataset, batch_size: int, batches: int, seed: int) -> DataLoader:
    """``batches`` random windows per pass, drawn from a generator of its own (the same for twin models)."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch_size * batches,
                            generator=torch.Generator().manual_seed(seed))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def _tokens(loader: DataLoader) -> int:
    """Input tokens per pass over a loader of (B, T) windows: samples x T."""
    return len(loader.sampler) * len(loader.dataset[0][0])


def _lr_at(peak: float, progress: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` of the budget, then cosine decay to ``peak / 10`` at its end."""
    if progress < warmup:
        return peak * (progress + 0.01) / (warmup + 0.01)
    decay = (progress - warmup) / max(1.0 - warmup, 1e-9)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(decay, 1.0))))


def _train_in_turns(models: dict[str, nn.Module], make_loader, loss_fn, lr: float, budget_s: float | None = None,
                    chunks: int | None = None, settings: dict[str, dict] | None = None) -> dict[str, dict]:
    """Train each model in chunks (one ``fit`` epoch each), always the one with the least training time next.

    Either until each has trained ``budget_s`` seconds, or for ``chunks`` chunks each (the same batches for all).
    ``settings[name]`` may give a model its own ``lr``, ``betas``, ``weight_decay``, ``make_loader`` and a
    ``warmup`` fraction: then its learning rate follows :func:`_lr_at` over the wall-time budget.
    """
    settings = settings or {}
    state = {}
    for name, m in models.items():
        cfg = settings.get(name, {})
        opt = torch.optim.AdamW(m.parameters(), cfg.get("lr", lr), betas=cfg.get("betas", (0.9, 0.999)),
                                weight_decay=cfg.get("weight_decay", 0.01))
        state[name] = {"opt": opt, "time": 0.0, "history": None, "chunk": 0, "tokens": 0, "cfg": cfg}
    while True:
        pending = [n for n, s in state.items()
                   if (budget_s is not None and s["time"] < budget_s) or (chunks is not None and s["chunk"] < chunks)]
        if not pending:
            return state
        name = min(pending, key=lambda n: state[n]["time"])
        s = state[name]
        cfg = s["cfg"]
        if "warmup" in cfg and budget_s is not None:
            for group in s["opt"].param_groups:
                group["lr"] = _lr_at(cfg.get("lr", lr), s["time"] / budget_s, cfg["warmup"])
        loader = cfg.get("make_loader", make_loader)(s["chunk"])
        t0 = time.perf_counter()
        s["history"] = fit(models[name], loader, loss_fn, s["opt"], 1, clip_grad_norm=1.0, progress=False,
                           device="cpu", history=s["history"])
        s["time"] += time.perf_counter() - t0
        s["tokens"] += _tokens(loader)
        s["chunk"] += 1


def bench_lm(quick: bool) -> None:
    start = _header("character LMs on the Python-docs corpus: TransformerLM vs LSTM (RNNLM) at equal wall time (C28)")
    context, bs, batches = (64, 16, 20) if not quick else (16, 8, 2)
    budget = 120.0 if not quick else 3.0
    text, train, val = _char_data(context, quick)
    V = train.vocab_size
    seed_everything(0)
    models = {
        "seqlib.TransformerLM": seqlib.TransformerLM(V, d_model=64, nhead=4, num_layers=2, context_length=context,
                                                     dim_feedforward=256, dropout=0.0),
        "seqlib.RNNLM (LSTM)": seqlib.RNNLM(V, embedding_dim=64, hidden_size=128, cell="lstm"),
    }
    # Both: AdamW peak lr 1e-2, linear warm-up over the first 5% of the wall-time budget, cosine decay to lr/10.
    settings = {
        "seqlib.TransformerLM": {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.01, "warmup": 0.05},
        "seqlib.RNNLM (LSTM)": {"lr": 1e-2, "weight_decay": 0.01, "warmup": 0.05},
    }
    print(f"corpus {len(text):,} characters (vocabulary {V}), context {context}, batch {bs} (for both: batch 16 "
          f"beat 32 for each model in shorter trial runs), AdamW peak lr=1e-2 with a 5% linear warm-up and cosine "
          f"decay to lr/10 over the budget (Transformer betas (0.9, 0.99)), clip_grad_norm=1.0; {budget:.0f} s of "
          f"training each, in alternating chunks of {batches} batches; validation loss on {len(val)} held-out windows")
    for name, model in models.items():
        print(f"  {name:<21} {_params(model):>7} params")
    state = _train_in_turns(models, lambda chunk: _chunk_loader(train, bs, batches, seed=chunk), next_token_loss, 1e-2,
                            budget_s=budget, settings=settings)
    val_loss = {}
    for name, model in models.items():
        s = state[name]
        val_loss[name] = evaluate(model, DataLoader(val, batch_size=64), next_token_loss, device="cpu")
        print(f"  {name:<21} validation loss {val_loss[name]:.3f} nats/char ({val_loss[name] / math.log(2):.2f} "
              f"bits) after {len(s['history'].step_loss)} steps, {s['time']:.0f} s, "
              f"{s['tokens'] / s['time']:,.0f} tokens/s", flush=True)
    prompt = torch.tensor([train.tokenizer.encode("The ")])
    for name, model in models.items():
        sample = model.generate(prompt, 240, temperature=0.8, generator=torch.Generator().manual_seed(0))
        print(f"  sample from {name} (temperature 0.8):\n    {train.decode(sample[0])!r}")
    ok = val_loss["seqlib.TransformerLM"] < val_loss["seqlib.RNNLM (LSTM)"]
    line = (f"validation loss TransformerLM {val_loss['seqlib.TransformerLM']:.3f} vs LSTM "
            f"{val_loss['seqlib.RNNLM (LSTM)']:.3f} nats/char at {budget:.0f} s each")
    RESULTS.append(("lm", line, _verdict(ok, quick)))
    print(f"  {line} -> {_verdict(ok, quick)} (target: Transformer lower); {time.perf_counter() - start:.0f} s")


class TorchTransformerLM(nn.Module):
    """seqlib.TransformerLM's architecture from torch.nn layers, with the same parameter names."""

    def __init__(self, vocab_size: int, d_model: int, nhead: int, num_layers: int, context_length: int,
                 dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        position = torch.arange(context_length, dtype=torch.float32)[:, None]  # (T, 1)
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(context_length, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
        self.register_buffer("pe", pe, persistent=False)  # (T_max, E)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.dropout(self.token_embedding(idx) + self.pe[:T])  # (B, T, E)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=idx.device)  # (T, T), -inf above diagonal
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.head(self.norm(x))  # (B, T, V)


def bench_twin(quick: bool) -> None:
    start = _header("seqlib.TransformerLM vs the same model from torch.nn layers, same weights and batches")
    context, bs, batches, chunks = (64, 32, 10, 12) if not quick else (16, 8, 2, 2)
    _, train, _ = _char_data(context, quick)
    V = train.vocab_size
    cfg = dict(d_model=64, nhead=4, num_layers=2, context_length=context, dim_feedforward=256, dropout=0.0)
    seed_everything(0)
    ours = seqlib.TransformerLM(V, **cfg)
    theirs = TorchTransformerLM(V, **cfg)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    probe = torch.stack([train[i][0] for i in range(4)])
    with torch.no_grad():
        start_diff = (ours(probe) - theirs(probe)).abs().max().item()
    print(f"{_params(ours)} params each; dropout 0 (so the two runs are the same computation); context {context}, "
          f"batch {bs}, AdamW lr=3e-3; {chunks} chunks of {batches} batches each, alternating; "
          f"max |logit difference| before training {start_diff:.1e}")
    state = _train_in_turns({"seqlib": ours, "torch.nn": theirs},
                            lambda chunk: _chunk_loader(train, bs, batches, seed=1000 + chunk), next_token_loss, 3e-3,
                            chunks=chunks)
    speed = {n: s["tokens"] / s["time"] for n, s in state.items()}
    a, b = (torch.tensor(state[n]["history"].step_loss) for n in ("seqlib", "torch.nn"))
    every = max(len(a) // 6, 1)
    for name, losses in (("seqlib", a), ("torch.nn", b)):
        print(f"  {name:<9} {speed[name]:>8,.0f} tokens/s ({state[name]['time']:.1f} s); loss every {every} steps: "
              + ", ".join(f"{v:.3f}" for v in losses[::every].tolist()) + f", last {losses[-1].item():.3f}")
    ratio = speed["seqlib"] / speed["torch.nn"]
    gap = (a - b).abs().max().item()
    print(f"  max |loss difference| over {len(a)} steps: {gap:.1e}; mean of the last 20 steps: "
          f"{a[-20:].mean().item():.4f} (seqlib) vs {b[-20:].mean().item():.4f} (torch.nn)")
    ok = ratio >= 0.9 and gap < 0.05
    line = f"seqlib at {ratio:.2f}x torch.nn's tokens/s; loss curves differ by at most {gap:.1e}"
    RESULTS.append(("twin", line, _verdict(ok, quick)))
    print(f"  {line} -> {_verdict(ok, quick)} (target: >= 0.9x, same curve); {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run, from {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: check that the script runs")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU only")
    start = time.perf_counter()
    for section in SECTIONS:
        if section in only:
            globals()[f"bench_{section}"](args.quick)
    print(f"\n=== summary ({time.perf_counter() - start:.0f} s in all)")
    for section, line, verdict in RESULTS:
        print(f"  {section:<9} {line}  {verdict}")


if __name__ == "__main__":
    main()
