"""Synthetic sequence tasks, each built to show one thing a sequence model can or cannot do.

Every function takes the number of items ``n`` and a ``seed`` and returns a ``torch.utils.data.Dataset``;
all randomness comes from a local ``torch.Generator`` seeded with ``seed`` (the global RNG is never
touched), so the same arguments always give the same items.

=======================  =====================================================================================
``adding_problem``       long-range memory: add the two marked numbers of a long sequence (LSTM vs RNN, C12)
``copy_task``            remember a sequence across a delay, then write it out
``reversal_task``        write a token sequence backwards (seq2seq, attention)
``sorting_task``         write a token sequence in ascending order
``noisy_sine``           forecast the next value of a noisy sine wave
``negation_sentiment``   "good, not bad" vs "bad, not good": word order matters (bag of words fails, C14)
``date_translation``     "Mar 3, 1997" -> "1997-03-03" (encoder-decoder with attention, C16)
=======================  =====================================================================================
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from .._checks import check_positive_int

__all__ = [
    "PairDataset", "SentimentDataset", "DateDataset", "adding_problem", "copy_task", "reversal_task",
    "sorting_task", "noisy_sine", "negation_sentiment", "date_translation", "DATE_FORMATS",
]


def _generator(seed: int) -> torch.Generator:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, but got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


def _check_n(n: object) -> int:
    return check_positive_int("n", n)


class PairDataset(Dataset):
    """Items ``(inputs[i], targets[i])`` from two stacked tensors or two lists of tensors of equal length.

    Attributes:
        inputs, targets: a tensor with the items along dim 0, or a list of tensors (variable-length items).
    """

    def __init__(self, inputs: torch.Tensor | list[torch.Tensor], targets: torch.Tensor | list[torch.Tensor]):
        if len(inputs) != len(targets):
            raise ValueError(f"inputs and targets must have the same length, but got {len(inputs)} and {len(targets)}")
        self.inputs = inputs
        self.targets = targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]


# --------------------------------------------------------------------------------------------- numbers


def adding_problem(n: int, seq_len: int, seed: int = 0) -> PairDataset:
    r"""The adding problem (Hochreiter & Schmidhuber, 1997): add two numbers marked far apart.

    Each step carries two features: a value :math:`v_t \sim U(0, 1)` and a marker :math:`m_t \in \{0, 1\}`.
    Exactly two markers are 1, one at a uniformly chosen step of the first half :math:`[0, \lfloor T/2 \rfloor)`
    and one in the second half. The target is :math:`y = \sum_t m_t v_t`. Predicting the mean
    :math:`E[y] = 1` gives the trivial baseline MSE :math:`\mathrm{Var}(y) = 2/12 \approx 0.167`; solving it
    needs a memory that lasts about :math:`T/2` steps.

    Args:
        n: number of items.
        seq_len: :math:`T` (at least 2).
        seed: seed of the local generator.

    Outputs:
        - x: :math:`(T, 2)` float32, ``x[:, 0]`` the values and ``x[:, 1]`` the markers
        - y: :math:`()` float32
    """
    _check_n(n)
    check_positive_int("seq_len", seq_len)
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2 (one marker in each half), but got {seq_len}")
    g = _generator(seed)
    half = seq_len // 2
    values = torch.rand(n, seq_len, generator=g)  # (n, T)
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, seq_len, (n,), generator=g)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (n, T, 2)
    y = values[rows, first] + values[rows, second]  # (n,)
    return PairDataset(x, y)


def noisy_sine(
    n: int, seq_len: int, noise_std: float = 0.1, min_period: float = 10.0, max_period: float = 40.0, seed: int = 0
) -> PairDataset:
    r"""One-step-ahead forecasting of noisy sine waves.

    Each item is a wave :math:`s_t = a \sin(2\pi t / p + \varphi)` with amplitude :math:`a \sim U(0.5, 1.5)`,
    period :math:`p \sim U(\text{min\_period}, \text{max\_period})` steps and phase :math:`\varphi \sim U(0, 2\pi)`.
    The input is the noisy observation :math:`x_t = s_t + \epsilon_t`, :math:`\epsilon_t \sim N(0, \sigma^2)`,
    for :math:`t = 0..T-1`; the target at step :math:`t` is the *clean* next value :math:`s_{t+1}`, so a model
    that has inferred the wave from its context can reach an error below the noise level.

    Args:
        n: number of items.
        seq_len: :math:`T`.
        noise_std: :math:`\sigma`.
        min_period, max_period: range of the period in steps.
        seed: seed of the local generator.

    Outputs:
        - x: :math:`(T, 1)` float32
        - y: :math:`(T, 1)` float32
    """
    _check_n(n)
    check_positive_int("seq_len", seq_len)
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, but got {noise_std}")
    if not 0 < min_period <= max_period:
        raise ValueError(f"need 0 < min_period <= max_period, but got {min_period} and {max_period}")
    g = _generator(seed)
    amplitude = 0.5 + torch.rand(n, 1, generator=g)  # (n, 1)
    period = min_period + (max_period - min_period) * torch.rand(n, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    t = torch.arange(seq_len + 1, dtype=torch.float32)  # (T + 1,)
    clean = amplitude * torch.sin(2 * math.pi * t / period + phase)  # (n, T + 1)
    noisy = clean[:, :-1] + noise_std * torch.randn(n, seq_len, generator=g)  # (n, T)
    return PairDataset(noisy.unsqueeze(-1), clean[:, 1:].unsqueeze(-1))  # (n, T, 1) each


# --------------------------------------------------------------------------------------------- tokens


def copy_task(n: int, seq_len: int, delay: int, num_symbols: int = 8, seed: int = 0) -> PairDataset:
    r"""The copy task: read :math:`L` symbols, wait, then write them out again.

    Token layout (vocabulary size ``num_symbols + 2``): ``0`` is the blank, ``1..K`` are the symbols
    (:math:`K` = ``num_symbols``) and ``K + 1`` is the "go" marker. With :math:`L` = ``seq_len`` and
    :math:`D` = ``delay``, both sequences have length :math:`2L + D`::

        x:  s_1 ... s_L | 0 ... 0 (D - 1 blanks) go | 0 ... 0 (L blanks)
        y:  0 ... 0 (L + D blanks)                   | s_1 ... s_L

    so the first symbol is due on the step after the go marker. Always answering blank scores the
    baseline cross-entropy :math:`L \log K / (2L + D)`.

    Args:
        n: number of items.
        seq_len: :math:`L`, symbols to remember.
        delay: :math:`D \ge 1`, steps between the end of the symbols and the start of the answer.
        num_symbols: :math:`K`.
        seed: seed of the local generator.

    Outputs:
        - x: :math:`(2L + D)` int64
        - y: :math:`(2L + D)` int64
    """
    _check_n(n)
    check_positive_int("seq_len", seq_len)
    check_positive_int("delay", delay)
    check_positive_int("num_symbols", num_symbols)
    g = _generator(seed)
    total = 2 * seq_len + delay
    symbols = torch.randint(1, num_symbols + 1, (n, seq_len), generator=g)  # (n, L)
    x = torch.zeros(n, total, dtype=torch.int64)
    y = torch.zeros(n, total, dtype=torch.int64)
    x[:, :seq_len] = symbols
    x[:, seq_len + delay - 1] = num_symbols + 1
    y[:, seq_len + delay :] = symbols
    return PairDataset(x, y)


def _token_sequences(
    n: int, seq_len: int, num_symbols: int, min_len: int | None, g: torch.Generator
) -> torch.Tensor | list[torch.Tensor]:
    _check_n(n)
    check_positive_int("seq_len", seq_len)
    check_positive_int("num_symbols", num_symbols)
    tokens = torch.randint(1, num_symbols + 1, (n, seq_len), generator=g)  # (n, L)
    if min_len is None:
        return tokens
    check_positive_int("min_len", min_len)
    if min_len > seq_len:
        raise ValueError(f"min_len must be <= seq_len = {seq_len}, but got {min_len}")
    lengths = torch.randint(min_len, seq_len + 1, (n,), generator=g).tolist()
    return [tokens[i, :length] for i, length in enumerate(lengths)]


def reversal_task(
    n: int, seq_len: int, num_symbols: int = 10, min_len: int | None = None, seed: int = 0
) -> PairDataset:
    """Token sequences and the same sequences reversed.

    Tokens are ``1..num_symbols``; ``0`` is left free for padding (vocabulary size ``num_symbols + 1``).

    Args:
        n: number of items.
        seq_len: :math:`L`, the length (the longest length when ``min_len`` is given).
        num_symbols: number of distinct tokens.
        min_len: if given, each item's length is uniform in ``[min_len, seq_len]`` (use ``collate_padded``
            or ``collate_packed`` to batch them); if ``None``, all items have length ``seq_len``.
        seed: seed of the local generator.

    Outputs:
        - x: :math:`(L_i)` int64
        - y: :math:`(L_i)` int64, ``x.flip(0)``
    """
    seqs = _token_sequences(n, seq_len, num_symbols, min_len, _generator(seed))
    if isinstance(seqs, torch.Tensor):
        return PairDataset(seqs, seqs.flip(1))
    return PairDataset(seqs, [s.flip(0) for s in seqs])


def sorting_task(
    n: int, seq_len: int, num_symbols: int = 10, min_len: int | None = None, seed: int = 0
) -> PairDataset:
    """Token sequences and the same tokens in ascending order (same arguments and layout as ``reversal_task``).

    Outputs:
        - x: :math:`(L_i)` int64
        - y: :math:`(L_i)` int64, ``x.sort().values``
    """
    seqs = _token_sequences(n, seq_len, num_symbols, min_len, _generator(seed))
    if isinstance(seqs, torch.Tensor):
        return PairDataset(seqs, seqs.sort(dim=1).values)
    return PairDataset(seqs, [s.sort().values for s in seqs])


# --------------------------------------------------------------------------------------------- text


_SUBJECTS = (
    "food", "movie", "service", "hotel room", "concert", "book", "coffee", "staff", "weather", "game", "plot",
    "music", "pizza", "flight", "show", "lecture", "trip", "soup", "album", "museum", "class", "camera",
    "dessert", "play",
)
_POSITIVE = (
    "good", "great", "excellent", "wonderful", "pleasant", "amazing", "delightful", "superb", "lovely",
    "fantastic", "enjoyable", "brilliant", "charming", "impressive",
)
_NEGATIVE = (
    "bad", "terrible", "awful", "boring", "horrible", "dreadful", "poor", "disappointing", "bland", "mediocre",
    "unpleasant", "dull", "annoying", "weak",
)
# Plain forms: {a} is the adjective whose polarity is the label; {b} one more adjective of the same polarity.
_PLAIN = (
    "The {s} {v} {a}.",
    "The {s} {v} really {a}.",
    "I thought the {s} {v} {a}.",
    "The {s} {v} {a} and {b}.",
    "Honestly, the {s} {v} {a}.",
    "Everyone agreed that the {s} {v} {a}.",
    "The {s} {v} so {a}!",
    "The {s} {v} quite {a} overall.",
)
# Negated forms: {a} is affirmed (the label), {b} is negated. Swapping a and b keeps the bag of words.
_NEGATED = (
    "The {s} {v} {a}, not {b} at all.",
    "The {s} {v} not {b}, it {v} {a}.",
    "The {s} {v} not {b} but {a}.",
    "I would not call the {s} {b}; it {v} {a}.",
    "Not {b} at all, the {s} {v} really {a}.",
    "The {s} {v} {a} and not {b}.",
    "Far from {b}, the {s} {v} {a}.",
    "The {s} {v} never {b}; it {v} {a}.",
)


class SentimentDataset(Dataset):
    """Items ``(text, label)``; label 1 = positive, 0 = negative.

    Attributes:
        texts: the sentences.
        labels: their labels.
        negated: ``True`` where the sentence uses a negated form ("good, not bad").
        partner: index of the item made as the same sentence with the opposite label (``-1`` for the odd
            item left over when ``n`` is odd). A negated item and its partner have the same bag of words.
    """

    def __init__(self, texts: list[str], labels: list[int], negated: list[bool], partner: list[int]) -> None:
        self.texts, self.labels, self.negated, self.partner = texts, labels, negated, partner

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], self.labels[index]


def negation_sentiment(n: int, seed: int = 0) -> SentimentDataset:
    """Templated review sentences whose sentiment depends on word order, not just on which words occur.

    The items come in pairs made from one template, one subject and one (positive, negative) adjective pair
    with opposite labels, half of the pairs in plain forms and half in negated forms:

    - plain: "The food was good." (1) / "The food was bad." (0) — the words differ;
    - negated: "The food was good, not bad at all." (1) / "The food was bad, not good at all." (0) — the
      *same* multiset of words, so a bag-of-words classifier scores at best 50% on these pairs, while a
      recurrent model that reads in order can solve them.

    There are 24 subjects, 14 positive and 14 negative adjectives, 8 plain and 8 negated templates, in the
    past or present tense. The pairs are shuffled; ``partner`` finds an item's twin. Labels are balanced.

    Args:
        n: number of items (``n // 2`` full pairs; an odd ``n`` keeps one half of the last pair).
        seed: seed of the local generator.

    Outputs:
        - text: ``str``
        - label: ``int`` in {0, 1}
    """
    _check_n(n)
    g = _generator(seed)
    n_pairs = (n + 1) // 2

    def draw(high: int) -> list[int]:
        return torch.randint(0, high, (n_pairs,), generator=g).tolist()

    subj, tense = draw(len(_SUBJECTS)), draw(2)
    pos, pos2 = draw(len(_POSITIVE)), draw(len(_POSITIVE) - 1)
    neg, neg2 = draw(len(_NEGATIVE)), draw(len(_NEGATIVE) - 1)
    is_negated = (torch.randperm(n_pairs, generator=g) % 2 == 0).tolist()  # exactly half (+1) of the pairs
    template = draw(len(_PLAIN))  # len(_PLAIN) == len(_NEGATED)
    texts, labels, negated = [], [], []
    for k in range(n_pairs):
        s, v = _SUBJECTS[subj[k]], ("was", "is")[tense[k]]
        p, n_ = _POSITIVE[pos[k]], _NEGATIVE[neg[k]]
        if is_negated[k]:
            t = _NEGATED[template[k]]
            texts += [t.format(s=s, v=v, a=p, b=n_), t.format(s=s, v=v, a=n_, b=p)]
        else:
            t = _PLAIN[template[k]]
            p2 = _POSITIVE[(pos[k] + 1 + pos2[k]) % len(_POSITIVE)]  # a second, different adjective
            q2 = _NEGATIVE[(neg[k] + 1 + neg2[k]) % len(_NEGATIVE)]
            texts += [t.format(s=s, v=v, a=p, b=p2), t.format(s=s, v=v, a=n_, b=q2)]
        labels += [1, 0]
        negated += [is_negated[k]] * 2
    order = torch.randperm(n, generator=g).tolist()  # an odd n drops the last pair's second item
    position = {old: new for new, old in enumerate(order)}
    partner = [position.get(old ^ 1, -1) for old in order]
    return SentimentDataset(
        [texts[i] for i in order], [labels[i] for i in order], [negated[i] for i in order], partner
    )


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


# name -> formatter; month and weekday names are spelled out here, not taken from the locale
DATE_FORMATS: dict[str, object] = {
    "D Month YYYY": lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    "Mon D, YYYY": lambda d: f"{_MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "Month D, YYYY": lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
    "MM/DD/YY": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
    "MM/DD/YYYY": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
    "Weekday, Month D YYYY": lambda d: f"{_WEEKDAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {d.day} {d.year}",
    "Weekday, D Month YYYY": lambda d: f"{_WEEKDAYS[d.weekday()]}, {d.day} {_MONTHS[d.month - 1]} {d.year}",
    "YYYY.MM.DD": lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    "D.M.YYYY": lambda d: f"{d.day}.{d.month}.{d.year}",
    "D Mon YY": lambda d: f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year % 100:02d}",
    "MONTH D, YYYY": lambda d: f"{_MONTHS[d.month - 1].upper()} {d.day}, {d.year}",
    "Dth of Month, YYYY": lambda d: f"{_ordinal(d.day)} of {_MONTHS[d.month - 1]}, {d.year}",
    "Wkd D Mon YYYY": lambda d: f"{_WEEKDAYS[d.weekday()][:3]} {d.day} {_MONTHS[d.month - 1][:3]} {d.year}",
    "YYYY/MM/DD": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "month d yyyy": lambda d: f"{_MONTHS[d.month - 1].lower()} {d.day} {d.year}",
}
_FIRST_DATE = datetime.date(1950, 1, 1)
_LAST_DATE = datetime.date(2049, 12, 31)


class DateDataset(Dataset):
    """Items ``(source_text, target_text)``.

    Attributes:
        sources: human-readable dates.
        targets: the same dates as ISO strings ``YYYY-MM-DD``.
        dates: the ``datetime.date`` objects.
        formats: the name of each source's format (a key of ``DATE_FORMATS``).
    """

    def __init__(self, sources: list[str], targets: list[str], dates: list[datetime.date], formats: list[str]):
        self.sources, self.targets, self.dates, self.formats = sources, targets, dates, formats

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[str, str]:
        return self.sources[index], self.targets[index]


def date_translation(n: int, seed: int = 0, formats: Sequence[str] | None = None) -> DateDataset:
    """Human-readable dates in many formats -> ISO dates, a small translation task for seq2seq with attention.

    Dates are uniform over 1950-01-01 .. 2049-12-31, so a two-digit year is unambiguous (50-99 -> 19xx,
    00-49 -> 20xx). Slashed dates are month first (``03/07/97`` is 7 March 1997), dotted dates with a
    one- or two-digit first field are day first (``7.3.1997``); weekdays are the true weekday of the date.
    The 15 formats of ``DATE_FORMATS`` are drawn uniformly, e.g. "3 March 1997", "Mar 3, 1997",
    "03/03/97", "Monday, March 3 1997", "1997.03.03", "3rd of March, 1997".

    Args:
        n: number of items.
        seed: seed of the local generator.
        formats: restrict to these format names (default: all of ``DATE_FORMATS``).

    Outputs:
        - source_text: ``str``, e.g. ``"Mar 3, 1997"``
        - target_text: ``str``, e.g. ``"1997-03-03"``
    """
    _check_n(n)
    names = list(DATE_FORMATS) if formats is None else list(formats)
    unknown = [f for f in names if f not in DATE_FORMATS]
    if unknown or not names:
        raise ValueError(f"formats must be names from {list(DATE_FORMATS)}, but got {list(names)}")
    g = _generator(seed)
    span = (_LAST_DATE - _FIRST_DATE).days + 1
    offsets = torch.randint(0, span, (n,), generator=g).tolist()
    which = torch.randint(0, len(names), (n,), generator=g).tolist()
    dates = [_FIRST_DATE + datetime.timedelta(days=o) for o in offsets]
    fmts = [names[w] for w in which]
    sources = [DATE_FORMATS[f](d) for f, d in zip(fmts, dates, strict=True)]  # type: ignore[operator]
    return DateDataset(sources, [d.isoformat() for d in dates], dates, fmts)
