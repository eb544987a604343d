"""Profiles: traits, consent, counters and the cross-channel timeline of each person."""
