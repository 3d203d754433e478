"""seqlib: sequence models written out from scratch on torch tensors.

Every layer here is a twin of its torch.nn counterpart: the same constructor arguments, defaults,
parameter names and shapes, so ``ours.load_state_dict(theirs.state_dict(), strict=True)`` works in
both directions and the two give the same outputs and gradients. The difference is that here the
maths the course teaches is written out where a student can read it.

Modules, one concept each:

==================  ==========================================================================================
``embedding``       ``Embedding``: index -> learnable vector
``vocab``           ``Vocab``, ``CharTokenizer``, ``WordTokenizer``, ``pad_sequences``
``rnn``             ``RNNCell``, ``LSTMCell``, ``GRUCell``, ``RNN``, ``LSTM``, ``GRU``
``bptt``            backpropagation through time by hand, a line per equation (the version to read)
``bptt_fast``       the same BPTT tuned for speed: what the recurrent layers train through
``gradflow``        gradient-flow measurements: gradient norms through time, Jacobians, spectral radius
``clip``            ``clip_grad_norm_``, ``clip_grad_value_``
``attention``       scaled dot-product, additive and multi-head attention, masks
``normalization``   ``LayerNorm``
``positional``      ``PositionalEncoding``, ``sinusoidal_table``
``transformer``     encoder/decoder layers and stacks, ``Transformer``
``lm``              ``TransformerLM``, ``RNNLM``, ``Seq2Seq``
``sampling``        next-token sampling: temperature, top-k (``next_token_distribution``, ``sample_next_token``)
``pretrained``      the optional pretrained MiniLM encoder (``BertLike``, ``load_minilm``)
``classifiers``     Part 4's shared sequence classifiers (``RNNClassifier``, ``TransformerClassifier``), their one
                    training recipe (``train_classifier``) and measures (``accuracy``, ``cpu_latency``)
``fixedpoint``      lecture 06: fixed-point numbers: quantize, saturate, shifts, products, width changes
``lut``             exp, sigmoid, tanh, rsqrt from lookup tables; the generic approximations beside them
``fastgrnn``        ``FastGRNNCell``, ``FastGRNN``
``fixedpoint_rnn``  ``FixedPointRNN``: a trained GRU/LSTM/FastGRNN in integer arithmetic
``mpc``             additive secret sharing: shares, the counting channel, the trusted dealer
``twoparty``        two-party protocols: products, comparisons, truncation, table lookups
``secure_math``     the table-based math functions on secret shares
``secure_rnn``      ``secure_inference`` of a ``FixedPointRNN`` and its cost report
``sensor_models``   the lecture's trained sensor classifiers (cached) and their accuracy in fixed point
``surrogate``       lecture 07: ``spike``: a step forward, a surrogate derivative backward
``spiking``         ``LIFCell``, ``LIF``, ``LeakyReadout``, ``SpikingClassifier``
``spiking_bptt``    the LIF layer's backpropagation through time written out (its fast path)
``spike_coding``    rate, latency and delta spike encoders and their decoders
``stdp``            the STDP window, trace-based STDP, a winner-take-all layer that learns with it
``neuromorphic``    synaptic operations vs multiply-adds, firing sparsity, spiking net vs GRU
``distill``         lecture 08: knowledge distillation: the temperature softmax, the distillation loss, ``distill``
``transfer``        the transfer set: masking, replacement, n-gram sampling, the teacher's logits once
``distill_demo``    the lecture's teacher (cached), student, data splits, seeded comparison
``quant``           lecture 09: uniform affine quantization: ``fake_quantize`` and its straight-through gradient
``observers``       min-max, moving-average and percentile observers: choosing scale and zero-point
``qat``             post-training quantization and quantization-aware training of whole models (``quantize_model``)
``dynamic_quant``   an 8-bit dynamic LSTM: int8 weights, activations quantized on the fly
``cdf_quant``       quantizing in distribution-function space (``cdf_quantize``)
``stats``           Levene's test of equal variances and the F distribution it needs
``climbq``          class-wise variance scaling, class-size bounds, HomoVar weights (ClimbQ)
``quant_demo``      the long-tailed quantization experiment: the float model, the quantization schemes
``data``            offline datasets: text, time series, synthetic tasks, the sensor task; collate functions
``train``           the training loop ``fit`` (schedules, clipping, checkpoints, callbacks), ``seed_everything``
``models``          the small models the demos train: ``SentimentLSTM``, ``sentiment_lstm``, ``char_lm``
``experiments``     the lectures' seeded gradient-flow experiments: plain data in, plain data out
``cache``           the one cache policy (``cache_dir``) and ``cached_model`` (train once, reload after)
``threads``         ``torch_threads``: the one limiter of torch's CPU threads
``viz``             matplotlib figures, a module per topic (imported only when asked for)
``widgets``         the lectures' ipywidgets demos (imported only when asked for)
==================  ==========================================================================================

``import seqlib`` is light: names are loaded from their module on first use.
"""

from __future__ import annotations

from ._lazy import lazy_attributes

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
    "FastGRNNCell": "fastgrnn",
    "FastGRNN": "fastgrnn",
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
_SUBMODULES = {
    "attention", "bptt", "bptt_fast", "cache", "cdf_quant", "classifiers", "climbq", "clip", "data", "distill",
    "distill_demo", "dynamic_quant", "embedding", "experiments", "fastgrnn", "fixedpoint", "fixedpoint_rnn",
    "gradflow", "lm", "lut", "models", "mpc", "neuromorphic", "normalization", "observers", "positional",
    "pretrained", "qat", "quant", "quant_demo", "rnn", "sampling", "secure_math", "secure_rnn", "sensor_models",
    "spike_coding", "spiking", "spiking_bptt", "stats", "stdp", "surrogate", "threads", "train", "transfer",
    "transformer", "twoparty", "viz", "vocab", "widgets",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS, _SUBMODULES)
