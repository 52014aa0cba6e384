"""Projector checkpoints through eventsourcing's `PostgresTrackingRecorder`.

The table `bo.projection_tracking` has the library's single-row tracking shape (made by
our migration, not by the library). Each projector version tracks under
`<name>:v<version>`. `record` writes the checkpoint with the library's own statement
(`INSERT … ON CONFLICT … WHERE notification_id < new`) on the cursor of the batch's
transaction, the pattern of the library's `PostgresFtsView.insert_pages_with_tracking`:
read-table changes and checkpoint commit together, and a second runner that tried
to record the same or an older position fails instead of double-applying.
"""

from __future__ import annotations

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import ConnectionPool, PostgresDatastore, PostgresTrackingRecorder
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

from eventstore.db import KEEPALIVES, SESSION_OPTIONS, connection_kwargs
from projections.projector import DictCursor

TRACKING_TABLE = "projection_tracking"

# The furthest any projector version has applied the log (the library's '__migration__' row,
# which only marks the table's shape, is no projector's).
SELECT_HIGHEST_CHECKPOINT = """
    SELECT coalesce(max(t.notification_id), 0) AS position
      FROM bo.projectors p
      JOIN bo.projection_tracking t ON t.application_name = p.name || ':v' || p.version
"""


def highest_checkpoint(cur: DictCursor) -> int:
    """The highest checkpoint among the registered projector versions (0 before any)."""
    row = cur.execute(SELECT_HIGHEST_CHECKPOINT).fetchone()
    return int(row["position"]) if row else 0


def datastore_for(url: str, *, pool_size: int = 2) -> PostgresDatastore:
    """eventsourcing's datastore (transactions, error translation) for the bo schema.

    The library builds its pool from dbname/host/port/user/password only; bo replaces it
    with the same kind of pool built from the whole URL, so that parameters such as
    `sslmode` in BO_DATABASE_URL are honoured. The library's connection set-up
    (autocommit, idle-in-transaction timeout) is kept.
    """
    params = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(params.get("dbname", "postgres")),
        host=str(params.get("host", "localhost")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "postgres")),
        password=str(params.get("password", "")),
        schema="bo",
        pre_ping=True,
    )
    datastore.pool = ConnectionPool(
        url,
        connection_class=Connection[DictRow],
        kwargs=lambda: connection_kwargs(row_factory=dict_row, connect_timeout=5, options=SESSION_OPTIONS,
                                         **KEEPALIVES),
        min_size=pool_size,
        max_size=pool_size + 2,
        open=False,
        configure=datastore.after_connect_func(),
        check=ConnectionPool.check_connection,
        timeout=5.0,
        name="projections",
    )
    return datastore


class CheckpointStore(PostgresTrackingRecorder):
    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)

    def record(self, cur: DictCursor, tracking_name: str, position: int) -> None:
        self._insert_tracking(cur, Tracking(tracking_name, position))

    def checkpoint_in(self, cur: DictCursor, tracking_name: str) -> int:
        position = self._max_tracking_id(tracking_name, cur)
        return int(position) if position is not None else 0

    def checkpoint(self, tracking_name: str) -> int:
        position = self.max_tracking_id(tracking_name)
        return int(position) if position is not None else 0
