"""Start one sandboxed kernel: join its cgroups, set its rlimits, then become ``bwrap``.

Run by the grader as ``python -I -S _launch.py [OPTION ...] -- bwrap ARG ...`` (standard library only, no
``site``: it starts in milliseconds). The options are applied in this order, before anything of the sandbox runs,
so that every process the kernel ever starts inherits them:

``info=PATH``
    open ``PATH`` for writing and hand its descriptor to bwrap in place of the argument ``{info_fd}`` (bwrap's
    ``--info-fd`` writes the host PID of the sandbox there);
``cgroup=PATH``
    write this process's PID into ``PATH`` (a ``cgroup.procs`` file): the kernel's memory and process caps;
``NAME=VALUE``
    ``setrlimit(RLIMIT_NAME, (VALUE, VALUE))``, e.g. ``AS=4294967296`` or ``CORE=0``.

Then it ``exec``s the command after ``--``, keeping its PID: the grader kills that process group to stop the
kernel, and bwrap's ``--die-with-parent`` takes everything inside the sandbox with it.
"""

import os
import resource
import sys


def main(argv: list[str]) -> None:
    if "--" not in argv:
        raise SystemExit("usage: _launch.py [info=PATH] [cgroup=PATH ...] [NAME=VALUE ...] -- COMMAND ...")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    for option in options:
        name, _, value = option.partition("=")
        if name == "info":
            fd = os.open(value, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.set_inheritable(fd, True)
            command = [str(fd) if arg == "{info_fd}" else arg for arg in command]
        elif name == "cgroup":
            with open(value, "w") as fh:
                fh.write(str(os.getpid()))
        else:
            limit = int(value)
            resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (limit, limit))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
