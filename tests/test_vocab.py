"""Vocabulary, tokenisers and padding: deterministic indices, round trips, and tensors pack_padded_sequence accepts."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

import seqlib
from seqlib.vocab import WORD_PATTERN, CharTokenizer, Vocab, WordTokenizer, pad_sequences

pytestmark = pytest.mark.part1


# ---------------------------------------------------------------------------------------------------------------------
# Vocab
# ---------------------------------------------------------------------------------------------------------------------
def test_specials_come_first_and_have_named_indices():
    v = Vocab("b a b c".split())
    assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert (v.pad_index, v.unk_index, v.bos_index, v.eos_index) == (0, 1, 2, 3)
    assert len(v) == 7


def test_frequency_order_ties_by_first_appearance():
    v = Vocab("c a b a d b a e".split())  # counts a:3 b:2 c:1 d:1 e:1, first seen c, a, b, d, e
    assert v.itos[4:] == ["a", "b", "c", "d", "e"]
    assert v.counts["a"] == 3


def test_alphabetical_order():
    v = Vocab("c a B b a".split(), order="alphabetical")
    assert v.itos[4:] == ["B", "a", "b", "c"]  # code-point order: upper case first


def test_slides_word_to_index_table():
    """With no specials, indices follow first appearance: the slide's table (hallo -> 0, wie -> 1, ...)."""
    words = ["hallo", "wie", "geht's", "juhu", "Vorlesung"]
    v = Vocab(words, specials=())
    assert [v[w] for w in words] == [0, 1, 2, 3, 4]
    table = v.table()
    assert table.splitlines()[0].replace(" ", "") == "|Word|Index|"
    assert "| hallo" in table and "|     0 |" in table
    assert "| Vorlesung |     4 |" in table
    assert v.table(max_rows=2).splitlines()[-1].startswith("| ...")


def test_min_freq_and_max_size():
    corpus = "a a a b b c d d d d e".split()
    assert Vocab(corpus, min_freq=2).itos[4:] == ["d", "a", "b"]
    v = Vocab(corpus, max_size=6)  # counts the 4 specials: 2 corpus tokens fit, the 2 most frequent
    assert len(v) == 6 and v.itos[4:] == ["d", "a"]
    assert Vocab(corpus, max_size=6, order="alphabetical").itos[4:] == ["a", "d"]
    assert Vocab(corpus, max_size=4).itos == list(seqlib.vocab.DEFAULT_SPECIALS)


def test_unknown_tokens_map_to_unk_and_roundtrip():
    v = Vocab("the cat sat on the mat".split())
    assert v["dog"] == v.unk_index
    ids = v.encode(["the", "dog", "sat"], add_bos=True, add_eos=True)
    assert ids == [v.bos_index, v["the"], v.unk_index, v["sat"], v.eos_index]
    assert v.decode(ids) == ["<bos>", "the", "<unk>", "sat", "<eos>"]
    assert v.decode(torch.tensor(ids), skip_specials=True) == ["the", "sat"]
    assert "cat" in v and "dog" not in v
    assert v.lookup_token(v["mat"]) == "mat"


def test_without_unk_unknown_is_a_key_error():
    v = Vocab(["a"], specials=("<pad>",))
    with pytest.raises(KeyError, match="<unk>"):
        v["b"]
    assert v.unk_index is None and v.pad_index == 0


def test_build_from_corpus_of_sentences_and_from_counter():
    corpus = [["i", "like", "rnns"], ["i", "like", "lstms"], ["gru"]]
    v = Vocab.build(corpus)
    assert v.itos[4:] == ["i", "like", "rnns", "lstms", "gru"]
    assert Vocab(Counter({"x": 1, "y": 3, "z": 3})).itos[4:] == ["y", "z", "x"]
    assert Vocab.build(["a", "b", "a"]).itos[4:] == ["a", "b"]


def test_rebuild_from_itos_gives_same_indices():
    v = Vocab("one two two three three three".split(), order="frequency")
    assert Vocab(v.itos, specials=()) == v
    assert v.get_stoi() == {t: i for i, t in enumerate(v.get_itos())}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(list("abcdefgh")), max_size=40), st.integers(1, 3), st.sampled_from(["frequency",
                                                                                                      "alphabetical"]))
