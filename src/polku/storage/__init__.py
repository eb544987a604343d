"""State: table metadata, the database engine (SQLite or PostgreSQL) and migrations."""
