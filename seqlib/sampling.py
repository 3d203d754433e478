r"""From a language model's scores to the next token: temperature, top-k, sampling (C28).

A language model gives, for the position after the prompt, one score (logit) :math:`z_i` per token of the
vocabulary. Generating text turns these scores into probabilities and draws one token:

.. math::
    p_i = \frac{\exp(z_i / \tau)}{\sum_{j \in K} \exp(z_j / \tau)} \quad (i \in K), \qquad p_i = 0 \quad (i \notin K)

where :math:`\tau > 0` is the **temperature** (below 1: sharper, the likely tokens get likelier; above 1:
flatter) and :math:`K` the **top-k** set, the :math:`k` tokens with the largest scores (all tokens when
``top_k`` is ``None``). As :math:`\tau \to 0` the distribution puts all its mass on the most likely token:
greedy decoding, which :func:`sample_next_token` does exactly for ``temperature=0``.

:func:`next_token_distribution` computes :math:`p`; :func:`sample_next_token` draws from it with
:func:`torch.multinomial`. Every ``generate`` of :mod:`seqlib.lm` and the sampling demo use these two.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import check_floating, check_positive_int, check_rank, check_tensor

__all__ = ["next_token_distribution", "sample_next_token"]


def _check_options(temperature: float, top_k: int | None, greedy: bool) -> None:
    """``temperature`` > 0 (>= 0 where ``greedy``: 0 means the argmax) and ``top_k`` None or >= 1."""
    bound = ">= 0 (0 = greedy)" if greedy else "> 0"
    if not isinstance(temperature, int | float) or isinstance(temperature, bool):
        raise TypeError(f"temperature must be a number {bound}, but got {type(temperature).__name__}")
    if not math.isfinite(temperature) or temperature < 0 or (temperature == 0 and not greedy):
        raise ValueError(f"temperature must be a number {bound}, but got {temperature!r}")
    if top_k is not None:
        check_positive_int("top_k", top_k)


def _check_logits(logits: object) -> Tensor:
    check_tensor("logits", logits, "(B, V) or (V,)")
    assert isinstance(logits, Tensor)
    check_floating("logits", logits)
    check_rank("logits", logits, (1, 2), "(B, V) or (V,)")
    if logits.shape[-1] == 0:
        raise ValueError("logits must have shape (B, V) or (V,) with V >= 1 tokens, but got V = 0")
    return logits


def next_token_distribution(logits: Tensor, temperature: float = 1.0, top_k: int | None = None) -> Tensor:
    r"""The probabilities of the next token: :math:`\mathrm{softmax}(z / \tau)` over the ``top_k`` largest scores.

    Args:
        logits: the scores :math:`z`, ``(B, V)`` (one row per sequence) or ``(V,)``.
        temperature: :math:`\tau > 0`. Default: ``1.0`` (the model's own distribution).
        top_k: keep only the ``top_k`` largest scores of each row (ties with the ``k``-th are kept too); the
            others get probability 0. ``None`` (or ``top_k >= V``): all tokens. Default: ``None``.

    Returns:
        Probabilities of the shape of ``logits``; each row sums to 1.

    Examples::

        >>> next_token_distribution(torch.tensor([2.0, 1.0, 0.0]), temperature=0.5, top_k=2)
        tensor([0.8808, 0.1192, 0.0000])
    """
    logits = _check_logits(logits)
    _check_options(temperature, top_k, greedy=False)
    scaled = logits / temperature  # (B, V) or (V,)
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[..., -1:]  # (B, 1) or (1,): the k-th largest score
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))  # keep only the top k
    return torch.softmax(scaled, dim=-1)


def sample_next_token(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                      generator: torch.Generator | None = None) -> Tensor:
    r"""Draw the next token from :func:`next_token_distribution`; ``temperature=0`` takes the most likely one.

    Args:
        logits: ``(B, V)`` or ``(V,)``.
        temperature: :math:`\tau \ge 0`; ``0`` is greedy decoding (the argmax, no random numbers drawn).
        top_k: as in :func:`next_token_distribution`.
        generator: a seeded :class:`torch.Generator` (on the device of ``logits``) for reproducible samples.

    Returns:
        int64 token indices, ``(B, 1)`` for ``(B, V)`` logits (ready to append to ``(B, T)`` prompts with
        ``torch.cat(..., dim=1)``), ``(1,)`` for ``(V,)``.
    """
    logits = _check_logits(logits)
    _check_options(temperature, top_k, greedy=True)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1) or (1,)
    probs = next_token_distribution(logits, temperature, top_k)  # (B, V) or (V,)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1) or (1,)
