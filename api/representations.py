"""Rows from the read tables → the JSON shapes of SPEC 5 (amounts as strings, times in UTC)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from projections.contract import parse_json
from projections.ledger_entries.queries import has_amount_minor
from projections.masking import mask_payload
from projections.rules import MISSING_ORDER, claims_payment_order


def money(amount: Decimal) -> str:
    """The amount as sent: `12500.00` keeps its scale; never an exponent."""
    return format(amount, "f")


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def source(row: Mapping[str, Any]) -> dict[str, Any]:
    if row["source"] == "backfill":
        return {"position": row["position"], "file": row["source_file"], "line": row["source_line"]}
    return {"position": row["position"], "topic": row["topic"], "partition": row["partition"],
            "offset": row["offset"]}


def ledger_entry(row: Mapping[str, Any], data_lag_sec: float) -> dict[str, Any]:
    """SPEC 5 `GET /admin/tx/{tx_id}`: the entry with its pairing and provenance."""
    return {
        "tx_id": row["tx_id"], "wallet_id": row["wallet_id"], "entry_type": row["entry_type"],
        "amount": money(row["amount"]),
        **({"amount_minor": row["amount_minor"]} if has_amount_minor(row) else {}),
        "currency": row["currency"],
        "status": row["status"], "status_group": row["status_group"],
        "related_id": row["related_id"], "related_type": row["related_type"],
        "created_at": timestamp(row["created_at"]), "updated_at": timestamp(row["updated_at"]),
        "version": row["version"],
        **pairing(row),
        "version_missing_cnt": row["version_missing_cnt"],
        "data_lag_sec": data_lag_sec,
        "source": source(row),
        "projection": {"name": "ledger_entries", "version": row["projector_version"]},
    }


def pairing(row: Mapping[str, Any]) -> dict[str, Any]:
    """pairing_status, paired_tx_id and missing of a ledger entry (SPEC 4.3 and 5)."""
    if not claims_payment_order(row["related_id"], row["related_type"]):
        return {"pairing_status": "UNPAIRED", "paired_tx_id": None, "missing": []}
    if row["pairing_status"] is None:
        # The pairing projector has not applied this entry yet (data_lag_sec > 0).
        other = "CREDIT" if row["entry_type"] == "DEBIT" else "DEBIT"
        return {"pairing_status": "PARTIAL", "paired_tx_id": None,
                "missing": [m for m in MISSING_ORDER if m in ("PAYMENT_ORDER", other)]}
    other_leg = row["credit_tx_id"] if row["entry_type"] == "DEBIT" else row["debit_tx_id"]
    return {"pairing_status": row["pairing_status"], "paired_tx_id": other_leg,
            "missing": list(row["missing"])}


def payment_order(row: Mapping[str, Any]) -> dict[str, Any]:
    """The order as stored: personal data masked (the read table holds nothing else)."""
    return {
        "order_id": row["order_id"], "wallet_id": row["wallet_id"],
        "merchant_id": row["merchant_id"], "amount": money(row["amount"]),
        "currency": row["currency"], "status": row["status"],
        "status_group": row["status_group"], "payment_method": row["payment_method"],
        "payer_name": row["payer_name_masked"], "payer_email": row["payer_email_masked"],
        "payer_phone": row["payer_phone_masked"], "account_number": row["account_number_masked"],
        "created_at": timestamp(row["created_at"]), "updated_at": timestamp(row["updated_at"]),
        "version": row["version"], "version_missing_cnt": row["version_missing_cnt"],
        "source": source(row),
        "projection": {"name": "payment_orders", "version": row["projector_version"]},
    }


def pair(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "pairing_status": row["pairing_status"], "missing": list(row["missing"]),
        "order_present": row["order_present"],
        "debit_tx_id": row["debit_tx_id"], "credit_tx_id": row["credit_tx_id"],
        "first_seen_at": timestamp(row["first_seen_at"]),
        "completed_at": timestamp(row["completed_at"]),
        "projection": {"name": "payment_ledger_pairs", "version": row["projector_version"]},
    }


def history_item(row: Mapping[str, Any], *, unmask: bool = False) -> dict[str, Any]:
    """SPEC 5 history item: where the row came from, what it said (masked unless `unmask`), what became of it."""
    where = source(row)
    del where["position"]
    return {
        "position": row["position"], "source": where, "event_id": row["event_id"],
        "event_type": row["event_type"], "ingested_at": timestamp(row["ingested_at"]),
        "payload": logged_payload(row["raw_value"], unmask=unmask),
        "fate": row["fate"], "reason": row["reason"] if row["fate"] == "DEAD_LETTERED" else None,
        "detail": row["detail"] if row["fate"] == "DEAD_LETTERED" else None,
    }


def logged_payload(raw_value: bytes | None, *, unmask: bool = False) -> Any:
    """The payload as logged, personal fields masked (unless `unmask`); None when the value has none
    (not JSON, no payload object). Numbers with a fraction or an exponent are given as decimal strings, as
    amounts are everywhere in this API: JSON numbers would not keep them exact."""
    try:
        document = parse_json(raw_value)
    except ValueError:
        return None
    payload = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(payload, dict):
        return None
    return _exact(payload if unmask else mask_payload(payload))


def _exact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    return value


def projector_version(row: Mapping[str, Any]) -> dict[str, Any]:
    """One projector version for `GET /admin/projections`."""
    return {
        "name": row["name"], "version": row["version"], "status": row["status"],
        "checkpoint": row["checkpoint"], "head": row["head"], "lag_events": row["lag_events"],
        "lag_seconds": round(float(row["lag_seconds"]), 3), "open_dead_letters": row["open_dead_letters"],
        "build_started_at": timestamp(row["build_started_at"]), "built_at": timestamp(row["built_at"]),
        "activated_at": timestamp(row["activated_at"]), "code_changed": row["code_changed"],
    }


def audit_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """One access of the audit trail (`GET /admin/audit-log`)."""
    return {
        "id": row["id"], "at": timestamp(row["at"]), "actor": row["subject"], "name": row["name"],
        "issuer": row["issuer"], "token_id": row["token_id"], "roles": list(row["roles"]),
        "method": row["method"], "route": row["route"], "path": row["path"], "resource": row["resource"],
        "query": row["query"], "unmask": row["unmask"], "status": row["status"], "result": row["result"],
        "client_ip": row["client_ip"], "user_agent": row["user_agent"], "correlation_id": row["correlation_id"],
        "trace_id": row["trace_id"],
    }
