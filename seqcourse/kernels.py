"""The kernel managers of the grader: Jupyter kernels reached over Unix sockets, never over TCP.

Both use jupyter_client's ``ipc`` transport, so no kernel ever listens on a TCP port of the machine (and
ipykernel's "Kernel is running over TCP without encryption" warning is gone):

- :class:`SandboxedKernelManager` starts the kernel in the sandbox (:mod:`seqcourse.sandbox`). The kernel binds
  its sockets on the sandbox's own small tmpfs (``/run/kernel``); the grader reaches them from outside through
  ``/proc/<pid>/root/run/kernel/...``, where ``<pid>`` is the sandbox's first process as bwrap reports it. The
  grader connects only once the five sockets exist (before any student code runs) and never reconnects, so a
  kernel that swaps a socket for a link to somewhere else on the machine gets no connection from the grader;
- :class:`PlainKernelManager` (``--no-sandbox``, and the release checks without a sandbox) keeps the sockets in
  a private folder of the grader (mode 0700).

:meth:`dispose` removes what a kernel leaves: its cgroup (killing anything still in it) and its folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import zmq
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager

from . import limits
from .sandbox import RUN, Sandbox

PORTS = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")


def _private_folder(parent: str | None) -> Path:
    """A fresh 0700 folder in ``parent`` (default: the system's temporary folder); keep its path short: Unix socket
    paths are limited to about 100 characters."""
    return Path(tempfile.mkdtemp(prefix="sqk-", dir=parent))


def _context() -> zmq.asyncio.Context:
    """A zmq context whose sockets never reconnect once a connection is lost."""
    ctx = zmq.asyncio.Context()
    ctx.setsockopt(zmq.RECONNECT_IVL, -1)
    return ctx


class PlainKernelManager(AsyncKernelManager):
    """A kernel on the grader's machine, with its sockets in a private folder (no sandbox)."""

    def __init__(self, *, scratch: str | None = None, **kwargs):
        private = _private_folder(scratch)
        super().__init__(transport="ipc", ip=str(private / "kernel"),
                         connection_file=str(private / "connection.json"), **kwargs)
        self.private = private

    def memory_exceeded(self) -> bool:
        return False

    def dispose(self) -> None:
        shutil.rmtree(self.private, ignore_errors=True)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel started in ``sandbox`` with the data files ``data`` (``(host file, relative path)``) in its
    scratch folder and the environment variables ``kernel_env`` (and nothing else of the grader's); the grader's
    own files for it go into a folder in ``scratch``."""

    startup_seconds = 120.0

    def __init__(self, *, sandbox: Sandbox, data: list[tuple[str, str]], kernel_env: dict[str, str],
                 scratch: str | None = None, **kwargs):
        private = _private_folder(scratch)
        ctx = _context()
        super().__init__(transport="ipc", ip=f"{RUN}/kernel", connection_file=str(private / "connection.json"),
                         context=ctx, **kwargs)
        self.sandbox, self.data, self.kernel_env, self.private = sandbox, data, dict(kernel_env), private
        self._ctx = ctx
        self.cgroup: limits.Cgroup | None = None
        self.sandbox_pid: int | None = None  # host PID of the sandbox's first process
        self.kernel_pid: int | None = None  # host PID of the kernel (ipykernel) inside it

    # ------------------------------------------------------------------------------------------ start
    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The sandbox's command around this environment's ipykernel (the kernelspec is not consulted)."""
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", f"{RUN}/connection.json", *(extra_arguments or [])]
        if self.sandbox.cgroup and self.cgroup is None:
            self.cgroup = limits.Cgroup.create(self.sandbox.cgroup, memory=self.sandbox.memory,
                                               processes=self.sandbox.processes)
        return self.sandbox.command(kernel, private=self.private, data=self.data, env=self.kernel_env,
                                    cgroup=self.cgroup)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        kw["cwd"] = str(self.private)
        kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # bwrap clears it anyway
        await super()._async_launch_kernel(kernel_cmd, **kw)

    def _alive(self) -> bool:
        proc = getattr(self.provisioner, "process", None)
        return proc is not None and proc.poll() is None

    async def _wait_for_sandbox(self) -> None:
        """Wait until bwrap reported the sandbox's PID and the kernel bound its five sockets; point ``ip`` at
        them (through ``/proc/<pid>/root``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_seconds
        info = self.private / "info.json"
        while self.sandbox_pid is None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.sandbox_pid = int(json.loads(info.read_text())["child-pid"])
            if self.sandbox_pid is None:
                if not self._alive() or loop.time() > deadline:
                    raise RuntimeError("the sandbox did not start (see the grader's log)")
                await asyncio.sleep(0.01)
        ip = f"/proc/{self.sandbox_pid}/root{RUN}/kernel"
        paths = [f"{ip}-{getattr(self, port)}" for port in PORTS]
        while True:
            try:
                if all(stat.S_ISSOCK(os.lstat(p).st_mode) for p in paths):
                    break
            except OSError:
                pass
            if not self._alive() or loop.time() > deadline:
                raise RuntimeError("the kernel did not start in the sandbox (see the grader's log)")
            await asyncio.sleep(0.02)
        self.ip = ip
        with contextlib.suppress(OSError, ValueError, IndexError):
            children = Path(f"/proc/{self.sandbox_pid}/task/{self.sandbox_pid}/children").read_text().split()
            self.kernel_pid = int(children[0])
        if self.cgroup is None:  # no pids cgroup: RLIMIT_NPROC, which counts in the sandbox's user namespace
            if self.kernel_pid is None:
                raise RuntimeError("the kernel's process was not found in the sandbox")
            limits.cap_processes(self.kernel_pid, self.sandbox.processes)

    async def _async_post_start_kernel(self, **kw) -> None:
        await self._wait_for_sandbox()
        await super()._async_post_start_kernel(**kw)

    def client(self, **kwargs):
        """A client on this kernel's sockets that never reconnects (see the module docstring)."""
        kwargs.setdefault("context", self._ctx)
        return super().client(**kwargs)

    # ------------------------------------------------------------------------------------------ after
    def memory_exceeded(self) -> bool:
        """Did the kernel (or something it started) go over the memory cap? (known only with a cgroup)"""
        return self.cgroup is not None and self.cgroup.oom_kills() > 0

    def dispose(self) -> None:
        """Kill whatever is left of the sandbox and remove the kernel's cgroup and folder."""
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.private, ignore_errors=True)
        with contextlib.suppress(Exception):
            self._ctx.destroy(linger=0)


__all__ = ["PlainKernelManager", "SandboxedKernelManager"]
