"""Where the course lives on disk, and the environment Jupyter runs in.

The **course root** is the nbgrader course folder: the one that holds ``nbgrader_config.py`` (``course/`` in this
repository). It is, in this order:

1. the ``--course`` option of ``seqcourse`` (an argument of :func:`find_course`);
2. ``$SEQCOURSE_ROOT``;
3. the current folder or the nearest parent of it that holds ``nbgrader_config.py``, or a ``course/`` folder
   holding one (so ``seqcourse`` works from anywhere inside a checkout).

It never depends on where the ``seqcourse`` package is installed. The **project folder** is the course root's
parent; it holds ``lectures/``, the assignments' source folder (nbgrader's ``source_directory``, here
``exercises/``) and ``build/``, where Jupyter, IPython, matplotlib and seqlib's caches keep their state.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFIG = "nbgrader_config.py"


def find_course(root: str | os.PathLike[str] | None = None, start: str | os.PathLike[str] | None = None) -> Path:
    """The course root (see the module docstring); raises ``FileNotFoundError`` saying how to name one."""
    explicit = root if root is not None else os.environ.get("SEQCOURSE_ROOT") or None
    if explicit is not None:
        path = Path(explicit).expanduser().resolve()
        if not (path / CONFIG).is_file():
            raise FileNotFoundError(f"not a course root (no {CONFIG}): {path}")
        return path
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for candidate in (folder, folder / "course"):
            if (candidate / CONFIG).is_file():
                return candidate
    raise FileNotFoundError(f"no course found from {here}: run seqcourse inside the course's folder, pass "
                            f"--course DIR or set SEQCOURSE_ROOT (the folder that holds {CONFIG})")


def build_dir(course_root: Path) -> Path:
    """``<project>/build``: the git-ignored build tree beside the course root."""
    return Path(course_root).resolve().parent / "build"


def default_build() -> Path:
    """The build tree of the course found from the current folder, else ``./build``."""
    try:
        return build_dir(find_course())
    except FileNotFoundError:
        return Path.cwd() / "build"


def jupyter_env(build: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Point Jupyter, IPython, matplotlib and seqlib's cache at the build tree (not ``$HOME``); return the settings.

    ``build``: the build tree (default: the one beside the course found from the current folder, see
    :func:`find_course`). Settings already in the environment win, so ``make``, the tests and ``seqcourse`` agree
    on one place. The values are also put into ``os.environ`` so that kernels started from this process inherit
    them.
    """
    build = Path(build) if build is not None else default_build()
    env = {
        "JUPYTER_CONFIG_DIR": str(build / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(build / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(build / "jupyter" / "runtime"),
        "IPYTHONDIR": str(build / "ipython"),
        "MPLCONFIGDIR": str(build / "matplotlib"),
        "MPLBACKEND": "Agg",
        "SEQLIB_CACHE": str(build / "cache"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for key, value in env.items():
        os.environ.setdefault(key, value)
        if key.endswith("DIR"):
            Path(os.environ[key]).mkdir(parents=True, exist_ok=True)
    # nbgrader runs helper programs (``alembic``) that live next to this interpreter: make sure they are found
    # even when the interpreter was started by its full path without activating the virtualenv.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return {key: os.environ[key] for key in env}
