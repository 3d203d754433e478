"""Red team: hand-ins that attack the grading machine from an answer cell, graded in one batch in the sandbox.

The batch (``red_team``, once per module) grades, with two workers, an honest hand-in of each fixture assignment,
one hand-in per attack of ``tests/fixtures/grading/attacks.py`` (copying the solutions, rewriting the gradebook,
killing the grader, phoning home, leaving daemons, holding 6 GiB with ``--memory 2G``, a fork bomb, overwriting
other hand-ins and the exercises, poisoning the Python environment, swapping the kernel's sockets), and a hand-in
whose grading process the test kills half-way; next to a *victim* graded in an earlier batch. Then: the honest
hand-ins keep full marks, the victim's grade and files are unchanged, each attack earns nothing (the memory hog
loses only the cell that held the memory), no process of any sandbox survives, nothing reached the test's
listeners, the sources are unchanged and the batch completed. The solution-copying attack is also run on a real
assignment (``a1_rnn``), and, as a control that the attacks are real, once without the sandbox, where it copies
the solutions.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "grading"))
import attacks  # noqa: E402
import fixture_course as fc  # noqa: E402
from graded import require_sandbox  # noqa: E402

from seqcourse.autograde import autograde  # noqa: E402
from seqcourse.course import Course  # noqa: E402
from seqcourse.gradebook import check_gradebook, sandboxes, scores  # noqa: E402
from seqcourse.release import release  # noqa: E402

pytestmark = [pytest.mark.course, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 6.0
MEMORY = 2 << 30  # the batch's --memory: the 6 GiB hoard is stopped at 2 GiB (quick), torch kernels fit
PROCESSES = 64  # the batch's process cap: a fork bomb reaches it quickly, kernels (about a dozen threads) fit
PREFIX = "rt-"  # every red-team student's name starts with it (the process monitor finds their logs by it)
ZERO = {gid: 0.0 for gid in fc._FULL}


def tree_digest(*roots: Path) -> str:
    """One hash over every file (path and bytes) under ``roots``, caches excluded."""
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(path).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def source_digest() -> str:
    """The course's sources: the library, the in-kernel helpers, the exercises and the demo class's expectations."""
    return tree_digest(REPO / "seqlib", REPO / "seqcourse", REPO / "exercises", REPO / "course" / "nbgrader_config.py",
                       REPO / "course" / "demo_submissions" / "expected.json")


def known_paths(course: Course) -> list[str]:
    """Where the course really is on this machine (told to the copy-known attack)."""
    return [str(course.root), str(course.source), str(course.root.parent), str(REPO)]


def site_listing() -> list[str]:
    return sorted(f"{d}/{name}" for d in sys.path if d and os.path.isdir(d) for name in os.listdir(d))


# ------------------------------------------------------------------------------------------ what the test watches

class Listeners:
    """A TCP listener on every IPv4 (and IPv6) address of the machine, a Unix socket and an abstract Unix socket;
    ``hits`` is every connection that arrived."""

    def __init__(self, folder: Path):
        self.hits: list[str] = []
        self.socks = []
        tcp = socket.create_server(("0.0.0.0", 0))
        self.port = tcp.getsockname()[1]
        self._serve(tcp, "tcp4")
        with contextlib.suppress(OSError):
            tcp6 = socket.socket(socket.AF_INET6)
            tcp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            tcp6.bind(("::", self.port))
            tcp6.listen()
            self._serve(tcp6, "tcp6")
        self.unix = str(folder / "listener.sock")
        unix = socket.socket(socket.AF_UNIX)
        unix.bind(self.unix)
        unix.listen()
        self._serve(unix, "unix")
        self.abstract = f"seqcourse-red-team-{uuid.uuid4().hex}"
        abstract = socket.socket(socket.AF_UNIX)
        abstract.bind("\0" + self.abstract)
        abstract.listen()
        self._serve(abstract, "abstract")
        names = {"127.0.0.1", "localhost", "::1", socket.gethostname()}
        with contextlib.suppress(OSError):
            names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
        self.hosts = sorted(names)

    def _serve(self, sock: socket.socket, kind: str) -> None:
        self.socks.append(sock)

        def accept():
            while True:
                try:
                    conn, addr = sock.accept()
                except OSError:
                    return
                self.hits.append(f"{kind} {addr}")
                conn.close()

        threading.Thread(target=accept, daemon=True).start()

    def close(self) -> None:
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


class Monitor(threading.Thread):
    """Watches the machine's processes during the batch: every PID namespace a red-team kernel lived in (found by
    the grading log its standard output goes to), and kills the grading process of ``crash`` once its kernel runs."""

    def __init__(self, crash: str):
        super().__init__(daemon=True)
        self.crash, self.namespaces, self.killed = crash, set(), []
        self.own = _pid_ns(os.getpid())
        self.stop = threading.Event()

    def scan(self) -> dict[int, str]:
        found = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                with contextlib.suppress(OSError):
                    log = os.readlink(f"/proc/{name}/fd/1")
                    if f"/{PREFIX}" in log and log.endswith(".log"):
                        found[int(name)] = log
        return found

    def run(self) -> None:
        while not self.stop.is_set():
            procs = self.scan()
            for pid in procs:
                ns = _pid_ns(pid)
                if ns and ns != self.own:
                    self.namespaces.add(ns)
            mine = {pid for pid, log in procs.items() if log.endswith(f"/{self.crash}--fx_basic.log")}
            if not self.killed and len(mine) >= 3:  # the worker, and its sandbox has started
                for pid in mine:
                    with contextlib.suppress(OSError):
                        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                        if ppid not in mine and _pid_ns(pid) == self.own:
                            time.sleep(1.0)  # grading is under way
                            os.kill(pid, signal.SIGKILL)
                            self.killed.append(pid)
                            break
            time.sleep(0.1)

    def survivors(self) -> list[str]:
        """Processes still running (zombies waiting to be reaped by the machine's init do not run) in any PID
        namespace a red-team kernel lived in."""
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit() and _pid_ns(int(name)) in self.namespaces:
                with contextlib.suppress(OSError):
                    state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
                    if state not in ("Z", "X"):
                        out.append(f"{name} ({state}): {cmdline!r}")
        return out


def marked_processes(marker: str) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    out.append(int(name))
    return out


# ------------------------------------------------------------------------------------------ the batch

def _handin(release_nb, out: Path, student: str, assignment: str, make) -> None:
    nb = copy.deepcopy(release_nb)
    make(nb)
    folder = out / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.ipynb").write_text(json.dumps(nb, indent=1))


def _slow_reference(nb, ctx=None):
    fc._solve_all(nb)
    fc._answer(nb, "add", "import time\ntime.sleep(4)\n\ndef add(a, b):\n    return a + b")


@dataclasses.dataclass
class RedTeam:
    course: Course
    report: object
    listeners: Listeners
    monitor: Monitor
    marker: str
    cap: int
    before: dict
    after: dict


@pytest.fixture(scope="module")
def red_team(tmp_path_factory) -> RedTeam:
    sandbox = dataclasses.replace(require_sandbox(), memory=MEMORY, processes=PROCESSES)
    root = tmp_path_factory.mktemp("red-team")
    course = Course.load(fc.make_course(root))
    release(course, validate=False, out=lambda s: None)
    released = {a: nbformat.read(course.release_notebook(a, a), as_version=4) for a in ("fx_basic", "fx_torch")}

    # an earlier batch: the victim
    _handin(released["fx_basic"], root / "batch1", f"{PREFIX}victim", "fx_basic", fc._reference)
    first = autograde(course, root / "batch1", jobs=1, cell_timeout=TIMEOUT, budget=60, progress=False,
                      out=lambda s: None, sandbox=sandbox)
    assert [o.score for o in first.outcomes] == [5.0]
    victim = course.autograded / f"{PREFIX}victim" / "fx_basic"

    def snapshot() -> dict:
        return {"scores": scores(course)[(f"{PREFIX}victim", "fx_basic")], "graded": tree_digest(victim),
                "submitted": tree_digest(course.submitted / f"{PREFIX}victim"), "exercises": tree_digest(course.source),
                "sources": source_digest(), "site": site_listing()}

    before = snapshot()
    listeners = Listeners(root)
    marker = f"red-team-marker-{uuid.uuid4().hex}"
    ctx = {"port": listeners.port, "hosts": listeners.hosts, "unix": listeners.unix, "abstract": listeners.abstract,
           "marker": marker, "notebook": "fx_basic.ipynb", "known": known_paths(course)}
    handins = root / "batch2"
    _handin(released["fx_basic"], handins, f"{PREFIX}honest", "fx_basic", fc._reference)
    _handin(released["fx_torch"], handins, f"{PREFIX}honest", "fx_torch", fc._t_reference)
    _handin(released["fx_basic"], handins, f"{PREFIX}crash", "fx_basic", _slow_reference)
    for name, make in attacks.ATTACKS.items():
        _handin(released["fx_basic"], handins, f"{PREFIX}{name}", "fx_basic", lambda nb, make=make: make(nb, ctx))
    monitor = Monitor(f"{PREFIX}crash")
    monitor.start()
    try:
        report = autograde(course, handins, jobs=2, cell_timeout=TIMEOUT, budget=60, progress=False,
                           out=lambda s: None, sandbox=sandbox)
    finally:
        monitor.stop.set()
        monitor.join()
    time.sleep(0.5)
    after = snapshot()
    return RedTeam(course, report, listeners, monitor, marker, sandbox.processes, before, after)


def test_the_batch_completes_and_the_honest_hand_ins_keep_full_marks(red_team):
    graded = {(o.student, o.assignment) for o in red_team.report.outcomes}
    expected = {(f"{PREFIX}{name}", "fx_basic") for name in [*attacks.ATTACKS, "honest", "crash"]}
    assert graded == expected | {(f"{PREFIX}honest", "fx_torch")}
    recorded = scores(red_team.course)
    assert recorded[(f"{PREFIX}honest", "fx_basic")] == fc._score()
    assert recorded[(f"{PREFIX}honest", "fx_torch")] == {"test_attention": 2.0}
    assert all(o.recorded for o in red_team.report.outcomes)
    assert check_gradebook(red_team.course) == []
    label = red_team.report.sandbox
    assert label and set(sandboxes(red_team.course).values()) == {label}  # every result says where it was graded


def test_the_victim_graded_earlier_is_unchanged(red_team):
    for key in ("scores", "graded", "submitted"):
        assert red_team.after[key] == red_team.before[key], key


@pytest.mark.parametrize("attack", sorted(attacks.ATTACKS))
def test_each_attack_earns_nothing(red_team, attack):
    recorded = scores(red_team.course)[(f"{PREFIX}{attack}", "fx_basic")]
    if attack == "memory":  # answered correctly but for the cell that held 6 GiB: only that cell is lost
        assert recorded == fc._score(test_countdown=0)
    else:
        assert recorded == ZERO


def test_the_gradebook_holds_no_score_a_kernel_wrote(red_team):
    con = sqlite3.connect(red_team.course.db_path)
    assert con.execute("SELECT COUNT(*) FROM grade WHERE manual_score IS NOT NULL").fetchone() == (0,)
    assert con.execute("SELECT MAX(auto_score) FROM grade").fetchone()[0] <= 2.0


def test_the_memory_hog_is_stopped_and_reported_as_memory_limit(red_team):
    outcome = next(o for o in red_team.report.outcomes if o.student == f"{PREFIX}memory")
    assert any("MemoryLimit" in p for p in outcome.problems), outcome.problems
    record = json.loads((red_team.course.autograded / f"{PREFIX}memory" / "fx_basic" / "grading.json").read_text())
    cell = record["notebooks"]["fx_basic"]["cells"]["test_countdown"]
    assert cell["score"] == 0.0
    nb = nbformat.read(red_team.course.autograded / f"{PREFIX}memory" / "fx_basic" / "fx_basic.ipynb", as_version=4)
    hog = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "countdown")
    assert any(o.get("ename") == "MemoryLimit" and "memory limit (2 GiB)" in o.get("evalue", "") for o in hog.outputs)


def test_the_process_cap_holds(red_team):
    nb = nbformat.read(red_team.course.autograded / f"{PREFIX}fork-bomb" / "fx_basic" / "fx_basic.ipynb",
                       as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    match = re.search(r"FORKS (\d+)", text)
    if not red_team.report.sandbox or ("not capped" in red_team.report.sandbox):
        pytest.skip("no process cap on this machine (root without a pids cgroup)")
    assert match, text[-2000:]
    assert int(match.group(1)) < red_team.cap


def test_no_process_survives(red_team):
    assert red_team.monitor.namespaces, "the monitor saw no sandbox"
    assert red_team.monitor.survivors() == []
    assert marked_processes(red_team.marker) == []


def test_no_connection_arrives(red_team):
    assert red_team.listeners.hits == []
    nb = nbformat.read(red_team.course.autograded / f"{PREFIX}phone-home" / "fx_basic" / "fx_basic.ipynb",
                       as_version=4)
    assert "reached []" in "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_the_sources_and_the_python_environment_are_unchanged(red_team):
    assert red_team.after["sources"] == red_team.before["sources"]
    assert red_team.after["exercises"] == red_team.before["exercises"]
    assert red_team.after["site"] == red_team.before["site"]  # no sitecustomize.py planted anywhere
    nb = nbformat.read(red_team.course.autograded / f"{PREFIX}poison-env" / "fx_basic" / "fx_basic.ipynb",
                       as_version=4)
    assert "POISONED []" in "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    nb = nbformat.read(red_team.course.autograded / f"{PREFIX}overwrite" / "fx_basic" / "fx_basic.ipynb",
                       as_version=4)
    assert "WRITTEN []" in "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_a_grading_process_that_dies_costs_only_its_hand_in(red_team):
    assert red_team.monitor.killed, "the grading process of the crash hand-in was not found"
    outcome = next(o for o in red_team.report.outcomes if o.student == f"{PREFIX}crash")
    assert "killed by signal SIGKILL" in " ".join(outcome.problems)
    assert scores(red_team.course)[(f"{PREFIX}crash", "fx_basic")] == ZERO


def test_the_attacks_are_real_without_a_sandbox(red_team, tmp_path):
    """Control: the same copying attack, graded without the sandbox, finds the solutions and scores points."""
    released = nbformat.read(red_team.course.release_notebook("fx_basic", "fx_basic"), as_version=4)
    ctx = {"notebook": "fx_basic.ipynb", "known": [str(red_team.course.source)]}  # read-only: only the exercises
    _handin(released, tmp_path, f"{PREFIX}control", "fx_basic", lambda nb: attacks.copy("known")(nb, ctx))
    report = autograde(red_team.course, tmp_path, jobs=1, cell_timeout=60, budget=120, progress=False,
                       out=lambda s: None, sandbox=False)
    (outcome,) = report.outcomes
    assert outcome.score == 5.0, outcome.problems


# ------------------------------------------------------------------------------------------ a real assignment

SCRATCH_CONFIG = """c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.source_directory = {source!r}
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
"""


def test_copying_the_solutions_of_a_real_assignment_earns_nothing(tmp_path):
    sandbox = require_sandbox()
    root = tmp_path / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_text(SCRATCH_CONFIG.format(
        config=str(REPO / "course" / "nbgrader_config.py"), root=str(root), source=str(REPO / "exercises")))
    course = Course.load(root)
    release(course, ["a1_rnn"], validate=False, out=lambda s: None)
    released = nbformat.read(course.release_notebook("a1_rnn", "a1_rnn"), as_version=4)
    ctx = {"notebook": "a1_rnn.ipynb", "known": [str(REPO), str(REPO / "exercises"), str(root)]}
    handins = tmp_path / "handins"
    for how in ("seqlib", "env", "proc", "known"):
        _handin(released, handins, f"{PREFIX}copy-{how}", "a1_rnn", lambda nb, h=how: attacks.copy(h)(nb, ctx))
    _handin(released, handins, f"{PREFIX}blank", "a1_rnn", lambda nb: None)
    before = source_digest()
    report = autograde(course, handins, jobs=2, cell_timeout=60, budget=300, progress=False,
                       out=lambda s: None, sandbox=sandbox)
    got = {o.student: o.score for o in report.outcomes}
    assert got[f"{PREFIX}blank"] == 0.0
    assert got == {s: 0.0 for s in got}, got
    assert source_digest() == before
    # control: without the sandbox the same attack, told where the exercises are, copies the solutions
    control = tmp_path / "control"
    ctx = {"notebook": "a1_rnn.ipynb", "known": [str(REPO / "exercises" / "a1_rnn")]}
    _handin(released, control, f"{PREFIX}control", "a1_rnn", lambda nb: attacks.copy("known")(nb, ctx))
    (outcome,) = autograde(course, control, jobs=1, cell_timeout=60, budget=300, progress=False, out=lambda s: None,
                           sandbox=False).outcomes
    assert outcome.score == outcome.max_score > 0, outcome.problems
