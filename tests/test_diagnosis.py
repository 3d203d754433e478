"""The diagnosis engine: its mutation operators, every catalogue tested by handing in its mutations, and two corpora.

- The operators (fast): with no mutation a site returns the correct value; with one it returns that variant, at
  every visit; every variant is recorded and has a sentence.
- The self-test (slow): grading each exercise's correct solutions in this process (:mod:`seqcourse.selfcheck`)
  records every catalogue's mutations on the hidden tests' own inputs; each one is then handed in in place of the
  student's function and must lose points in its catalogue's cells, every failed cell naming it. The catalogues'
  own references, handed in, keep full marks.
- The corpora (slow): correct rewrites (``tests/fixtures/diagnosis/rewrites.py``) keep full marks; realistic
  single-edit mistakes (``mistakes.py``) all lose points, and each one the corpus expects to be named is named
  (at least 80 % of them). ``benchmarks/bench_diagnosis.py`` prints the same figures as a table.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import torch

from seqcourse import selfcheck
from seqcourse.kernel import checks, diagnose
from seqcourse.kernel.assignments import ASSIGNMENTS
from seqcourse.kernel.catalogue import Catalogue
from seqcourse.kernel.mutations import FAMILIES, Sites, Variant, sentence

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "diagnosis"))
from mistakes import MISTAKES  # noqa: E402
from rewrites import FOLLOW_UPS, REWRITES  # noqa: E402

pytestmark = pytest.mark.course


# ---------------------------------------------------------------------------------------------------------
# The operators
# ---------------------------------------------------------------------------------------------------------
X = torch.arange(6.0).reshape(2, 3) - 2.0
OPERATORS = [  # (call on Sites m, the correct value, {label: the variant's value})
    (lambda m: m.apply("s", "tanh", X), torch.tanh(X),
     {"sigmoid": torch.sigmoid(X), "relu": torch.relu(X), "identity": X}),
    (lambda m: m.term("s", X), X, {"missing": torch.zeros_like(X), "doubled": 2 * X, "subtracted": -X}),
    (lambda m: m.transpose("s", X), X, {"transposed": X.T}),
    (lambda m: m.softmax("s", X, -1), torch.softmax(X, -1), {"dim -2": torch.softmax(X, 0), "missing": X}),
    (lambda m: m.reduce("s", X, 0, "sum"), X.sum(0), {"mean": X.mean(0), "dim -1": X.sum(1)}),
    (lambda m: torch.stack(m.chunk("s", X, 3, -1, names="abc")), torch.stack(list(X.chunk(3, -1))),
     {"as b, a, c": torch.stack([X[:, 1:2], X[:, 0:1], X[:, 2:3]])}),
    (lambda m: m.stack("s", [X, X], 0), torch.stack([X, X]), {"dim -1": torch.stack([X, X], -1)}),
    (lambda m: m.scale("s", X, 0.5, {"a third": 1 / 3}), X * 0.5,
     {"missing": X, "twice": X * 0.25, "inverted": X * 2, "a third": X / 3}),
    (lambda m: m.gate("s", torch.sigmoid(X), X), torch.sigmoid(X) * X,
     {"missing": X, "complement": (1 - torch.sigmoid(X)) * X}),
    (lambda m: torch.tensor(m.offset("s", 3)), torch.tensor(3), {"-1": torch.tensor(2), "+1": torch.tensor(4)}),
    (lambda m: torch.tensor(list(m.loop("s", 3))), torch.tensor([0, 1, 2]),
     {"one short": torch.tensor([0, 1]), "from 1": torch.tensor([1, 2]), "backwards": torch.tensor([2, 1, 0])}),
    (lambda m: m.carry("s", X, -X), X, {"not carried": -X}),
    (lambda m: torch.stack([m.at("s", X, 1), m.at("s", X, 0)]), torch.stack([X[1], X[0]]),
     {"previous": torch.stack([X[0], X[1]]), "first": torch.stack([X[0], X[0]])}),
    (lambda m: m.mask("s", X, X > 0), X.masked_fill(X <= 0, -math.inf),
     {"inverted": X.masked_fill(X > 0, -math.inf), "zero": X.masked_fill(X <= 0, 0.0), "ignored": X}),
    (lambda m: m.combine("s", X, X), X + X, {"multiplied": X * X, "subtracted": X - X, "ignored": X}),
    (lambda m: torch.stack(m.swap("s", X, -X)), torch.stack([X, -X]), {"swapped": torch.stack([-X, X])}),
    (lambda m: torch.tensor(m.step("s")), torch.tensor(True), {"missing": torch.tensor(False)}),
    (lambda m: torch.tensor(len(m.option("s", "right", ("wrong one",)))), torch.tensor(5),
     {"wrong one": torch.tensor(9)}),
]


@pytest.mark.parametrize("call, correct, variants", OPERATORS, ids=[str(i) for i in range(len(OPERATORS))])
def test_an_operator_is_the_identity_without_a_mutation_and_its_variant_with_one(call, correct, variants):
    plain = Sites()
    torch.testing.assert_close(call(plain), correct, check_dtype=False)
    recorded = {v.label: v for v in plain.variants.values()}
    for label, value in variants.items():
        assert label in recorded, (label, sorted(recorded))
        torch.testing.assert_close(call(Sites(("s", label))), value, check_dtype=False)
        assert sentence(recorded[label], "the thing").strip()  # every variant has a default sentence
    torch.testing.assert_close(call(Sites(("another site", next(iter(variants))))), correct, check_dtype=False)


def test_a_mutation_applies_at_every_visit_of_its_site():
    def loop(m):
        return [m.apply("act", "tanh", torch.tensor(float(t))) for t in range(3)]

    assert [float(v) for v in loop(Sites(("act", "identity")))] == [0.0, 1.0, 2.0]


def test_rng_variant_draws_from_the_global_generator():
    m = Sites(("g", "ignored"))
    g = torch.Generator().manual_seed(0)
    assert Sites().rng("g", g) is g and m.rng("g", g) is None and m.rng("g", None) is None


def test_families_cover_the_next_assignments():
    assert {"tanh", "sigmoid", "relu", "gelu", "identity"} <= set(FAMILIES["activation"])
    x = torch.tensor([-1.5, -0.5, 0.5, 1.5])
    assert torch.equal(Sites(("r", "floor")).apply("r", "round", x, family="rounding"), x.floor())


def test_catalogue_sentences_prefer_the_most_specific_key():
    def ref(m, x):
        return torch.stack(m.chunk("gates", x, 2, -1, names="ab"))

    cat = Catalogue("f", ref, about={"gates": "the gates"},
                    say={"gates:*": "split along the last dimension", "gates:as *": "read as {order}"})
    labels = {v.label: cat.sentence(v) for v in cat.variants(torch.ones(2, 4))}
    assert labels == {"dim -2": "split along the last dimension", "as b, a": "read as b, a"}
    assert Catalogue("g", ref, about={}).sentence(Variant("gates", "chunk", "dim -2")).startswith("gates is split")


def test_every_catalogue_names_graded_cells_of_its_assignment():
    for module in ASSIGNMENTS.values():
        for name, catalogue in module.CATALOGUES.items():
            assert catalogue.name == name and catalogue.cells, name
    for a in ASSIGNMENTS:
        graded = {c.metadata["nbgrader"]["grade_id"] for c in selfcheck.notebook(a).cells
                  if c.metadata.get("nbgrader", {}).get("grade")}
        for catalogue in ASSIGNMENTS[a].CATALOGUES.values():
            assert set(catalogue.cells) <= graded, (a, catalogue.name)


def test_a_diagnosis_restores_the_global_random_state():
    ns = {"__name__": "__main__", "torch": torch}
    exec("def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
         "    return torch.sigmoid(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)\n", ns)
    ref = checks.torch_module("RNNCell", 3, 4, seed=0)
    w = checks.params(ref)
    x, h = checks.randn(2, 3, seed=1), checks.randn(2, 4, seed=2)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    with pytest.raises(checks.GradingError, match="sigmoid"), checks.diagnosis("rnn_cell") as d:
        d.expect_close("h_t", d.run(ns["cell"], x, h, *w.values()), checks.call(ref, x, h))
    assert torch.equal(torch.get_rng_state(), state)


# ---------------------------------------------------------------------------------------------------------
# The self-test: every catalogue entry is named when it is handed in
# ---------------------------------------------------------------------------------------------------------
def traced(assignment: str) -> dict[str, dict[str, Variant]]:
    """The mutations of each catalogue on the hidden tests' own inputs, while the solutions get full marks."""
    with diagnose.tracing() as trace:
        results = selfcheck.grade(assignment)
    assert not [r for r in results.values() if r.failed], [r for r in results.values() if r.failed]
    found: dict[str, dict[str, Variant]] = {}
    for name, variants in trace:
        for variant in variants:
            found.setdefault(name, {}).setdefault(variant.key, variant)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_every_catalogue_entry_is_named_when_handed_in(assignment):
    found = traced(assignment)
    module = ASSIGNMENTS[assignment]
    assert set(found) == set(module.CATALOGUES), "every catalogue is used by the hidden tests"
    # the catalogues' own references, handed in together, keep full marks
    correct = {name: catalogue.handin() for name, catalogue in module.CATALOGUES.items()}
    results = selfcheck.grade(assignment, replace=correct)
    assert not [r for r in results.values() if r.failed]
    misses = []
    for name, variants in found.items():
        catalogue = module.CATALOGUES[name]
        sites = {v.site for v in variants.values()}
        assert sites <= set(catalogue.about), (name, sorted(sites - set(catalogue.about)))
        stale = [k for k in catalogue.say if not any(
            key == k or (k.endswith("*") and key.startswith(k[:-1])) for key in variants)]
        assert not stale, (name, stale)
        for variant in variants.values():
            results = selfcheck.grade(assignment, replace={name: catalogue.handin(variant)}, cells=catalogue.cells)
            failed = [r for r in results.values() if r.failed]
            text = catalogue.sentence(variant)
            if not failed or not all(text in r.message for r in failed):
                misses.append((name, variant.key, [(r.grade_id, r.message[:200]) for r in results.values()]))
    assert not misses, "\n".join(map(str, misses))


