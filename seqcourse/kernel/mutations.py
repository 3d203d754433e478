"""Mutation sites of a reference implementation, and the operators that vary them.

A reference written for the diagnosis engine (:mod:`seqcourse.kernel.diagnose`) takes a :class:`Sites` object
``m`` as its first argument and routes each step a student could get wrong through a *site*, a method call with a
name::

    pre = m.term("b_ih", b_ih) + _t.linear(x, m.transpose("W_ih", w_ih)) + ...
    return m.apply("activation", "tanh", pre)

With no mutation active every site returns the correct value, so ``reference(Sites(), *args)`` is the reference.
With one mutation active, ``Sites(("activation", "sigmoid"))``, the site of that name returns that variant
wherever it is visited (at every step of a loop): the reference then computes what a student who made that one
mistake computes. Every visit also records the site's variants, so one plain run lists the mutations that apply
to an input (a mask site is only visited when there is a mask).

==========  =============================================  =====================================================
operator    the site returns                               its variants (labels)
==========  =============================================  =====================================================
apply       ``f(x)``, ``f`` named in a family              the family's other members (``sigmoid``, ``identity``)
term        a summand (``None`` stays ``None``)            ``missing``, ``doubled``, ``subtracted``
transpose   a matrix                                       ``transposed``
softmax     ``softmax(x, dim)``                            ``dim k`` (another dimension), ``missing``
reduce      ``x.sum(dim)`` or ``x.mean(dim)``              ``mean`` / ``sum``, ``dim k``
chunk       ``x.chunk(n, dim)``                            ``dim k``, ``as a, b, ...`` (the parts read in another
                                                           order)
stack       ``torch.stack(xs, dim)``                       ``dim k``
scale       ``x * factor``                                 ``missing``, ``twice``, ``inverted``, named variants
gate        ``g * x`` (a gate's product)                   ``missing`` (x alone), ``complement`` ((1 - g) * x)
offset      an integer (or integer tensor) ``k``           ``-1``, ``+1``
loop        ``range(n)``                                   ``one short``, ``from 1``, ``one extra``, ``backwards``
carry       the new state                                  ``not carried`` (the old state)
at          ``seq[i]``                                     ``previous``, ``next``, ``first``, ``last``
mask        the scores, disallowed entries at -inf         ``inverted``, ``zero``, ``ignored``
combine     ``a + b``                                      ``multiplied``, ``subtracted``, ``ignored``
rng         a ``torch.Generator``                          ``ignored`` (``None``: torch's global generator)
swap        ``(a, b)``                                     ``swapped``
step        ``True`` (a statement that must run)           ``missing``
option      the correct structure's label                  the alternatives the reference names
==========  =============================================  =====================================================

Every variant has a default sentence built from the site's description (:func:`sentence`); a catalogue gives the
sentence in the lecture's words wherever the default would be vague. New assignments use the same operators (the
``rounding`` family, ``offset`` and ``scale`` serve fixed-point and quantization exercises, ``option`` and
``carry`` a spiking neuron's reset and membrane state); a catalogue that needs a new kind of mistake adds an
operator here, with its variants and its default sentence.
"""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import itertools  # noqa: E402
import math  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from ._pristine import Sealed, _t, seal, seal_class  # noqa: E402


def _identity(x):
    return x


#: named functions an ``apply`` site may swap for one another
FAMILIES: dict[str, dict[str, Callable]] = {
    "activation": {"tanh": _t.tanh, "sigmoid": _t.sigmoid, "relu": _t.relu, "gelu": _t.gelu,
                   "identity": _identity},
    "trig": {"sin": _t.sin, "cos": _t.cos},
    "rounding": {"round": lambda x: x.round(), "floor": lambda x: x.floor(), "ceil": lambda x: x.ceil(),
                 "trunc": lambda x: x.trunc()},
}


@seal_class
@dataclass(frozen=True)
class Variant(metaclass=Sealed):
    """One mutation: site ``site`` returns its variant ``label`` (``operator`` made it; ``original`` is what the site
    does correctly, for the sentence)."""

    site: str
    operator: str
    label: str
    original: str = ""

    @property
    def key(self) -> str:
        return f"{self.site}:{self.label}"


