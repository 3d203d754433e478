"""Running a submission in a kernel without letting it stop the grader.

nbgrader's executor gives up on a notebook when a cell ignores the interrupt it sends after a time-out, and one
dead kernel ends the notebook. :class:`Executor` instead

- gives each cell its own time limit (``cell_timeout``) and the whole notebook a budget (``budget``);
- starts each kernel in the sandbox (``sandbox``, :mod:`seqcourse.sandbox`) or, without one, beside the grader;
  either way the grader talks to it over Unix sockets (:mod:`seqcourse.kernels`), never TCP;
- when a cell runs out of time, goes over the sandbox's memory cap or the kernel dies (``os._exit``, a segfault,
  a loop that ignores SIGINT), kills the kernel and everything it started, records an error in that cell (so a
  test there scores 0), starts a fresh kernel, replays the cells before it (leaving out the ones that broke a
  kernel) and carries on, so a broken cell costs only the points that depend on it; after ``max_restarts`` lost
  kernels the remaining cells are marked "not run";
- caps the output a cell may produce;
- calls the in-kernel guard (:mod:`seqcourse.kernel.guard`) before every cell through ``user_expressions``, which
  IPython evaluates without its input transformers: the guard undoes tampering with the shell, builtins,
  protected names and libraries before test cells, and seeds the random generators from the cell's grade id;
- runs kernels with one thread each (``OMP_NUM_THREADS=1`` ...), so parallel graders do not oversubscribe the
  CPU, and with a fixed ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import math
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from queue import Empty
from time import monotonic

from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output

from .kernels import PlainKernelManager, SandboxedKernelManager
from .outputs import normalise_test_cell
from .sandbox import Sandbox, format_size

#: environment of every grading kernel (on top of the grader's own)
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "Agg",
    "NBGRADER_EXECUTION": "autograde",
    "SEQCOURSE_GRADING": "1",
}
GUARD = "__import__('seqcourse.kernel.guard').kernel.guard"
GUARD_TIMEOUT = 30.0
#: how a failed allocation shows in a cell's error (Python, numpy, torch): inside the sandbox, the memory cap
MEMORY_ERRORS = ("MemoryError", "_ArrayMemoryError", "OutOfMemoryError")
MEMORY_MESSAGES = ("can't allocate memory", "Cannot allocate memory", "std::bad_alloc")


class KernelLost(Exception):
    """The kernel had to be killed (``reason="timeout"`` or ``"memory"``) or died (``"died"``) in a cell."""

    def __init__(self, index: int, reason: str, seconds: float):
        super().__init__(f"cell {index}: {reason}")
        self.index, self.reason, self.seconds = index, reason, seconds


@dataclass
class CellOutcome:
    """What happened to one code cell."""

    index: int
    status: str  # "ok", "error", "timeout", "memory", "died", "not-run"
    message: str = ""
    seconds: float = 0.0
    guard: str = "ok"


@dataclass
class ExecutionReport:
    outcomes: dict[int, CellOutcome] = field(default_factory=dict)
    restarts: int = 0
    guard_notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _CappedClient(NotebookClient):
    """A NotebookClient that keeps at most ``max_output_chars`` of output per cell."""

    max_output_chars = 200_000

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._chars: dict[int, int] = {}

    def output(self, outs, msg, display_id, cell_index):
        used = self._chars.get(cell_index, 0)
        if used >= self.max_output_chars:
            return None
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
        self._chars[cell_index] = used + size
        if used + size > self.max_output_chars:
            notice = f"\n[output truncated by the grader after {self.max_output_chars} characters]\n"
            outs.append(new_output("stream", name="stdout", text=notice))
            return None
        return super().output(outs, msg, display_id, cell_index)


def kernel_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(KERNEL_ENV)
    env.update(extra or {})
    return env


class Executor:
    """Execute ``nb`` in place, one cell at a time, surviving anything a cell does (see the module docstring).

    Args:
        nb: the notebook to run (outputs are written into it).
        roles: per cell: ``"test"``, ``"locked"`` (read-only instructor code), ``"solution"``, ``"student"``,
            ``"manual"``, ``"markdown"`` ... (see :class:`seqcourse.sanitize.Canonical`).
        cwd: working directory of the kernel.
        cell_timeout: seconds one cell that runs student code (answer, test or extra cell) may run.
        setup_timeout: seconds a read-only instructor cell (imports, data) may run; default
            ``max(cell_timeout, 300)``: those are trusted, and importing torch on a busy machine takes a while.
        budget: seconds the whole notebook may take (kernel restarts and replays included).
        max_restarts: kernels that may be lost before the remaining cells are given up.
        seed: added to every cell's seed (keep 0 for reproducible grades).
        on_progress: ``f(done, total)`` after each code cell.
        on_kernel: ``f(pid)`` whenever a kernel is started (the grader kills it if this process dies).
        guard: call :mod:`seqcourse.kernel.guard` around cells (default ``True``).
        secret: hidden-test lines that no error message of a test cell may repeat.
        sandbox: start every kernel in this sandbox (``None``: on the grader's machine, in ``cwd``).
        data: with a sandbox, ``(host file, path relative to the kernel's folder)`` of the files it may read.
        scratch: where the grader keeps its files for each kernel (connection file, sockets without a sandbox).
    """

    def __init__(self, nb: NotebookNode, roles: list[str], *, cwd: str, cell_timeout: float = 60,
                 setup_timeout: float | None = None, budget: float = 600, max_restarts: int = 3,
                 kernel_name: str = "python3", seed: int = 0,
                 env: dict[str, str] | None = None, on_progress: Callable[[int, int], None] | None = None,
                 on_kernel: Callable[[int], None] | None = None, guard: bool = True,
                 secret: set[str] | None = None, sandbox: Sandbox | None = None,
                 data: list[tuple[str, str]] | None = None, scratch: str | None = None):
        if len(roles) != len(nb.cells):
            raise ValueError(f"roles must have one entry per cell: {len(nb.cells)} cells, got {len(roles)} roles")
        self.nb, self.roles, self.cwd = nb, roles, cwd
        self.cell_timeout, self.budget, self.max_restarts = float(cell_timeout), float(budget), int(max_restarts)
        self.setup_timeout = float(setup_timeout) if setup_timeout else max(self.cell_timeout, 300.0)
        self.kernel_name, self.seed = kernel_name, int(seed)
        self.sandbox, self.data, self.scratch = sandbox, list(data or []), scratch
        # a sandboxed kernel gets nothing of the grader's environment
        self.env = {**KERNEL_ENV, **(env or {})} if sandbox else kernel_env(env)
        self.on_progress, self.on_kernel, self.use_guard = on_progress, on_kernel, guard
        self.secret = set(secret or ())
        self.client: _CappedClient | None = None
        self._reply: dict | None = None
        self._counts: dict[int, int] = {}  # execution count -> cell index, for the current kernel
        self.report = ExecutionReport()

    # ---------------------------------------------------------------------------- kernel lifecycle
    async def _start(self) -> None:
        client = self.client
        if self.sandbox is not None:
            client.km = SandboxedKernelManager(sandbox=self.sandbox, data=self.data, kernel_env=self.env,
                                               scratch=self.scratch, kernel_name=self.kernel_name)
        else:
            client.km = PlainKernelManager(scratch=self.scratch, kernel_name=self.kernel_name)
        try:
            await client.async_start_new_kernel(cwd=self.cwd, env=self.env)
            client.kc = client.km.client()
            # no heartbeat channel: it reconnects on its own, and nbclient watches the process instead
            await ensure_async(client.kc.start_channels(hb=False))
            await ensure_async(client.kc.wait_for_ready(timeout=client.startup_timeout))
        except BaseException:
            await self._kill()
            raise
        client.kc.allow_stdin = False
        self._counts = {}
        pid = self._kernel_pid()
        if pid and self.on_kernel:
            self.on_kernel(pid)
        if self.use_guard:
            await self._guard(f"install({self.seed})", -1)

    def _kernel_pid(self) -> int | None:
        km = self.client.km if self.client else None
        prov = getattr(km, "provisioner", None)
        proc = getattr(prov, "process", None)
        return getattr(proc, "pid", None) or getattr(prov, "pid", None)

    async def _kill(self) -> None:
        """Kill the kernel and everything it started (it runs in its own process group)."""
        client = self.client
        if client is None or client.km is None:
            return
        pid = self._kernel_pid()
        try:
            if client.kc is not None:
                await ensure_async(client.kc.stop_channels())
        except Exception:  # noqa: BLE001 - best effort while tearing down a broken kernel
            pass
        try:
            await asyncio.wait_for(ensure_async(client.km.shutdown_kernel(now=True)), timeout=10)
        except Exception:  # noqa: BLE001
            pass
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            await ensure_async(client.km.cleanup_resources())
        except Exception:  # noqa: BLE001
            pass
        client.km.dispose()
        client.kc = None
        client.km = None

    # ---------------------------------------------------------------------------- guard
    async def _guard(self, call: str, index: int) -> str:
        """Evaluate ``guard.<call>`` in the kernel; raise KernelLost when the kernel does not answer."""
        kc = self.client.kc
        start = monotonic()
        msg_id = kc.execute("", silent=True, store_history=False, allow_stdin=False, stop_on_error=False,
                            user_expressions={"guard": f"{GUARD}.{call}"})
        while True:
            left = GUARD_TIMEOUT - (monotonic() - start)
            if left <= 0:
                raise KernelLost(index, self._over_memory("timeout"), monotonic() - start)
            try:
                msg = await kc.shell_channel.get_msg(timeout=min(1.0, left))
            except Empty:
                if not await ensure_async(self.client.km.is_alive()):
                    raise KernelLost(index, self._over_memory("died"), monotonic() - start) from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        content = msg["content"]
        if content.get("status") != "ok":
            return f"guard could not run ({content.get('ename', 'error')})"
        result = content.get("user_expressions", {}).get("guard", {})
        if result.get("status") != "ok":
            return f"guard could not run ({result.get('ename', 'error')}: {result.get('evalue', '')})"
        try:
            return str(ast.literal_eval(result["data"]["text/plain"]))
        except (KeyError, ValueError, SyntaxError):
            return "guard gave no answer"

    # ---------------------------------------------------------------------------- one cell
    async def _on_executed(self, cell, cell_index, execute_reply) -> None:
        self._reply = execute_reply

    async def _run_cell(self, index: int, record: bool) -> CellOutcome:
        cell = self.nb.cells[index] if record else copy.deepcopy(self.nb.cells[index])
        role = self.roles[index]
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        guard_note = "ok"
        if self.use_guard:
            guard_note = await self._guard(f"before_cell({role!r}, {gid!r}, {index})", index)
            if role == "locked":
                await self._guard("before_instructor_cell()", index)
        left = self.deadline - monotonic()
        limit = self.setup_timeout if role == "locked" else self.cell_timeout
        timeout = max(1, math.ceil(min(limit, left)))
        self.client.timeout = timeout
        self._reply = None
        start = monotonic()
        try:
            await self.client.async_execute_cell(cell, index, store_history=True)
        except CellTimeoutError:
            raise KernelLost(index, self._over_memory("timeout"), monotonic() - start) from None
        except DeadKernelError:
            raise KernelLost(index, self._over_memory("died"), monotonic() - start) from None
        seconds = monotonic() - start
        if cell.get("execution_count"):
            self._counts[cell.execution_count] = index
        if self.use_guard and role == "locked":
            await self._guard("after_instructor_cell()", index)
        content = (self._reply or {}).get("content", {})
        status, message = "ok", ""
        if content.get("status") == "error" or any(o.output_type == "error" for o in cell.outputs):
            status = "error"
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if not errors:  # the error display was suppressed (custom exception handler): record it anyway
                err = new_output("error", ename=content.get("ename", "Error"), evalue=content.get("evalue", ""),
                                 traceback=[f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"])
                cell.outputs.append(err)
                errors = [err]
            message = f"{errors[-1].ename}: {errors[-1].evalue}".strip().rstrip(":")
            if self.sandbox is not None and (errors[-1].ename in MEMORY_ERRORS
                                             or any(m in str(errors[-1].evalue) for m in MEMORY_MESSAGES)):
                raise KernelLost(index, "memory", seconds)  # an allocation over the cap (RLIMIT_AS) failed
        return CellOutcome(index, status, message, seconds, guard_note)

    def _over_memory(self, reason: str) -> str:
        """``"memory"`` when the kernel was lost because it went over the sandbox's memory cap, else ``reason``."""
        km = self.client.km if self.client else None
        return "memory" if km is not None and km.memory_exceeded() else reason

    def _student_counts(self) -> set[int]:
        return {count for count, i in self._counts.items() if self.roles[i] in ("solution", "student", "manual")}

    def _lost(self, lost: KernelLost) -> CellOutcome:
        """Record in the cell that the kernel was lost there."""
        cell = self.nb.cells[lost.index]
        if lost.reason == "timeout":
            ename = "TimeoutError"
            evalue = (f"this cell was stopped after {self.client.timeout if self.client else self.cell_timeout:.0f} s "
                      f"(an endless loop, or far too slow); the grader restarted Python and went on without it")
        elif lost.reason == "memory":
            ename = "MemoryLimit"
            evalue = (f"this cell went over the memory limit ({format_size(self.sandbox.memory)}) and was stopped; "
                      f"the grader restarted Python and went on without it")
        else:
            ename = "KernelDied"
            evalue = ("Python stopped while running this cell (a crash, os._exit, sys.exit in a thread or running "
                      "out of memory); the grader restarted Python and went on without it")
        cell.outputs.append(new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))
        return CellOutcome(lost.index, lost.reason, f"{ename}: {evalue}", lost.seconds)

    async def _replay(self, upto: int) -> None:
        """Bring a fresh kernel to the state before cell ``upto`` (outputs of the replay are discarded)."""
        for index in self._code_cells:
            if index >= upto:
                break
            if index in self.poison or self.roles[index] == "test":
                continue
            if monotonic() >= self.deadline:
                raise KernelLost(index, "timeout", 0.0)
            await self._run_cell(index, record=False)

    # ---------------------------------------------------------------------------- the notebook
    async def run(self) -> ExecutionReport:
        """Run every code cell; return what happened to each (outputs go into ``nb``)."""
        t0 = monotonic()
        self.deadline = t0 + self.budget
        self.poison: set[int] = set()
        self._code_cells = [i for i, c in enumerate(self.nb.cells)
                            if c.cell_type == "code" and str(c.source).strip()]
        for cell in self.nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        self.client = _CappedClient(self.nb, kernel_name=self.kernel_name, timeout=int(self.cell_timeout),
                                    allow_errors=True, interrupt_on_timeout=False, record_timing=False,
                                    startup_timeout=120, shutdown_kernel="immediate", iopub_timeout=4,
                                    raise_on_iopub_timeout=False,
                                    resources={"metadata": {"path": self.cwd}})
        self.client.reset_execution_trackers()
        self.client.on_cell_executed = self._on_executed
        total, done, alive = len(self._code_cells), 0, False
        report = self.report
        try:
            for index in self._code_cells:
                if not alive and report.restarts <= self.max_restarts and monotonic() < self.deadline:
                    alive = await self._revive(index)
                if not alive or monotonic() >= self.deadline:
                    why = ("the submission used up its time budget" if monotonic() >= self.deadline
                           else f"Python had to be restarted {report.restarts} times")
                    report.outcomes[index] = self._not_run(index, why)
                else:
                    try:
                        outcome = await self._run_cell(index, record=True)
                    except KernelLost as lost:
                        outcome = self._lost(lost)
                        self.poison.add(index)
                        await self._kill()
                        alive = False
                        report.restarts += 1
                    report.outcomes[index] = outcome
                    if outcome.guard != "ok":
                        gid = self.nb.cells[index].metadata.get("nbgrader", {}).get("grade_id")
                        report.guard_notes.append(f"before {gid or f'cell {index}'}: {outcome.guard}")
                    if self.roles[index] == "test":
                        normalise_test_cell(self.nb.cells[index], self._student_counts(), self.secret)
                done += 1
                if self.on_progress:
                    self.on_progress(done, total)
        finally:
            await self._kill()
        report.seconds = monotonic() - t0
        return report

    async def _revive(self, index: int) -> bool:
        """Start a kernel (the first, or a fresh one after a loss) and replay the cells before ``index``."""
        first = not hasattr(self, "_started")
        self._started = True
        while monotonic() < self.deadline:
            try:
                await self._start()
                if not first:
                    await self._replay(index)
                return True
            except KernelLost as lost:
                self.poison.add(lost.index)
                await self._kill()
                self.report.restarts += 1
                if self.report.restarts > self.max_restarts:
                    return False
        return False

    def _not_run(self, index: int, why: str) -> CellOutcome:
        cell = self.nb.cells[index]
        evalue = f"this cell was not run: {why}"
        cell.outputs = [new_output("error", ename="NotRun", evalue=evalue, traceback=[f"NotRun: {evalue}"])]
        return CellOutcome(index, "not-run", f"NotRun: {evalue}")


def execute(nb: NotebookNode, roles: list[str], **kwargs) -> ExecutionReport:
    """Synchronous wrapper around :meth:`Executor.run` (runs its own event loop)."""
    return asyncio.run(Executor(nb, roles, **kwargs).run())
