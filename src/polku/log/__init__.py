"""The log: the one durable, ordered record of every event, behind a narrow interface."""
