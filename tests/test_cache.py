"""The one cache policy (seqlib.cache): where caches live, and cached_model training once and reloading after."""

from __future__ import annotations

import pytest
import torch

from seqlib import cache

pytestmark = pytest.mark.part1


def test_data_and_models_share_the_policy(monkeypatch, tmp_path):
    from seqlib import data

    monkeypatch.setenv("SEQLIB_CACHE", str(tmp_path))
    assert data.cache_dir is cache.cache_dir  # one function, re-exported by seqlib.data (tests/test_data.py: the order)
    assert cache.model_path("sentiment_lstm_v2") == tmp_path / "models" / "sentiment_lstm_v2.pt"


def test_cached_model_trains_once_and_reloads(tmp_path):
    calls = []

    def build():
        return torch.nn.Linear(3, 2)

    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(0.5)

    first = cache.cached_model("lin", build, train, folder=tmp_path)
    assert calls == [1] and not first.training
    second = cache.cached_model("lin", build, train, folder=tmp_path)
    assert calls == [1]
    torch.testing.assert_close(second.weight, torch.full((2, 3), 0.5))
    cache.cached_model("lin", build, train, folder=tmp_path, retrain=True)
    assert calls == [1, 1]


def test_cached_model_retrains_when_the_architecture_changes(tmp_path):
    calls = []
    cache.cached_model("net", lambda: torch.nn.Linear(3, 2), lambda m: calls.append("a"), folder=tmp_path)
    cache.cached_model("net", lambda: torch.nn.Linear(4, 2), lambda m: calls.append("b"), folder=tmp_path)
    assert calls == ["a", "b"]
    (tmp_path / "net.pt").write_bytes(b"not a checkpoint")
    cache._MEMORY.clear()
    cache.cached_model("net", lambda: torch.nn.Linear(4, 2), lambda m: calls.append("c"), folder=tmp_path)
    assert calls == ["a", "b", "c"]


def test_cached_model_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        cache.cached_model("../evil", lambda: torch.nn.Linear(1, 1), lambda m: None, folder=tmp_path)
    with pytest.raises(TypeError, match="build_fn"):
        cache.cached_model("x", None, lambda m: None, folder=tmp_path)
    with pytest.raises(TypeError, match="nn.Module"):
        cache.cached_model("x", lambda: 3, lambda m: None, folder=tmp_path)
