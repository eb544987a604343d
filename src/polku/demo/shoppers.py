"""Deterministic shoppers for `polku demo`: Segment messages from a small Finnish outdoor shop.

A newcomer runs `polku demo` and watches profiles form. `ShopperSimulator` invents one shopper at
a time (a `Shopper`: names, email, phone, loyalty card, account id, browser and phone) and writes
that shopper's journey through the web shop, the app and the stores of *Pohjoisretki*, a made-up
chain with the `CATALOGUE`, `STORES` and `WAREHOUSE` below (real shopping centres, their
postal codes and coordinates). `polku.demo.store` seeds the same catalogue, locations and
stock (`stock_level`) into a workspace, so every SKU and store the messages name exists.
The messages are plain dicts in the exact shape of the Segment HTTP Tracking API, ready for
``POST /v1/batch`` (see `batches`).

================  ==========================================================================
journey           what the shopper does
================  ==========================================================================
``webrooming``    browses the web shop anonymously while the stores are open, checks stock in
                  the stores nearest first until one has it, logs in (or not), then buys at
                  that store's till with the loyalty card (or a receipt email)
``showrooming``   visits a store (loyalty card scanned), later logs in to the app and buys there
``cross_device``  fills a cart on the web, logs in, finishes the order in the phone app
``abandoner``     browses, adds to cart, starts checkout and leaves (sometimes leaving an email)
``returner``      orders online, then returns part of the order at a store
``hesitant``      views one product three to five times over a day or two, checks its stock
                  (while the stores are open) at the home store and the others within 50 km
                  until one has it, and leaves without buying
================  ==========================================================================

Every message has a ``messageId``, a ``timestamp`` and ``context.channel``; web messages carry
``context.page``, app messages ``context.app`` and ``context.device`` (``ios``/``android``), and
till messages ``context.device`` of type ``pos`` marked ``shared`` plus ``properties.store_id``
and the loyalty card or receipt email the customer gave (and a sale its ``receipt_id``). The
event names and properties follow `polku.collect.vocabulary`.

Reproducible: everything, message ids included, comes from a seeded `random.Random`, and time
comes from a simulated clock that starts at a fixed instant unless ``start`` is given, so one seed
always gives the same messages. A small share of deliberately bad messages (no identity at all,
or a price sent as Finnish text such as ``"12,90"``) is added so the demo also fills the
dead-letter view. They are extra copies drawn from a second random stream, so the good messages
are the same whatever ``bad_event_rate`` is.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import math
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

__all__ = [
    "BRAND",
    "CATALOGUE",
    "JOURNEYS",
    "STORES",
    "WAREHOUSE",
    "DemoProduct",
    "DemoStore",
    "JourneyKind",
    "Shopper",
    "ShopperSimulator",
    "batches",
    "colour_code",
    "stock_level",
]

BRAND: Final = "Pohjoisretki"
_BRAND: Final = BRAND
_SHOP_URL: Final = "https://pohjoisretki.example"  # .example is reserved (RFC 2606)
_EMAIL_DOMAIN: Final = "esimerkki.fi"
_CURRENCY: Final = "EUR"

# Finnish VAT (25.5 % since September 2024) is included in shelf prices.
_VAT_PERMILLE: Final = 255
_FREE_SHIPPING_CENTS: Final = 7900
_SHIPPING_CENTS: Final = 590

_DEFAULT_START: Final = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # a Monday, 09:00 in Helsinki
_DAY_MS: Final = 86_400_000
_HOUR: Final = 3600.0
_DAY: Final = 86_400.0
# Stores open 10-20 Helsinki time; the simulation uses winter time (UTC+2) all year.
_OPENS_MS: Final = 8 * 3_600_000
_CLOSES_MS: Final = 18 * 3_600_000


def _slug(text: str) -> str:
    folded = text.lower().translate(str.maketrans("äöå", "aoa"))
    words = "".join(c if c.isalnum() else " " for c in folded).split()
    return "-".join(words)


@dataclass(frozen=True, slots=True)
class DemoProduct:
    """A product of the demo shop. Each colour and size is a SKU (``P1001-MUS-M``)."""

    id: str
    name: str  # Finnish, the shop's default language
    category: str  # a path, broadest first: "Vaatteet/Takit/Talvitakit"
    price_cents: int  # VAT included
    sizes: tuple[str, ...]
    colours: tuple[str, ...]
    name_en: str
    about_fi: str  # one line for the product page, in Finnish
    about_en: str
    material: str

    @property
    def price(self) -> float:
        """Price in euros, the number Segment's ``price`` property carries."""
        return self.price_cents / 100

    @property
    def path(self) -> str:
        return f"/tuotteet/{_slug(self.name)}-{self.id.lower()}"

    @property
    def url(self) -> str:
        return _SHOP_URL + self.path

    @property
    def image_url(self) -> str:
        return f"{_SHOP_URL}/kuvat/{self.id.lower()}.jpg"

    @property
    def search_term(self) -> str:
        """What a shopper looking for this product types into the search box."""
        return self.name.split()[0].lower()

    def sku(self, size: str, colour: str) -> str:
        """The SKU of one colour in one size: the product id, the colour's first three
        letters and the size (``P1001-MUS-M``)."""
        return f"{self.id}-{colour_code(colour)}-{size}"

    def variant_image_url(self, colour: str) -> str:
        return f"{_SHOP_URL}/kuvat/{self.id.lower()}-{colour_code(colour).lower()}.jpg"

    @property
    def skus(self) -> tuple[str, ...]:
        """Every SKU of the product, colour by colour."""
        return tuple(self.sku(size, colour) for colour in self.colours for size in self.sizes)


def colour_code(colour: str) -> str:
    """The three letters a SKU names a colour by: ``Musta`` is ``MUS``."""
    return _slug(colour).replace("-", "")[:3].upper()


def stock_level(sku: str, location_id: str) -> int:
    """Units of `sku` the demo store starts with at a location (`STORES` or `WAREHOUSE`).

    The same for every run (a hash of the two ids, not `random`): about a quarter of a
    store's SKUs are sold out and one in seven is down to its last 1-3 units; the warehouse
    holds 5-44 of nearly everything. What the seed counts into stock and what the simulated
    shoppers are told when they check a store's stock both come from here.
    """
    found = _STOCK_SET.get((sku, location_id))
    if found is not None:
        return found
    digest = hashlib.blake2b(f"{sku}@{location_id}".encode(), digest_size=4).digest()
    roll = int.from_bytes(digest, "big")
    if location_id == WAREHOUSE.id:
        return 0 if roll % 100 < 4 else 5 + roll // 100 % 40
    if roll % 100 < 25:
        return 0
    if roll % 100 < 40:
        return 1 + roll // 100 % 3
    return 4 + roll // 100 % 9


