"""seqlib.data: the offline datasets are deterministic, have the documented shapes, and mean what they say."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

import seqlib.data as D
from seqlib.data import text as text_module
from seqlib.vocab import CharTokenizer, WordTokenizer

REPO = Path(__file__).resolve().parents[1]


def _items(ds, k=None):
    return [ds[i] for i in range(len(ds) if k is None else k)]


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# name -> factory(seed) for every synthetic task
FACTORIES = {
    "adding_problem": lambda seed: D.adding_problem(64, 20, seed=seed),
    "copy_task": lambda seed: D.copy_task(64, 5, 7, seed=seed),
    "reversal_task": lambda seed: D.reversal_task(64, 9, seed=seed),
    "reversal_task_varlen": lambda seed: D.reversal_task(64, 9, min_len=2, seed=seed),
    "sorting_task": lambda seed: D.sorting_task(64, 9, min_len=3, seed=seed),
    "noisy_sine": lambda seed: D.noisy_sine(64, 30, seed=seed),
    "negation_sentiment": lambda seed: D.negation_sentiment(64, seed=seed),
    "date_translation": lambda seed: D.date_translation(64, seed=seed),
}


# ------------------------------------------------------------------------------------------ determinism


@pytest.mark.part1
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_same_seed_same_items_different_seed_different_items(name):
    make = FACTORIES[name]
    rng_before = torch.get_rng_state()
    a, b, c = _items(make(3)), _items(make(3)), _items(make(4))
    assert torch.equal(torch.get_rng_state(), rng_before), "the global torch RNG must not be used"
    assert len(a) == 64
    assert _same(a, b)
    assert not _same(a, c)


ZERO_ITEMS = {
    "adding_problem": lambda: D.adding_problem(0, 5),
    "copy_task": lambda: D.copy_task(0, 5, 5),
    "reversal_task": lambda: D.reversal_task(0, 5),
    "sorting_task": lambda: D.sorting_task(0, 5),
    "noisy_sine": lambda: D.noisy_sine(0, 5),
    "negation_sentiment": lambda: D.negation_sentiment(0),
    "date_translation": lambda: D.date_translation(0),
}


@pytest.mark.part1
@pytest.mark.parametrize("name", sorted(ZERO_ITEMS))
def test_bad_arguments_raise(name):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        ZERO_ITEMS[name]()
    with pytest.raises(TypeError, match="seed must be an int"):
        FACTORIES[name](1.5)
    with pytest.raises(TypeError, match="n must be an int"):
        getattr(D, name)(2.0, 5, 5) if name == "copy_task" else getattr(D, name)(2.0, 5)


# ------------------------------------------------------------------------------------------ numbers


@pytest.mark.part2
def test_adding_problem_layout_and_statistics():
    n, T = 10000, 51
    ds = D.adding_problem(n, T, seed=0)
    x, y = ds[0]
    assert x.shape == (T, 2) and x.dtype == torch.float32
    assert y.shape == () and y.dtype == torch.float32
    X, Y = ds.inputs[:2000], ds.targets[:2000]  # (2000, T, 2), (2000,)
    values, markers = X[..., 0], X[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert ((markers == 0) | (markers == 1)).all()
    assert (markers[:, : T // 2].sum(1) == 1).all() and (markers[:, T // 2 :].sum(1) == 1).all()
    torch.testing.assert_close(Y, (values * markers).sum(1))
    all_y = ds.targets.double()  # (n,)
    baseline = ((all_y - all_y.mean()) ** 2).mean().item()  # MSE of always predicting the mean
    assert abs(baseline - 2 / 12) < 0.01, baseline
    first = markers[:, : T // 2].argmax(1).double()  # the marker positions are spread over each half
    assert first.min() == 0 and first.max() == T // 2 - 1


@pytest.mark.part1
def test_noisy_sine_targets_are_the_clean_next_values():
    ds = D.noisy_sine(400, 60, noise_std=0.2, seed=1)
    x, y = ds[0]
    assert x.shape == y.shape == (60, 1) and x.dtype == y.dtype == torch.float32
    X = torch.stack([d[0] for d in _items(ds)])
    Y = torch.stack([d[1] for d in _items(ds)])
    noise = X[:, 1:] - Y[:, :-1]  # x_{t+1} = s_{t+1} + eps_{t+1} and y_t = s_{t+1}
    assert abs(noise.std().item() - 0.2) < 0.01 and abs(noise.mean().item()) < 0.01
    clean = D.noisy_sine(400, 60, noise_std=0.0, seed=1)
    assert torch.equal(clean.targets, ds.targets) and torch.equal(clean.inputs[:, 1:], clean.targets[:, :-1])


# ------------------------------------------------------------------------------------------ tokens


@pytest.mark.part1
@pytest.mark.parametrize("L,delay,K", [(1, 1, 2), (5, 7, 8), (10, 30, 4)])
def test_copy_task_layout(L, delay, K):
    ds = D.copy_task(50, L, delay, num_symbols=K, seed=0)
    for x, y in _items(ds):
        assert x.shape == y.shape == (2 * L + delay,) and x.dtype == y.dtype == torch.int64
        assert ((x[:L] >= 1) & (x[:L] <= K)).all()
        assert x[L + delay - 1] == K + 1 and (x[L : L + delay - 1] == 0).all() and (x[L + delay :] == 0).all()
        assert torch.equal(y[L + delay :], x[:L]) and (y[: L + delay] == 0).all()


@pytest.mark.part3
@pytest.mark.parametrize("task,expected", [("reversal_task", lambda s: s.flip(0)),
                                           ("sorting_task", lambda s: s.sort().values)])
@pytest.mark.parametrize("min_len", [None, 1, 4])
def test_reversal_and_sorting(task, expected, min_len):
    ds = getattr(D, task)(200, 8, num_symbols=6, min_len=min_len, seed=2)
    lengths = set()
    for x, y in _items(ds):
        assert x.dtype == y.dtype == torch.int64 and x.dim() == 1
        assert ((x >= 1) & (x <= 6)).all()
        assert torch.equal(y, expected(x))
        lengths.add(len(x))
    assert lengths == ({8} if min_len is None else set(range(min_len, 9)))
    with pytest.raises(ValueError, match="min_len must be <= seq_len"):
        getattr(D, task)(5, 3, min_len=4)


# ------------------------------------------------------------------------------------------ text tasks


@pytest.mark.part2
@pytest.mark.parametrize("n", [400, 401])
def test_negation_pairs_share_their_bag_of_words_with_opposite_labels(n):
    ds = D.negation_sentiment(n, seed=5)
    assert len(ds) == n
    bag = WordTokenizer("", lowercase=True).tokenize
    labels = [label for _, label in _items(ds)]
    assert set(labels) == {0, 1} and abs(sum(labels) - n / 2) <= 1
    assert abs(sum(ds.negated) - n / 2) <= 2, "plain and negated forms must be balanced"
    orphans = 0
    for i, (text, label) in enumerate(_items(ds)):
        j = ds.partner[i]
        if j < 0:
            orphans += 1
            continue
        assert ds.partner[j] == i and ds.negated[j] == ds.negated[i]
        other, other_label = ds[j]
        assert other_label == 1 - label
        if ds.negated[i]:
            assert Counter(bag(text)) == Counter(bag(other)), (text, other)
            assert text != other
        else:
            assert Counter(bag(text)) != Counter(bag(other))
    assert orphans == n % 2
    texts = [t for t, _ in _items(ds)]
    assert len(set(texts)) > 0.9 * n, "sentences must be varied"
    assert len({t.split(" ")[1] for t in texts if t.startswith("The ")}) >= 10  # many subjects
    # negation must really decide the label: both labels occur for sentences containing "good"
    assert {label for t, label in _items(ds) if re.search(r"\bgood\b", t) and ds.negated[texts.index(t)]} == {0, 1}


def _parse_date(source: str, fmt: str) -> datetime.date:
    """An independent reading of each documented format (two-digit years: 50-99 -> 19xx, 00-49 -> 20xx)."""
    def two_digit(yy: str) -> int:
        return 1900 + int(yy) if int(yy) >= 50 else 2000 + int(yy)

    if fmt == "MM/DD/YY":
        m, d, y = source.split("/")
        return datetime.date(two_digit(y), int(m), int(d))
    if fmt == "D Mon YY":
        d, mon, y = source.split(" ")
        return datetime.datetime.strptime(f"{d} {mon} 2000", "%d %b %Y").date().replace(year=two_digit(y))
    if fmt == "Dth of Month, YYYY":
        source = re.sub(r"^(\d+)(st|nd|rd|th)", r"\1", source)
    patterns = {
        "D Month YYYY": "%d %B %Y", "Mon D, YYYY": "%b %d, %Y", "Month D, YYYY": "%B %d, %Y",
        "MM/DD/YYYY": "%m/%d/%Y", "Weekday, Month D YYYY": "%A, %B %d %Y", "Weekday, D Month YYYY": "%A, %d %B %Y",
        "YYYY.MM.DD": "%Y.%m.%d", "D.M.YYYY": "%d.%m.%Y", "MONTH D, YYYY": "%B %d, %Y",
        "Dth of Month, YYYY": "%d of %B, %Y", "Wkd D Mon YYYY": "%a %d %b %Y", "YYYY/MM/DD": "%Y/%m/%d",
        "month d yyyy": "%B %d %Y",
    }
    return datetime.datetime.strptime(source, patterns[fmt]).date()


@pytest.mark.part3
def test_dates_round_trip_to_valid_iso_dates():
    ds = D.date_translation(3000, seed=0)
    assert set(ds.formats) == set(D.DATE_FORMATS), "every format must occur"
    weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    for (source, target), fmt, date in zip(_items(ds), ds.formats, ds.dates, strict=True):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", target)
        parsed = datetime.date.fromisoformat(target)
        assert parsed == date and datetime.date(1950, 1, 1) <= parsed <= datetime.date(2049, 12, 31)
        assert _parse_date(source, fmt) == parsed, (source, fmt, target)
        if "Weekday" in fmt or "Wkd" in fmt:
            assert source.startswith(weekdays[parsed.weekday()][:3])
    years = {d.year for d in ds.dates}
    assert min(years) < 1960 and max(years) > 2040
    only = D.date_translation(50, seed=0, formats=["YYYY.MM.DD"])
    assert all(s.replace(".", "-") == t for s, t in _items(only))
    with pytest.raises(ValueError, match="formats must be names"):
        D.date_translation(5, formats=["DD-MM"])


# ------------------------------------------------------------------------------------------ corpus


@pytest.fixture(scope="module")
def corpus_and_cache(tmp_path_factory):
    """Build the corpus once into an empty cache directory (the slow part of this file)."""
    cache = tmp_path_factory.mktemp("seqlib-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEQLIB_CACHE", str(cache))
        text = D.text_corpus("python-docs")
    return text, cache


@pytest.mark.slow
@pytest.mark.part3
def test_corpus_is_large_english_prose(corpus_and_cache):
    text, _ = corpus_and_cache
    assert len(text.encode()) >= 300_000
    assert text.isascii()
    letters = sum(c.isalpha() for c in text)
    assert letters / len(text) > 0.75 and text.count(" ") / len(text) > 0.12
    words = re.findall(r"[a-z]+", text.lower())
    top = [w for w, _ in Counter(words).most_common(12)]
    for word in ("the", "of", "to", "a", "is"):
        assert word in top, (word, top)
    assert Counter(c for c in text.lower() if c.isalpha()).most_common(1)[0][0] == "e"
    assert ">>>" not in text and "  " not in text
    mean_words = len(words) / text.count("\n")
    assert 10 < mean_words < 200  # one paragraph per line


@pytest.mark.slow
@pytest.mark.part3
def test_corpus_cache_returns_the_identical_string(corpus_and_cache, monkeypatch):
    text, cache = corpus_and_cache
    files = list(cache.glob("python-docs-py*.txt"))
    assert len(files) == 1 and f"py{sys.version_info.major}.{sys.version_info.minor}" in files[0].name
    assert files[0].read_text(encoding="ascii") == text
    monkeypatch.setenv("SEQLIB_CACHE", str(cache))

    def fail():
        raise AssertionError("the cached corpus must be read, not rebuilt")

    monkeypatch.setattr(text_module, "_build_python_docs", fail)
    assert D.text_corpus("python-docs") == text
    monkeypatch.undo()
    some = text_module._STDLIB_MODULES[::10]  # a fresh build is the same string (checked on a tenth of it)
    assert text_module._build_python_docs(some) == text_module._build_python_docs(some)
    assert set(text_module._build_python_docs(some).splitlines()) <= set(text.splitlines())


@pytest.mark.part3
def test_cache_dir_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLIB_CACHE", str(tmp_path / "x"))
    assert D.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("SEQLIB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert D.cache_dir() == tmp_path / "xdg" / "seqlib"  # never the package's own folder
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert D.cache_dir() == Path.home() / ".cache" / "seqlib"
    with pytest.raises(ValueError, match="'python-docs'"):
        D.text_corpus("shakespeare")


@pytest.mark.part3
def test_train_val_split():
    text = "abcdefghij" * 10
    train, val = D.train_val_split(text, val_fraction=0.1)
    assert (len(train), len(val)) == (90, 10) and train + val == text
    t = torch.arange(50)
    a, b = D.train_val_split(t, 0.2)
    assert torch.equal(torch.cat([a, b]), t) and len(b) == 10
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="val_fraction"):
            D.train_val_split(text, bad)
    with pytest.raises(TypeError, match="val_fraction"):
        D.train_val_split(text, "0.1")


@pytest.mark.part3
@pytest.mark.parametrize("T", [1, 8, 33])
def test_char_dataset(T):
    text = "the quick brown fox jumps over the lazy dog. " * 5
    ds = D.CharDataset(text, T)
    assert isinstance(ds.tokenizer, CharTokenizer) and ds.vocab_size == len(ds.tokenizer.vocab)
    assert len(ds) == len(text) - T
    for i in (0, 7, len(ds) - 1, -1):
        x, y = ds[i]
        assert x.shape == y.shape == (T,) and x.dtype == y.dtype == torch.int64
        start = i % len(ds)
        assert ds.decode(x) == text[start : start + T] and ds.decode(y) == text[start + 1 : start + T + 1]
    with pytest.raises(IndexError):
        ds[len(ds)]
    val = D.CharDataset("the dog", 3, tokenizer=ds.tokenizer)  # a validation set shares the vocabulary
    assert val.tokenizer is ds.tokenizer and val.decode(val[0][0]) == "the"
    with pytest.raises(ValueError, match="longer than context_length"):
        D.CharDataset("abc", 3)
    with pytest.raises(TypeError, match="text must be a str"):
        D.CharDataset(list("abcdef"), 3)


# ------------------------------------------------------------------------------------------ time series


def _sample_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


@pytest.mark.part1
def test_time_series_names_follow_the_installed_matplotlib():
    shipped = {name for name, (fname, _) in D.TIME_SERIES.items() if (_sample_dir() / fname).is_file()}
    assert set(D.available_time_series()) == shipped and "eeg" in shipped
    with pytest.raises(ValueError) as err:
        D.time_series("sunspots")
    for name in shipped:
        assert repr(name) in str(err.value)


@pytest.mark.part1
@pytest.mark.parametrize("name", ["stocks", "goog", "msft", "eeg", "membrane"])
def test_time_series_windows_and_train_only_normalisation(name):
    if name not in D.available_time_series():
        pytest.fail(f"matplotlib no longer ships {name!r}: update seqlib.data.timeseries")
    W, H = 8, 3
    train = D.time_series(name, window=W, horizon=H, val_fraction=0.25)
    val = D.time_series(name, window=W, horizon=H, split="val", val_fraction=0.25)
    raw, features = D.load_series(name)  # (N, F) float64
    n_train = int(np.floor(0.75 * raw.shape[0]))
    assert train.train_steps == n_train and len(features) == raw.shape[1] == train.series.shape[1]
    mean = raw[:n_train].mean(0)
    std = raw[:n_train].std(0, correction=0)
    torch.testing.assert_close(train.mean, mean)
    torch.testing.assert_close(train.std, std)
    torch.testing.assert_close(train.series.double(), (raw - mean) / std, rtol=1e-5, atol=1e-5)
    head = train.series[:n_train].double()
    torch.testing.assert_close(head.mean(0), torch.zeros(raw.shape[1], dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(head.std(0, correction=0), torch.ones(raw.shape[1], dtype=torch.float64), atol=1e-5,
                               rtol=0)
    if raw[n_train:].shape[0] > 10:  # the statistics do not use the validation part
        assert not torch.allclose(raw.mean(0), mean)
    F = raw.shape[1]
    x, y = train[0]
    assert x.shape == (W, F) and y.shape == (H, F) and x.dtype == torch.float32
    assert torch.equal(torch.cat([x, y]), train.series[: W + H])
    assert train.starts[-1] + W + H <= n_train
    assert val.starts[0] + W >= n_train and val.starts[-1] + W + H == raw.shape[0]
    torch.testing.assert_close(train.denormalize(train.series).double(), raw, rtol=1e-5, atol=1e-4)


@pytest.mark.part1
def test_time_series_raw_values_match_the_files():
    raw, _ = D.load_series("eeg")
    np.testing.assert_array_equal(raw.numpy(), np.fromfile(_sample_dir() / "eeg.dat", dtype=float).reshape(800, 4))
    goog, _ = D.load_series("goog")
    with np.load(_sample_dir() / "goog.npz") as f:
        np.testing.assert_allclose(goog[:, 0].numpy(), np.log(f["price_data"]["adj_close"]))
    with pytest.raises(ValueError, match="shorter window"):
        D.time_series("msft", window=60)


# ------------------------------------------------------------------------------------------ collate


def _random_batch(lengths, feature, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (lambda L: (L, 3)) if feature else (lambda L: (L,))
    xs = [torch.randn(shape(L), generator=g) if feature else torch.randint(1, 9, shape(L), generator=g)
          for L in lengths]
    return [(x, torch.tensor(i % 2)) for i, x in enumerate(xs)], xs


@pytest.mark.part1
@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6), feature=st.booleans(),
       batch_first=st.booleans())
def test_collate_padded_matches_torch(lengths, feature, batch_first):
    batch, xs = _random_batch(lengths, feature, seed=len(lengths))
    (padded, lens), targets = D.collate_padded(batch, padding_value=0, batch_first=batch_first)
    torch.testing.assert_close(padded, pad_sequence(xs, batch_first=batch_first, padding_value=0))
    assert lens.dtype == torch.int64 and lens.device.type == "cpu" and lens.tolist() == lengths
    assert torch.equal(targets, torch.tensor([i % 2 for i in range(len(lengths))]))


@pytest.mark.part1
@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6), feature=st.booleans())
def test_collate_packed_matches_pack_padded_sequence(lengths, feature):
    batch, xs = _random_batch(lengths, feature, seed=7)
    packed, targets = D.collate_packed(batch)
    ref = pack_padded_sequence(pad_sequence(xs, batch_first=True), torch.tensor(lengths), batch_first=True,
                               enforce_sorted=False)
    torch.testing.assert_close(packed.data, ref.data)
    assert torch.equal(packed.batch_sizes, ref.batch_sizes)
    assert torch.equal(packed.sorted_indices, ref.sorted_indices)
    assert torch.equal(targets, torch.tensor([i % 2 for i in range(len(lengths))]))  # original order


@pytest.mark.part1
def test_collate_sequence_targets():
    ds = D.reversal_task(5, 7, min_len=2, seed=0)
    batch = _items(ds)
    (padded, lengths), targets = D.collate_padded(batch)
    assert targets.shape == padded.shape
    for i, (_, y) in enumerate(batch):
        assert torch.equal(targets[i, : len(y)], y) and (targets[i, len(y) :] == -100).all()
    packed_x, packed_y = D.collate_packed(batch)
    ref = pack_padded_sequence(pad_sequence([y for _, y in batch], batch_first=True), lengths, batch_first=True,
                               enforce_sorted=False)
    assert torch.equal(packed_y.data, ref.data) and torch.equal(packed_y.batch_sizes, packed_x.batch_sizes)
    with pytest.raises(ValueError, match=r"must be an \(x, y\) pair"):
        D.collate_padded([torch.ones(3)])


@pytest.mark.part2
def test_encode_dataset_for_sentiment():
    raw = D.negation_sentiment(200, seed=0)
    ds = D.encode_dataset(raw)
    assert isinstance(ds.tokenizer, WordTokenizer) and len(ds) == 200
    x, y = ds[0]
    assert x.dtype == torch.int64 and y.dtype == torch.int64 and y.shape == ()
    assert ds.tokenizer.decode(x) == raw[0][0].lower() and int(y) == raw[0][1]
    val = D.encode_dataset(D.negation_sentiment(20, seed=1), tokenizer=ds.tokenizer)
    assert val.tokenizer is ds.tokenizer
    loader = torch.utils.data.DataLoader(ds, batch_size=16,
                                         collate_fn=lambda b: D.collate_padded(b, padding_value=ds.pad_index))
    (padded, lengths), labels = next(iter(loader))
    assert padded.shape == (16, int(lengths.max())) and labels.shape == (16,)
    assert (padded[0, lengths[0] :] == ds.tokenizer.vocab.pad_index).all()


@pytest.mark.part3
def test_encode_dataset_for_dates_and_collate_seq2seq():
    raw = D.date_translation(100, seed=0)
    ds = D.encode_dataset(raw)
    src, tgt = ds[0]
    tv = ds.target_tokenizer.vocab
    assert ds.tokenizer.decode(src) == raw[0][0]
    assert tgt[0] == tv.bos_index and tgt[-1] == tv.eos_index and ds.target_tokenizer.decode(tgt[1:-1]) == raw[0][1]
    assert len(tv) == 4 + 11  # specials + digits and '-'
    (s, s_len, t_in), t_out = D.collate_seq2seq(_items(ds, 4), pad_index=ds.pad_index)
    assert s.shape == (4, int(s_len.max())) and t_in.shape == t_out.shape == (4, 11)
    for i in range(4):
        x, y = ds[i]
        assert torch.equal(s[i, : len(x)], x) and (s[i, len(x) :] == ds.pad_index).all()
        assert torch.equal(t_in[i], y[:-1]) and torch.equal(t_out[i], y[1:])
    (s2, _, t_in2), t_out2 = D.collate_seq2seq(_items(ds, 4), batch_first=False)
    assert torch.equal(s2, s.T) and torch.equal(t_out2, t_out.T)


# ------------------------------------------------------------------------------------------ listing


@pytest.mark.slow
@pytest.mark.part1
def test_python_m_seqlib_data_lists_every_dataset(corpus_and_cache):
    env = {**os.environ, "SEQLIB_CACHE": str(corpus_and_cache[1])}  # the corpus built above
    out = subprocess.run([sys.executable, "-m", "seqlib.data"], capture_output=True, text=True, cwd=REPO,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    for name in ("text_corpus", "CharDataset", "time_series", "adding_problem", "copy_task", "reversal_task",
                 "sorting_task", "noisy_sine", "negation_sentiment", "date_translation", *D.available_time_series()):
        assert name in out.stdout, name
