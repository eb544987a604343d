"""Stock per SKU and location: levels, movements, reservations, availability."""