@dataclass(frozen=True, slots=True)
class DemoStore:
    """A store of the demo chain (or its web shop's warehouse), where it really is, with its
    tills (shared devices) and a staff tablet."""

    id: str
    name: str
    city: str
    address: str
    postal_code: str
    latitude: float  # WGS84, of the shopping centre the store is in
    longitude: float
    click_and_collect: bool = True
    kind: Literal["store", "warehouse"] = "store"
    tills: int = 3

    @property
    def code(self) -> str:
        return self.id.removeprefix("store-")

    def till_id(self, number: int) -> str:
        return f"till-{self.code}-{number}"

    @property
    def tablet_id(self) -> str:
        return f"tablet-{self.code}-1"


_CLOTHES: Final = ("XS", "S", "M", "L", "XL", "XXL")
_SHOES: Final = ("37", "38", "39", "40", "41", "42", "43", "44", "45", "46")
_ONE: Final = ("OS",)  # one size

CATALOGUE: Final[tuple[DemoProduct, ...]] = (
    DemoProduct("P1001", "Talvitakki Revontuli", "Vaatteet/Takit/Talvitakit", 25900, _CLOTHES,
                ("Musta", "Tummansininen", "Punainen"),
                "Revontuli winter jacket",
                "Lämmin, tuulenpitävä talvitakki kaupunkiin ja pakkasille; irrotettava huppu.",
                "Warm, windproof winter jacket for the city and hard frost; detachable hood.",
                "polyesteri, kierrätetty täyte"),
    DemoProduct("P1002", "Untuvatakki Kaamos", "Vaatteet/Takit/Untuvatakit", 29900, _CLOTHES,
                ("Musta", "Oliivi"),
                "Kaamos down jacket",
                "Kevyt untuvatakki kovimpiin pakkasiin, 90/10-untuvaa.",
                "Light down jacket for the hardest frosts, 90/10 down.",
                "untuva"),
    DemoProduct("P1003", "Kuoritakki Tunturi", "Vaatteet/Takit/Kuoritakit", 22900, _CLOTHES,
                ("Petrooli", "Musta", "Oranssi"),
                "Tunturi shell jacket",
                "Vedenpitävä ja hengittävä kuoritakki tunturiin ja vaellukselle.",
                "Waterproof, breathable shell jacket for fells and hiking.",
                "kolmikerroslaminaatti"),
    DemoProduct("P1004", "Sadetakki Saaristo", "Vaatteet/Takit/Sadetakit", 11900, _CLOTHES,
                ("Keltainen", "Tummansininen"),
                "Saaristo rain jacket",
                "Klassinen sadetakki saaristoon ja syysmyrskyihin.",
                "A classic rain jacket for the archipelago and autumn storms.",
                "PU-pinnoitettu polyesteri"),
    DemoProduct("P1005", "Softshell-takki Nuuksio", "Vaatteet/Takit/Softshell-takit", 14900,
                _CLOTHES, ("Harmaa", "Metsänvihreä"),
                "Nuuksio softshell jacket",
                "Joustava softshell-takki retkille ja lenkeille.",
                "Stretchy softshell jacket for day trips and runs.",
                "softshell"),
    DemoProduct("P1006", "Fleece-takki Koli", "Vaatteet/Välikerrokset/Fleecet", 7990, _CLOTHES,
                ("Harmaa", "Luonnonvalkoinen", "Musta"),
                "Koli fleece jacket",
                "Pehmeä fleece-takki välikerrokseksi tai sellaisenaan.",
                "Soft fleece jacket as a mid layer or on its own.",
                "kierrätetty fleece"),
    DemoProduct("P1007", "Kevytuntuvaliivi Utu", "Vaatteet/Välikerrokset/Liivit", 9990, _CLOTHES,
                ("Musta", "Sininen"),
                "Utu light down vest",
                "Kevytuntuvaliivi, joka mahtuu taskuun.",
                "A light down vest that packs into its own pocket.",
                "untuva"),
    DemoProduct("P1008", "Merino-aluspaita Hiisi", "Vaatteet/Alusasut", 6990, _CLOTHES,
                ("Musta", "Harmaa"),
                "Hiisi merino base layer top",
                "Merinovillainen aluspaita, ei kutita eikä haise.",
                "Merino wool base layer top that does not itch or smell.",
                "merinovilla"),
    DemoProduct("P1009", "Merino-alushousut Hiisi", "Vaatteet/Alusasut", 6490, _CLOTHES,
                ("Musta",),
                "Hiisi merino base layer bottoms",
                "Merinovillaiset alushousut talviretkille.",
                "Merino wool long johns for winter trips.",
                "merinovilla"),
    DemoProduct("P1010", "Villapaita Pirtti", "Vaatteet/Neuleet", 11900, _CLOTHES,
                ("Luonnonvalkoinen", "Harmaa"),
                "Pirtti wool sweater",
                "Paksu villapaita suomalaisesta lampaanvillasta.",
                "A thick sweater of Finnish sheep's wool.",
                "villa"),
    DemoProduct("P1011", "Flanellipaita Kelo", "Vaatteet/Paidat", 5990, _CLOTHES,
                ("Punaruudullinen", "Vihreäruudullinen"),
                "Kelo flannel shirt",
                "Lämmin ruudullinen flanellipaita mökille.",
                "A warm checked flannel shirt for the cottage.",
                "puuvilla"),
    DemoProduct("P1012", "Huppari Metsä", "Vaatteet/Paidat", 6990, _CLOTHES,
                ("Metsänvihreä", "Harmaa"),
                "Metsä hoodie",
                "Luomupuuvillainen huppari arkeen.",
                "An organic cotton hoodie for every day.",
                "luomupuuvilla"),
    DemoProduct("P1013", "Vaellushousut Pallas", "Vaatteet/Housut/Vaellushousut", 10900,
                _CLOTHES, ("Musta", "Khaki"),
                "Pallas hiking trousers",
                "Kestävät vaellushousut vahvikkeilla.",
                "Durable hiking trousers with reinforcements.",
                "polyamidi"),
    DemoProduct("P1014", "Toppahousut Hanki", "Vaatteet/Housut/Toppahousut", 14900, _CLOTHES,
                ("Musta",),
                "Hanki insulated trousers",
                "Toppahousut pakkaselle ja pulkkamäkeen.",
                "Insulated trousers for frost and sledging.",
                "polyesteri"),
    DemoProduct("P1015", "Sadehousut Räntä", "Vaatteet/Housut/Sadehousut", 7990, _CLOTHES,
                ("Musta", "Tummansininen"),
                "Räntä rain trousers",
                "Kevyet sadehousut repun pohjalle.",
                "Light rain trousers for the bottom of the backpack.",
                "PU-pinnoitettu polyesteri"),
    DemoProduct("P1016", "Merino-pipo", "Asusteet/Päähineet", 3490, _ONE,
                ("Musta", "Harmaa", "Punainen"),
                "Merino beanie",
                "Ohut merinopipo kypärän alle tai sellaisenaan.",
                "A thin merino beanie, under a helmet or on its own.",
                "merinovilla"),
    DemoProduct("P1017", "Tupsupipo Tykky", "Asusteet/Päähineet", 2990, _ONE,
                ("Valkoinen", "Sininen"),
                "Tykky bobble hat",
                "Tupsupipo, jossa fleecevuori.",
                "A bobble hat with a fleece lining.",
                "akryyli, fleece"),
    DemoProduct("P1018", "Kaulahuivi Kuura", "Asusteet/Huivit", 3990, _ONE, ("Harmaa", "Sininen"),
                "Kuura scarf",
                "Pehmeä kaulahuivi villasekoitteesta.",
                "A soft scarf of wool blend.",
                "villasekoite"),
    DemoProduct("P1019", "Sormikkaat Tykky", "Asusteet/Käsineet", 4490, ("S", "M", "L"),
                ("Musta",),
                "Tykky gloves",
                "Kosketusnäyttöä tukevat sormikkaat.",
                "Touchscreen-friendly gloves.",
                "polyesteri"),
    DemoProduct("P1020", "Lapaset Lumi", "Asusteet/Käsineet", 3990, ("S", "M", "L"),
                ("Valkoinen", "Harmaa"),
                "Lumi mittens",
                "Lämpimät lapaset villavuorella.",
                "Warm mittens with a wool lining.",
                "villa"),
    DemoProduct("P1021", "Villasukat Pirtti", "Asusteet/Sukat", 2490,
                ("36-38", "39-41", "42-44", "45-47"), ("Harmaa", "Punainen"),
                "Pirtti wool socks",
                "Käsin neulotun näköiset villasukat.",
                "Wool socks that look hand-knitted.",
                "villa"),
    DemoProduct("P1022", "Vaelluskengät Kaldoaivi", "Kengät/Vaelluskengät", 18900, _SHOES,
                ("Ruskea", "Harmaa"),
                "Kaldoaivi hiking boots",
                "Vedenpitävät vaelluskengät pitkille reissuille.",
                "Waterproof hiking boots for long trips.",
                "nahka, Gore-Tex"),
    DemoProduct("P1023", "Talvisaappaat Pakkanen", "Kengät/Talvikengät", 16900, _SHOES,
                ("Musta",),
                "Pakkanen winter boots",
                "Talvisaappaat -30 asteeseen, liukuesteet.",
                "Winter boots for -30 degrees, with anti-slip soles.",
                "nahka, villahuopa"),
    DemoProduct("P1024", "Trail-lenkkarit Polku", "Kengät/Polkujuoksukengät", 13900, _SHOES,
                ("Sininen", "Musta"),
                "Polku trail running shoes",
                "Kevyet polkujuoksukengät pitävällä pohjalla.",
                "Light trail running shoes with a grippy sole.",
                "mesh"),
    DemoProduct("P1025", "Reppu Erä 30 l", "Retkeily/Reput", 12900, _ONE, ("Oliivi", "Musta"),
                "Erä 30 l backpack",
                "Retkireppu päiväretkille ja viikonlopuille.",
                "A hiking backpack for day trips and weekends.",
                "cordura"),
    DemoProduct("P1026", "Päiväreppu Kaupunki 20 l", "Retkeily/Reput", 7990, _ONE,
                ("Musta", "Harmaa"),
                "Kaupunki 20 l daypack",
                "Päivareppu läppärille ja eväille.",
                "A daypack for a laptop and lunch.",
                "polyesteri"),
    DemoProduct("P1027", "Makuupussi Revontulet -15", "Retkeily/Makuupussit", 21900,
                ("REG", "L"), ("Oranssi",),
                "Revontulet -15 sleeping bag",
                "Makuupussi talviretkille, comfort -15 °C.",
                "A sleeping bag for winter trips, comfort -15 °C.",
                "synteettinen täyte"),
    DemoProduct("P1028", "Teltta Retki 2", "Retkeily/Teltat", 34900, _ONE, ("Vihreä",),
                "Retki 2 tent",
                "Kevyt kahden hengen teltta.",
                "A light two-person tent.",
                "ripstop-nailon"),
    DemoProduct("P1029", "Termospullo 0,75 l", "Retkeily/Retkikeittiö", 3490, _ONE,
                ("Teräs", "Musta"),
                "Thermos flask 0.75 l",
                "Termospullo pitää kahvin kuumana koko päivän.",
                "A thermos flask that keeps coffee hot all day.",
                "ruostumaton teräs"),
    DemoProduct("P1030", "Otsalamppu Kaamos", "Retkeily/Valaisimet", 4990, _ONE, ("Musta",),
                "Kaamos head torch",
                "Ladattava otsalamppu, 400 lumenia.",
                "A rechargeable head torch, 400 lumens.",
                "alumiini"),
)  # fmt: skip

