"""A graded function's catalogue of mutations: its reference with mutation sites, and what each mutation means.

An assignment declares one :class:`Catalogue` per graded function, next to the function's reference
(``assignments/aN_*.py``), and lists them in its ``CATALOGUES``; :mod:`seqcourse.kernel.diagnose` searches them
when a student's result is wrong. A new assignment declares its catalogues the same way: write the reference with
the sites of :mod:`seqcourse.kernel.mutations`, describe every site in the lecture's terms (``about``), give the
sentences that need their own words (``say``), and name the graded cells that diagnose it (``cells``).
"""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from collections.abc import Callable, Mapping  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from ._pristine import Sealed, seal, seal_class  # noqa: E402
from .mutations import Sites, Variant, sentence  # noqa: E402


@seal_class
@dataclass(frozen=True)
class Catalogue(metaclass=Sealed):
    """The mutations of one graded function's reference, and what each one means.

    Args:
        name: the name it grades in the notebook: a function (``"rnn_cell"``) or a method (``"EncoderLayer.forward"``:
            the student's module is then passed to the reference as its second argument, after the sites).
        reference: ``reference(m, *args, **kwargs)``: the correct implementation, routing its steps through the
            :class:`~seqcourse.kernel.mutations.Sites` ``m``.
        about: site name -> what the site is, in the lecture's terms (used by the default sentences).
        say: ``"site:label"`` (one variant), or a key ending in ``*`` (``"site:*"``, ``"gates:as *"``: every variant
            whose key starts so; the longest such key wins) -> the sentence to give instead of the default one
            (``{label}`` and ``{order}`` are filled in).
        observe: ``observe(fn, *args, **kwargs)`` -> what of a call is compared (default: ``fn``'s result).
        cells: the graded cells whose hidden tests diagnose this function (the self-test hands each mutation in
            there).
        skip: variant keys (``"site:label"``) that are no mistake here (equivalent rewrites).
    """

    name: str
    reference: Callable[..., Any]
    about: Mapping[str, str]
    say: Mapping[str, str] = field(default_factory=dict)
    observe: Callable[..., Any] | None = None
    cells: tuple[str, ...] = ()
    skip: frozenset[str] = frozenset()

    @property
    def method(self) -> bool:
        return "." in self.name

    def bound(self, sites: Sites, module: object = None) -> Callable[..., Any]:
        """The reference with ``sites`` as a plain callable (bound to ``module`` for a method)."""
        ref = self.reference
        if self.method:
            return lambda *args, **kwargs: ref(sites, module, *args, **kwargs)
        return lambda *args, **kwargs: ref(sites, *args, **kwargs)

    def correct(self, *args: Any, **kwargs: Any) -> Any:
        """The reference's result (a method's catalogue takes the module first)."""
        return self.reference(Sites(), *args, **kwargs)

    def observed(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.observe(fn, *args, **kwargs) if self.observe else fn(*args, **kwargs)

    def variants(self, *args: Any, module: object = None, **kwargs: Any) -> list[Variant]:
        """The mutations that apply to these inputs (the sites one correct run visits)."""
        sites = Sites()
        self.observed(self.bound(sites, module), *args, **kwargs)
        return [v for v in sites.variants.values() if v.key not in self.skip]

    def mutant(self, variant: Variant, module: object = None) -> Callable[..., Any]:
        """The reference with the one mistake ``variant`` (a plain callable, bound to ``module`` for a method)."""
        return self.bound(Sites((variant.site, variant.label)), module)

    def handin(self, variant: Variant | None = None) -> Callable[..., Any]:
        """The reference (with the one mistake ``variant``) in the student's signature, to hand in in its place: a
        function, or for a method a function of ``self`` (``EncoderLayer.forward = catalogue.handin(v)``)."""
        ref, active = self.reference, None if variant is None else (variant.site, variant.label)
        if self.method:
            def method(self_, *args, **kwargs):
                return ref(Sites(active), self_, *args, **kwargs)

            method.__name__ = self.name.rsplit(".", 1)[1]
            return method

        def function(*args, **kwargs):
            return ref(Sites(active), *args, **kwargs)

        function.__name__ = function.__qualname__ = self.name
        return function

    def sentence(self, variant: Variant) -> str:
        """What ``variant`` means, in the lecture's words (``say``, else the operator's default sentence)."""
        text = self.say.get(variant.key)
        if text is None:  # the longest wildcard key that fits: "site:as *" before "site:*"
            fits = [k for k in self.say if k.endswith("*") and variant.key.startswith(k[:-1])]
            text = self.say[max(fits, key=len)] if fits else None
        if text:
            order = variant.label[3:] if variant.label.startswith("as ") else variant.label
            return text.format(label=variant.label, order=order)
        return sentence(variant, self.about.get(variant.site))


__all__ = ["Catalogue"]


seal(__name__)
