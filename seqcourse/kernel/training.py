"""What a training loop did: its optimizer, learning rate and steps, fresh gradients, its batches, its losses.

A training function is graded by its behaviour on a short run, not by a threshold on what the model learned.
:func:`watch` runs it with hooks on the model and on every optimizer step:

- a forward hook records each call of the model (its inputs and its logits);
- a hook on every parameter adds up the gradient each backward pass brings (before it reaches ``.grad``);
- torch's global ``register_optimizer_step_pre_hook`` sees every ``optimizer.step()``: which optimizer, its learning
  rate, whether it holds the model's parameters, how many backward passes and calls of the model came since the
  previous step, and whether ``.grad`` holds exactly the gradients of those backward passes (it does not when
  ``optimizer.zero_grad()`` was left out: the earlier batches' gradients are still in it).

:func:`summary` turns that log into what a training catalogue observes (a dict of plain values and tensors, the same
for the student's run and for every mutation's), and :func:`expect_training` checks it through a diagnosis.
"""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from ._pristine import _t, seal  # noqa: E402


def watch(fn: Callable[..., Any], model: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
    """Run ``fn(model, *args, **kwargs)`` with the hooks above; return ``(its result, the log)``."""
    params = [p for p in model.parameters() if p.requires_grad]
    pending: list[Any] = [None] * len(params)
    log: dict = {"calls": [], "steps": [], "backwards": 0}

    def grad_hook(i: int) -> Callable:
        def hook(grad: Any) -> None:
            if i == 0:
                log["backwards"] += 1
            pending[i] = _t.clone(grad) if pending[i] is None else _t.add(pending[i], grad)

        return hook

    def forward_hook(module: Any, inputs: tuple, output: Any) -> None:
        log["calls"].append((inputs, _t.detach(output) if isinstance(output, _t.Tensor) else output))

    def step_hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        own = {id(p) for group in optimizer.param_groups for p in group["params"]}
        fresh = any(g is not None for g in pending)
        for p, g in zip(params, pending, strict=True):
            if g is None:
                fresh = fresh and (p.grad is None or not bool(_t.item(_t.any(_t.ne(p.grad, 0)))))
            else:
                fresh = fresh and p.grad is not None and bool(_t.item(_t.all(_t.isclose(p.grad, g, 1e-5, 1e-8))))
        start = log["steps"][-1]["calls"][1] if log["steps"] else 0
        log["steps"].append({"optimizer": type(optimizer).__name__, "lr": float(optimizer.param_groups[0]["lr"]),
                             "covers": all(id(p) in own for p in params), "backwards": log["backwards"],
                             "calls": (start, len(log["calls"])), "fresh": fresh})
        log["backwards"] = 0
        for i in range(len(pending)):
            pending[i] = None

    # the first parameter counts the backward passes: make it one that every backward reaches
    handles = [p.register_hook(grad_hook(i)) for i, p in enumerate(params)]
    handles.append(model.register_forward_hook(forward_hook))
    handles.append(_t.step_pre_hook(step_hook))
    try:
        result = fn(model, *args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return result, log


def _floats(values: Any) -> Any:
    """The losses a training function returned, as a float64 tensor (or as they are, when they are not numbers)."""
    try:
        return _t.tensor([float(v) for v in values], dtype=_t.float64)
    except (TypeError, ValueError, RuntimeError):
        return values


def summary(log: dict, result: Any, labels_of: Callable[[tuple], tuple[Any, Any]]) -> dict:
    """What a training catalogue observes: per step the optimizer, the learning rate, whether it covers the model,
    the backward passes, fresh gradients, the batch (``labels_of(inputs) -> (batch key, labels)``) and its
    cross-entropy loss (recomputed from the logits the model gave), and what the function returned."""
    steps = log["steps"]
    batches, losses = [], []
    for step in steps:
        start, end = step["calls"]
        if end == start:
            batches.append(None)
            losses.append(float("nan"))
            continue
        inputs, logits = log["calls"][end - 1]  # the call whose loss this step's backward used
        key, labels = labels_of(inputs)
        batches.append(key)
        if labels is None or not isinstance(logits, _t.Tensor):
            losses.append(float("nan"))
        else:
            losses.append(float(_t.cross_entropy(_t.to(logits, dtype=_t.float64), labels)))
    return {
        "optimizers": sorted({s["optimizer"] for s in steps}), "lr": sorted({s["lr"] for s in steps}),
        "covers": all(s["covers"] for s in steps), "steps": len(steps),
        "backwards": [s["backwards"] for s in steps], "fresh": [s["fresh"] for s in steps],
        "calls": [s["calls"][1] - s["calls"][0] for s in steps], "batches": batches,
        "losses": _t.tensor(losses, dtype=_t.float64), "returned": _floats(result) if result is not None else None,
    }


def expect_training(d: Any, name: str, run: dict, *, steps: int, lr: float, optimizer: str = "Adam") -> None:
    """The checks every training function of the course must pass, recorded in the diagnosis ``d``: the optimizer
    and its learning rate, the number of updates, one backward pass and fresh gradients at every update."""
    d.expect(run["optimizers"] == [optimizer] and run["covers"],
             f"{name} must train the model's parameters with torch.optim.{optimizer}: "
             f"torch.optim.{optimizer}(model.parameters(), lr=lr)")
    d.expect(run["lr"] == [float(lr)], f"{name} must use the learning rate lr that it is given")
    d.expect(run["steps"] == steps, f"{name} makes the wrong number of updates (optimizer.step() calls): "
             "one per mini-batch, as the exercise describes")
    d.expect(all(b >= 1 for b in run["backwards"]),
             f"{name} calls optimizer.step() without a loss.backward() before it: compute the loss, "
             "loss.backward(), then optimizer.step()")
    d.expect(all(run["fresh"]), f"{name}: when optimizer.step() runs, .grad still holds the gradients of earlier "
             "mini-batches: call optimizer.zero_grad() before every loss.backward()")


__all__ = ["expect_training", "summary", "watch"]


seal(__name__)
