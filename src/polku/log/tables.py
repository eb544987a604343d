"""Tables of the SQL log backend: the events themselves and each consumer's checkpoint."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from polku.storage.metadata import OffsetType, metadata

__all__ = ["checkpoints", "leases", "log_events", "outbox", "workers"]

log_events = Table(
    "log_events",
    metadata,
    Column("offset", OffsetType, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), nullable=False),
    Column("source_id", String(64), nullable=False, default=""),
    Column("message_id", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("event", String(200), nullable=True),
    Column("partition_key", String(300), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # The NATS log's partition the event came from (0 in the embedded mode, which has one).
    Column("partition", Integer, nullable=False, server_default="0"),
    UniqueConstraint("workspace_id", "message_id"),
)
Index("ix_log_events_received_at", log_events.c.received_at)
# Workers read one partition in order; the embedded mode has one partition and no need for it.
Index("ix_log_events_partition_offset", log_events.c.partition, log_events.c.offset).ddl_if(
    dialect="postgresql"
)

checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)

leases = Table(
    "pipeline_leases",
    metadata,
    # One row per partition of the NATS log, made by `polku migrate`: the set of rows is the
    # partition count every process checks itself against.
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(200), nullable=True),
    # Grows by one at every change of owner: names the owner's JetStream consumer, so a worker
    # that lost the partition without knowing it never reads from its successor's consumer.
    Column("epoch", BigInteger, nullable=False, server_default="0"),
    Column("expires_at", BigInteger, nullable=False, server_default="0"),  # database clock, ms
)

workers = Table(
    "pipeline_workers",
    metadata,
    Column("worker_id", String(200), primary_key=True),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),  # database clock, ms
    Column("partitions", String(2000), nullable=False, server_default=""),
)

outbox = Table(
    "log_outbox",
    metadata,
    # Events decided inside a database transaction in the production mode, waiting to be
    # published to the NATS log (see polku.log.outbox); empty in the embedded mode.
    Column("id", OffsetType, primary_key=True, autoincrement=True),
    Column("partition", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # epoch ms, the recording process's clock
    Column("workspace_id", String(64), nullable=False),
    Column("source_id", String(64), nullable=False, default=""),
    Column("message_id", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("event", String(200), nullable=True),
    Column("partition_key", String(300), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
)
Index("ix_log_outbox_partition_id", outbox.c.partition, outbox.c.id)
