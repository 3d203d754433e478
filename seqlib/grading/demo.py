"""The demo class: submissions generated from the release, the solutions and declared bug patches.

``python -m seqlib.grading.demo`` (re)writes ``course/demo_submissions/`` from ``exercises/``:

- ``reference/<a>/<a>.ipynb``: the release with every solution cell filled in from the source (what a student who
  solved everything hands in);
- ``blank/<a>/<a>.ipynb``: the untouched release;
- ``bug-<what>/<a>/<a>.ipynb``: the reference with one realistic mistake (a text replacement in one solution
  cell), declared in :data:`BUGS` together with the graded cells it must lose;
- ``expected.json``: ``{student: {assignment: {grade_id: expected_points}}}`` for every submission.

``python -m seqlib.grading.demo --check`` regenerates into a temporary folder and fails if the committed files
differ (run it after changing an exercise). The release is made by ``nbgrader generate_assignment`` in a
scratch course, so it is exactly what students receive.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .paths import COURSE, EXERCISES, jupyter_env

DEMO = COURSE / "demo_submissions"
ASSIGNMENTS = ("a1_rnn", "a2_bptt", "a3_lstm", "a4_attention", "a5_transformer")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class Bug:
    """One mistake: ``old`` -> ``new`` in the solution cell ``cell``.

    ``breaks``: the graded cells that lose their points; ``says``: a phrase the feedback of the first of them
    must contain (the curated message for this mistake).
    """

    assignment: str
    cell: str
    old: str
    new: str
    breaks: tuple[str, ...]
    says: str


BUGS: dict[str, Bug] = {
    "bug-whh-transposed": Bug(
        "a1_rnn", "a1_rnn_cell",
        old="pre = x @ w_ih.T + h @ w_hh.T", new="pre = x @ w_ih.T + h @ w_hh",
        breaks=("a1_rnn_cell_values",), says="W_hh is transposed"),
    "bug-detached-state": Bug(
        "a1_rnn", "a1_rnn_layer",
        old="h = rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)",
        new="h = rnn_cell(x[t], h.detach(), w_ih, w_hh, b_ih, b_hh)",
        breaks=("a1_rnn_layer_gradients",), says="something cuts the graph"),
    "bug-last-step-padding": Bug(
        "a1_rnn", "a1_classifier",
        old="last = output[lengths - 1, torch.arange(text.shape[1])]", new="last = output[-1]",
        breaks=("a1_classifier_logits",), says="that is a padding step"),
    "bug-h0-grad": Bug(
        "a2_bptt", "a2_bptt",
        old="carry = delta @ w_hh  #", new="carry = delta @ w_hh if t > 1 else delta  #",
        breaks=("a2_bptt_h0_grad",), says="h0 enters the first step through W_hh"),
    "bug-no-clip-coef-cap": Bug(
        "a2_bptt", "a2_clip",
        old="    if clip_coef < 1:\n        for g in grads:\n            g.mul_(clip_coef)",
        new="    for g in grads:\n        g.mul_(clip_coef)",
        breaks=("a2_clip_scaling",), says="must be capped at 1"),
    "bug-norms-reversed": Bug(
        "a2_bptt", "a2_vanishing",
        old="for state in hs])", new="for state in reversed(hs)])",
        breaks=("a2_vanishing_norms",), says="reversed order"),
    "bug-gate-order": Bug(
        "a3_lstm", "a3_lstm_cell",
        old="i, f, g, o = gates.chunk(4, dim=-1)", new="i, f, o, g = gates.chunk(4, dim=-1)",
        breaks=("a3_lstm_cell_values",), says="gate order: torch.nn stacks the LSTM gates as i, f, g, o"),
    "bug-cell-state-not-carried": Bug(
        "a3_lstm", "a3_lstm_layer",
        old="h, c = lstm_cell(x[t], (h, c), w_ih, w_hh, b_ih, b_hh)",
        new="h, c = lstm_cell(x[t], (h, state[1]), w_ih, w_hh, b_ih, b_hh)",
        breaks=("a3_lstm_layer_values",), says="the cell state C_t is not carried"),
    "bug-classify-first-output": Bug(
        "a3_lstm", "a3_long_range",
        old="return self.fc(h_n)", new="return self.fc(output[0])",
        breaks=("a3_long_range_model",), says="classify from the last hidden state h_n"),
    "bug-no-scaling": Bug(
        "a4_attention", "a4_sdpa",
        old="scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])",
        new="scores = query @ key.transpose(-2, -1)",
        breaks=("a4_sdpa_values",), says="scale the scores by 1/sqrt(d_k)"),
    "bug-mask-after-softmax": Bug(
        "a4_attention", "a4_sdpa",
        old="    if attn_mask is not None:\n"
            "        if attn_mask.dtype == torch.bool:\n"
            "            scores = scores.masked_fill(~attn_mask, float(\"-inf\"))\n"
            "        else:\n"
            "            scores = scores + attn_mask\n"
            "    weights = torch.softmax(scores, dim=-1)  # (..., L, S)\n",
        new="    if attn_mask is not None and attn_mask.dtype != torch.bool:\n"
            "        scores = scores + attn_mask\n"
            "    weights = torch.softmax(scores, dim=-1)  # (..., L, S)\n"
            "    if attn_mask is not None and attn_mask.dtype == torch.bool:\n"
            "        weights = weights * attn_mask  # zero the weights of masked keys\n",
        breaks=("a4_sdpa_masks",), says="the mask must be applied before the softmax"),
    "bug-mha-no-out-proj": Bug(
        "a4_attention", "a4_mha",
        old="return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)",
        new="return out, weights.mean(dim=1)",
        breaks=("a4_mha_values",), says="the output projection out_proj is missing"),
    "bug-pe-sin-cos-swapped": Bug(
        "a5_transformer", "a5_pe",
        old="pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)",
        new="pe[:, 0::2] = torch.cos(angle)\n    pe[:, 1::2] = torch.sin(angle)",
        breaks=("a5_pe_values",), says="sin and cos are swapped"),
    "bug-post-norm-no-residual": Bug(
        "a5_transformer", "a5_encoder",
        old="x = self.norm1(x + sa(x))", new="x = self.norm1(sa(x))",
        breaks=("a5_encoder_values",), says="residual connection around self-attention is missing"),
    "bug-temperature-multiplied": Bug(
        "a5_transformer", "a5_sampling",
        old="logits = logits / temperature", new="logits = logits * temperature",
        breaks=("a5_sampling_probs",), says="divide the logits by the temperature"),
}


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def solution_code(source: str) -> str:
    """The answer a student writes: the source solution without the ``### BEGIN/END SOLUTION`` lines."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def release(assignments: tuple[str, ...] = ASSIGNMENTS) -> dict[str, nbformat.NotebookNode]:
    """The student versions, made by ``nbgrader generate_assignment`` in a scratch course (no gradebook)."""
    jupyter_env()
    with tempfile.TemporaryDirectory(prefix="seqcourse-release-") as tmp:
        root = Path(tmp)
        for name in assignments:
            shutil.copytree(EXERCISES / name, root / "source" / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", name, "--no-db", "--force",
                            "--log-level=ERROR", f"--CourseDirectory.root={root}",
                            "--CourseDirectory.source_directory=source", "--CourseDirectory.release_directory=release"],
                           cwd=root, check=True, capture_output=True, text=True)
        return {name: nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4) for name in assignments}