def _dims(rank: int, dim: int) -> list[str]:
    """Labels of the other dimensions of a rank-``rank`` tensor, as negative indices (``dim -2``)."""
    own = dim if dim < 0 else dim - rank
    return [f"dim {d}" for d in range(-rank, 0) if d != own]


def _dim_of(label: str) -> int:
    return int(label.split(" ", 1)[1])


@seal_class
class Sites(metaclass=Sealed):
    """The mutation sites a reference routes its steps through; ``active = (site, label)`` mutates one of them."""

    def __init__(self, active: tuple[str, str] | None = None):
        self.active = active
        self.variants: dict[str, Variant] = {}  # key -> variant, in the order the sites were visited

    # ------------------------------------------------------------------------------------------ bookkeeping
    def _visit(self, site: str, operator: str, labels: Sequence[str], original: str = "") -> str | None:
        for label in labels:
            self.variants.setdefault(f"{site}:{label}", Variant(site, operator, label, original))
        if self.active is not None and self.active[0] == site and self.active[1] in labels:
            return self.active[1]
        return None

    # ------------------------------------------------------------------------------------------ operators
    def apply(self, site: str, name: str, x: Any, family: str = "activation",
              among: Sequence[str] | None = None) -> Any:
        """``f(x)`` for the function ``name`` of ``family``; a variant uses another member (``among`` limits them)."""
        members = FAMILIES[family]
        labels = [n for n in (among or members) if n != name]
        return members[self._visit(site, "apply", labels, name) or name](x)

    def term(self, site: str, value: Any) -> Any:
        """A summand: ``missing`` (zeros), ``doubled``, ``subtracted``. ``None`` (an absent bias) stays ``None``."""
        if value is None:
            return None
        label = self._visit(site, "term", ("missing", "doubled", "subtracted"))
        if label == "missing":
            return _t.zeros_like(value)
        if label == "doubled":
            return _t.mul(value, 2.0)
        if label == "subtracted":
            return _t.neg(value)
        return value

    def transpose(self, site: str, w: Any, a: int = -2, b: int = -1) -> Any:
        """A matrix operand, or its transpose."""
        if w is None or _t.dim(w) < 2:
            return w
        return _t.transpose(w, a, b) if self._visit(site, "transpose", ("transposed",)) else w

    def softmax(self, site: str, x: Any, dim: int = -1) -> Any:
        """``softmax(x, dim)``; a variant normalises over another dimension, or leaves the softmax out."""
        label = self._visit(site, "softmax", [*_dims(_t.dim(x), dim), "missing"], f"dim {dim}")
        if label == "missing":
            return x
        return _t.softmax(x, _dim_of(label) if label else dim)

    def reduce(self, site: str, x: Any, dim: int, how: str = "sum", keepdim: bool = False) -> Any:
        """``x.sum(dim)`` (``how="sum"``) or ``x.mean(dim)``; a variant takes the other one, or another dimension."""
        other = "mean" if how == "sum" else "sum"
        label = self._visit(site, "reduce", [other, *_dims(_t.dim(x), dim)], how)
        if label == other:
            how = other
        elif label:
            dim = _dim_of(label)
        return (_t.sum if how == "sum" else _t.mean)(x, dim, keepdim=keepdim)

    def chunk(self, site: str, x: Any, n: int, dim: int = -1, names: str | None = None) -> list:
        """``x.chunk(n, dim)``; a variant splits another dimension, or (``names``: one letter per part, e.g. ``"ifgo"``)
        reads the parts in another order."""
        orders = ["as " + ", ".join(p) for p in itertools.permutations(names) if "".join(p) != names] if names else []
        label = self._visit(site, "chunk", [*_dims(_t.dim(x), dim), *orders], ", ".join(names or ""))
        if label and label.startswith("dim "):
            return list(_t.chunk(x, n, _dim_of(label)))
        parts = list(_t.chunk(x, n, dim))
        if label:  # the student reads part k as the gate read_as[k]: the variable for gate g gets that part
            read_as = label[3:].split(", ")
            return [parts[read_as.index(g)] for g in names]
        return parts

    def stack(self, site: str, seq: Sequence[Any], dim: int = 0) -> Any:
        """``torch.stack(seq, dim)``; a variant stacks along another dimension."""
        rank = _t.dim(seq[0]) + 1
        label = self._visit(site, "stack", _dims(rank, dim), f"dim {dim if dim < 0 else dim - rank}")
        return _t.stack(list(seq), _dim_of(label) if label else dim)

    def scale(self, site: str, x: Any, factor: Any, variants: dict[str, Any] | None = None) -> Any:
        """``x * factor``; ``missing`` (x), ``twice`` (x * factor^2), ``inverted`` (x / factor), or a named factor."""
        variants = dict(variants or {})
        label = self._visit(site, "scale", ("missing", "twice", "inverted", *variants))
        if label == "missing":
            return x
        if label == "twice":
            return _t.mul(_t.mul(x, factor), factor)
        if label == "inverted":
            return _t.div(x, factor)
        return _t.mul(x, variants[label] if label else factor)

    def gate(self, site: str, g: Any, x: Any) -> Any:
        """A gate's product ``g * x``; ``missing`` leaves ``x`` unscaled, ``complement`` uses ``1 - g``."""
        label = self._visit(site, "gate", ("missing", "complement"))
        if label == "missing":
            return x
        return _t.mul(_t.sub(1.0, g) if label == "complement" else g, x)

    def offset(self, site: str, k: Any) -> Any:
        """An integer (or integer tensor) ``k``: ``-1`` or ``+1`` is an off-by-one."""
        label = self._visit(site, "offset", ("-1", "+1"))
        return k if label is None else k + int(label)

    def loop(self, site: str, n: int) -> Sequence[int]:
        """``range(n)``: ``one short``, ``from 1``, ``one extra`` and ``backwards`` are the loops students get wrong."""
        label = self._visit(site, "loop", ("one short", "from 1", "one extra", "backwards"))
        return {"one short": range(n - 1), "from 1": range(1, n), "one extra": range(n + 1),
                "backwards": range(n - 1, -1, -1)}.get(label, range(n))

    def carry(self, site: str, new: Any, old: Any) -> Any:
        """The state carried to the next step; ``not carried`` keeps the old one (the initial state, every step)."""
        return old if self._visit(site, "carry", ("not carried",)) else new

    def at(self, site: str, seq: Any, i: int) -> Any:
        """``seq[i]``; ``previous``/``next`` are off by one step (Python's indexing: ``seq[-1]`` before the first),
        ``first``/``last`` the same step every time."""
        n = len(seq)
        own = i % n if -n <= i < n else i
        candidates = {"previous": i - 1, "next": i + 1, "first": 0, "last": n - 1}
        if i < 0 and i + 1 >= 0:  # "next" after the last element (seq[-1]) is not the first element
            del candidates["next"]
        labels = [label for label, j in candidates.items() if (j % n if -n <= j < n else j) != own]
        label = self._visit(site, "at", labels)
        return seq[candidates[label] if label else i]

    def mask(self, site: str, scores: Any, allowed: Any, fill: float = -math.inf) -> Any:
        """Scores with the entries that are not ``allowed`` set to ``fill`` (-inf); ``inverted`` masks the allowed
        ones, ``zero`` fills with 0, ``ignored`` leaves the scores as they are."""
        label = self._visit(site, "mask", ("inverted", "zero", "ignored"))
        if label == "ignored":
            return scores
        if label == "inverted":
            return _t.masked_fill(scores, allowed, fill)
        return _t.masked_fill(scores, _t.logical_not(allowed), 0.0 if label == "zero" else fill)

    def combine(self, site: str, a: Any, b: Any) -> Any:
        """``a + b`` (an additive mask, a residual); ``multiplied``, ``subtracted``, ``ignored`` (just ``a``)."""
        label = self._visit(site, "combine", ("multiplied", "subtracted", "ignored"))
        if label == "multiplied":
            return _t.mul(a, b)
        if label == "subtracted":
            return _t.sub(a, b)
        return a if label == "ignored" else _t.add(a, b)

    def rng(self, site: str, generator: Any) -> Any:
        """The ``torch.Generator`` a draw must use; ``ignored`` draws from torch's global generator instead."""
        if generator is None:
            return None
        return None if self._visit(site, "rng", ("ignored",)) else generator

    def swap(self, site: str, a: Any, b: Any) -> tuple[Any, Any]:
        """``(a, b)``, or ``(b, a)``."""
        return (b, a) if self._visit(site, "swap", ("swapped",)) else (a, b)

    def step(self, site: str) -> bool:
        """``True``: a statement that must run (``if m.step("zero_grad"): optimizer.zero_grad()``); ``missing``."""
        return self._visit(site, "step", ("missing",)) is None

    def option(self, site: str, default: str, alternatives: Sequence[str]) -> str:
        """The label of the structure the reference uses (``default``) or of one of its ``alternatives``."""
        return self._visit(site, "option", tuple(alternatives), default) or default


