"""Gift cards: a ledger per card (issue, redemptions, expiry, cancellation) and its balance."""
