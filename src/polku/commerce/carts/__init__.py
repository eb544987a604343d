"""Carts across devices: one cart per person, kept from the cart events Polku records."""
