"""Stores and warehouses: addresses, coordinates, opening hours, nearest and open now."""
