"""Simulated shoppers for `polku demo`: deterministic Segment events from a small Finnish shop."""
