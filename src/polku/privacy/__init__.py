"""Privacy: what Polku refuses to keep (card numbers), and, later, deletion and its ledger."""
