"""What an assignment's first cell sets up, and a static look at student code for a human reviewer."""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

from ._pristine import _np_seed, _t, seal  # noqa: E402


def _warning_to_stdout(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                       file: object = None, line: str | None = None) -> None:
    print(f"{category.__name__}: {message}")


def setup_notebook(seed: int = 0, threads: int | None = 1) -> None:
    """Seed ``random``, numpy and torch; print warnings (and anything written to stderr) on stdout.

    ``threads=1``: the exercises' tensors are tiny, and one intra-op thread is then the fastest and the most
    predictable choice (several threads spin against each other on a busy grading machine).
    """
    random.seed(seed)
    _np_seed(seed)
    _t.manual_seed(seed)
    if threads:
        _t.set_num_threads(threads)
    warnings.showwarning = _warning_to_stdout
    warnings.simplefilter("default")
    sys.stderr = sys.stdout


_SUSPICIOUS = re.compile(
    r"\bchecks\b|\bbuiltins\b|__builtins__|sys\.modules|assert_close|allclose|\bnp\.testing|numpy\.testing|"
    r"TorchFunctionMode|TorchDispatchMode|__torch_function__|__torch_dispatch__|_render_traceback_|GradingError|"
    r"setattr\(\s*(torch|nn|F)\b|^\s*(torch|nn|F)(\.\w+)+\s*=[^=]")


def suspicious_lines(source: str) -> list[str]:
    """Lines of student code that touch the grading machinery (for a human to look at, not a verdict)."""
    return [line for line in source.splitlines() if _SUSPICIOUS.search(line) and not line.lstrip().startswith("#")]


__all__ = ["setup_notebook", "suspicious_lines"]


seal(__name__)
