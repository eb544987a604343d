"""Segment-compatible collection API: validate, authenticate, stamp and append events."""
