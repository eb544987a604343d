"""Text analysis for catalogue search: from a product's text, or a shopper's query, to the
terms the index holds, in Finnish and in English.

Finnish inflects a noun into dozens of forms ("takki", "takit", "takkia", "takkeja") and
glues nouns into compounds ("talvitakki", "untuvatakki"). A Snowball stemmer cuts those
forms to different stems (tak, taki, takkej), so each word is lemmatised instead, with the
dictionaries that `simplemma` ships (no download, no model): every form above becomes
"takki". A word's terms are:

* its lemma, and the word as written (so a lemmatiser's mistake, or an inflected form typed
  as a prefix, still matches: "musta" also reads as a form of "minä" in the dictionary);
* for a Finnish compound, the known words it ends with ("talvitakki" -> "takki",
  "talvivillapaita" -> "villapaita", "paita"), at a lower weight: the last part says what the
  thing is, so "takki" finds winter jackets but not "takkiteline" (a coat rack). A compound
  the dictionary does not know is split where both parts are known words, and lemmatised as
  head + lemma of the tail ("kevättakkeja" -> "kevättakki");
* for a hyphenated word ("t-paita", "gore-tex"), also its parts.

Terms are prefixed by their language (``fi:takki``, ``en:jacket``); words with digits
(sizes, model numbers) are kept as written. The dictionaries load on first use (a few
seconds, about 70 MB in their compact form); `warm` loads them ahead of time.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from simplemma import Lemmatizer
from simplemma.strategies import DefaultStrategy
from simplemma.strategies.dictionaries import LOW_MEMORY_DICTIONARY_FACTORY

__all__ = ["COMPOUND_PART", "LANGUAGES", "is_stopword", "warm", "word_terms", "words"]

LANGUAGES: Final = ("fi", "en")
"""The languages the catalogue is searchable in, in the order a product's text is tried."""

COMPOUND_PART: Final = 0.8
"""Weight of a compound's tail ("takki" in "talvitakki") relative to the whole word."""

_JOINERS: Final = "'\u2019-"  # apostrophes (straight and typographic) and hyphens join words
_WORD: Final = re.compile(rf"[^\W_]+(?:[{_JOINERS}][^\W_]+)*")
_MIN_PART: Final = 3  # shortest head or tail of a compound
_MAX_WORD: Final = 60  # longer "words" (URLs, hashes) are kept as written
_MAX_TERM: Final = 110  # fits the index's term column with its language prefix

# Words too common to say anything about a product; left out of the index and of queries
# (unless a query holds nothing else).
_STOPWORDS: Final[Mapping[str, frozenset[str]]] = {
    "fi": frozenset(
        "ja tai sekä on ovat oli olla ei että jos kun kuin myös vain se ne sen niitä tämä "  # noqa: SIM905
        "nämä joka jotka mikä mitkä jo nyt sitä siitä niin kanssa ilman yli alle tässä eli "
        "vaan mutta".split()
    ),
    "en": frozenset(
        "a an and are as at be but by for from has have in into is it its of on or so "  # noqa: SIM905
        "than that the their them these this those to was were will with without".split()
    ),
}

_lock = threading.Lock()
_lemmatizer: Lemmatizer | None = None


def _lemmatizer_instance() -> Lemmatizer:
    global _lemmatizer
    with _lock:
        if _lemmatizer is None:
            _lemmatizer = Lemmatizer(
                cache_max_size=1 << 16,
                lemmatization_strategy=DefaultStrategy(low_memory=True),
            )
        return _lemmatizer


def _lookup(word: str, lang: str) -> str | None:
    """The dictionary's lemma of `word` (lower case), or None for a word it does not know."""
    dictionary = LOW_MEMORY_DICTIONARY_FACTORY.get_dictionary(lang)
    found = dictionary.get(word)
    if found is None:
        found = dictionary.get(word.capitalize())  # proper nouns are stored capitalised
    return None if found is None else found.lower()


def warm(languages: Iterable[str] = LANGUAGES) -> None:
    """Load the dictionaries of `languages` now (the first load takes a few seconds), so
    that the first search or catalogue write does not wait for it."""
    for lang in languages:
        _lookup("a", lang)
        _lemmatizer_instance().lemmatize("a", lang)


def words(text: str) -> list[str]:
    """The words of `text`, in lower case (Unicode NFC, case-folded)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).casefold())


def _split_unknown(word: str) -> str | None:
    """The lemma of a Finnish compound the dictionary does not know, as head + lemma of the
    longest known tail whose head is a known word too ("kevättakkeja" -> "kevättakki")."""
    for cut in range(_MIN_PART, len(word) - _MIN_PART + 1):
        tail = _lookup(word[cut:], "fi")
        if tail is not None and _lookup(word[:cut], "fi") is not None:
            return word[:cut] + tail
    return None


def _tails(lemma: str) -> list[str]:
    """The known words a Finnish compound lemma ends with, longest first
    ("talvivillapaita" -> ["villapaita", "paita"])."""
    for cut in range(_MIN_PART, len(lemma) - _MIN_PART + 1):
        tail = lemma[cut:]
        if _lookup(tail, "fi") == tail and _lookup(lemma[:cut], "fi") is not None:
            return [tail, *_tails(tail)]
    return []


def _lemma(word: str, lang: str) -> str:
    found = _lookup(word, lang)
    if found is None and lang == "fi":
        found = _split_unknown(word)
    if found is None:
        found = _lemmatizer_instance().lemmatize(word, lang).lower()
    return found


@functools.lru_cache(maxsize=1 << 17)
def word_terms(word: str, lang: str) -> tuple[tuple[str, float], ...]:
    """The index terms of one lower-case `word` in `lang`, each with its weight (1 for the
    word itself, `COMPOUND_PART` for the parts of a compound)."""
    if not word:
        return ()
    if any(c.isdigit() for c in word) or len(word) > _MAX_WORD:
        return ((f"{lang}:{word[:_MAX_TERM]}", 1.0),)
    found: dict[str, float] = {}

    def add(term: str, weight: float) -> None:
        if term and len(term) <= _MAX_TERM and found.get(term, 0.0) < weight:
            found[term] = weight

    lemma = _lemma(word, lang)
    add(word, 1.0)
    add(lemma, 1.0)
    if lang == "fi":
        for tail in _tails(lemma):
            add(tail, COMPOUND_PART)
    parts = re.split(f"[{_JOINERS}]", word)
    if len(parts) > 1:
        for part in parts:
            for term, weight in word_terms(part, lang) if len(part) > 1 else ():
                add(term.partition(":")[2], weight * COMPOUND_PART)
    return tuple((f"{lang}:{term}", weight) for term, weight in found.items())


def is_stopword(word: str, lang: str) -> bool:
    """Whether `word` (lower case) is too common in `lang` to say anything about a product."""
    return word in _STOPWORDS[lang]
