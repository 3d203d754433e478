"""The demos' models (seqlib.models): the classifier against torch.nn, the LM's data, loss and training recipe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlib import TransformerLM
from seqlib.models import SentimentLSTM, char_lm_loader, char_lm_tokenizer, next_token_loss, train_char_lm
from seqlib.train import History

pytestmark = pytest.mark.part2


def test_sentiment_lstm_reads_each_sentence_to_its_own_end():
    torch.manual_seed(0)
    model = SentimentLSTM(vocab_size=12, output_dim=2, embedding_dim=5, hidden_dim=6, padding_idx=0)
    ref = nn.LSTM(5, 6)
    ref.load_state_dict(model.lstm.state_dict())
    sentences = [torch.tensor([3, 4, 5, 6, 7]), torch.tensor([8, 2]), torch.tensor([9, 10, 11])]
    text = nn.utils.rnn.pad_sequence(sentences)  # (L, N), padded with 0
    got = model(text, torch.tensor([len(s) for s in sentences]))  # (N, C)
    assert got.shape == (3, 2)
    for n, s in enumerate(sentences):  # the reference reads the sentence alone, without padding
        _, (h_n, _) = ref(model.embedding.weight[s])  # (L_n, E) unbatched
        torch.testing.assert_close(got[n], model.fc(h_n[-1]))


def test_next_token_loss_is_cross_entropy_over_every_position():
    logits, targets = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    ref = sum(F.cross_entropy(logits[b, t], targets[b, t], reduction="sum") for b in range(2) for t in range(5)) / 10
    torch.testing.assert_close(next_token_loss(logits, targets), ref)


@pytest.fixture(scope="module")
def tokenizer():
    return char_lm_tokenizer()


def test_char_lm_loader_draws_shifted_windows_of_the_training_text(tokenizer):
    from seqlib.data import text_corpus, train_val_split

    train_text, _ = train_val_split(text_corpus("python-docs"), 0.1)
    loader = char_lm_loader(tokenizer, context_length=8, steps=4, batch_size=3, seed=1)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    for x, y in batches:
        assert x.shape == y.shape == (3, 8) and x.dtype == torch.int64
        torch.testing.assert_close(x[:, 1:], y[:, :-1])  # y is x shifted by one character
        for row, nxt in zip(x, y[:, -1], strict=True):
            assert tokenizer.decode(row.tolist() + [int(nxt)]) in train_text
    again = list(char_lm_loader(tokenizer, context_length=8, steps=4, batch_size=3, seed=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))  # seeded


def test_train_char_lm_follows_the_recipe_through_fit(tokenizer):
    torch.manual_seed(0)
    model = TransformerLM(len(tokenizer.vocab), d_model=16, nhead=2, num_layers=1, context_length=8, dropout=0.0)
    before = [p.detach().clone() for p in model.parameters()]
    history = train_char_lm(model, tokenizer, steps=6, batch_size=4, lr=3e-3)
    assert isinstance(history, History) and len(history.step_loss) == len(history.grad_norm) == 6
    # the learning rate of every step: a one-cycle schedule over the 6 steps, computed here on its own
    probe = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(probe, max_lr=3e-3, total_steps=6, pct_start=0.1)
    lrs = []
    for _ in range(6):
        lrs.append(probe.param_groups[0]["lr"])
        probe.step()
        schedule.step()
    assert history.lr == pytest.approx(lrs)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