STORES: Final[tuple[DemoStore, ...]] = (
    DemoStore("store-hki-kamppi", "Pohjoisretki Helsinki Kamppi", "Helsinki",
              "Urho Kekkosen katu 1", "00100", 60.1689, 24.9322),
    DemoStore("store-esp-isoomena", "Pohjoisretki Espoo Iso Omena", "Espoo",
              "Piispansilta 11", "02230", 60.1613, 24.7381),
    DemoStore("store-tre-ratina", "Pohjoisretki Tampere Ratina", "Tampere",
              "Vuolteenkatu 1", "33100", 61.4928, 23.7668),
    DemoStore("store-tku-hansa", "Pohjoisretki Turku Hansa", "Turku",
              "Yliopistonkatu 22", "20100", 60.4506, 22.2652),
    DemoStore("store-oulu-valkea", "Pohjoisretki Oulu Valkea", "Oulu",
              "Isokatu 25", "90100", 65.0126, 25.4715, click_and_collect=False),
    DemoStore("store-jkl-forum", "Pohjoisretki Jyväskylä Forum", "Jyväskylä",
              "Asemakatu 7", "40100", 62.2422, 25.7478),
)  # fmt: skip
"""The chain's stores (Oulu Valkea is small and offers no click and collect)."""

WAREHOUSE: Final = DemoStore(
    "wh-vantaa", "Pohjoisretki verkkokaupan varasto", "Vantaa", "Tasetie 8", "01510",
    60.2931, 24.9640, click_and_collect=False, kind="warehouse", tills=0,
)  # fmt: skip
"""The web shop's warehouse: what is sold online ships from here."""


_FIRST_NAMES: Final = (
    "Aino", "Eino", "Helmi", "Onni", "Elsa", "Väinö", "Aada", "Leevi", "Sofia", "Eetu",
    "Ilona", "Juho", "Kerttu", "Lauri", "Maija", "Mikko", "Noora", "Pekka", "Riikka", "Sami",
    "Tuula", "Ville", "Emma", "Matti", "Linnea", "Oskari", "Iida", "Jussi", "Saara", "Antti",
    "Anna-Liisa", "Niklas",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine",
    "Heikkinen", "Koskinen", "Järvinen", "Lehtonen", "Saarinen", "Salminen", "Heinonen",
    "Niemi", "Kinnunen", "Salonen", "Turunen", "Laitinen", "Tuominen", "Rantanen",
    "Karjalainen", "Jokinen", "Mattila", "Savolainen", "Lahtinen", "Ahonen", "Lindholm",
    "Nyström", "Åberg",
)  # fmt: skip

