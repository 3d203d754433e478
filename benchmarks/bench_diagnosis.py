"""How well the feedback names mistakes: the catalogues, and the corpora of realistic mistakes and correct rewrites.

    .venv/bin/python benchmarks/bench_diagnosis.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_diagnosis.py --quick    # the corpora only

Everything is graded in this process by ``seqcourse.selfcheck`` (the exercises' source notebooks, hidden tests
included, one namespace per grading, seeded like the grader). Per assignment:

- *catalogue*: the mutations that apply to the hidden tests' own inputs, and how many of them are named by the
  feedback when each is handed in in place of the student's function (target: all);
- *mistakes*: the realistic single-edit mistakes of ``tests/fixtures/diagnosis/mistakes.py``: the share that loses
  points (target >= 98 %) and the share whose first failed cell names the mistake (target >= 80 %);
- *rewrites*: correct rewrites (``rewrites.py``) that lose points (target: 0);
- *time*: the median time to grade the edited cell's tests of a wrong hand-in (the diagnosis runs), against the same
  cells of the correct solution, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "diagnosis"))

from mistakes import MISTAKES  # noqa: E402
from rewrites import FOLLOW_UPS, REWRITES  # noqa: E402

from seqcourse import selfcheck  # noqa: E402
from seqcourse.kernel import diagnose  # noqa: E402
from seqcourse.kernel.assignments import ASSIGNMENTS  # noqa: E402
from seqlib.threads import torch_threads  # noqa: E402


def catalogue_rates(assignment: str) -> tuple[int, int, int]:
    """(graded functions, catalogue entries on the hidden tests' inputs, entries named when handed in)."""
    with diagnose.tracing() as trace:
        selfcheck.grade(assignment)
    found: dict[str, dict] = {}
    for name, variants in trace:
        for v in variants:
            found.setdefault(name, {}).setdefault(v.key, v)
    entries = named = 0
    for name, variants in found.items():
        catalogue = ASSIGNMENTS[assignment].CATALOGUES[name]
        for variant in variants.values():
            entries += 1
            results = selfcheck.grade(assignment, replace={name: catalogue.handin(variant)}, cells=catalogue.cells)
            failed = [r for r in results.values() if r.failed]
            named += bool(failed) and all(catalogue.sentence(variant) in r.message for r in failed)
    return len(found), entries, named


def timed(assignment: str, edits: list[selfcheck.Edit], cells: list[str]):
    start = time.perf_counter()
    results = selfcheck.grade(assignment, edits=edits, cells=cells)
    return selfcheck.first_failure(results), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the catalogues' self-test")
    args = parser.parse_args()
    rows = []
    with torch_threads(1):
        for a in ASSIGNMENTS:
            functions, entries, named_entries = catalogue_rates(a) if not args.quick else (0, 0, 0)
            mistakes = [m for m in MISTAKES if m.assignment == a]
            lost = named = 0
            wrong_s, right_s = [], []
            for m in mistakes:
                cells = selfcheck.owned_cells(a, m.cell)
                first, seconds = timed(a, [selfcheck.Edit(m.cell, m.old, m.new)], cells)
                _, reference = timed(a, [], cells)
                wrong_s.append(seconds)
                right_s.append(reference)
                lost += first is not None
                named += first is not None and m.says is not None and m.says in first.message
            penalised = 0
            for r in (r for r in REWRITES if r.assignment == a):
                edits = [selfcheck.Edit(r.cell, r.old, r.new)]
                if r.what in FOLLOW_UPS:
                    f = FOLLOW_UPS[r.what]
                    edits.append(selfcheck.Edit(f.cell, f.old, f.new))
                first, _ = timed(a, edits, [c for e in edits for c in selfcheck.owned_cells(a, e.cell)])
                penalised += first is not None
            rows.append((a, functions, entries, named_entries, len(mistakes), lost, named,
                         sum(r.assignment == a for r in REWRITES), penalised, statistics.median(wrong_s),
                         statistics.median(right_s)))
            print(f"  {a} done", flush=True)
    print()
    print("| assignment | graded functions | catalogue entries | named when handed in | realistic mistakes "
          "| lose points | named | correct rewrites | penalised | wrong hand-in (median) | correct (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    total = [0] * 8
    for a, f, e, ne, n, lost, named, rw, pen, ws, rs in rows:
        entries = f"{ne}/{e}" if e else "-"
        print(f"| {a} | {f or '-'} | {e or '-'} | {entries} | {n} | {lost / n:.1%} | {named / n:.1%} | {rw} | {pen} "
              f"| {ws:.2f} s | {rs:.2f} s |")
        for i, v in enumerate((f, e, ne, n, lost, named, rw, pen)):
            total[i] += v
    f, e, ne, n, lost, named, rw, pen = total
    print(f"| all | {f or '-'} | {e or '-'} | {f'{ne}/{e}' if e else '-'} | {n} | {lost / n:.1%} | {named / n:.1%} "
          f"| {rw} | {pen} | | |")
    print(f"\ntargets: >= 98 % lose points ({'OK' if lost / n >= 0.98 else 'BELOW'}), >= 80 % named "
          f"({'OK' if named / n >= 0.8 else 'BELOW'}), 0 rewrites penalised ({'OK' if pen == 0 else 'NO'})"
          + (f", every catalogue entry named ({'OK' if ne == e else 'NO'})" if e else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
