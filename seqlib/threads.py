"""How many CPU threads torch uses: one helper, as a context manager or a decorator.

Course-sized tensors (a few thousand numbers) are fastest on one thread: splitting each small operation over
several threads costs more in synchronisation than it gains, and on a shared laptop or grading server a second
thread often waits for a busy core. The demos, the experiments and the model cache use :func:`torch_threads`::

    with torch_threads(1):
        train(model)

    @torch_threads(1)
    def experiment(): ...
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["torch_threads"]


class torch_threads(contextlib.ContextDecorator):  # noqa: N801 - used like a function
    """Run a block (or a function) with ``torch.set_num_threads(n)``, then restore the previous setting.

    Args:
        n: threads for torch's intra-op parallelism inside the block; ``None`` leaves the setting alone.
    """

    def __init__(self, n: int | None = 1) -> None:
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a positive int or None, but got {n!r}")
        self.n = n
        self._before: list[int] = []

    def __enter__(self) -> torch_threads:
        self._before.append(torch.get_num_threads())
        if self.n is not None:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._before.pop())
