"""nbgrader configuration for the course root.

The source assignments live in ../exercises (no copy is made); everything else nbgrader writes
(release/, submitted/, autograded/, feedback/, gradebook.db) is generated here and git-ignored.

Grade with `seqcourse autograde` and write feedback with `seqcourse feedback` (see README, "Instructor guide"):
they rebuild every hand-in on the released notebook, survive endless loops and dying kernels, grade in parallel
and check that no hidden test reaches a student. The settings below make plain `nbgrader autograde` /
`nbgrader generate_feedback` as safe as nbgrader alone can be, for anyone who still runs them.
"""

from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    Execute,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from seqcourse.outputs import NormaliseTestOutputs

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = Path(__file__).resolve().parent

c.CourseDirectory.root = str(HERE)
c.CourseDirectory.source_directory = "../exercises"
c.CourseDirectory.course_id = "seqcourse"
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"

# a deleted test cell is put back (and scores 0 if the work is wrong) instead of silently needing manual grading
c.OverwriteCells.add_missing_cells = True
# per-cell time limit of plain `nbgrader autograde` (seqcourse has its own: --timeout)
c.Execute.timeout = 60
# test cells: stderr is not a failure, an execute_result is not partial credit, tracebacks show no hidden lines
c.Autograde.autograde_preprocessors = [
    Execute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    NormaliseTestOutputs,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# feedback never shows hidden tests
c.GenerateFeedback.preprocessors = [ClearHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
