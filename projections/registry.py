"""Every projector version declared in code, and which of them the database says should run."""

from __future__ import annotations

from projections.errors import UnknownProjectorError
from projections.ledger_entries.v1 import LedgerEntriesV1
from projections.pairs.v1 import PaymentLedgerPairsV1
from projections.payment_orders.v1 import PaymentOrdersV1
from projections.projector import DictCursor, Projector
from projections.sql import SELECT_RUNNING_VERSIONS

DECLARED: tuple[type[Projector], ...] = (LedgerEntriesV1, PaymentOrdersV1, PaymentLedgerPairsV1)


def declared(name: str, version: int) -> Projector:
    for cls in DECLARED:
        if cls.name == name and cls.version == version:
            return cls()
    raise UnknownProjectorError(name, version)


def running(cur: DictCursor) -> list[Projector]:
    """The ACTIVE and BUILDING versions, as registered in `bo.projectors`."""
    return [declared(r["name"], r["version"]) for r in cur.execute(SELECT_RUNNING_VERSIONS).fetchall()]
