"""The identity graph: profiles' identities, identifiers, which profile each event belongs
to, the merge ledger, and pairs that an un-merge keeps apart."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Table, Text

from polku.storage.metadata import OffsetType, metadata

__all__ = ["event_profiles", "identifiers", "merge_blocks", "merges", "profile_ids"]

profile_ids = Table(
    "identity_profiles",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("workspace_id", String(64), nullable=False),
    Column("merged_into", String(64), nullable=True),  # set while merged into another profile
    Column("created_at", BigInteger, nullable=False),  # event time of the first event
    Column("created_offset", BigInteger, nullable=False),
)

identifiers = Table(
    "identity_identifiers",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("id_type", String(64), primary_key=True),
    Column("value", String(300), primary_key=True),
    Column("profile_id", String(64), nullable=False),
    Column("shared", Boolean, nullable=False, default=False),
    Column("first_seen", BigInteger, nullable=False),
    Column("added_offset", BigInteger, nullable=False),
)
# (workspace, profile): a profile's identifiers, which resolution checks limits against
# (with the profile alone, SQLite scanned the workspace's primary-key range instead).
Index(
    "ix_identity_identifiers_workspace_profile",
    identifiers.c.workspace_id,
    identifiers.c.profile_id,
)

event_profiles = Table(
    "identity_event_profiles",
    metadata,
    Column("offset", OffsetType, primary_key=True, autoincrement=False),
    Column("workspace_id", String(64), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("event", String(200), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("store_id", String(100), nullable=True),
)
Index(
    "ix_identity_event_profiles_profile_ts",
    event_profiles.c.profile_id,
    event_profiles.c.timestamp,
    event_profiles.c.offset,
)

merges = Table(
    "identity_merges",
    metadata,
    # deterministic (derived from the evidence event) so a replay rebuilds the same ids
    Column("merge_id", String(40), primary_key=True),
    Column("workspace_id", String(64), nullable=False),
    Column("winner_id", String(64), nullable=False),
    Column("loser_id", String(64), nullable=False),
    Column("evidence_offset", BigInteger, nullable=False),
    Column("evidence_message_id", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("identifiers", Text, nullable=False),  # JSON: the loser's identifiers at merge time
    Column("merged_at", BigInteger, nullable=False),  # event time of the evidence
    Column("undone_at", BigInteger, nullable=True),
    Column("undone_offset", BigInteger, nullable=True),
)
Index("ix_identity_merges_winner", merges.c.winner_id)
Index("ix_identity_merges_loser", merges.c.loser_id)
Index("ix_identity_merges_evidence", merges.c.evidence_offset)

merge_blocks = Table(
    "identity_merge_blocks",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("profile_a", String(64), primary_key=True),
    Column("profile_b", String(64), primary_key=True),
    Column("merge_id", String(40), nullable=False),
)
