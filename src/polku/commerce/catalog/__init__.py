"""The catalogue: products and their variants (SKUs), import, and the shop's search box."""