def filled(released: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The release with every solution cell replaced by the source's solution."""
    answers = {_grade_id(c): solution_code(c.source) for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(json.loads(json.dumps(released)))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[_grade_id(cell)]
    return nb


def with_bug(nb: nbformat.NotebookNode, bug: Bug) -> nbformat.NotebookNode:
    """``nb`` with ``bug`` applied to its solution cell (the replaced text must occur exactly once)."""
    out = nbformat.from_dict(json.loads(json.dumps(nb)))
    cell = next(c for c in out.cells if _grade_id(c) == bug.cell)
    count = cell.source.count(bug.old)
    if count != 1:
        raise ValueError(f"bug patch for {bug.assignment}/{bug.cell} matches {count} times (expected once): "
                         f"{bug.old!r}; update BUGS in seqlib/grading/demo.py after changing the exercise")
    cell.source = cell.source.replace(bug.old, bug.new)
    return out


def points(source: nbformat.NotebookNode) -> dict[str, float]:
    """Graded cells of a source notebook -> their points, in notebook order."""
    return {_grade_id(c): float(c.metadata["nbgrader"]["points"]) for c in source.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def build(out: Path = DEMO) -> dict[str, dict[str, dict[str, float]]]:
    """Write the demo class into ``out`` and return the expected grade table."""
    sources = {a: nbformat.read(EXERCISES / a / f"{a}.ipynb", as_version=4) for a in ASSIGNMENTS}
    released = release()
    for bug in BUGS.values():
        unknown = set(bug.breaks) - set(points(sources[bug.assignment]))
        if unknown:
            raise ValueError(f"{bug.assignment}: no graded cells named {sorted(unknown)}")
    submissions: dict[tuple[str, str], nbformat.NotebookNode] = {}
    expected: dict[str, dict[str, dict[str, float]]] = {"reference": {}, "blank": {}}
    for a in ASSIGNMENTS:
        table = points(sources[a])
        submissions["reference", a] = filled(released[a], sources[a])
        submissions["blank", a] = released[a]
        expected["reference"][a] = table
        expected["blank"][a] = {gid: 0.0 for gid in table}
    for student, bug in BUGS.items():
        table = points(sources[bug.assignment])
        submissions[student, bug.assignment] = with_bug(submissions["reference", bug.assignment], bug)
        expected[student] = {bug.assignment: {gid: 0.0 if gid in bug.breaks else p for gid, p in table.items()}}
    if out.exists():
        shutil.rmtree(out)
    for (student, a), nb in submissions.items():
        path = out / student / a / f"{a}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib.grading.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if course/demo_submissions is out of date")
    args = parser.parse_args(argv)
    if not args.check:
        expected = build()
        print(f"wrote {sum(len(v) for v in expected.values())} submissions of {len(expected)} students to {DEMO}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        fresh, committed = _files(Path(tmp)), _files(DEMO) if DEMO.exists() else {}
    stale = sorted(set(fresh) ^ set(committed) | {k for k in fresh.keys() & committed.keys()
                                                   if fresh[k] != committed[k]})
    if stale:
        print("course/demo_submissions is out of date; run `python -m seqlib.grading.demo`:\n  " + "\n  ".join(stale))
        return 1
    print("course/demo_submissions is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
