"""seqlib: sequence models written out from scratch on torch tensors.

Every layer here is a twin of its torch.nn counterpart: the same constructor arguments, defaults,
parameter names and shapes, so ``ours.load_state_dict(theirs.state_dict(), strict=True)`` works in
both directions and the two give the same outputs and gradients. The difference is that here the
maths the course teaches is written out where a student can read it.

Modules, one concept each:

===================  =========================================================================
``embedding``        ``Embedding``: index -> learnable vector
``vocab``            ``Vocab``, ``CharTokenizer``, ``WordTokenizer``, padding helpers
``rnn``              ``RNNCell``, ``LSTMCell``, ``GRUCell``, ``RNN``, ``LSTM``, ``GRU``
``bptt``             backpropagation through time by hand, gradient-flow measurements
``clip``             ``clip_grad_norm_``, ``clip_grad_value_``
``attention``        scaled dot-product, additive and multi-head attention, masks
``normalization``    ``LayerNorm``
``positional``       ``PositionalEncoding``
``transformer``      encoder/decoder layers and stacks, ``Transformer``
``lm``               ``TransformerLM``, ``RNNLM``, ``Seq2Seq``
``data``, ``train``  offline datasets and a training loop
``classifiers``      ``TransformerClassifier``, ``LSTMClassifier`` and their training recipe
``distill``          knowledge distillation: the temperature softmax, the distillation loss, ``distill``
``transfer``         the transfer set: masking, replacement, n-gram sampling, the teacher's logits once
``distill_demo``     the lecture's teacher (cached), student, data splits, seeded comparison
``viz``, ``widgets`` matplotlib figures and ipywidgets demos (imported only when asked for)
===================  =========================================================================

``import seqlib`` is light: names are loaded from their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # recurrent core
    "Embedding": "embedding",
    "Vocab": "vocab",
    "CharTokenizer": "vocab",
    "WordTokenizer": "vocab",
    "pad_sequences": "vocab",
    "RNNCell": "rnn",
    "LSTMCell": "rnn",
    "GRUCell": "rnn",
    "RNN": "rnn",
    "LSTM": "rnn",
    "GRU": "rnn",
    # gradients
    "clip_grad_norm_": "clip",
    "clip_grad_value_": "clip",
    # attention and Transformers
    "scaled_dot_product_attention": "attention",
    "attention_weights": "attention",
    "causal_mask": "attention",
    "AdditiveAttention": "attention",
    "MultiheadAttention": "attention",
    "LayerNorm": "normalization",
    "PositionalEncoding": "positional",
    "TransformerEncoderLayer": "transformer",
    "TransformerDecoderLayer": "transformer",
    "TransformerEncoder": "transformer",
    "TransformerDecoder": "transformer",
    "Transformer": "transformer",
    "TransformerLM": "lm",
    "RNNLM": "lm",
    "Seq2Seq": "lm",
}
_SUBMODULES = {"bptt", "clip", "data", "train", "viz", "widgets", "attention", "rnn", "vocab", "embedding",
               "normalization", "positional", "transformer", "lm", "experiments", "pretrained", "classifiers",
               "distill", "transfer", "distill_demo"}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'seqlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
