"""The sinusoid table (seqlib.positional.sinusoidal_table): the formula, its argument order, and its one use site."""

from __future__ import annotations

import math

import pytest
import torch

from seqlib.positional import PositionalEncoding, sinusoidal_table

pytestmark = pytest.mark.part3


def formula(max_len: int, d_model: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)), entry by entry."""
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    for pos in range(max_len):
        for j in range(d_model):
            angle = pos / 10000 ** ((j - j % 2) / d_model)
            pe[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


@pytest.mark.parametrize(("max_len", "d_model"), [(30, 8), (5, 12), (17, 7), (1, 1)])
def test_table_is_the_formula_rows_are_positions(max_len, d_model):
    table = sinusoidal_table(max_len, d_model, dtype=torch.float64)
    assert table.shape == (max_len, d_model)  # torch-like order: (max_len, d_model)
    torch.testing.assert_close(table, formula(max_len, d_model), rtol=0, atol=1e-12)
    assert sinusoidal_table(max_len, d_model).dtype == torch.get_default_dtype()


def test_positional_encoding_adds_this_table():
    pos = PositionalEncoding(10, max_len=40)
    torch.testing.assert_close(pos.pe, sinusoidal_table(40, 10))
    torch.testing.assert_close(pos(torch.zeros(40, 1, 10))[:, 0], sinusoidal_table(40, 10))


def test_bad_sizes():
    with pytest.raises(ValueError, match="max_len"):
        sinusoidal_table(0, 4)
    with pytest.raises(TypeError, match="d_model"):
        sinusoidal_table(4, 2.0)
