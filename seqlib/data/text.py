"""Real English text that is on every machine already: the docstrings of the Python standard library.

``text_corpus("python-docs")`` walks a fixed, sorted list of standard-library modules, parses each source
file with :mod:`ast` (nothing is imported, so no module's side effects run), keeps the docstring paragraphs
that read like prose (no doctests, code blocks, tables or argument lists), strips reStructuredText markup,
folds the text to ASCII, normalises whitespace and joins the paragraphs with newlines. The result depends
only on the Python version (its standard library), so it is the same on every machine with that version.

The built corpus is cached in a text file named after the Python version, in :func:`seqlib.cache.cache_dir`
(``$SEQLIB_CACHE``, else ``~/.cache/seqlib``).

``CharDataset`` turns a string into next-character prediction pairs for a language model.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import sysconfig
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.utils.data import Dataset

from .._checks import check_positive_int
from ..cache import cache_dir

__all__ = ["CORPORA", "cache_dir", "text_corpus", "train_val_split", "CharDataset"]

#: Bumped whenever the extraction rules change, so stale caches are never read.
_FORMAT_VERSION = 1

#: The standard-library modules (files or packages) the corpus is built from, in this order. Modules that
#: a Python version lacks are skipped, so the corpus is deterministic for a given Python version.
_STDLIB_MODULES: tuple[str, ...] = tuple(sorted((
    "_pyio", "abc", "argparse", "ast", "base64", "bdb", "bisect", "bz2", "calendar",
    "cmd", "code", "codecs", "collections", "colorsys", "compileall", "concurrent", "configparser", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "difflib", "dis", "email", "enum", "filecmp",
    "fileinput", "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "graphlib", "gzip",
    "hashlib", "heapq", "hmac", "html", "http", "imaplib", "importlib", "inspect", "ipaddress", "json",
    "linecache", "locale", "logging", "lzma", "mailbox", "mimetypes", "modulefinder", "netrc",
    "ntpath", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools", "pkgutil",
    "platform", "plistlib", "poplib", "posixpath", "pprint", "profile", "pstats", "py_compile", "pyclbr",
    "pydoc", "queue", "quopri", "random", "reprlib", "rlcompleter", "runpy", "sched", "secrets", "selectors",
    "shelve", "shlex", "shutil", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "statistics", "string",
    "subprocess", "symtable", "sysconfig", "tabnanny", "tarfile", "tempfile", "textwrap", "threading", "timeit",
    "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "types", "typing", "urllib", "uuid",
    "warnings", "wave", "weakref", "webbrowser", "wsgiref", "xmlrpc", "zipapp", "zipfile", "zipimport",
    "zoneinfo",
)))

#: Directories inside packages that hold tests or tools rather than documented library code.
_SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__"}

#: Names accepted by :func:`text_corpus`.
CORPORA: tuple[str, ...] = ("python-docs",)

_ROLE = re.compile(r":[A-Za-z][\w:.+-]*:`([^`]*)`")  # :func:`name` -> name
_BACKTICKS = re.compile(r"`+([^`]*)`+")  # ``code`` / `text` -> code / text
_CODE_STARTS = (">>>", "...", "$", "-", "*", "+", "|", ":", "#", "=", "..", "[", "(", "{", "%", "@")


def _module_files(stdlib: Path, name: str) -> list[Path]:
    """The source files of one standard-library module or package, in sorted order."""
    single = stdlib / f"{name}.py"
    if single.is_file():
        return [single]
    package = stdlib / name
    if not package.is_dir():
        return []
    return sorted(p for p in package.rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(package).parts[:-1]))


def _docstrings(tree: ast.AST) -> list[str]:
    """Docstrings of a module, its classes and functions, in source order."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                found.append(doc)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child)

    visit(tree)
    return found


def _prose(paragraph: str) -> str | None:
    """One docstring paragraph as a line of normalised prose, or ``None`` if it does not read like prose."""
    lines = paragraph.splitlines()
    if not lines or any(line[:1].isspace() for line in lines):  # indented: code block, field list, table
        return None
    if any(line.lstrip().startswith(_CODE_STARTS) for line in lines):
        return None
    text = " ".join(paragraph.split())
    text = _BACKTICKS.sub(r"\1", _ROLE.sub(r"\1", text)).replace("::", ":")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = " ".join(text.split())
    if ">>>" in text:
        return None
    words = text.split()
    if len(words) < 8 or not text[0].isupper() or text[-1] not in ".!?":
        return None
    plain_words = sum(w.strip(",.;:!?\"'()").isalpha() for w in words)
    letters = sum(c.isalpha() or c == " " for c in text)
    if plain_words < 0.85 * len(words) or letters < 0.9 * len(text):
        return None
    if sum(c.isupper() for c in text) > 0.15 * sum(c.isalpha() for c in text):  # constants, acronyms
        return None
    return text


def _build_python_docs(modules: Sequence[str] = _STDLIB_MODULES) -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    paragraphs: list[str] = []
    for name in modules:
        for path in _module_files(stdlib, name):
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (SyntaxError, ValueError, OSError):  # pragma: no cover - a broken installation
                continue
            for doc in _docstrings(tree):
                for paragraph in re.split(r"\n\s*\n", doc):
                    text = _prose(paragraph)
                    if text is not None and text not in seen:
                        seen.add(text)
                        paragraphs.append(text)
    return "\n".join(paragraphs) + "\n"


