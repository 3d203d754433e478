"""``seqcourse``: the instructor's command line.

``seqcourse build`` is what ``make course`` runs: it executes every lecture and renders it to
``course/site/``. Later stages of the pipeline (release, autograde, feedback, grades) are added as
subcommands.
"""

from __future__ import annotations

import argparse
import sys
import time

from .notebooks import execute_notebook, render_html
from .paths import LECTURES, SITE, jupyter_env


def build_lectures() -> int:
    """Execute every lecture notebook and render it to ``course/site``; return the number built."""
    lectures = sorted(LECTURES.glob("[0-9][0-9]_*.ipynb"))
    if not lectures:
        print("seqcourse: no lectures in lectures/ yet; nothing to execute.")
        return 0
    for path in lectures:
        start = time.perf_counter()
        nb = execute_notebook(path)
        out = render_html(nb, SITE / (path.stem + ".html"))
        print(f"  lecture {path.name:40s} executed in {time.perf_counter() - start:5.1f} s -> {out}")
    return len(lectures)


def cmd_build(args: argparse.Namespace) -> int:
    jupyter_env()
    print("seqcourse build: lectures")
    build_lectures()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqcourse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build the whole course (what `make course` runs)")
    p.set_defaults(func=cmd_build)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
