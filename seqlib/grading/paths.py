"""Where the course lives on disk, and the environment Jupyter runs in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LECTURES = REPO / "lectures"
EXERCISES = REPO / "exercises"
COURSE = REPO / "course"
BUILD = REPO / "build"
SITE = COURSE / "site"


def jupyter_env() -> dict[str, str]:
    """Point Jupyter, IPython and matplotlib at the build tree (not ``$HOME``) and return the settings.

    Existing settings win, so ``make`` and the tests agree on one place. The values are also put into
    ``os.environ`` so that kernels started from this process inherit them.
    """
    env = {
        "JUPYTER_CONFIG_DIR": str(BUILD / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(BUILD / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(BUILD / "jupyter" / "runtime"),
        "IPYTHONDIR": str(BUILD / "ipython"),
        "MPLCONFIGDIR": str(BUILD / "matplotlib"),
        "MPLBACKEND": "Agg",
        "SEQLIB_CACHE": str(BUILD / "cache"),
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
