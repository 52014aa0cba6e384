"""Statements of the payment_orders read model; `{table}` is the version's physical table."""

from __future__ import annotations

from psycopg import sql

from projections.keys import NEWER_THAN_STORED

UPSERT_PAYMENT_ORDER = sql.SQL("""
    INSERT INTO {table} AS t (
        order_id, wallet_id, merchant_id, amount, currency, status, status_group,
        payment_method, payer_name_masked, payer_email_masked, payer_phone_masked,
        account_number_masked, created_at, updated_at, version, event_id, ingested_at,
        position, version_missing_cnt, projector_version)
    VALUES (
        %(order_id)s, %(wallet_id)s, %(merchant_id)s, %(amount)s, %(currency)s, %(status)s,
        %(status_group)s, %(payment_method)s, %(payer_name_masked)s, %(payer_email_masked)s,
        %(payer_phone_masked)s, %(account_number_masked)s, %(created_at)s, %(updated_at)s,
        %(version)s, %(event_id)s, %(ingested_at)s, %(position)s, %(version_missing_cnt)s,
        %(projector_version)s)
    ON CONFLICT (order_id) DO UPDATE SET
        wallet_id = EXCLUDED.wallet_id, merchant_id = EXCLUDED.merchant_id,
        amount = EXCLUDED.amount, currency = EXCLUDED.currency, status = EXCLUDED.status,
        status_group = EXCLUDED.status_group, payment_method = EXCLUDED.payment_method,
        payer_name_masked = EXCLUDED.payer_name_masked,
        payer_email_masked = EXCLUDED.payer_email_masked,
        payer_phone_masked = EXCLUDED.payer_phone_masked,
        account_number_masked = EXCLUDED.account_number_masked,
        created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
        version = EXCLUDED.version, event_id = EXCLUDED.event_id,
        ingested_at = EXCLUDED.ingested_at, position = EXCLUDED.position,
        version_missing_cnt = t.version_missing_cnt + EXCLUDED.version_missing_cnt,
        projector_version = EXCLUDED.projector_version
    WHERE {newer}
""")


def upsert_payment_order(table: sql.Identifier) -> sql.Composed:
    return UPSERT_PAYMENT_ORDER.format(table=table, newer=NEWER_THAN_STORED)