JourneyKind = Literal[
    "webrooming", "showrooming", "cross_device", "abandoner", "returner", "hesitant"
]
JOURNEYS: Final[tuple[JourneyKind, ...]] = (
    "webrooming",
    "showrooming",
    "cross_device",
    "abandoner",
    "returner",
    "hesitant",
)
_JOURNEY_WEIGHTS: Final = (35, 20, 15, 20, 10, 10)
_NEARBY_KM: Final = 50.0  # how far a hesitant shopper would go to look at the product

# Stock the demo store is seeded with (`stock_level`): a few SKUs are set by hand so the
# availability API shows "only 2 left" and "sold out" on the products the demo talks about.
_STOCK_SET: Final[dict[tuple[str, str], int]] = {
    ("P1001-MUS-M", "store-hki-kamppi"): 2,
    ("P1001-MUS-M", "store-esp-isoomena"): 5,
    ("P1001-MUS-M", "store-tre-ratina"): 0,
    ("P1001-MUS-M", "store-tku-hansa"): 1,
    ("P1001-MUS-M", "store-oulu-valkea"): 0,
    ("P1001-MUS-M", "store-jkl-forum"): 3,
    ("P1001-MUS-M", "wh-vantaa"): 14,
    ("P1001-MUS-L", "store-hki-kamppi"): 0,
    ("P1001-MUS-L", "wh-vantaa"): 0,
    ("P1002-MUS-M", "store-hki-kamppi"): 1,
    ("P1022-RUS-42", "store-hki-kamppi"): 2,
    ("P1022-RUS-42", "store-tre-ratina"): 0,
}

_REFERRERS: Final = (
    "https://www.google.com/",
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://www.instagram.com/",
    "",  # typed the address or used a bookmark
)
_USER_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
)
_WEB_LIBRARY: Final = {"name": "analytics.js", "version": "npm:next-1.72.0"}
_POS_LIBRARY: Final = {"name": "pohjoisretki-pos", "version": "3.4.0"}
_ESP_LIBRARY: Final = {"name": "pohjoisretki-newsletter", "version": "1.0.0"}
_APP: Final = {
    "name": _BRAND,
    "version": "5.3.1",
    "build": "531",
    "namespace": "fi.pohjoisretki.app",
}
_PLATFORMS: Final = {
    "ios": (
        {"name": "analytics-ios", "version": "4.1.8"},
        {"manufacturer": "Apple", "model": "iPhone15,2"},
        {"name": "iOS", "version": "18.0"},
    ),
    "android": (
        {"name": "analytics-android", "version": "4.11.3"},
        {"manufacturer": "samsung", "model": "SM-S921B"},
        {"name": "Android", "version": "14"},
    ),
}
_PAYMENT_METHODS: Final = ("card", "card", "mobilepay", "invoice")
_RETURN_REASONS: Final = ("wrong_size", "not_as_expected", "colour_differs")

# Identifiers are made unique by stepping through the number space with a step that is prime to
# it (a full cycle), so two shoppers never share a card or phone however long the demo runs.
_CARD_SPACE: Final = 10**8
_CARD_STEP: Final = 7_919_933
_PHONE_SPACE: Final = 10**7
_PHONE_STEP: Final = 4_871_347


@dataclass(frozen=True, slots=True)
class Shopper:
    """One simulated person and the identifiers their devices and cards leave behind."""

    user_id: str  # the web shop and app account, sent as userId after logging in
    first_name: str
    last_name: str
    email: str
    phone: str  # E.164, a Finnish mobile number
    loyalty_card: str | None  # None: not a loyalty member, so the till asks for an email
    browser_id: str  # anonymousId of the web browser
    app_anonymous_id: str  # anonymousId of the phone app, another one than the browser's
    app_device_id: str
    app_platform: Literal["ios", "android"]
    home_store_id: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class _Line:
    """A product in a cart or an order: one size, one colour, a quantity."""

    product: DemoProduct
    size: str
    colour: str
    quantity: int = 1

    @property
    def cents(self) -> int:
        return self.product.price_cents * self.quantity

    @property
    def sku(self) -> str:
        return self.product.sku(self.size, self.colour)


def _iso(ms: int) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, the form Segment libraries send."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _product_properties(line: _Line) -> dict[str, Any]:
    product = line.product
    return {
        "product_id": product.id,
        "sku": line.sku,
        "name": product.name,
        "category": product.category,
        "brand": _BRAND,
        "variant": line.colour,
        "size": line.size,
        "price": product.price,
        "quantity": line.quantity,
        "currency": _CURRENCY,
        "url": product.url,
        "image_url": product.variant_image_url(line.colour),
    }


def _order_item(line: _Line) -> dict[str, Any]:
    product = line.product
    return {
        "product_id": product.id,
        "sku": line.sku,
        "name": product.name,
        "category": product.category,
        "brand": _BRAND,
        "variant": line.colour,
        "size": line.size,
        "price": product.price,
        "quantity": line.quantity,
    }


def _vat(cents: int) -> int:
    """The VAT contained in a VAT-inclusive amount, rounded half up to the cent."""
    return (cents * _VAT_PERMILLE * 2 + 1000 + _VAT_PERMILLE) // (2 * (1000 + _VAT_PERMILLE))


def _order_properties(lines: list[_Line], *, delivered: bool) -> dict[str, Any]:
    """Segment e-commerce order amounts. Prices include VAT, as shelf prices do in Finland, so
    ``total`` (what was paid) is products plus shipping, while ``subtotal`` and ``revenue`` are
    the products without VAT and without shipping, and ``tax`` is all the VAT paid."""
    goods = sum(line.cents for line in lines)
    shipping = _SHIPPING_CENTS if delivered and goods < _FREE_SHIPPING_CENTS else 0
    net = goods - _vat(goods)
    return {
        "total": (goods + shipping) / 100,
        "subtotal": net / 100,
        "revenue": net / 100,
        "shipping": shipping / 100,
        "tax": (_vat(goods) + _vat(shipping)) / 100,
        "currency": _CURRENCY,
        "products": [_order_item(line) for line in lines],
    }


