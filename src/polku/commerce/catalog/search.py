"""The shop's search box over the catalogue: an inverted index kept with the products, and
ranked search with related items.

**Index.** Every active product has one row per term in ``catalog_search_terms`` (terms from
`polku.commerce.catalog.analysis`: lemmas, words as written, compound tails, in Finnish and
English, plus ``#<code>`` for its product id and SKUs, and ``*``, which every indexed
product has, so the index alone says how many products it holds). A row's weight is BM25F's
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
from typing import Any, Final

from sqlalchemy import Connection, Float, and_, case, delete, func, literal, select

from polku.commerce.catalog.analysis import LANGUAGES, is_stopword, word_terms, words
from polku.commerce.catalog.queries import Product, category_key, get_products
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
_EVERY: Final = "*"  # a term every indexed product has: its count is the idf's N


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
    found[_EVERY] = [0.0, False]
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
    conn: Connection, workspace_id: str, groups: Sequence[_Group], limit: int
) -> tuple[list[tuple[str, int, float, float]], int]:
    """The best `limit` (product id, words matched, how many in the name, score), and how
    many products match well enough. Scored in SQL, so only the top rows reach Python."""
    t = search_terms.c
    expanded = [
        [term for p in g.prefixes for term in _expand(conn, workspace_id, p) if term not in g.terms]
        for g in groups
    ]
    wanted = sorted({term for g in groups for term in g.terms} | {x for e in expanded for x in e})
    if not wanted:
        return [], 0
    in_workspace = t.workspace_id == workspace_id
    df = {
        term: int(n)
        for term, n in conn.execute(
            select(t.term, func.count())
            .where(in_workspace, t.term.in_([*wanted, _EVERY]))
            .group_by(t.term)
        )
    }
    documents = df.pop(_EVERY, 0)
    if not df:
        return [], 0
    saturated = t.weight * (_K1 + 1) / (t.weight + _K1)
    columns: list[tuple[Any, Any]] = []
    for i, (group, more) in enumerate(zip(groups, expanded, strict=True)):
        factors = {
            term: _idf(documents, df[term]) * factor
            for term, factor in group.terms.items()
            if term in df
        }
        whole = list(factors)
        present = [term for term in more if term in df]
        if present:
            # The prefix counts as one term, over the documents of all its terms (so it is
            # never rarer, and never worth more, than the whole word typed so far).
            union = conn.execute(
                select(func.count(func.distinct(t.product_id))).where(
                    in_workspace, t.term.in_(whole + present)
                )
            ).scalar_one()
            idf = _idf(documents, int(union)) * _PREFIX
            for term in present:
                factors[term] = idf
        if not factors:
            continue
        weight = case(
            {term: literal(f, Float) for term, f in factors.items()}, value=t.term, else_=None
        )
        tiers = [(and_(t.in_name.is_(True), t.term.in_(whole)), 1.0)] if whole else []
        if present:
            tiers.append((and_(t.in_name.is_(True), t.term.in_(present)), 0.5))
        name = case(*tiers, else_=0.0) if tiers else literal(0.0, Float)
        columns.append((func.max(weight * saturated).label(f"g{i}"), func.max(name).label(f"n{i}")))
    if not columns:
        return [], 0
    # Grouped by an expression, not the column: SQLite would otherwise walk the whole
    # workspace's index by product to skip a sort, instead of reading the query's terms.
    product = func.coalesce(t.product_id, "")
    per = (
        select(product.label("product_id"), *(c for pair in columns for c in pair))
        .where(in_workspace, t.term.in_(wanted))
        .group_by(product)
        .cte("per_product")
    )
    matched = sum(case((per.c[f"g{i}"].is_not(None), 1), else_=0) for i in range(len(columns)))
    tier = sum(func.coalesce(per.c[f"n{i}"], 0.0) for i in range(len(columns)))
    score = sum(func.coalesce(per.c[f"g{i}"], 0.0) for i in range(len(columns)))
    scored = select(
        per.c.product_id,
        matched.label("matched"),  # type: ignore[union-attr]
        tier.label("tier"),  # type: ignore[union-attr]
        score.label("score"),  # type: ignore[union-attr]
        func.max(matched).over().label("most"),
    ).cte("scored")
    most = scored.c.most
    rows = conn.execute(
        select(
            scored.c.product_id,
            scored.c.matched,
            scored.c.tier,
            scored.c.score,
            func.count().over().label("total"),
        )
        .where(scored.c.matched >= most - len(groups) // 3)
        .order_by(
            scored.c.matched.desc(),
            scored.c.tier.desc(),
            scored.c.score.desc(),
            scored.c.product_id,
        )
        .limit(limit)
    ).all()
    total = int(rows[0].total) if rows else 0
    return [(r.product_id, int(r.matched), float(r.tier), float(r.score)) for r in rows], total


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
    wanted = limit * 4 if available is not None else limit
    active_product = and_(
        products.c.workspace_id == pairs.c.workspace_id,
        products.c.product_id == pairs.c.other_id,
        products.c.active.is_(True),
    )
    partner_rows = conn.execute(
        select(pairs.c.product_id, pairs.c.other_id)
        .join(products, active_product)
        .where(
            pairs.c.workspace_id == workspace_id,
            pairs.c.product_id.in_([p.product_id for p in top]),
            pairs.c.other_id.not_in(shown),
        )
        .order_by(pairs.c.orders.desc(), pairs.c.other_id)
        .limit(wanted)
    )
    for hit_id, other_id in partner_rows:
        because.setdefault(other_id, ("bought_together", hit_id))
    for hit in top:
        if not hit.category or len(because) >= wanted:
            continue
        rows = conn.execute(
            select(products.c.product_id)
            .where(
                products.c.workspace_id == workspace_id,
                products.c.category_key == category_key(hit.category),
                products.c.active.is_(True),
                products.c.product_id.not_in(shown),
            )
            .order_by(products.c.created_at.desc(), products.c.product_id)
            .limit(wanted)
        )
        for (other_id,) in rows:
            because.setdefault(other_id, ("same_category", hit.product_id))
    ids = list(because)
    if available is not None:
        keep = set(available(conn, workspace_id, ids))
        ids = [pid for pid in ids if pid in keep]
    ids = ids[:limit]
    found = get_products(conn, workspace_id, ids)
    return [Related(found[pid], *because[pid]) for pid in ids if pid in found]


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
    ranked, total = _rank(conn, workspace_id, groups, k * 4 if available else k)
    if available is not None and ranked:
        keep = set(available(conn, workspace_id, [r[0] for r in ranked]))
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
        total=total,
    )