# ---------------------------------------------------------------------------------------------------------
# The corpora
# ---------------------------------------------------------------------------------------------------------
def grade_edits(assignment: str, edits: list[selfcheck.Edit]) -> selfcheck.CellResult | None:
    """The first failed cell among the tests of the edited solution cell (None: full marks)."""
    cells = [gid for e in edits for gid in selfcheck.owned_cells(assignment, e.cell)]
    return selfcheck.first_failure(selfcheck.grade(assignment, edits=edits, cells=cells))


@pytest.mark.slow
@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_correct_rewrites_keep_full_marks(assignment):
    penalised = []
    for r in (r for r in REWRITES if r.assignment == assignment):
        edits = [selfcheck.Edit(r.cell, r.old, r.new)]
        if r.what in FOLLOW_UPS:
            edits.append(selfcheck.Edit(FOLLOW_UPS[r.what].cell, FOLLOW_UPS[r.what].old, FOLLOW_UPS[r.what].new))
        first = grade_edits(assignment, edits)
        if first is not None:
            penalised.append((r.what, first.grade_id, first.message[:200]))
    assert not penalised, penalised


@pytest.mark.slow
def test_realistic_mistakes_lose_points_and_are_named():
    assert len(MISTAKES) >= 100 and {m.assignment for m in MISTAKES} == set(ASSIGNMENTS)
    missed, unnamed, named = [], [], 0
    for m in MISTAKES:
        first = grade_edits(m.assignment, [selfcheck.Edit(m.cell, m.old, m.new)])
        if first is None:
            missed.append((m.cell, m.old, m.new))
            continue
        assert not re.search(r"tensor\((\[|-?\d)", first.message), first.message  # never a tensor's values
        if m.says is not None:
            if m.says in first.message:
                named += 1
            else:
                unnamed.append((m.cell, m.new, m.says, first.message[:200]))
    print(f"\n{len(MISTAKES)} realistic mistakes: {1 - len(missed) / len(MISTAKES):.1%} lose points, "
          f"{named / len(MISTAKES):.1%} are named")
    assert not missed, missed
    assert not unnamed, unnamed
    assert named / len(MISTAKES) >= 0.8
