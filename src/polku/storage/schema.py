"""Every table of Polku on one `metadata`, for migrations and tests.

Importing the domain packages' ``tables`` modules registers their tables; those modules
import only `polku.storage.metadata`, so this never creates a cycle.
"""

from __future__ import annotations

from polku.access import tables as access_tables
from polku.collect import tables as collect_tables
from polku.commerce.carts import tables as cart_tables
from polku.commerce.catalog import tables as catalog_tables
from polku.commerce.giftcards import tables as giftcard_tables
from polku.commerce.locations import tables as location_tables
from polku.commerce.orders import tables as order_tables
from polku.commerce.returns import tables as return_tables
from polku.commerce.stock import tables as stock_tables
from polku.console import tables as console_tables
from polku.identity import tables as identity_tables
from polku.journeys import tables as journey_tables
from polku.log import tables as log_tables
from polku.profiles import tables as profile_tables
from polku.recommend import tables as recommend_tables
from polku.signals import state as signal_state
from polku.signals import tables as signal_tables
from polku.storage.metadata import metadata

__all__ = ["metadata"]

_REGISTERED = (
    access_tables,
    cart_tables,
    catalog_tables,
    collect_tables,
    console_tables,
    giftcard_tables,
    identity_tables,
    journey_tables,
    location_tables,
    log_tables,
    order_tables,
    profile_tables,
    recommend_tables,
    return_tables,
    signal_state,
    signal_tables,
    stock_tables,
)
