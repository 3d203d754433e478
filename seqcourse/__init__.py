"""seqcourse: the instructor's side of the course: build it, release and grade its assignments.

``seqcourse`` (the command, :mod:`seqcourse.cli`) drives nbgrader through the modules below; it needs the
``instructor`` extra (``pip install 'seqlib[instructor]'``). The part that runs inside a student's kernel is the
dependency-light subpackage :mod:`seqcourse.kernel`. This is the only package allowed to use torch.nn's
recurrent and attention layers: as references against which student work is checked.

==================  ==========================================================================================
``cli``             ``seqcourse build | release | collect | autograde | feedback | grades | report | check | doctor``
``paths``           where the course is (the course root, found from the current folder or ``--course``)
``course``          the course root, its ``nbgrader_config.py``, assignments, grading templates
``release``         ``release``: nbgrader's generate_assignment, then validate both ways, in parallel
``collect``         hand-ins from a folder or a zip into ``course/submitted``
``autograde``       ``autograde``: every hand-in in its own worker process, results recorded as they arrive
``sanitize``        rebuilding a hand-in on its template; hidden-test lines and the leak scanner
``execute``         running a notebook cell by cell, surviving time-outs, the memory cap and dying kernels
``kernels``         the kernel managers: Unix sockets (Jupyter's IPC transport), in the sandbox or beside it
``sandbox``         the grading sandbox (bubblewrap): what a kernel sees and may use; ``seqcourse doctor``
``limits``          the sandbox's memory and process caps: cgroups where possible, else rlimits
``_launch``         the launcher that joins a kernel's cgroup and sets its rlimits, then becomes bwrap
``outputs``         scoring rules for test cells: stderr, partial credit, curated tracebacks
``worker``          grading one hand-in / validating one notebook / rendering pages, inside a worker process
``runner``          running jobs N at a time with progress bars
``gradebook``       the single writer: one transaction per submission, consistency checks
``feedback``        ``feedback``: a page per autograded hand-in, rendered in parallel, checked for leaks
``pages``           one feedback page: hidden tests cleared, test outputs reduced to their curated message
``report``          ``grades.csv``, the grade table and the per-assignment report
``notebooks``       executing the lectures and rendering them into an offline site
``demo``            the demo class: hand-ins generated from the exercises, checked against ``expected.json``
``kernel``          runs inside the student's kernel: test helpers, delegation guard, per-assignment references
==================  ==========================================================================================

Imports run one way: ``cli`` -> the steps (``release``, ``autograde``, ``feedback``, ``report``) -> ``runner`` ->
``worker`` -> ``execute`` / ``pages`` / ``sanitize`` / ``outputs`` -> ``course`` -> ``paths``, and ``execute`` ->
``kernels`` -> ``sandbox`` -> ``limits``; ``seqcourse`` uses
``seqlib``, never the other way round.
"""
