"""Identity resolution: which person each event belongs to, with merges that can be undone."""
