"""Polku: omnichannel customer-journey platform."""

__version__ = "0.1.0"