# ---------------------------------------------------------------------------------------------- default sentences
_SENTENCES = {
    ("apply", "identity"): "the {original} of {about} is missing",
    ("apply", ""): "{about} uses {label} where it should use {original}",
    ("term", "missing"): "{about} is missing",
    ("term", "doubled"): "{about} is added twice",
    ("term", "subtracted"): "{about} is subtracted instead of added",
    ("transpose", ""): "{about} is transposed",
    ("softmax", "missing"): "the softmax of {about} is missing",
    ("softmax", ""): "the softmax of {about} runs over the wrong dimension ({label} instead of {original})",
    ("reduce", "mean"): "{about} is a mean where it should be a sum",
    ("reduce", "sum"): "{about} is a sum where it should be a mean",
    ("reduce", ""): "{about} runs over the wrong dimension ({label} instead of the right one)",
    ("chunk", ""): "{about} is split along the wrong dimension ({label})",
    ("chunk", "as"): "{about}: the parts are read in the wrong order ({order} instead of {original})",
    ("stack", ""): "{about} is stacked along the wrong dimension ({label} instead of {original})",
    ("scale", "missing"): "{about} is missing",
    ("scale", "twice"): "{about} is applied twice",
    ("scale", "inverted"): "{about} is inverted (multiplied where it should divide, or the other way round)",
    ("scale", ""): "{about} is {label}",
    ("gate", "missing"): "{about} is missing: the gate must scale what it lets through",
    ("gate", "complement"): "{about} is used as 1 - gate: the gate's value is the share it lets through",
    ("offset", "-1"): "off by one: {about} is one too small",
    ("offset", "+1"): "off by one: {about} is one too large",
    ("loop", "one short"): "off by one: {about} stops one step early",
    ("loop", "from 1"): "off by one: {about} skips the first step",
    ("loop", "one extra"): "off by one: {about} runs one step too many",
    ("loop", "backwards"): "{about} runs backwards in time",
    ("carry", ""): "{about} is not carried from one step to the next",
    ("at", "previous"): "{about} is taken one step too early",
    ("at", "next"): "{about} is taken one step too late",
    ("at", "first"): "{about} is taken from the first step every time",
    ("at", "last"): "{about} is taken from the last step every time",
    ("mask", "inverted"): "{about} is inverted",
    ("mask", "zero"): "{about} sets the masked scores to 0 instead of -inf (a score of 0 still gets weight)",
    ("mask", "ignored"): "{about} is ignored",
    ("combine", "multiplied"): "{about} is multiplied instead of added",
    ("combine", "subtracted"): "{about} is subtracted instead of added",
    ("combine", "ignored"): "{about} is ignored",
    ("rng", ""): "{about}: the generator that is passed in is not used (the draw comes from torch's global random "
                 "state, so it cannot be reproduced)",
    ("swap", ""): "{about} are the wrong way round",
    ("step", ""): "{about} is missing",
    ("option", ""): "{about}: {label} instead of {original}",
}


def sentence(variant: Variant, about: str | None = None) -> str:
    """The default sentence for ``variant``; ``about`` describes its site in the lecture's terms."""
    about = about or variant.site
    label = variant.label
    fields = {"about": about, "label": label, "original": variant.original}
    if variant.operator == "chunk" and label.startswith("as "):
        return _SENTENCES["chunk", "as"].format(order=label[3:], **fields)
    template = _SENTENCES.get((variant.operator, label)) or _SENTENCES[variant.operator, ""]
    return template.format(**fields)


__all__ = ["FAMILIES", "Sites", "Variant", "sentence"]


seal(__name__)
