"""Omnichannel commerce: catalogue, locations, stock, carts, orders and returns.

See docs/commerce.md.
"""
