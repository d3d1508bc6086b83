"""Match what a caller said ("haarschnit", "jonas") to a service or staff member's name.

Names and queries are normalised (Unicode casefold, accents and punctuation stripped,
``ß`` → ``ss``), then tried in order: exact, prefix, a whole word of the name, and a
``difflib`` similarity of at least ``THRESHOLD``. Several equally good candidates are an
ambiguity the caller must resolve, never a guess.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

THRESHOLD = 0.8
MIN_PREFIX = 3  # "ha" is no service name
_NON_WORD = re.compile(r"[^\w]+")


def normalize(text: str) -> str:
    """Lower-case, accent-free, single-spaced words (``"Fußpflege  Ärztin"`` →
    ``"fusspflege arztin"``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", bare).replace("_", " ").split())


def similarity(a: str, b: str) -> float:
    """How alike two texts are after normalising (0..1)."""
    return difflib.SequenceMatcher(None, normalize(a), normalize(b)).ratio()


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """``found`` is the one candidate meant; ``options`` lists the ambiguous ones."""

    found: T | None = None
    options: list[T] = field(default_factory=list)

    @property
    def ambiguous(self) -> bool:
        return self.found is None and len(self.options) > 1


def best_match(query: str, candidates: Sequence[tuple[T, str]]) -> Match[T]:
    """The candidate (``(item, name)`` pairs) whose name the caller meant by ``query``."""
    wanted = normalize(query)
    if not wanted:
        return Match()
    named = [(item, normalize(name)) for item, name in candidates]
    for rule in (_exact, _prefix, _word):
        hits = [item for item, name in named if rule(wanted, name)]
        if hits:
            return _one_or_options(hits)
    return _fuzzy(wanted, named)


def _one_or_options(hits: list[T]) -> Match[T]:
    return Match(found=hits[0]) if len(hits) == 1 else Match(options=hits)


def _exact(wanted: str, name: str) -> bool:
    return wanted == name


def _prefix(wanted: str, name: str) -> bool:
    return len(wanted) >= MIN_PREFIX and name.startswith(wanted)


def _word(wanted: str, name: str) -> bool:
    """A whole word of the name, or the start of one ("jonas" in "jonas weber")."""
    return len(wanted) >= MIN_PREFIX and any(
        word.startswith(wanted) for word in name.split() if len(word) >= MIN_PREFIX
    )


def _score(wanted: str, name: str) -> float:
    whole = difflib.SequenceMatcher(None, wanted, name).ratio()
    words = [
        difflib.SequenceMatcher(None, wanted, word).ratio()
        for word in name.split()
        if len(word) >= MIN_PREFIX
    ]
    return max([whole, *words])


def _fuzzy(wanted: str, named: list[tuple[T, str]]) -> Match[T]:
    scored = sorted(
        ((_score(wanted, name), index) for index, (_, name) in enumerate(named)), reverse=True
    )
    good = [(score, index) for score, index in scored if score >= THRESHOLD]
    if not good:
        return Match()
    best = good[0][0]
    close = [named[index][0] for score, index in good if best - score < 0.05]
    return _one_or_options(close)


def names_match(said: str, on_record: str) -> bool:
    """Whether the name a caller confirmed is the name on the booking: the whole name, or
    the surname alone, allowing small misspellings ("Erika Muster", "muster", "Mustre")."""
    wanted, actual = normalize(said), normalize(on_record)
    if not wanted or not actual:
        return False
    if difflib.SequenceMatcher(None, wanted, actual).ratio() >= THRESHOLD:
        return True
    surname = actual.split()[-1]
    return (
        len(surname) >= MIN_PREFIX
        and difflib.SequenceMatcher(None, wanted, surname).ratio() >= 0.85
    )
