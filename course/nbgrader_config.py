"""nbgrader configuration for the course root.

The source assignments live in ../exercises (no copy is made); everything else nbgrader writes
(release/, submitted/, autograded/, feedback/, gradebook.db) is generated here and git-ignored.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = Path(__file__).resolve().parent

c.CourseDirectory.root = str(HERE)
c.CourseDirectory.source_directory = "../exercises"
c.CourseDirectory.course_id = "seqcourse"
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"