def text_corpus(name: str = "python-docs", *, cache: bool = True) -> str:
    """A corpus of English prose that needs no download.

    ``"python-docs"``: the prose paragraphs of the Python standard library's docstrings, one paragraph a
    line, ASCII only (about 0.46 MB on Python 3.11). Built on first use in about a second and cached (see
    :func:`seqlib.cache.cache_dir`); the cache file is named after the Python version, since the text depends on it.

    Args:
        name: which corpus; one of :data:`CORPORA`.
        cache: read and write the cache file. ``False`` always rebuilds and writes nothing.

    Returns:
        The corpus as one ``str``.
    """
    if name not in CORPORA:
        raise ValueError(f"name must be one of {', '.join(repr(c) for c in CORPORA)}, but got {name!r}")
    version = ".".join(str(v) for v in sys.version_info[:3])
    path = cache_dir() / f"{name}-py{version}-v{_FORMAT_VERSION}.txt"
    if cache and path.is_file():
        return path.read_text(encoding="ascii")
    text = _build_python_docs()
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text, encoding="ascii")
            os.replace(tmp, path)
        except OSError:  # a read-only home directory: the corpus still works, it is just rebuilt next time
            pass
    return text


_S = TypeVar("_S", bound=Sequence[Any])


def train_val_split(text: _S, val_fraction: float = 0.1) -> tuple[_S, _S]:
    """Split a sequence (a ``str``, list or tensor) into a leading training part and a trailing validation part.

    The split is contiguous, not shuffled: the validation text is the last ``val_fraction`` of the corpus,
    so no context window straddles both parts except at the one cut.

    Args:
        text: anything that supports ``len`` and slicing.
        val_fraction: share of the items that go to the validation part, in (0, 1).

    Returns:
        ``(train, val)`` of the same type as ``text``.
    """
    if not isinstance(val_fraction, int | float) or isinstance(val_fraction, bool):
        raise TypeError(f"val_fraction must be a float in (0, 1), but got {type(val_fraction).__name__}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), but got {val_fraction}")
    n = len(text)
    if n < 2:
        raise ValueError(f"text must have at least 2 items to split, but got {n}")
    cut = min(max(int(round(n * (1.0 - val_fraction))), 1), n - 1)
    return text[:cut], text[cut:]  # type: ignore[return-value]


def _default_char_tokenizer(text: str) -> Any:
    from ..vocab import CharTokenizer

    return CharTokenizer(text)


class CharDataset(Dataset):
    r"""Next-character prediction pairs from a string, for character-level language models.

    The text is encoded once into a 1-D int64 tensor :math:`c_0, c_1, \dots, c_{N-1}`; item :math:`i` is
    the window :math:`(c_i, \dots, c_{i+T-1})` and the same window shifted by one,
    :math:`(c_{i+1}, \dots, c_{i+T})`, so position :math:`t` of the target is the character that follows
    position :math:`t` of the context.

    Args:
        text: the training text.
        context_length: :math:`T`, the number of characters a model sees at once.
        tokenizer: an object with ``encode(str) -> list[int]``, ``decode(list[int]) -> str`` and ``vocab``
            (``len(tokenizer.vocab)`` is the vocabulary size). Default: ``seqlib.CharTokenizer(text)``.
            Pass the training set's tokenizer when building the validation set so both share one vocabulary.

    Outputs:
        - context: :math:`(T)` int64
        - target: :math:`(T)` int64

    Attributes:
        data: :math:`(N)` int64, the encoded text.
        tokenizer: the tokenizer used.
        vocab_size: ``len(tokenizer.vocab)``.
    """

    def __init__(self, text: str, context_length: int, tokenizer: Any = None) -> None:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, but got {type(text).__name__}")
        check_positive_int("context_length", context_length)
        if len(text) < context_length + 1:
            raise ValueError(
                f"text must be longer than context_length = {context_length}, but has {len(text)} characters"
            )
        if tokenizer is None:
            tokenizer = _default_char_tokenizer(text)
        if not callable(getattr(tokenizer, "encode", None)):
            raise TypeError(
                f"tokenizer must have an encode(str) -> list[int] method, but got {type(tokenizer).__name__}"
            )
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.data = torch.as_tensor(tokenizer.encode(text), dtype=torch.int64)  # (N,)
        if self.data.dim() != 1 or self.data.numel() != len(text):
            raise ValueError(
                f"tokenizer.encode must return one index per character ({len(text)}), but got {self.data.numel()}"
            )

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer.vocab)

    def __len__(self) -> int:
        return self.data.numel() - self.context_length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for a CharDataset of {n} items")
        chunk = self.data[index : index + self.context_length + 1]  # (T + 1,)
        return chunk[:-1], chunk[1:]

    def decode(self, indices: torch.Tensor | Sequence[int]) -> str:
        """Indices -> text, with this dataset's tokenizer."""
        if isinstance(indices, torch.Tensor):
            indices = indices.tolist()
        return self.tokenizer.decode(list(indices))
