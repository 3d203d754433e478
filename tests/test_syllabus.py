"""The coverage map course/syllabus.md: every syllabus concept is taught, shown and (where marked) graded.

For every concept ID of the syllabus (``SYLLABUS.md`` at the repository root) the map names the lecture
section(s) that teach it (a notebook and one of its headings), what shows it (an importable widget or plot
function that the lecture uses, or a plot drawn in that section) and, for the concepts the syllabus marks
**graded**, the exercise folder that grades it. This test checks that every ID is there and that every
reference exists. A concept whose lecture is not written yet has a row that says so (``planned: ...`` in
"taught in", nothing else); the set of such rows is spelled out below, so that it can only shrink on purpose.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.course

REPO = Path(__file__).resolve().parents[1]
SYLLABUS = REPO / "SYLLABUS.md"
COVERAGE = REPO / "course" / "syllabus.md"

ALL_IDS = [f"C{i:02d}" for i in range(1, 40)]
GRADED_BY = {"C03": "a1_rnn", "C04": "a1_rnn", "C07": "a2_bptt", "C09": "a2_bptt", "C11": "a3_lstm",
             "C16": "a4_attention", "C21": "a4_attention", "C22": "a4_attention",
             "C23": "a5_transformer", "C24": "a5_transformer", "C25": "a5_transformer",
             "C30": "a6_private_rnn", "C31": "a6_private_rnn", "C32": "a6_private_rnn", "C34": "a7_spiking",
             "C36": "a8_distillation", "C38": "a9_quantization", "C39": "a9_quantization"}
#: concepts whose lecture is still to be written: their rows read "planned: ..." and name nothing else
PLANNED = {f"C{i}" for i in range(29, 40)}
PLOT_CALLS = re.compile(r"plt\.|\.imshow\(|\.plot\(|\.bar\(|\.semilogy\(|\.loglog\(|_demo\(|display\(")


def syllabus_ids() -> tuple[list[str], set[str]]:
    """(all IDs, graded IDs) from SYLLABUS.md."""
    ids, graded = [], set()
    for line in SYLLABUS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^- (C\d\d) ", line)
        if m:
            ids.append(m.group(1))
            if "**graded**" in line:
                graded.add(m.group(1))
    return ids, graded


def coverage_rows() -> dict[str, dict[str, str]]:
    rows = {}
    for line in COVERAGE.read_text(encoding="utf-8").splitlines():
        if not re.match(r"^\|\s*C\d\d\s*\|", line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 5, f"a row needs 5 cells (ID, concept, taught in, shown by, graded by): {line}"
        cid, concept, taught, shown, graded = cells
        assert cid not in rows, f"{cid} is listed twice"
        rows[cid] = {"concept": concept, "taught": taught, "shown": shown, "graded": graded}
    return rows


def notebook_sections(path: Path) -> dict[str, list[str]]:
    """heading text -> the source of the code cells up to the next heading of the same or a higher level."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    sections: dict[str, list[str]] = {}
    open_sections: list[tuple[int, str]] = []
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            for line in source.splitlines():
                m = re.match(r"^(#{1,6})\s+(.*?)\s*$", line)
                if m:
                    level = len(m.group(1))
                    open_sections = [(lv, h) for lv, h in open_sections if lv < level]
                    open_sections.append((level, m.group(2)))
                    sections.setdefault(m.group(2), [])
        elif cell["cell_type"] == "code":
            for _, heading in open_sections:
                sections[heading].append(source)
    return sections


def parse_taught(text: str) -> tuple[Path, str]:
    m = re.match(r'^`(lectures/[^`]+\.ipynb)`\s*§\s*"([^"]+)"$', text)
    assert m, f'"taught in" must read `lectures/NN_name.ipynb` § "heading", but got: {text}'
    return REPO / m.group(1), m.group(2)


def test_every_concept_is_covered():
    ids, graded = syllabus_ids()
    assert ids == ALL_IDS, "SYLLABUS.md lists other IDs than this test knows: update ALL_IDS and GRADED_BY"
    assert graded == set(GRADED_BY), f"graded in SYLLABUS.md: {sorted(graded)}; GRADED_BY: {sorted(GRADED_BY)}"
    rows = coverage_rows()
    missing = [cid for cid in ids if cid not in rows]
    assert not missing, f"course/syllabus.md has no row for {missing}"
    assert set(rows) <= set(ids), f"unknown IDs in course/syllabus.md: {sorted(set(rows) - set(ids))}"


def test_planned_rows_are_exactly_the_unwritten_ones():
    rows = coverage_rows()
    planned = {cid for cid, row in rows.items() if row["taught"].startswith("planned")}
    assert planned == PLANNED, f"rows marked planned: {sorted(planned)}; expected {sorted(PLANNED)}"
    for cid in planned:
        assert rows[cid]["shown"] in ("—", "-") and rows[cid]["graded"] in ("—", "-"), \
            f"{cid} is planned: it cannot be shown or graded yet"


@pytest.mark.parametrize("cid", sorted(set(ALL_IDS) - PLANNED))
def test_references_exist(cid):
    rows = coverage_rows()
    if cid not in rows:
        pytest.fail(f"{cid} has no row in course/syllabus.md")
    row = rows[cid]
    # taught: each notebook exists and has the heading (several sections are separated by <br>)
    code: list[str] = []  # the code of the named sections
    lecture_code: list[str] = []  # the code of the whole notebooks
    for ref in re.split(r"\s*<br>\s*", row["taught"]):
        path, heading = parse_taught(ref)
        assert path.exists(), f"{cid}: {path.relative_to(REPO)} does not exist"
        sections = notebook_sections(path)
        assert heading in sections, f"{cid}: {path.name} has no heading {heading!r}"
        code += sections[heading]
        lecture_code += [src for sources in sections.values() for src in sources]
    # shown: importable widgets/plot functions that the lecture uses, and/or a plot drawn in the sections
    shown = row["shown"]
    names = re.findall(r"`(seqlib(?:\.\w+)+)`", shown)
    assert names or shown.startswith("plot"), f"{cid}: 'shown by' names no function and no plot: {shown!r}"
    for name in names:
        module, _, attr = name.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), f"{cid}: {name} is not callable"
        assert any(attr in src for src in lecture_code), f"{cid}: the lecture of {row['taught']} does not use {attr}"
    if shown.startswith("plot"):
        assert any(PLOT_CALLS.search(src) for src in code), f"{cid}: {row['taught']} draws no plot"


@pytest.mark.parametrize("cid", sorted(set(ALL_IDS) - PLANNED))
def test_graded_concepts_have_an_exercise(cid):
    _, graded = syllabus_ids()
    rows = coverage_rows()
    if cid not in rows:
        pytest.fail(f"{cid} has no row in course/syllabus.md")
    text = rows[cid]["graded"]
    folders = re.findall(r"`exercises/([\w-]+)`", text)
    if cid in graded:
        assert folders, f"{cid} is graded in the syllabus but course/syllabus.md names no exercise"
        assert GRADED_BY[cid] in folders, f"{cid} should be graded by {GRADED_BY[cid]}, the map says {folders}"
    else:
        assert text in ("—", "-", "") or folders, f"{cid}: unexpected 'graded by' entry {text!r}"
    for folder in folders:
        assert (REPO / "exercises" / folder).is_dir(), f"{cid}: exercises/{folder} does not exist"
        assert list((REPO / "exercises" / folder).glob("*.ipynb")), f"{cid}: exercises/{folder} has no notebook"
