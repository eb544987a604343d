"""The shop's search box over the catalogue: an inverted index kept with the products, and
ranked search with related items.

**Index.** Every active product has one row per term in ``catalog_search_terms`` (terms from
`polku.commerce.catalog.analysis`: lemmas, words as written, compound tails, in Finnish and
English, plus ``#<code>`` for its product id and SKUs). A row's weight is BM25F's
length-normalised, field-weighted term frequency: name 3, brand 2, category 1.5,
colours 1, description 1, attribute values 0.5, each field normalised against a typical
length (a name of 4 words, a description of 40). The actions rewrite a product's rows in the
transaction that changes it, so the index is never behind the catalogue; an inactive product
has none.

**Query.** Each query word is a group of alternative terms: its lemma and the word as
written (in `lang`, or in every language when none is given), its compound tails (at half
weight) and the word as an exact code. The last word also matches as a prefix (search as
you type) unless the query ends with a space; the prefix's terms count as one term of their
own for idf. A product's score is the BM25 sum over groups of the best alternative it has.
Hits are ordered by how many query words they match, then how many of those are in the name
(a name hit always ranks above a description hit), then by score. When a query has three or
more words, a product may miss one in three of them.

**Related items.** Alongside the hits: products bought together with the top hits (from
``catalog_pairs``, which `polku.commerce.catalog.related` keeps from order events), then
other products of the top hits' categories.

**Availability hook.** `search` takes an `available` callable that keeps only the products
that can be sold now (in stock, in a store near the shopper); catalogue search does not know
about stock, the stock package does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, delete, func, select

from polku.commerce.catalog.analysis import LANGUAGES, is_stopword, word_terms, words
from polku.commerce.catalog.queries import Product, get_products
from polku.commerce.catalog.tables import pairs, products, search_terms
from polku.storage.bulk import insert_rows

__all__ = [
    "Available",
    "Hit",
    "Related",
    "SearchResult",
    "index_terms",
    "reindex",
    "search",
]

Available = Callable[[Connection, str, Sequence[str]], Collection[str]]
"""(conn, workspace, product ids) -> the ids among them that can be sold now."""

_FIELD_WEIGHT: Final = {
    "name": 3.0,
    "brand": 2.0,
    "category": 1.5,
    "options": 1.0,
    "description": 1.0,
    "attributes": 0.5,
}
_TYPICAL_LENGTH: Final = {
    "name": 4,
    "brand": 1,
    "category": 3,
    "options": 2,
    "description": 40,
    "attributes": 4,
}
_NAME_FIELDS: Final = frozenset({"name", "brand"})
_B: Final = 0.75
_K1: Final = 1.2
_QUERY_PART: Final = 0.5  # a query word's compound tails count half
_PREFIX: Final = 0.6  # a prefix match counts less than the whole word
_MIN_PREFIX: Final = 2  # shortest last word matched as a prefix
_MAX_EXPANSIONS: Final = 40  # most frequent terms a prefix stands for
_MAX_WORDS: Final = 12  # query words considered
_TOP_FOR_RELATED: Final = 3  # hits whose partners and categories are related items


def _code(value: str) -> str:
    return "#" + value.casefold()[:110]


def index_terms(product: Product) -> dict[str, tuple[float, bool]]:
    """term -> (weight, in the name) for `product`; empty when it is inactive."""
    if not product.active:
        return {}
    found: dict[str, list[float | bool]] = {}
    colours = " ".join(v.colour for v in product.variants if v.own_active and v.colour)
    attribute_text = " ".join(
        str(v) for v in product.attributes.values() if isinstance(v, str | int | float)
    )
    for lang in LANGUAGES:
        translated = product.translations.get(lang) or {}
        texts = {
            "name": " ".join(dict.fromkeys((product.name, translated.get("name", "")))),
            "brand": product.brand or "",
            "category": " ".join(product.category),
            "options": colours,
            "description": product.description + "\n" + translated.get("description", ""),
            "attributes": attribute_text,
        }
        for field, text in texts.items():
            counted = _terms_of(text, lang)
            length = sum(times for _, times in counted.values())
            if not length:
                continue
            norm = 1 - _B + _B * length / _TYPICAL_LENGTH[field]
            for term, (weight, times) in counted.items():
                entry = found.setdefault(term, [0.0, False])
                entry[0] = float(entry[0]) + _FIELD_WEIGHT[field] * weight * times / norm
                entry[1] = bool(entry[1]) or field in _NAME_FIELDS
    for code in (product.product_id, *(v.sku for v in product.variants if v.own_active)):
        found[_code(code)] = [_FIELD_WEIGHT["name"], True]
    return {term: (float(w), bool(n)) for term, (w, n) in found.items()}


def _terms_of(text: str, lang: str) -> dict[str, tuple[float, int]]:
    counted: dict[str, tuple[float, int]] = {}
    for word in words(text):
        if _stopword(word, (lang,)):
            continue
        for term, weight in word_terms(word, lang):
            best, times = counted.get(term, (0.0, 0))
            counted[term] = (max(best, weight), times + 1)
    return counted


def _stopword(word: str, langs: Iterable[str]) -> bool:
    return all(is_stopword(word, lang) for lang in langs)


def reindex(conn: Connection, workspace_id: str, changed: Iterable[Product]) -> None:
    """Rewrite the index rows of the `changed` products (as they are now) in `conn`'s
    transaction."""
    batch = list(changed)
    if not batch:
        return
    ids = [p.product_id for p in batch]
    for start in range(0, len(ids), 500):
        conn.execute(
            delete(search_terms).where(
                search_terms.c.workspace_id == workspace_id,
                search_terms.c.product_id.in_(ids[start : start + 500]),
            )
        )
    rows = [
        (workspace_id, term, product.product_id, weight, in_name)
        for product in batch
        for term, (weight, in_name) in index_terms(product).items()
    ]
    insert_rows(
        conn, search_terms, ("workspace_id", "term", "product_id", "weight", "in_name"), rows
    )


# -- searching ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    product: Product
    score: float
    matched: int  # query words it matches


@dataclass(frozen=True, slots=True)
class Related:
    product: Product
    reason: str  # "bought_together" | "same_category"
    because: str  # the hit it is related to


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    related: list[Related]
    total: int  # products that match well enough (hits are the first k of them)


@dataclass(slots=True)
class _Group:
    terms: dict[str, float]  # term -> factor
    prefixes: list[str]  # term prefixes, e.g. "fi:tak"


def _groups(q: str, langs: Sequence[str]) -> list[_Group]:
    found = words(q)[:_MAX_WORDS]
    kept = [w for w in found if not _stopword(w, langs)] or found
    typing = bool(q) and not q[-1].isspace() and bool(kept) and found[-1] == kept[-1]
    groups: list[_Group] = []
    for i, word in enumerate(kept):
        terms: dict[str, float] = {_code(word): 1.0}
        for lang in langs:
            for term, weight in word_terms(word, lang):
                factor = 1.0 if weight >= 1.0 else _QUERY_PART * weight
                terms[term] = max(terms.get(term, 0.0), factor)
        prefixes: list[str] = []
        if typing and i == len(kept) - 1 and len(word) >= _MIN_PREFIX:
            prefixes = [f"{lang}:{word}" for lang in langs] + [_code(word)]
        groups.append(_Group(terms, prefixes))
    return groups


def _after(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _expand(conn: Connection, workspace_id: str, prefix: str) -> list[str]:
    count = func.count().label("n")
    rows = conn.execute(
        select(search_terms.c.term, count)
        .where(
            search_terms.c.workspace_id == workspace_id,
            search_terms.c.term >= prefix,
            search_terms.c.term < _after(prefix),
        )
        .group_by(search_terms.c.term)
        .order_by(count.desc(), search_terms.c.term)
        .limit(_MAX_EXPANSIONS)
    )
    return [term for term, _ in rows]


def _idf(documents: int, containing: int) -> float:
    return math.log(1 + (documents - containing + 0.5) / (containing + 0.5))


def _saturate(weight: float) -> float:
    return weight * (_K1 + 1) / (weight + _K1)


def _rank(
    conn: Connection, workspace_id: str, groups: Sequence[_Group]
) -> list[tuple[str, int, float, float]]:
    """(product id, words matched, how many of them are in the name, score), best first."""
    expanded = [
        [t for p in g.prefixes for t in _expand(conn, workspace_id, p) if t not in g.terms]
        for g in groups
    ]
    wanted = sorted({t for g in groups for t in g.terms} | {t for e in expanded for t in e})
    postings: dict[str, list[tuple[str, float, bool]]] = {}
    for start in range(0, len(wanted), 500):
        for term, product_id, weight, in_name in conn.execute(
            select(
                search_terms.c.term,
                search_terms.c.product_id,
                search_terms.c.weight,
                search_terms.c.in_name,
            ).where(
                search_terms.c.workspace_id == workspace_id,
                search_terms.c.term.in_(wanted[start : start + 500]),
            )
        ):
            postings.setdefault(term, []).append((product_id, float(weight), bool(in_name)))
    if not postings:
        return []
    documents = int(
        conn.execute(
            select(func.count())
            .select_from(products)
            .where(products.c.workspace_id == workspace_id, products.c.active.is_(True))
        ).scalar_one()
    )
    matched: dict[str, list[float]] = {}  # product -> [words, name tier, score]
    for group, more in zip(groups, expanded, strict=True):
        best: dict[str, float] = {}
        tier: dict[str, float] = {}  # 1: a whole query word in the name, 0.5: a prefix of one
        for term, factor in group.terms.items():
            found = postings.get(term, ())
            idf = _idf(documents, len(found))
            for product_id, weight, in_name in found:
                best[product_id] = max(best.get(product_id, 0.0), idf * _saturate(weight) * factor)
                if in_name:
                    tier[product_id] = 1.0
        if more:
            # The prefix counts as one term, over the documents of all its terms (so it is
            # never rarer, and never worth more, than the whole word typed so far).
            union = {p for t in (*group.terms, *more) for p, _, _ in postings.get(t, ())}
            idf = _idf(documents, len(union)) * _PREFIX
            for term in more:
                for product_id, weight, in_name in postings.get(term, ()):
                    best[product_id] = max(best.get(product_id, 0.0), idf * _saturate(weight))
                    if in_name:
                        tier[product_id] = max(tier.get(product_id, 0.0), 0.5)
        for product_id, score in best.items():
            entry = matched.setdefault(product_id, [0.0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += tier.get(product_id, 0.0)
            entry[2] += score
    if not matched:
        return []
    most = max(entry[0] for entry in matched.values())
    least = max(1, most - len(groups) // 3)
    ranked = [(pid, int(e[0]), e[1], e[2]) for pid, e in matched.items() if e[0] >= least]
    ranked.sort(key=lambda r: (-r[1], -r[2], -r[3], r[0]))
    return ranked


def _related(
    conn: Connection,
    workspace_id: str,
    hits: Sequence[Product],
    limit: int,
    available: Available | None,
) -> list[Related]:
    if not hits or limit <= 0:
        return []
    top = hits[:_TOP_FOR_RELATED]
    shown = {p.product_id for p in hits}
    because: dict[str, tuple[str, str]] = {}  # product -> (reason, hit)
    partner_rows = conn.execute(
        select(pairs.c.product_id, pairs.c.other_id, pairs.c.orders)
        .where(
            pairs.c.workspace_id == workspace_id,
            pairs.c.product_id.in_([p.product_id for p in top]),
        )
        .order_by(pairs.c.orders.desc(), pairs.c.other_id)
        .limit(limit * 4)
    )
    for hit_id, other_id, _ in partner_rows:
        if other_id not in shown and other_id not in because:
            because[other_id] = ("bought_together", hit_id)
    for hit in top:
        if not hit.category:
            continue
        rows = conn.execute(
            select(products.c.product_id)
            .where(
                products.c.workspace_id == workspace_id,
                products.c.category_key == " > ".join(hit.category),
                products.c.active.is_(True),
            )
            .order_by(products.c.created_at.desc(), products.c.product_id)
            .limit(limit + len(shown))
        )
        for (other_id,) in rows:
            if other_id not in shown and other_id not in because:
                because[other_id] = ("same_category", hit.product_id)
    found = get_products(conn, workspace_id, because)
    ids = [pid for pid in because if pid in found and found[pid].active]
    if available is not None:
        keep = set(available(conn, workspace_id, ids))
        ids = [pid for pid in ids if pid in keep]
    return [Related(found[pid], *because[pid]) for pid in ids[:limit]]


def search(
    conn: Connection,
    workspace_id: str,
    q: str,
    *,
    lang: str | None = None,
    k: int = 10,
    related: int = 6,
    available: Available | None = None,
) -> SearchResult:
    """The `k` best active products for the query `q` in `lang` (``fi``, ``en``, or None for
    every language), and up to `related` related items; see the module doc."""
    langs = (lang,) if lang else LANGUAGES
    groups = _groups(q, langs)
    ranked = _rank(conn, workspace_id, groups) if groups else []
    ids = [r[0] for r in ranked]
    if available is not None and ids:
        keep = set(available(conn, workspace_id, ids))
        ranked = [r for r in ranked if r[0] in keep]
    top = ranked[:k]
    found = get_products(conn, workspace_id, [r[0] for r in top])
    hits = [
        Hit(found[pid], round(score, 4), words_matched)
        for pid, words_matched, _, score in top
        if pid in found
    ]
    return SearchResult(
        hits=hits,
        related=_related(conn, workspace_id, [h.product for h in hits], related, available),
        total=len(ranked),
    )