def test_property_deterministic_and_consistent(tokens, min_freq, order):
    v1, v2 = Vocab(tokens, min_freq=min_freq, order=order), Vocab(list(tokens), min_freq=min_freq, order=order)
    assert v1.itos == v2.itos
    assert all(v1.stoi[t] == i for i, t in enumerate(v1.itos))
    counts = Counter(tokens)
    body = v1.itos[4:]
    assert set(body) == {t for t, n in counts.items() if n >= min_freq}
    if order == "frequency":
        first = {t: tokens.index(t) for t in body}
        assert body == sorted(body, key=lambda t: (-counts[t], first[t]))
    else:
        assert body == sorted(body)
    assert v1.decode(v1.encode(body)) == body


@pytest.mark.parametrize("call,exc,parts", [
    (lambda: Vocab("hello"), TypeError, ["tokens", "str", "list(text)"]),
    (lambda: Vocab([1, 2]), TypeError, ["tokens", "str", "int"]),
    (lambda: Vocab(["a"], min_freq=0), ValueError, ["min_freq", "0"]),
    (lambda: Vocab(["a"], max_size=2), ValueError, ["max_size", "len(specials) = 4", "2"]),
    (lambda: Vocab(["a"], order="random"), ValueError, ["order", "'frequency'", "'random'"]),
    (lambda: Vocab(["a"], specials=("<pad>", "<pad>")), ValueError, ["specials", "distinct"]),
    (lambda: Vocab(["a"]).lookup_token(9), IndexError, ["index", "[0, 5)", "9"]),
    (lambda: Vocab(["a"]).encode("a"), TypeError, ["tokens", "str"]),
    (lambda: Vocab.build("a b"), TypeError, ["corpus_tokens", "str"]),
])
def test_bad_vocab_arguments(call, exc, parts):
    with pytest.raises(exc) as info:
        call()
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"


# ---------------------------------------------------------------------------------------------------------------------
# tokenisers
# ---------------------------------------------------------------------------------------------------------------------
def test_char_tokenizer_roundtrip_and_sorted_vocabulary():
    text = "hello world"
    tok = CharTokenizer(text)
    assert tok.vocab.itos[4:] == sorted(set(text))
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("hez")[-1] == tok.vocab.unk_index
    ids = tok.encode("hi", add_bos=True, add_eos=True)
    assert ids[0] == tok.vocab.bos_index and ids[-1] == tok.vocab.eos_index
    assert tok.decode(ids) == "<bos>h<unk><eos>"
    assert tok.decode(ids, skip_specials=True) == "h"
    assert tok.decode(tok.encode("low"), skip_specials=True) == "low"
    assert len(tok) == tok.vocab_size == 4 + len(set(text))
    assert CharTokenizer(tok.vocab).encode(text) == tok.encode(text)
    with pytest.raises(TypeError, match="text_or_vocab"):
        CharTokenizer(["a"])


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=30))
def test_property_char_roundtrip(text):
    tok = CharTokenizer(text + "x")
    assert tok.decode(tok.encode(text)) == text


def test_word_tokenizer_keeps_punctuation():
    tok = WordTokenizer("The food was good, not bad at all.")
    assert tok.tokenize("The food was good, not bad at all.") == [
        "The", "food", "was", "good", ",", "not", "bad", "at", "all", "."]
    assert tok.tokenize("I don't know (really)!") == ["I", "don't", "know", "(", "really", ")", "!"]
    text = "The food was bad, not good at all."
    assert tok.decode(tok.encode(text)) == text
    assert WORD_PATTERN.findall("a-b") == ["a", "-", "b"]


def test_word_tokenizer_lowercase_and_unknowns():
    tok = WordTokenizer(["The cat sat.", "the dog ran!"], lowercase=True)
    assert "The" not in tok.vocab and tok.vocab.counts["the"] == 2
    assert tok.decode(tok.encode("The Cat ran.")) == "the cat ran."
    assert tok.encode("a zebra")[1] == tok.vocab.unk_index
    assert WordTokenizer("a b b", min_freq=2).vocab.itos[4:] == ["b"]
    with pytest.raises(TypeError, match="text_or_vocab"):
        WordTokenizer(42)