class _Trip:
    """One shopper's journey as it is written: the simulated clock and the messages so far."""

    def __init__(self, rng: random.Random, shopper: Shopper, start_ms: int) -> None:
        self.rng = rng
        self.shopper = shopper
        self.now = start_ms
        self.timed: list[tuple[int, dict[str, Any]]] = []
        self.web_user = False  # logged in on the web: web messages carry the userId
        self.app_user = False
        self._page: dict[str, str] = {}
        self._referrer = rng.choice(_REFERRERS)
        self._user_agent = rng.choice(_USER_AGENTS)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def wait(self, low: float, high: float) -> None:
        """Move the clock on by a random number of seconds between `low` and `high`."""
        self.now += int(self.rng.uniform(low, high) * 1000)

    def wait_for_opening(self) -> None:
        """Move the clock into the stores' opening hours if it is outside them."""
        day = self.now - self.now % _DAY_MS
        since_midnight = self.now - day
        later = int(self.rng.uniform(0, 3 * _HOUR) * 1000)
        if since_midnight < _OPENS_MS:
            self.now = day + _OPENS_MS + later
        elif since_midnight >= _CLOSES_MS - 1_800_000:
            self.now = day + _DAY_MS + _OPENS_MS + later

    def into_opening_hours(self) -> None:
        """Move the clock to half an hour after the stores open if they are closed (or close
        within half an hour) now. Draws nothing from the random source, so the shoppers
        after this one stay as they were."""
        day = self.now - self.now % _DAY_MS
        since_midnight = self.now - day
        if since_midnight < _OPENS_MS:
            self.now = day + _OPENS_MS + 1_800_000
        elif since_midnight >= _CLOSES_MS - 1_800_000:
            self.now = day + _DAY_MS + _OPENS_MS + 1_800_000

    def _emit(
        self,
        kind: str,
        identity: dict[str, str],
        body: dict[str, Any],
        channel: str,
        context: dict[str, Any],
    ) -> None:
        message: dict[str, Any] = {
            "type": kind,
            "messageId": self.new_id(),
            "timestamp": _iso(self.now),
            **identity,
            **body,
            "context": {
                "channel": channel,
                "locale": "fi-FI",
                "timezone": "Europe/Helsinki",
                **context,
            },
        }
        self.timed.append((self.now, message))

    # --- web shop -------------------------------------------------------------------------

    def _web_identity(self) -> dict[str, str]:
        if self.web_user:
            return {"userId": self.shopper.user_id, "anonymousId": self.shopper.browser_id}
        return {"anonymousId": self.shopper.browser_id}

    def _web_context(self, campaign: dict[str, str] | None = None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "library": dict(_WEB_LIBRARY),
            "userAgent": self._user_agent,
            "page": dict(self._page),
        }
        if campaign:
            context["campaign"] = dict(campaign)
        return context

    def page(
        self,
        path: str,
        title: str,
        *,
        search: str = "",
        category: str | None = None,
        campaign: dict[str, str] | None = None,
    ) -> None:
        url = _SHOP_URL + path + search
        self._page = {
            "path": path,
            "url": url,
            "title": f"{title} | {_BRAND}",
            "referrer": self._referrer,
            "search": search,
        }
        self._referrer = url
        properties: dict[str, Any] = dict(self._page)
        if category:
            properties["category"] = category
        body = {"name": title, "properties": properties}
        self._emit("page", self._web_identity(), body, "web", self._web_context(campaign))

    def web_track(self, event: str, properties: dict[str, Any]) -> None:
        body = {"event": event, "properties": properties}
        self._emit("track", self._web_identity(), body, "web", self._web_context())

    def web_identify(self, traits: dict[str, Any], *, logged_in: bool = True) -> None:
        """An identify call: a login (with the userId) or a guest who only typed an email."""
        self.web_user = self.web_user or logged_in
        body = {"traits": traits}
        self._emit("identify", self._web_identity(), body, "web", self._web_context())

    # --- phone app ------------------------------------------------------------------------

    def _app_identity(self) -> dict[str, str]:
        if self.app_user:
            return {"userId": self.shopper.user_id, "anonymousId": self.shopper.app_anonymous_id}
        return {"anonymousId": self.shopper.app_anonymous_id}

    def _app_context(self) -> dict[str, Any]:
        library, hardware, system = _PLATFORMS[self.shopper.app_platform]
        return {
            "library": dict(library),
            "app": dict(_APP),
            "device": {
                "id": self.shopper.app_device_id,
                "type": self.shopper.app_platform,
                **hardware,
            },
            "os": dict(system),
        }

    def screen(self, name: str, properties: dict[str, Any] | None = None) -> None:
        body = {"name": name, "properties": properties or {}}
        self._emit("screen", self._app_identity(), body, "app", self._app_context())

    def app_track(self, event: str, properties: dict[str, Any]) -> None:
        body = {"event": event, "properties": properties}
        self._emit("track", self._app_identity(), body, "app", self._app_context())

    def app_identify(self, traits: dict[str, Any]) -> None:
        self.app_user = True
        self._emit("identify", self._app_identity(), {"traits": traits}, "app", self._app_context())

    # --- stores ---------------------------------------------------------------------------

    def till_track(
        self, store: DemoStore, till: int, session: str, event: str, properties: dict[str, Any]
    ) -> None:
        """A till message. `session` is the till transaction's anonymousId: the till's own id
        names a device many people use, so it must not stand for the shopper."""
        context = {
            "library": dict(_POS_LIBRARY),
            "device": {"id": store.till_id(till), "type": "pos", "shared": True},
        }
        properties = {"store_id": store.id, "register_id": store.till_id(till), **properties}
        body = {"event": event, "properties": properties}
        self._emit("track", {"anonymousId": session}, body, "store", context)

    def tablet_track(self, store: DemoStore, event: str, properties: dict[str, Any]) -> None:
        context = {
            "library": dict(_POS_LIBRARY),
            "device": {"id": store.tablet_id, "type": "store_tablet", "shared": True},
        }
        body = {"event": event, "properties": {"store_id": store.id, **properties}}
        self._emit("track", {"anonymousId": self.new_id()}, body, "store", context)

    def receipt_identity(self, email_chance: float) -> dict[str, str]:
        """What the customer gives at the till: the loyalty card, and sometimes an email for a
        digital receipt (always the email when they have no card)."""
        found: dict[str, str] = {}
        if self.shopper.loyalty_card is not None:
            found["loyalty_card"] = self.shopper.loyalty_card
        if self.shopper.loyalty_card is None or self.rng.random() < email_chance:
            found["receipt_email"] = self.shopper.email
        return found

    # --- email ----------------------------------------------------------------------------

    def email_track(self, event: str, properties: dict[str, Any]) -> None:
        """A message from the newsletter service, which knows the account and the address."""
        context = {"library": dict(_ESP_LIBRARY), "traits": {"email": self.shopper.email}}
        body = {"event": event, "properties": properties}
        self._emit("track", {"userId": self.shopper.user_id}, body, "email", context)


