r"""The small trained models the lecture demos use, built from seqlib's layers and trained with ``seqlib.train.fit``.

=================================  ===============================================================================
:class:`SentimentLSTM`             the lecture's ``LSTM(vocab_size, output_dim)`` text classifier (C14)
:func:`sentiment_lstm`             one trained on ``seqlib.data.negation_sentiment``: the LSTM-gates demo's model
:func:`char_lm`                    a character-level :class:`~seqlib.lm.TransformerLM` trained on the Python docs:
                                   the multi-head attention and sampling demos' model (C22, C28)
:func:`train_char_lm`              how that LM is trained: AdamW, a one-cycle schedule, random windows, ``fit``
=================================  ===============================================================================

Each model is trained once, seeded, in seconds on a laptop CPU, and cached through
:func:`seqlib.cache.cached_model` (under :func:`seqlib.cache.cache_dir`; ``retrain=True`` trains again). Nothing
is downloaded: the data is generated (``negation_sentiment``) or ships with Python (``text_corpus``).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, RandomSampler

from .cache import cached_model
from .embedding import Embedding
from .lm import TransformerLM
from .rnn import LSTM
from .train import History, fit
from .vocab import CharTokenizer, WordTokenizer

__all__ = ["SentimentLSTM", "sentiment_lstm", "CHAR_LM_CONFIG", "CHAR_LM_STEPS", "char_lm", "char_lm_tokenizer",
           "char_lm_loader", "next_token_loss", "train_char_lm"]


# ---------------------------------------------------------------------------------------------------------------------
# the sentiment classifier of lecture 03
# ---------------------------------------------------------------------------------------------------------------------
class SentimentLSTM(nn.Module):
    r"""The lecture's ``LSTM(vocab_size, output_dim)`` text classifier: embedding -> LSTM -> linear on the last state.

    Args:
        vocab_size: ``V``; output_dim: number of classes ``C``; embedding_dim: ``E``; hidden_dim: ``H``;
        padding_idx: the ``<pad>`` index (its embedding stays zero).

    Inputs: text, text_len
        - **text**: ``(L, N)`` int64 token indices, padded.
        - **text_len**: ``(N,)`` int64 lengths (CPU). The padded batch is packed, so the final state of every
          sentence is taken at its own last word, not after the padding.

    Outputs: ``(N, C)`` logits.
    """

    def __init__(self, vocab_size: int, output_dim: int, embedding_dim: int = 16, hidden_dim: int = 24,
                 padding_idx: int | None = 0) -> None:
        super().__init__()
        self.embedding = Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.lstm = LSTM(embedding_dim, hidden_dim)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, text: Tensor, text_len: Tensor) -> Tensor:
        embeds = self.embedding(text)  # (L, N, E)
        packed = nn.utils.rnn.pack_padded_sequence(embeds, text_len.cpu(), enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (1, N, H), each sentence's state after its last word
        return self.fc(h_n[-1])  # (N, C)


def sentiment_lstm(*, retrain: bool = False) -> tuple[SentimentLSTM, WordTokenizer]:
    """A small :class:`SentimentLSTM` trained on ``seqlib.data.negation_sentiment`` (cached).

    Trained once (seeded: 1000 sentences, 3 epochs of Adam through :func:`seqlib.train.fit`, a few seconds on a
    laptop CPU), then loaded from ``cache_dir() / "models" / "sentiment_lstm_v2.pt"``. Returns
    ``(model, tokenizer)``; the tokenizer (a lower-casing ``seqlib.WordTokenizer``) turns a sentence into the
    indices the model expects.
    """
    from .data import collate_padded, encode_dataset, negation_sentiment

    train = encode_dataset(negation_sentiment(1000, seed=0))
    tokenizer = train.tokenizer
    pad = tokenizer.vocab.pad_index

    def build() -> SentimentLSTM:
        return SentimentLSTM(len(tokenizer), 2, padding_idx=pad)

    def train_fn(model: SentimentLSTM) -> None:
        collate = partial(collate_padded, padding_value=pad, batch_first=False)
        loader = DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        fit(model, loader, F.cross_entropy, optimizer, epochs=3, device="cpu", progress=False)

    return cached_model("sentiment_lstm_v2", build, train_fn, retrain=retrain), tokenizer


# ---------------------------------------------------------------------------------------------------------------------
# the character-level language model of lectures 04 and 05
# ---------------------------------------------------------------------------------------------------------------------
#: Architecture of :func:`char_lm` (change the cache name in :func:`char_lm` when changing it or the training).
CHAR_LM_CONFIG = {"d_model": 64, "nhead": 4, "num_layers": 2, "context_length": 64, "dim_feedforward": 256,
                  "dropout": 0.0}
#: Optimiser steps of :func:`char_lm`'s training (batches of 32 windows of 64 characters).
CHAR_LM_STEPS = 250
_CHAR_LM_NAME = "char_transformer_lm_python_docs_v3"


def char_lm_tokenizer() -> CharTokenizer:
    """The character tokenizer of ``seqlib.data.text_corpus("python-docs")`` (its vocabulary: every character in it)."""
    from .data import text_corpus

    return CharTokenizer(text_corpus("python-docs"))


def char_lm_loader(tokenizer: CharTokenizer, context_length: int, steps: int, batch_size: int = 32,
                   seed: int = 0) -> DataLoader:
    """``steps`` batches of random windows from the training part (the first 90 %) of the Python-docs corpus.

    Each batch is ``(x, y)``, two int64 ``(batch_size, context_length)`` tensors: windows of the encoded text and
    the same windows shifted by one character (``seqlib.data.CharDataset``). The windows are drawn uniformly with
    replacement by a ``RandomSampler`` with its own generator seeded with ``seed``, so the number of steps, and
    with it the training time, does not depend on the size of the corpus.
    """
    from .data import CharDataset, text_corpus, train_val_split

    train_text, _ = train_val_split(text_corpus("python-docs"), 0.1)
    windows = CharDataset(train_text, context_length, tokenizer=tokenizer)
    sampler = RandomSampler(windows, replacement=True, num_samples=steps * batch_size,
                            generator=torch.Generator().manual_seed(seed))
    return DataLoader(windows, batch_size=batch_size, sampler=sampler)


def next_token_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy of every position's prediction: logits ``(B, T, V)`` against the next tokens ``(B, T)``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))  # (B*T, V) vs (B*T,)


def train_char_lm(model: TransformerLM, tokenizer: CharTokenizer, steps: int = CHAR_LM_STEPS, batch_size: int = 32,
                  lr: float = 1e-2, seed: int = 0, progress: bool = False) -> History:
    """Train a character LM on random windows of the Python docs with ``seqlib.train.fit``; return the history.

    AdamW (weight decay 0.01), a one-cycle learning-rate schedule stepped every batch (10 % warm-up to ``lr``,
    then cosine annealing), gradients clipped to norm 1, ``steps`` batches from :func:`char_lm_loader`, on the CPU.
    ``history.step_loss`` is the training loss of every step.
    """
    loader = char_lm_loader(tokenizer, model.context_length, steps, batch_size, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    return fit(model, loader, next_token_loss, optimizer, epochs=1, clip_grad_norm=1.0, device="cpu",
               progress=progress, scheduler=schedule)


def char_lm(*, retrain: bool = False) -> tuple[TransformerLM, CharTokenizer]:
    """``(model, tokenizer)``: a 2-layer, 4-head character-level :class:`~seqlib.lm.TransformerLM` on the Python docs.

    :data:`CHAR_LM_CONFIG`, trained by :func:`train_char_lm` for :data:`CHAR_LM_STEPS` steps on first use (seeded,
    a few seconds on two cores) and cached; later calls load the weights in milliseconds. In eval mode.
    """
    tokenizer = char_lm_tokenizer()

    def build() -> TransformerLM:
        return TransformerLM(len(tokenizer.vocab), **CHAR_LM_CONFIG)

    return cached_model(_CHAR_LM_NAME, build, lambda m: train_char_lm(m, tokenizer), retrain=retrain), tokenizer
