"""seqlib.transfer: Tang et al.'s augmentation rules on tokens and features, and the transfer set scored once."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from seqlib.classifiers import RNNClassifier, TransformerClassifier, predict_logits
from seqlib.data import sensor_activity
from seqlib.distill import distill
from seqlib.transfer import TransferSet, augment, augmented_copies, input_vocab_size, transfer_set

pytestmark = pytest.mark.part4

MASK = 1  # the mask token of the token tests; 0 is padding, 2.. are words


def tokens(n=64, L=12, vocab=20, seed=0):
    return torch.randint(2, vocab, (n, L), generator=torch.Generator().manual_seed(seed))


def features(n=64, L=12, F=3, seed=0):
    return torch.randn(n, L, F, generator=torch.Generator().manual_seed(seed)) + 5.0


# --------------------------------------------------------------------------------------------- augment


@pytest.mark.parametrize("make", [tokens, features])
def test_augment_keeps_shape_dtype_and_input_and_repeats_with_a_seed(make):
    x = make()
    before = x.clone()
    kw = {"mask_value": MASK} if not x.is_floating_point() else {}
    a = augment(x, generator=torch.Generator().manual_seed(3), **kw)
    b = augment(x, generator=torch.Generator().manual_seed(3), **kw)
    c = augment(x, generator=torch.Generator().manual_seed(4), **kw)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(x, before) and torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    nothing = augment(x, mask_prob=0.0, replace_prob=0.0, ngram_prob=0.0, **kw)
    assert torch.equal(nothing, x)


def test_masking_tokens_and_features():
    x = tokens()
    out = augment(x, mask_prob=1.0, replace_prob=0.0, ngram_prob=0.0, mask_value=MASK)
    assert bool((out == MASK).all())
    f = features()
    out = augment(f, mask_prob=1.0, replace_prob=0.0, ngram_prob=0.0)  # default: each sequence's mean reading
    torch.testing.assert_close(out, f.mean(1, keepdim=True).expand_as(f))
    out = augment(f, mask_prob=1.0, replace_prob=0.0, ngram_prob=0.0, mask_value=0.0)
    assert bool((out == 0).all())
    out = augment(f, mask_prob=1.0, replace_prob=0.0, ngram_prob=0.0, mask_value=torch.tensor([1.0, 2.0, 3.0]))
    assert bool((out == torch.tensor([1.0, 2.0, 3.0])).all())


def test_masking_rate_and_replacement_come_from_the_same_step_of_other_sequences():
    x = tokens(n=400, L=30, vocab=1000)
    out = augment(x, mask_prob=0.2, replace_prob=0.3, ngram_prob=0.0, mask_value=MASK,
                  generator=torch.Generator().manual_seed(0))
    masked, changed = out == MASK, (out != x) & (out != MASK)
    assert abs(float(masked.float().mean()) - 0.2) < 0.02
    assert 0.25 < float(changed.float().mean()) < 0.31  # a donor may be the sequence itself
    for t in range(x.shape[1]):  # a replaced token is one another sequence has at that step
        column = set(x[:, t].tolist())
        assert set(out[changed[:, t], t].tolist()) <= column
    f = features(n=50)
    out = augment(f, mask_prob=0.0, replace_prob=1.0, ngram_prob=0.0, generator=torch.Generator().manual_seed(1))
    rows = (out[:, None] == f[None]).all(-1)  # (N, N_donor, L): which sequence's step each step equals
    assert bool(rows.any(1).all())
    assert bool((rows.sum(1) >= 1).all()) and not torch.equal(out, f)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_ngram_sampling_keeps_one_window_of_n_steps(n):
    x = tokens(n=40, L=12)
    out = augment(x, mask_prob=0.0, replace_prob=0.0, ngram_prob=1.0, ngram_range=(n, n), mask_value=MASK,
                  generator=torch.Generator().manual_seed(n))
    kept = out != MASK
    assert bool((kept.sum(1) == n).all())
    for row in range(len(x)):
        where = kept[row].nonzero().squeeze(1)
        assert int(where[-1] - where[0]) == n - 1  # contiguous
        assert torch.equal(out[row, where], x[row, where])
    starts = kept.float().argmax(1)
    assert len(set(starts.tolist())) > 1  # the window moves


def test_padding_is_never_touched():
    x = tokens(n=30, L=10)
    lengths = torch.randint(1, 11, (30,), generator=torch.Generator().manual_seed(0))
    pad = torch.arange(10)[None, :] >= lengths[:, None]
    x[pad] = 0
    out = augment(x, mask_prob=0.3, replace_prob=0.3, ngram_prob=0.5, ngram_range=(2, 20), mask_value=MASK,
                  lengths=lengths, generator=torch.Generator().manual_seed(0))
    assert bool((out[pad] == 0).all()) and bool((out[~pad] != 0).all())
    f = features(n=5, L=6)
    out = augment(f, mask_prob=1.0, replace_prob=0.0, ngram_prob=0.0, lengths=torch.tensor([2, 6, 6, 6, 6]))
    torch.testing.assert_close(out[0, :2], f[0, :2].mean(0).expand(2, 3))  # the mean of the valid steps only
    assert torch.equal(out[0, 2:], f[0, 2:])


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 6), L=st.integers(1, 9), p_mask=st.floats(0, 0.5), p_rep=st.floats(0, 0.5),
       p_ng=st.floats(0, 1), n_lo=st.integers(1, 4), n_extra=st.integers(0, 4), seed=st.integers(0, 2**16),
       as_features=st.booleans())
@example(N=5, L=9, p_mask=0.0, p_rep=0.3, p_ng=1.0, n_lo=2, n_extra=3, seed=1, as_features=False)
@example(N=4, L=6, p_mask=0.0, p_rep=0.0, p_ng=1.0, n_lo=3, n_extra=0, seed=2, as_features=True)
def test_every_changed_step_is_masked_or_borrowed_from_the_same_step(N, L, p_mask, p_rep, p_ng, n_lo, n_extra, seed,
                                                                     as_features):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, L + 1, (N,), generator=g)
    valid = torch.arange(L)[None, :] < lengths[:, None]
    x = torch.randint(2, 50, (N, L), generator=g).masked_fill(~valid, 0)
    if as_features:
        x = torch.stack([x, 2 * x], dim=-1).double()  # (N, L, 2): one id per step, seen through two features
    out = augment(x, mask_prob=p_mask, replace_prob=p_rep, ngram_prob=p_ng, ngram_range=(n_lo, n_lo + n_extra),
                  mask_value=-1.0 if as_features else MASK, lengths=lengths, generator=g)
    assert out.shape == x.shape and out.dtype == x.dtype
    ids, new = (x[..., 0], out[..., 0]) if as_features else (x, out)
    assert torch.equal(new[~valid], ids[~valid])  # padding untouched
    masked = new == (-1 if as_features else MASK)
    for i, t in (~masked & valid & (new != ids)).nonzero().tolist():  # replaced: another sequence's step t
        assert any(bool(valid[j, t]) and int(ids[j, t]) == int(new[i, t]) for j in range(N))
    if p_ng == 1.0 and p_mask == 0.0:  # every sequence keeps one window of n steps, the rest is masked
        kept = ~masked & valid
        count = kept.sum(1)
        assert bool((count >= torch.clamp(lengths, max=n_lo)).all())
        assert bool((count <= torch.clamp(lengths, max=n_lo + n_extra)).all())
        for i in range(N):
            where = kept[i].nonzero().squeeze(1)
            assert int(where[-1] - where[0]) + 1 == len(where)  # one contiguous window


def test_augmented_copies():
    x = tokens(n=7)
    out, source = augmented_copies(x, 3, seed=5, mask_value=MASK)
    assert out.shape == (21, 12) and torch.equal(source, torch.arange(7).repeat(3))
    again, _ = augmented_copies(x, 3, seed=5, mask_value=MASK)
    assert torch.equal(out, again) and not torch.equal(out[:7], out[7:14])
    empty, source = augmented_copies(x, 0, mask_value=MASK)
    assert empty.shape == (0, 12) and source.numel() == 0


def test_augment_bad_input():
    x = tokens()
    with pytest.raises(TypeError, match="mask_value must be the int id of the mask token"):
        augment(x)
    with pytest.raises(ValueError, match=r"mask_prob must be in \[0, 1\]"):
        augment(x, mask_prob=1.5, mask_value=MASK)
    with pytest.raises(ValueError, match="mask_prob \\+ replace_prob must be at most 1"):
        augment(x, mask_prob=0.6, replace_prob=0.6, mask_value=MASK)
    with pytest.raises(ValueError, match="ngram_range"):
        augment(x, ngram_range=(0, 3), mask_value=MASK)
    with pytest.raises(ValueError, match="ngram_range"):
        augment(x, ngram_range=(4, 2), mask_value=MASK)
    with pytest.raises(ValueError, match=r"\(N, L\).*\(N, L, F\)"):
        augment(torch.randn(4, 5), mask_value=0.0)
    with pytest.raises(ValueError, match="lengths must lie in"):
        augment(x, lengths=torch.full((64,), 13), mask_value=MASK)
    with pytest.raises(ValueError, match=r"lengths must be an integer tensor of shape \(N,\)"):
        augment(x, lengths=torch.full((3,), 2), mask_value=MASK)
    with pytest.raises(TypeError, match="mask_value must be 'mean'"):
        augment(features(), mask_value="zero")
    with pytest.raises(ValueError, match="copies"):
        augmented_copies(x, -1, mask_value=MASK)


# --------------------------------------------------------------------------------------------- the transfer set


class CountingTeacher(nn.Module):
    """A fixed random teacher that counts its forward calls."""

    def __init__(self, vocab_size=None, input_size=None, num_classes=4):
        super().__init__()
        torch.manual_seed(0)
        self.net = TransformerClassifier(num_classes, 16, 2, 1, vocab_size=vocab_size, input_size=input_size,
                                         max_len=64)
        self.calls = 0

    @property
    def vocab_size(self):
        return self.net.vocab_size

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def test_transfer_set_holds_the_three_groups_scored_by_the_teacher_once():
    data = sensor_activity(20, 16, seed=0)
    extra = sensor_activity(30, 16, seed=1).inputs
    teacher = CountingTeacher(input_size=3, num_classes=6).train()
    ts = transfer_set(teacher, data, unlabelled=extra, copies=2, seed=0, batch_size=256)
    assert isinstance(ts, TransferSet) and len(ts) == 20 + 40 + 30
    assert (ts.n_labelled, ts.n_augmented, ts.n_unlabelled) == (20, 40, 30)
    assert teacher.calls == 1 and teacher.training  # one batch, and the teacher's mode is restored
    assert torch.equal(ts.inputs[:20], data.inputs) and torch.equal(ts.inputs[60:], extra)
    torch.testing.assert_close(ts.teacher_logits, predict_logits(teacher.net, ts.inputs))
    assert not ts.teacher_logits.requires_grad
    assert torch.equal(ts.targets[:20], data.targets) and bool((ts.targets[20:] == -100).all())
    assert ts.labelled.tolist() == [True] * 20 + [False] * 70
    x, (logit, target, labelled) = ts[25]
    assert x.shape == (16, 3) and logit.shape == (6,) and int(target) == -100 and not bool(labelled)
    # a pair of tensors works as well as a Dataset
    same = transfer_set(teacher, (data.inputs, data.targets), unlabelled=extra, copies=2, seed=0)
    assert torch.equal(same.inputs, ts.inputs)


def test_distill_never_calls_the_teacher_while_training():
    data = sensor_activity(40, 16, seed=0)
    teacher = CountingTeacher(input_size=3, num_classes=6)
    student = RNNClassifier(6, 4, input_size=3)
    distill(student, teacher, data, unlabelled=sensor_activity(60, 16, seed=1).inputs, copies=1, epochs=3,
            batch_size=16, progress=False)
    assert teacher.calls == 1


def test_distill_builds_the_augmented_token_transfer_set_itself(tmp_path):
    x, y = tokens(n=24, L=10, vocab=20), torch.randint(0, 4, (24,))
    teacher = CountingTeacher(vocab_size=20)
    student = RNNClassifier(4, 8, vocab_size=20)
    history = distill(student, teacher, (x, y), copies=2, augment={"mask_value": MASK, "ngram_range": (2, 4)},
                      temperature=3.0, alpha=0.7, epochs=2, batch_size=24, progress=False,
                      checkpoint_path=tmp_path / "student.pt", val_data=(x, y))
    assert teacher.calls == 1 and (tmp_path / "student.pt").exists()
    assert len(history.val_loss) == 2 and len(history.step_loss) == 2 * 3  # 72 items in batches of 24
    with pytest.raises(TypeError, match="mask_value must be the int id of the mask token"):
        distill(student, teacher, (x, y), copies=1, epochs=1, progress=False)


def test_token_transfer_set_and_vocabulary_checks():
    x, y = tokens(n=24, L=10, vocab=20), torch.randint(0, 4, (24,))
    teacher = CountingTeacher(vocab_size=20)
    assert input_vocab_size(teacher) == 20 and input_vocab_size(RNNClassifier(4, 3, vocab_size=9)) == 9
    assert input_vocab_size(RNNClassifier(4, 3, input_size=2)) is None
    ts = transfer_set(teacher, (x, y), copies=3, seed=0, mask_value=MASK)
    assert len(ts) == 96 and bool((ts.inputs[24:] == MASK).any())
    student = RNNClassifier(4, 8, vocab_size=20)
    distill(student, teacher, ts, alpha=1.0, epochs=1, progress=False)  # a ready transfer set
    with pytest.raises(ValueError, match="vocabulary mismatch: the student reads 30 input tokens but the teacher "
                                         "reads 20"):
        distill(RNNClassifier(4, 8, vocab_size=30), teacher, ts, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"vocabulary mismatch: the teacher reads token ids in \[0, 20\)"):
        transfer_set(teacher, (x, y), copies=1, mask_value=25)
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        transfer_set(teacher, (x + 10, y))
    with pytest.raises(ValueError, match=r"same C classes.*C = 5.*C = 4"):
        distill(RNNClassifier(5, 8, vocab_size=20), teacher, ts, epochs=1, progress=False)
    with pytest.raises(ValueError, match="already a TransferSet"):
        distill(student, teacher, ts, copies=2, epochs=1, progress=False)
    with pytest.raises(ValueError, match="unlabelled must be sequences like the labelled inputs"):
        transfer_set(teacher, (x, y), unlabelled=tokens(n=5, L=11))
    with pytest.raises(TypeError, match="targets must be class indices"):
        transfer_set(teacher, (x, y.float()))
    with pytest.raises(TypeError, match="data must be a Dataset"):
        transfer_set(teacher, x)