def _km(a: DemoStore, b: DemoStore) -> float:
    """Great-circle distance between two stores (haversine), in kilometres."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi, dlam = phi2 - phi1, math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _by_distance(home: DemoStore) -> list[DemoStore]:
    """The stores nearest first, starting with `home`."""
    return sorted(STORES, key=lambda store: _km(home, store))


def _stocked(line: _Line) -> _Line:
    """`line`, or when no store has its SKU, the first colour and size of the product that
    some store has (a shopper who checks stores goes for one they can find)."""
    if any(stock_level(line.sku, store.id) > 0 for store in STORES):
        return line
    product = line.product
    for colour in product.colours:
        for size in product.sizes:
            if any(stock_level(product.sku(size, colour), store.id) > 0 for store in STORES):
                return _Line(product, size, colour, line.quantity)
    return line


def _check_stock(trip: _Trip, store: DemoStore, line: _Line) -> int:
    """The shopper looks up `line` at `store` on the web shop; the answer is the stock the
    demo store was seeded with. Returns the units."""
    units = stock_level(line.sku, store.id)
    trip.web_track(
        "Store Stock Checked",
        {
            "store_id": store.id,
            "store_name": store.name,
            "product_id": line.product.id,
            "sku": line.sku,
            "name": line.product.name,
            "variant": line.colour,
            "in_stock": units > 0,
            "quantity_available": units,
        },
    )
    return units


class ShopperSimulator:
    """Invents shoppers and writes their journeys as Segment messages, the same for one seed.

    `journey` gives one new shopper's whole journey; `stream` gives many shoppers' messages in
    time order, interleaved as they would reach the collection API. Shoppers arrive every few
    minutes of simulated time (less often at night); a journey lasts minutes to days.
    """

    def __init__(
        self, seed: int = 7, start: datetime | None = None, bad_event_rate: float = 0.02
    ) -> None:
        if not 0.0 <= bad_event_rate <= 1.0:
            raise ValueError(
                f"bad_event_rate must be between 0 and 1 (got {bad_event_rate!r}); "
                "0.02 adds about one bad message per fifty good ones."
            )
        moment = _DEFAULT_START if start is None else start
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        self._rng = random.Random(seed)
        # A stream of its own, so the good messages do not depend on the bad-event rate.
        self._bad_rng = random.Random(seed * 1_000_003 + 1)
        self._bad_event_rate = bad_event_rate
        self._clock = int(moment.timestamp() * 1000)
        self._shoppers = 0
        self._serial = self._rng.randrange(100_000, 900_000)
        self._user_base = self._rng.randrange(1_000_000, 5_000_000)
        self._card_base = self._rng.randrange(_CARD_SPACE)
        self._phone_base = self._rng.randrange(_PHONE_SPACE)
        self._email_counts: dict[str, int] = {}
        self._last_shopper: Shopper | None = None

    @property
    def last_shopper(self) -> Shopper | None:
        """The shopper of the latest journey, for narrating the demo."""
        return self._last_shopper

    def journey(self, kind: JourneyKind | None = None) -> list[dict[str, Any]]:
        """One whole journey of one new shopper, messages in time order.

        `kind` picks the journey (one of `JOURNEYS`); by default it is drawn at random.
        """
        _, timed = self._next_journey(kind)
        return [message for _, message in timed]

    def stream(self, n_shoppers: int | None = None) -> Iterator[dict[str, Any]]:
        """The messages of `n_shoppers` shoppers (endless when None), in timestamp order.

        Journeys overlap in time, so messages are held back until no later shopper can have
        an earlier one: a shopper arrives no earlier than the previous one.
        """
        if n_shoppers is not None and n_shoppers < 0:
            raise ValueError(
                f"n_shoppers must be 0 or more, or None for no end (got {n_shoppers})."
            )
        pending: list[tuple[int, int, dict[str, Any]]] = []
        order = itertools.count()
        made = 0
        while n_shoppers is None or made < n_shoppers:
            start, timed = self._next_journey(None)
            made += 1
            for at, message in timed:
                heapq.heappush(pending, (at, next(order), message))
            while pending and pending[0][0] <= start:
                yield heapq.heappop(pending)[2]
        while pending:
            yield heapq.heappop(pending)[2]

    # --- shoppers and their journeys ------------------------------------------------------

    def _next_journey(
        self, kind: JourneyKind | None
    ) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
        if kind is None:
            kind = self._rng.choices(JOURNEYS, weights=_JOURNEY_WEIGHTS)[0]
        elif kind not in JOURNEYS:
            raise ValueError(f"Unknown journey {kind!r}; choose one of {', '.join(JOURNEYS)}.")
        start = self._clock
        self._clock += self._arrival_gap(start)
        shopper = self._new_shopper(member=kind == "showrooming" or self._rng.random() < 0.75)
        self._last_shopper = shopper
        trip = _Trip(self._rng, shopper, start)
        _WRITERS[kind](self, trip)
        return start, self._with_bad_events(trip.timed)

    def _arrival_gap(self, now: int) -> int:
        """Milliseconds until the next shopper: about three minutes by day, fifteen at night."""
        hour = now % _DAY_MS // 3_600_000
        mean = 180.0 if _OPENS_MS // 3_600_000 - 2 <= hour < _CLOSES_MS // 3_600_000 + 3 else 900.0
        return int(self._rng.expovariate(1 / mean) * 1000)

    def _new_shopper(self, *, member: bool) -> Shopper:
        rng = self._rng
        number = self._shoppers
        self._shoppers += 1
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        local = f"{_slug(first)}.{_slug(last)}"
        seen = self._email_counts.get(local, 0) + 1
        self._email_counts[local] = seen
        email = f"{local}{seen if seen > 1 else ''}@{_EMAIL_DOMAIN}"
        card = (self._card_base + number * _CARD_STEP) % _CARD_SPACE
        phone = (self._phone_base + number * _PHONE_STEP) % _PHONE_SPACE
        platform: Literal["ios", "android"] = "ios" if rng.random() < 0.55 else "android"
        return Shopper(
            user_id=f"cust_{self._user_base + number}",
            first_name=first,
            last_name=last,
            email=email,
            phone=f"+35840{phone:07d}",
            loyalty_card=f"LC{card:08d}" if member else None,
            browser_id=self._uuid(),
            app_anonymous_id=self._uuid(),
            app_device_id=self._uuid().upper()
            if platform == "ios"
            else f"{rng.getrandbits(64):016x}",
            app_platform=platform,
            home_store_id=rng.choice(STORES).id,
        )

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _line(self, product: DemoProduct, quantity: int = 1) -> _Line:
        # Middle sizes sell most.
        sizes = product.sizes
        size = sizes[min(len(sizes) - 1, int(self._rng.triangular(0, len(sizes), len(sizes) / 2)))]
        return _Line(product, size, self._rng.choice(product.colours), quantity)

    def _related(self, product: DemoProduct, count: int) -> list[DemoProduct]:
        """Other products of the same department that a shopper compares with this one."""
        department = product.category.split("/")[0]
        others = [p for p in CATALOGUE if p is not product and p.category.startswith(department)]
        return self._rng.sample(others, min(count, len(others)))

    def _accessory(self) -> DemoProduct:
        return self._rng.choice([p for p in CATALOGUE if p.category.startswith("Asusteet")])

    def _account_traits(self, shopper: Shopper) -> dict[str, Any]:
        rng = self._rng
        traits: dict[str, Any] = {
            "email": shopper.email,
            "firstName": shopper.first_name,
            "lastName": shopper.last_name,
        }
        if rng.random() < 0.6:
            traits["phone"] = shopper.phone
        if shopper.loyalty_card is not None:
            traits["loyalty_card"] = shopper.loyalty_card
        # Shoppers live in their home store's postal code area (the Segment address trait),
        # so "checked stock at a store near home" has a home to measure from.
        home = next(s for s in STORES if s.id == shopper.home_store_id)
        traits["address"] = {"city": home.city, "postalCode": home.postal_code, "country": "FI"}
        traits["consent"] = {
            "marketing": {"email": rng.random() < 0.6, "sms": rng.random() < 0.3},
            "personalisation": rng.random() < 0.8,
        }
        return traits

    def _browse(self, trip: _Trip, *, search: bool, extra: int) -> list[_Line]:
        """Land on the shop, maybe search, and look at a product and `extra` related ones."""
        main = self._rng.choice(CATALOGUE)
        trip.page("/", "Etusivu")
        if search:
            trip.wait(5, 40)
            query = main.search_term
            trip.page("/haku", f"Haku: {query}", search=f"?q={query}")
            trip.web_track("Products Searched", {"query": query})
        viewed: list[_Line] = []
        for product in [main, *self._related(main, extra)]:
            trip.wait(15, 150)
            line = self._line(product)
            trip.page(product.path, product.name, category=product.category)
            trip.web_track("Product Viewed", _product_properties(line))
            viewed.append(line)
        return viewed

    def _login(self, trip: _Trip) -> None:
        trip.wait(10, 90)
        trip.page("/kirjaudu", "Kirjaudu sisään")
        trip.wait(5, 30)
        trip.web_identify(self._account_traits(trip.shopper))

    def _webrooming(self, trip: _Trip) -> None:
        rng = self._rng
        # They research while the stores are open, so the stock check can go to the store's
        # staff (the demo's store-routed signal) at whatever time of day the demo runs.
        trip.into_opening_hours()
        viewed = self._browse(trip, search=rng.random() < 0.8, extra=rng.randint(0, 2))
        chosen = rng.choice(viewed)
        if rng.random() < 0.7:
            self._login(trip)
        chosen = _stocked(chosen)
        home = next(s for s in STORES if s.id == trip.shopper.home_store_id)
        store = home
        for store in _by_distance(home):  # the nearest store with stock is where they go
            trip.wait(10, 60)
            if _check_stock(trip, store, chosen) > 0:
                break
        trip.wait(2 * _HOUR, 3 * _DAY)
        trip.wait_for_opening()
        lines = [chosen]
        if rng.random() < 0.35:
            lines.append(self._line(self._accessory()))
        receipt = f"R-{store.code.upper()}-{self._next_serial()}"
        trip.till_track(
            store,
            rng.randint(1, store.tills),
            trip.new_id(),
            "POS Order Completed",
            {
                "receipt_id": receipt,
                "order_id": receipt,
                **trip.receipt_identity(email_chance=0.3),
                **_order_properties(lines, delivered=False),
                "payment_method": rng.choice(_PAYMENT_METHODS[:2]),
            },
        )

    def _app_checkout(self, trip: _Trip, lines: list[_Line], cart_id: str) -> None:
        order = f"PR{self._next_serial()}"
        checkout = trip.new_id()
        amounts = _order_properties(lines, delivered=True)
        trip.wait(20, 180)
        trip.screen("Kassa")
        trip.app_track(
            "Checkout Started",
            {
                "checkout_id": checkout,
                "order_id": order,
                "cart_id": cart_id,
                "value": amounts["total"],
                **amounts,
            },
        )
        trip.wait(40, 300)
        trip.app_track(
            "Order Completed",
            {
                "checkout_id": checkout,
                "order_id": order,
                "cart_id": cart_id,
                **amounts,
                "payment_method": self._rng.choice(_PAYMENT_METHODS),
            },
        )

    def _showrooming(self, trip: _Trip) -> None:
        rng = self._rng
        store = next(s for s in STORES if s.id == trip.shopper.home_store_id)
        trip.wait_for_opening()
        trip.tablet_track(
            store,
            "Store Visited",
            {
                "store_name": store.name,
                "method": "loyalty_card",
                "loyalty_card": trip.shopper.loyalty_card,
            },
        )
        trip.wait(1 * _HOUR, 2 * _DAY)
        trip.screen("Etusivu")
        trip.wait(5, 30)
        traits = self._account_traits(trip.shopper)
        trip.app_identify(traits)
        main = rng.choice(CATALOGUE)
        lines = [self._line(p) for p in [main, *self._related(main, rng.randint(0, 1))]]
        for line in lines:
            trip.wait(15, 150)
            trip.screen(line.product.name, {"product_id": line.product.id})
            trip.app_track("Product Viewed", _product_properties(line))
        cart_id = trip.new_id()
        bought = lines[: rng.randint(1, len(lines))]
        for line in bought:
            trip.wait(10, 60)
            trip.app_track("Product Added", {"cart_id": cart_id, **_product_properties(line)})
        self._app_checkout(trip, bought, cart_id)

    def _cross_device(self, trip: _Trip) -> None:
        rng = self._rng
        viewed = self._browse(trip, search=rng.random() < 0.5, extra=rng.randint(0, 1))
        cart_id = trip.new_id()
        for line in viewed:
            trip.wait(10, 60)
            trip.web_track("Product Added", {"cart_id": cart_id, **_product_properties(line)})
        self._login(trip)
        trip.wait(30 * 60, 1 * _DAY)
        trip.screen("Etusivu")
        trip.wait(5, 30)
        trip.app_identify(
            {
                "email": trip.shopper.email,
                "firstName": trip.shopper.first_name,
                "lastName": trip.shopper.last_name,
            }
        )
        trip.wait(5, 40)
        trip.screen("Ostoskori")
        amounts = _order_properties(viewed, delivered=True)
        trip.app_track(
            "Cart Viewed",
            {
                "cart_id": cart_id,
                "products": amounts["products"],
                "value": amounts["total"],
                "currency": _CURRENCY,
            },
        )
        self._app_checkout(trip, viewed, cart_id)

    def _abandoner(self, trip: _Trip) -> None:
        rng = self._rng
        viewed = self._browse(trip, search=rng.random() < 0.6, extra=rng.randint(0, 2))
        cart_id = trip.new_id()
        line = rng.choice(viewed)
        trip.wait(10, 60)
        trip.web_track("Product Added", {"cart_id": cart_id, **_product_properties(line)})
        trip.wait(20, 120)
        trip.page("/kassa", "Kassa")
        amounts = _order_properties([line], delivered=True)
        trip.web_track(
            "Checkout Started",
            {
                "order_id": f"PR{self._next_serial()}",
                "cart_id": cart_id,
                "value": amounts["total"],
                **amounts,
            },
        )
        if rng.random() < 0.4:  # typed an email as a guest before leaving
            trip.wait(15, 90)
            consent = {"marketing": {"email": rng.random() < 0.5}}
            trip.web_identify({"email": trip.shopper.email, "consent": consent}, logged_in=False)

    def _returner(self, trip: _Trip) -> None:
        rng = self._rng
        campaign: dict[str, str] | None = None
        if rng.random() < 0.35:
            campaign = {"name": "talvikausi", "source": "uutiskirje", "medium": "email"}
            trip.email_track(
                "Email Link Clicked",
                {
                    "email_id": trip.new_id(),
                    "email_subject": "Talvikausi alkaa: uutuudet esillä",
                    "campaign_id": "nl-2026-11",
                    "campaign_name": "Talvikausi alkaa",
                    "link_url": f"{_SHOP_URL}/?utm_source=uutiskirje&utm_medium=email",
                },
            )
            trip.wait(2, 10)
            trip.page(
                "/", "Etusivu", search="?utm_source=uutiskirje&utm_medium=email", campaign=campaign
            )
        else:
            trip.page("/", "Etusivu")
        main = rng.choice([p for p in CATALOGUE if len(p.sizes) > 1])
        self._login(trip)
        trip.wait(15, 150)
        first = self._line(main)
        trip.page(main.path, main.name, category=main.category)
        trip.web_track("Product Viewed", _product_properties(first))
        # Two sizes of the same product, to keep the one that fits.
        other = main.sizes[(main.sizes.index(first.size) + 1) % len(main.sizes)]
        lines = [first, _Line(main, other, first.colour)]
        if rng.random() < 0.4:
            lines.append(self._line(self._accessory()))
        cart_id = trip.new_id()
        for line in lines:
            trip.wait(10, 60)
            trip.web_track("Product Added", {"cart_id": cart_id, **_product_properties(line)})
        order = f"PR{self._next_serial()}"
        checkout = trip.new_id()
        amounts = _order_properties(lines, delivered=True)
        trip.wait(20, 120)
        trip.page("/kassa", "Kassa")
        trip.web_track(
            "Checkout Started",
            {
                "checkout_id": checkout,
                "order_id": order,
                "cart_id": cart_id,
                "value": amounts["total"],
                **amounts,
            },
        )
        trip.wait(60, 400)
        trip.web_track(
            "Order Completed",
            {
                "checkout_id": checkout,
                "order_id": order,
                "cart_id": cart_id,
                **amounts,
                "payment_method": rng.choice(_PAYMENT_METHODS),
            },
        )

        returned = [lines[rng.randrange(2)]]
        refund = _order_properties(returned, delivered=False)
        store = next(s for s in STORES if s.id == trip.shopper.home_store_id)
        return_id = f"RET{self._next_serial()}"
        returning = {
            "return_id": return_id,
            "order_id": order,
            "products": refund["products"],
            "total": refund["total"],
            "currency": _CURRENCY,
        }
        request = {
            **returning,
            "reason": rng.choice(_RETURN_REASONS),
            "return_method": "store",
            "store_id": store.id,
        }
        trip.wait(2 * _DAY, 8 * _DAY)
        till = rng.randint(1, store.tills)
        session = trip.new_id()
        at_till = trip.receipt_identity(email_chance=0.5)
        if rng.random() < 0.5:  # announced online first, then brought to the store
            trip.page("/tilaukset/palautus", "Palauta tuote")
            trip.web_track("Return Requested", request)
            trip.wait(12 * _HOUR, 3 * _DAY)
            trip.wait_for_opening()
        else:
            trip.wait_for_opening()
            trip.till_track(store, till, session, "Return Requested", {**request, **at_till})
            trip.wait(60, 300)
        trip.till_track(
            store,
            till,
            session,
            "Return Received",
            {**returning, **at_till, "refund_method": "card", "condition": "resellable"},
        )
        trip.wait(5, 40)
        trip.till_track(
            store,
            till,
            session,
            "Order Refunded",
            {
                "order_id": order,
                "return_id": return_id,
                **at_till,
                "total": refund["total"],
                "currency": _CURRENCY,
                "products": refund["products"],
            },
        )

    def _hesitant(self, trip: _Trip) -> None:
        """Comes back to one product again and again, checks that a store near them has it,
        and buys nothing: the moment a store's staff could help (a store-routed signal)."""
        rng = self._rng
        product = rng.choice(CATALOGUE)
        line = self._line(product)
        trip.page("/", "Etusivu")
        if rng.random() < 0.6:
            self._login(trip)
        views = rng.randint(3, 5)
        for view in range(views):
            if view:  # back later the same day, or the next
                trip.wait(20 * 60, 1 * _DAY)
            trip.wait(10, 90)
            trip.page(product.path, product.name, category=product.category)
            trip.web_track("Product Viewed", _product_properties(line))
        home = next(s for s in STORES if s.id == trip.shopper.home_store_id)
        # They check while the stores are open, when a call or a visit could follow: the
        # signal goes to the store's queue at any time of day the demo runs.
        trip.into_opening_hours()
        for store in _by_distance(home):
            if _km(home, store) > _NEARBY_KM:
                break
            trip.wait(10, 60)
            if _check_stock(trip, store, line) > 0:
                break
        if rng.random() < 0.5:  # one more look before leaving
            trip.wait(30, 600)
            trip.page(product.path, product.name, category=product.category)
            trip.web_track("Product Viewed", _product_properties(line))

    # --- deliberately bad messages --------------------------------------------------------

    def _with_bad_events(
        self, timed: list[tuple[int, dict[str, Any]]]
    ) -> list[tuple[int, dict[str, Any]]]:
        if self._bad_event_rate == 0.0:
            return timed
        out: list[tuple[int, dict[str, Any]]] = []
        for at, message in timed:
            out.append((at, message))
            if self._bad_rng.random() < self._bad_event_rate:
                out.append((at, self._spoil(message)))
        return out

    def _spoil(self, message: dict[str, Any]) -> dict[str, Any]:
        """A broken copy of `message`, as a buggy integration would send it."""
        rng = self._bad_rng
        bad = copy.deepcopy(message)
        bad["messageId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        properties = bad.get("properties")
        price = properties.get("price") if isinstance(properties, dict) else None
        if isinstance(properties, dict) and isinstance(price, float) and rng.random() < 0.5:
            properties["price"] = f"{price:.2f}".replace(".", ",")  # Finnish decimal comma
        else:
            bad.pop("userId", None)
            bad.pop("anonymousId", None)
        return bad


_WRITERS: Final = {
    "webrooming": ShopperSimulator._webrooming,
    "showrooming": ShopperSimulator._showrooming,
    "cross_device": ShopperSimulator._cross_device,
    "abandoner": ShopperSimulator._abandoner,
    "returner": ShopperSimulator._returner,
    "hesitant": ShopperSimulator._hesitant,
}


def batches(events: Iterable[dict[str, Any]], size: int = 50) -> Iterator[list[dict[str, Any]]]:
    """Group messages into lists of `size` (the last may be shorter), for ``POST /v1/batch``."""
    if size < 1:
        raise ValueError(f"size must be at least 1 (got {size}).")
    batch: list[dict[str, Any]] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
