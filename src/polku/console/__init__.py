"""The console: the web workspace of marketers, customer-service agents and store staff.

Users with roles (`roles.py`), argon2 passwords (`passwords.py`), server-side sessions with
CSRF tokens (`actions.py`, `queries.py`), and server-rendered pages (`pages.py`, Jinja2
templates in `templates/`, a small script in `static/`). See docs/console.md.
"""
