"""Running many grading jobs, N at a time, each in its own process.

Every job (one student's hand-in of one assignment, or one notebook to validate) runs in a fresh process forked
from a *forkserver* that has already imported the grader (so a job starts in milliseconds, not the seconds that
importing nbformat/nbgrader takes, and inherits no threads, event loops or database connections from the parent).
A job that dies (killed by a student's ``os.kill(os.getppid(), ...)``, out of memory, a crash) or overruns its
hard time limit only loses that job: the runner kills it and the kernels it started, reports it, and starts the
next one. The parent process is the only one that writes the gradebook: results are handed to ``on_result`` as
they arrive.

Progress: one tqdm bar for the batch and one per worker slot (the submission it is grading and the cells done).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait

_CTX = None


def default_jobs() -> int:
    """The number of cores this process may use (the default number of workers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _context():
    """The forkserver context, with the grader preloaded in the server."""
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["seqcourse.worker", "seqcourse.pages"])
    return _CTX


@dataclass
class Task:
    """One job for a worker process."""

    key: str
    job: dict
    label: str
    hard_timeout: float = 3600.0


@dataclass
class _Slot:
    number: int
    task: Task
    proc: object
    conn: object
    started: float
    kernels: set = field(default_factory=set)
    result: dict | None = None
    error: str | None = None
    bar: object = None


def _kill_kernels(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def failure(task: Task, message: str) -> dict:
    """The result recorded for a job that produced none."""
    return {"kind": task.job["kind"], "failed": True, "message": message, "key": task.key}


def run_tasks(tasks: list[Task], jobs: int, on_result: Callable[[Task, dict], None], *,
              progress: bool | None = None, desc: str = "grading") -> None:
    """Run ``tasks`` ``jobs`` at a time; call ``on_result(task, result)`` in this process as each one ends.

    ``result`` is the worker's dict, or ``{"failed": True, "message": ...}`` when the worker died, overran
    ``task.hard_timeout`` or raised. ``progress=None`` shows bars only on a terminal.
    """
    from tqdm.auto import tqdm

    jobs = max(1, int(jobs))
    ctx = _context()
    pending = deque(tasks)
    running: dict[int, _Slot] = {}
    free = list(range(jobs))
    show = sys.stderr.isatty() if progress is None else progress
    overall = tqdm(total=len(tasks), desc=desc, position=0, disable=not show, dynamic_ncols=True, leave=True)
    bars = [tqdm(total=1, position=k + 1, disable=not show, leave=False, dynamic_ncols=True,
                 bar_format="{desc} {bar} {n_fmt}/{total_fmt} cells") for k in range(jobs)]

    from .worker import run_job

    def start(task: Task) -> None:
        number = free.pop(0)
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=run_job, args=(task.job, child_conn), name=f"grader-{task.key}", daemon=False)
        proc.start()
        child_conn.close()
        bar = bars[number]
        bar.reset(total=1)
        bar.set_description_str(f"  [{number + 1}] {task.label:<36.36}")
        running[number] = _Slot(number, task, proc, parent_conn, time.monotonic(), bar=bar)

    def drain(slot: _Slot) -> None:
        try:
            while slot.conn.poll():
                msg = slot.conn.recv()
                kind = msg[0]
                if kind == "progress":
                    _, notebook, done, total = msg
                    slot.bar.total = total
                    slot.bar.n = done
                    slot.bar.refresh()
                elif kind == "kernel":
                    slot.kernels.add(msg[1])
                elif kind == "result":
                    slot.result = msg[1]
                elif kind == "error":
                    slot.error = msg[1]
        except (EOFError, OSError):
            pass

    def finish(slot: _Slot, result: dict) -> None:
        del running[slot.number]
        free.append(slot.number)
        free.sort()
        with contextlib.suppress(OSError):
            slot.conn.close()
        overall.update(1)
        on_result(slot.task, result)

    def stop(slot: _Slot) -> None:
        with contextlib.suppress(ProcessLookupError, AttributeError):
            slot.proc.kill()
        slot.proc.join(5)
        _kill_kernels(slot.kernels)

    try:
        while pending or running:
            while pending and free:
                start(pending.popleft())
            waitables = [s.conn for s in running.values()] + [s.proc.sentinel for s in running.values()]
            wait(waitables, timeout=0.5)
            for slot in list(running.values()):
                drain(slot)
                if slot.proc.exitcode is None and not slot.proc.is_alive():
                    slot.proc.join(0.1)
                if slot.proc.exitcode is not None:
                    drain(slot)
                    slot.proc.join()
                    if slot.result is not None:
                        finish(slot, slot.result)
                    else:
                        _kill_kernels(slot.kernels)
                        code = slot.proc.exitcode
                        if slot.error:
                            why = "the grader raised an error:\n" + slot.error.strip().splitlines()[-1]
                        elif code < 0:
                            why = f"the grading process was killed by signal {signal.Signals(-code).name}"
                        else:
                            why = f"the grading process exited with status {code}"
                        finish(slot, failure(slot.task, why))
                elif time.monotonic() - slot.started > slot.task.hard_timeout:
                    stop(slot)
                    finish(slot, failure(slot.task, f"grading took longer than {slot.task.hard_timeout:.0f} s "
                                                    f"and was stopped"))
    except BaseException:
        for slot in list(running.values()):
            stop(slot)
        raise
    finally:
        for bar in bars:
            bar.close()
        overall.close()
