"""The resource caps of a sandboxed kernel: cgroups where the grader may make them, rlimits where it may not.

- **cgroup** (cgroup v1 ``memory`` and ``pids`` controllers writable, as for root on most Linux machines and CI):
  each kernel gets its own cgroup under the grader's, with ``memory.limit_in_bytes`` (and the same
  ``memory.memsw.limit_in_bytes``, so swap is no way out) and ``pids.max``. Both are *totals* over the kernel and
  everything it starts; going over the memory cap makes the kernel's OOM killer stop the biggest process, and the
  grader reads that from ``memory.oom_control`` (``oom_kill``) to report "memory limit".
- **rlimit** (a laptop without root): ``RLIMIT_AS`` caps the address space of *each* process (an allocation over
  it fails with ``MemoryError``), and ``RLIMIT_NPROC``, set on the kernel process right after it started (before
  any student code), caps processes and threads: the kernel lives in its own user namespace, where only its own
  processes count.

In both, ``RLIMIT_CORE`` is 0 and ``RLIMIT_FSIZE`` caps any one file the kernel writes. The launcher
(:mod:`seqcourse._launch`) applies the cgroup and the rlimits before bubblewrap starts, so nothing in the sandbox
ever runs without them.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids")


def _v1_mounts() -> dict[str, Path]:
    """Mount points of the cgroup v1 hierarchies holding the memory and pids controllers."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[2] != "cgroup":
            continue
        options = set(fields[3].split(","))
        for controller in CONTROLLERS:
            if controller in options and controller not in found:
                found[controller] = Path(fields[1])
    return found


def _own_v1_path(controller: str) -> str | None:
    """This process's cgroup in ``controller``'s v1 hierarchy (a path relative to the hierarchy's root)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(base: Path) -> None:
    """Remove the empty cgroups left by graders that died (their names carry the grader's PID)."""
    with contextlib.suppress(OSError):
        for child in base.iterdir():
            pid = child.name[1:].split("-", 1)[0]
            if child.is_dir() and child.name.startswith("k") and pid.isdigit() and not _pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    child.rmdir()


def cgroup_base() -> dict[str, str] | None:
    """Per controller, the folder (``<this process's cgroup>/seqcourse``) under which kernels get their cgroups;
    ``None`` when this process cannot make cgroups with a memory and a pids limit there."""
    mounts = _v1_mounts()
    if set(mounts) != set(CONTROLLERS):
        return None
    base: dict[str, str] = {}
    for controller in CONTROLLERS:
        own = _own_v1_path(controller)
        if own is None:
            return None
        base[controller] = str(mounts[controller] / own.lstrip("/") / "seqcourse")
    try:
        probe = Cgroup.create(base, memory=64 << 20, processes=8)
    except OSError:
        return None
    probe.remove()
    return base


@dataclass
class Cgroup:
    """One kernel's cgroups: ``dirs`` maps ``"memory"`` and ``"pids"`` to the cgroup's folder."""

    dirs: dict[str, Path]

    @classmethod
    def create(cls, base: dict[str, str], *, memory: int, processes: int) -> Cgroup:
        """A fresh cgroup under ``base`` (see :func:`cgroup_base`) with the memory and process caps set."""
        name = f"k{os.getpid()}-{uuid.uuid4().hex[:12]}"
        dirs = {}
        try:
            for controller, folder in base.items():
                Path(folder).mkdir(parents=True, exist_ok=True)
                _sweep(Path(folder))
                dirs[controller] = Path(folder) / name
                dirs[controller].mkdir()
            group = cls(dirs)
            memory_dir = dirs["memory"]
            (memory_dir / "memory.limit_in_bytes").write_text(str(memory))
            memsw = memory_dir / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # absent when the machine does not account swap
                memsw.write_text(str(memory))
            (dirs["pids"] / "pids.max").write_text(str(processes))
        except OSError:
            for folder in dirs.values():
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        return group

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the launcher joins."""
        return [str(folder / "cgroup.procs") for folder in self.dirs.values()]

    def oom_kills(self) -> int:
        """How many processes the OOM killer stopped in this cgroup (0 if the count cannot be read)."""
        try:
            text = (self.dirs["memory"] / "memory.oom_control").read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def pids(self) -> set[int]:
        """Every process still in the cgroup."""
        out: set[int] = set()
        for folder in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                out |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
        return out

    def kill(self) -> None:
        """SIGKILL whatever is left in the cgroup."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup (best effort: an empty leftover is swept later)."""
        self.kill()
        for folder in self.dirs.values():
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # a process that was just killed is still being torn down
                    self.kill()
                    os.sched_yield()


def launcher_options(*, memory: int, file_size: int, cgroup: Cgroup | None) -> list[str]:
    """The :mod:`seqcourse._launch` options for one kernel: its cgroup, or the address-space cap without one."""
    options = ["CORE=0", f"FSIZE={file_size}"]
    if cgroup is not None:
        options += [f"cgroup={path}" for path in cgroup.procs_files()]
    else:
        options.append(f"AS={memory}")
    return options


def cap_processes(pid: int, processes: int) -> bool:
    """``RLIMIT_NPROC`` on the (already started) kernel process ``pid``; ``False`` where it would not count
    (root is exempt from it)."""
    if os.geteuid() == 0:
        return False
    resource.prlimit(pid, resource.RLIMIT_NPROC, (processes, processes))
    return True


__all__ = ["Cgroup", "cgroup_base", "launcher_options", "cap_processes"]
