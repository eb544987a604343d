"""Workspaces, write keys (send events only) and admin tokens (read and manage)."""
