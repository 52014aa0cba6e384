"""Payment orders, v1: one row per order_id; payer data kept only in its masked form."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from projections.contract import PaymentOrderPayload
from projections.contract_sql import mask_digits_sql, mask_email_sql, mask_name_sql, status_group_sql
from projections.masking import mask_digits, mask_email, mask_name
from projections.newest_wins_projector import NewestWinsProjector
from projections.payment_orders.sql import upsert_payment_order
from projections.projector import LoggedEvent
from projections.rules import status_group


class PaymentOrdersV1(NewestWinsProjector):
    """Payment orders, v1."""

    name = "payment_orders"
    version = 1
    handles = frozenset({"PaymentOrderUpserted"})
    id_column = "order_id"

    def entity_id(self, event: LoggedEvent) -> str:
        return _payload(event).order_id

    def upsert(self) -> sql.Composed:
        return upsert_payment_order(self.table())

    def row_sql(self) -> dict[str, sql.Composable]:
        def b(column: str) -> sql.Composed:
            return sql.SQL("b.{c}").format(c=sql.Identifier(column))

        return {
            "order_id": b("entity_id"), "wallet_id": b("wallet_id"), "merchant_id": b("merchant_id"),
            "amount": b("amount"), "currency": b("currency"), "status": b("status"),
            "status_group": status_group_sql(b("status")), "payment_method": b("payment_method"),
            "payer_name_masked": mask_name_sql(b("payer_name")),
            "payer_email_masked": mask_email_sql(b("payer_email")),
            "payer_phone_masked": mask_digits_sql(b("payer_phone")),
            "account_number_masked": mask_digits_sql(b("account_number")),
            "created_at": b("created_at"), "updated_at": b("updated_at"), "version": b("version"),
            "event_id": b("event_id"), "ingested_at": b("ingested_at"), "position": b("position"),
            "version_missing_cnt": sql.SQL("j.unversioned::integer"),
            "projector_version": sql.Literal(self.version),
        }

    def row(self, event: LoggedEvent, unversioned_applied: int) -> dict[str, Any]:
        p = _payload(event)
        return {
            "order_id": p.order_id, "wallet_id": p.wallet_id, "merchant_id": p.merchant_id,
            "amount": p.amount, "currency": p.currency, "status": p.status,
            "status_group": status_group(p.status), "payment_method": p.payment_method,
            "payer_name_masked": mask_name(p.payer_name),
            "payer_email_masked": mask_email(p.payer_email),
            "payer_phone_masked": mask_digits(p.payer_phone),
            "account_number_masked": mask_digits(p.account_number),
            "created_at": p.created_at, "updated_at": p.updated_at, "version": p.version,
            "event_id": event.event.envelope.event_id, "ingested_at": event.ingested_at,
            "position": event.position, "version_missing_cnt": unversioned_applied,
            "projector_version": self.version,
        }


def _payload(event: LoggedEvent) -> PaymentOrderPayload:
    payload = event.event.payload
    assert isinstance(payload, PaymentOrderPayload)
    return payload
