"""Why an item is recommended, in words a shopper or an agent can read: English and Finnish.

Each reason has a code (stable, for the shop's own wording), the product it comes from
(`because`), and its sentence in both languages. Finnish product names are inflected by
leaving them in quotes after a case-neutral noun ("tuotteen ”X” kanssa"), so no name needs
declining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["CODES", "Reason", "availability_words", "words"]

_TEMPLATES: Final[dict[str, tuple[str, str]]] = {
    "personal": (
        "Picked for you from what you have bought and looked at",
        "Valittu sinulle ostojesi ja katselujesi perusteella",
    ),
    "personal_because": (
        "Because you were interested in {because}",
        "Koska olit kiinnostunut tuotteesta ”{because}”",
    ),
    "bought_together": (
        "Often bought together with {because}",
        "Ostetaan usein yhdessä tuotteen ”{because}” kanssa",
    ),
    "viewed_next": (
        "Shoppers who looked at {because} looked at this next",
        "Tuotetta ”{because}” katselleet katsoivat seuraavaksi tätä",
    ),
    "also_liked": (
        "Customers who liked {because} also liked this",
        "Tuotteesta ”{because}” pitäneet pitivät myös tästä",
    ),
    "similar": (
        "Similar to {because}",
        "Samankaltainen kuin ”{because}”",
    ),
    "completes_cart": (
        "Goes with {because} in your cart",
        "Sopii ostoskorisi tuotteen ”{because}” kanssa",
    ),
    "after_purchase": (
        "Goes with {because}, which you bought",
        "Sopii ostamasi tuotteen ”{because}” kanssa",
    ),
    "search": (
        "Matches your search “{query}”",
        "Vastaa hakuasi ”{query}”",
    ),
    "popular_store": (
        "Popular at {store}",
        "Suosittu myymälässä {store}",
    ),
    "popular_segment": (
        "Popular with customers like you",
        "Suosittu kaltaistesi asiakkaiden keskuudessa",
    ),
    "popular": (
        "Popular right now",
        "Suosittu juuri nyt",
    ),
}
CODES: Final = frozenset(_TEMPLATES)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    because: str | None = None  # the product id it comes from
    because_names: tuple[str, str] | None = None  # its name in English and in Finnish
    query: str | None = None
    store: str | None = None  # a store's name
    segment: str | None = None  # the key of the customer segment it is popular in


def words(reason: Reason) -> dict[str, str]:
    """The reason's sentence in English and Finnish."""
    code = reason.code
    if code == "personal" and reason.because_names:
        code = "personal_because"
    en, fi = _TEMPLATES[code]
    names = reason.because_names or (reason.because or "", reason.because or "")
    values = {"query": reason.query or "", "store": reason.store or ""}
    return {
        "en": en.format(because=names[0], **values),
        "fi": fi.format(because=names[1], **values),
    }


def availability_words(store_name: str | None, in_store: bool, online: bool) -> dict[str, str]:
    """Where the item can be bought, in both languages."""
    if in_store and store_name:
        if online:
            return {
                "en": f"In stock at {store_name} and online",
                "fi": f"Saatavilla myymälässä {store_name} ja verkkokaupassa",
            }
        return {"en": f"In stock at {store_name}", "fi": f"Saatavilla myymälässä {store_name}"}
    return {"en": "Available online", "fi": "Saatavilla verkkokaupasta"}