WORDS = ["the", "food", "was", "good", "bad", "not", "at", "all", "I", "grew", "up", "don't"]
PUNCT = [",", ".", "!", "?", ";", ":"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from([""] + PUNCT)), min_size=1, max_size=12))
def test_property_word_roundtrip(pieces):
    """Text with one space between words and punctuation attached survives encode/decode unchanged."""
    text = " ".join(word + punct for word, punct in pieces)
    tok = WordTokenizer(" ".join(WORDS + PUNCT))
    assert tok.decode(tok.encode(text)) == text
    assert tok.tokenize(tok.decode(tok.encode(text))) == tok.tokenize(text)


# ---------------------------------------------------------------------------------------------------------------------
# pad_sequences
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequences_matches_torch_and_packs(batch_first):
    seqs = [torch.randn(3, 2), torch.randn(5, 2), torch.randn(1, 2)]
    padded, lengths = pad_sequences(seqs, padding_value=-1.0, batch_first=batch_first)
    torch.testing.assert_close(padded, pad_sequence(seqs, batch_first=batch_first, padding_value=-1.0))
    assert lengths.dtype == torch.int64 and lengths.device.type == "cpu" and lengths.tolist() == [3, 5, 1]
    packed = pack_padded_sequence(padded, lengths, batch_first=batch_first, enforce_sorted=False)
    unpacked, out_lengths = pad_packed_sequence(packed, batch_first=batch_first, padding_value=-1.0)
    torch.testing.assert_close(unpacked, padded)
    assert torch.equal(out_lengths, lengths)


def test_pad_sequences_from_token_lists_feeds_embedding_and_rnn():
    vocab = Vocab("a b c d".split())
    batch = [vocab.encode(["a", "b"]), vocab.encode(["c"]), vocab.encode(["a", "b", "c", "d"])]
    padded, lengths = pad_sequences(batch, padding_value=vocab.pad_index)
    assert padded.shape == (4, 3) and padded.dtype == torch.int64
    assert padded[:, 1].tolist() == [vocab["c"], 0, 0, 0]
    emb = seqlib.Embedding(len(vocab), 5, padding_idx=vocab.pad_index)
    out, h = seqlib.GRU(5, 6)(pack_padded_sequence(emb(padded), lengths, enforce_sorted=False))
    assert h.shape == (1, 3, 6)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=6), st.booleans(), st.integers(-3, 3))
def test_property_pad_sequences(lengths, batch_first, value):
    seqs = [torch.randint(0, 9, (n, 2)) for n in lengths]
    padded, out_lengths = pad_sequences(seqs, padding_value=value, batch_first=batch_first)
    assert torch.equal(padded, pad_sequence(seqs, batch_first=batch_first, padding_value=value))
    assert out_lengths.tolist() == lengths
    pack_padded_sequence(padded, out_lengths, batch_first=batch_first, enforce_sorted=False)


@pytest.mark.parametrize("seqs,exc,parts", [
    ([], ValueError, ["seqs", "N >= 1"]),
    (torch.zeros(3, 2), TypeError, ["seqs", "(L_i, *)", "Tensor"]),
    ([torch.zeros(2, 3), torch.zeros(2, 4)], ValueError, ["seqs[1]", "(L_i, *)", "(3,)", "(2, 4)"]),
    ([torch.zeros(2), torch.zeros(2, dtype=torch.int64)], TypeError, ["seqs[1]", "torch.int64", "torch.float32"]),
    ([torch.tensor(1.0)], ValueError, ["seqs[0]", "(L_i, *)", "0-D"]),
    (["abc"], TypeError, ["seqs[0]", "(L_i, *)", "str"]),
])
def test_pad_sequences_bad_input(seqs, exc, parts):
    with pytest.raises(exc) as info:
        pad_sequences(seqs)
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"
