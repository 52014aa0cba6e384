"""The pydantic models and `contracts/events.schema.json` classify every message the same way.

Valid in both, or invalid in both naming the same field. Messages that are not JSON are
outside what a JSON Schema can judge; both sides must agree they are not JSON.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from projections.contract import Rejection, ValidEvent, classify, parse_json, validate_document
from tests.conftest import SAMPLES, SCHEMA

VALIDATOR = jsonschema.Draft202012Validator(
    json.loads(SCHEMA.read_text()), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)

LEDGER = {"tx_id": "tx-1", "wallet_id": "w", "entry_type": "DEBIT", "amount": "1.00",
          "currency": "KRW", "status": "POSTED"}
ORDER = {"order_id": "o-1", "wallet_id": "w", "amount": "1", "currency": "USD", "status": "PAID"}


def envelope(payload: dict[str, Any], **fields: Any) -> str:
    return json.dumps({"event_id": "e-1", "event_type": "LedgerEntryUpserted", "payload": payload,
                       **fields})


EXTRA_CASES = [
    envelope(LEDGER),
    envelope({**LEDGER, "unknown_extra": {"kept": True}}),
    envelope({**LEDGER, "amount": 12500.5}),
    envelope({**LEDGER, "amount": -1}),
    envelope({**LEDGER, "amount": "1.123456789"}),
    envelope({**LEDGER, "version": -1}),
    envelope({**LEDGER, "version": "3"}),
    envelope({**LEDGER, "updated_at": "yesterday"}),
    envelope({**LEDGER, "updated_at": "2026-02-05T10:00:00.123+09:00"}),
    envelope({**LEDGER, "related_id": ""}),
    envelope({k: v for k, v in LEDGER.items() if k != "wallet_id"}),
    envelope(ORDER, event_type="PaymentOrderUpserted"),
    envelope({**ORDER, "currency": "US"}, event_type="PaymentOrderUpserted"),
    envelope(LEDGER, schema_version=0),
    envelope(LEDGER, occurred_at="2026-02-05 10:00"),
    envelope(LEDGER, event_id="x" * 65),
    json.dumps({"event_type": "LedgerEntryUpserted", "payload": LEDGER}),
    json.dumps({"event_id": "e-1", "event_type": "LedgerEntryUpserted"}),
    json.dumps({"event_id": "e-1", "event_type": 7, "payload": {}}),
    envelope({**LEDGER, "related_id": None}),
    envelope({**LEDGER, "version": None}),
    envelope({**LEDGER, "updated_at": None}),
    envelope({**ORDER, "payer_email": None}, event_type="PaymentOrderUpserted"),
    envelope({**ORDER, "merchant_id": None}, event_type="PaymentOrderUpserted"),
    envelope(LEDGER, occurred_at=None),
    envelope(LEDGER, schema_version=None),
    envelope({**LEDGER, "amount": True}),
    envelope({**LEDGER, "entry_type": None}),
]

# Where the SPEC's prose is stricter than the JSON Schema, the models follow the SPEC.
STRICTER_THAN_SCHEMA = [
    (envelope({**LEDGER, "amount": 1.123456789}), "payload.amount"),  # > 8 fractional digits
    (envelope({**LEDGER, "amount": 1e19}), "payload.amount"),  # > 18 integer digits
    (envelope({**LEDGER, "updated_at": "9999-12-31T23:59:59-01:00"}), "payload.updated_at"),  # year 10000 UTC
    (envelope({**LEDGER, "status": "POS\u0000TED"}), "payload.status"),  # PostgreSQL text holds no NUL
    # JSON Schema patterns are ECMA-262, where `$` is the end of the text; Python's `re`
    # (used by the jsonschema package) also lets `$` match before a final newline.
    (envelope({**LEDGER, "amount": "12.50\n"}), "payload.amount"),
    (envelope({**LEDGER, "created_at": "2026-02-05T10:00:00Z\n"}), "payload.created_at"),
]


def sample_values() -> list[str]:
    return [json.loads(line)["value"] for line in SAMPLES.read_text().splitlines() if line.strip()]


def schema_verdict(value: str) -> str | None:
    """None when valid; else the dotted path of the offending field ('(root)' at the top)."""
    errors = sorted(VALIDATOR.iter_errors(json.loads(value)), key=lambda e: len(e.absolute_path))
    if not errors:
        return None
    deepest = max(errors, key=lambda e: len(list(e.absolute_path)))
    if deepest.validator in ("if", "allOf"):
        deepest = jsonschema.exceptions.best_match(errors)  # type: ignore[assignment]
    return _field(deepest)


def _field(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        missing = str(error.message).split("'")[1]
        return ".".join([*map(str, error.absolute_path), missing])
    return ".".join(map(str, error.absolute_path)) or "(root)"


def model_verdict(value: str) -> str | None:
    verdict = validate_document(parse_json(value.encode()))
    if isinstance(verdict, ValidEvent):
        return None
    return verdict.detail.split(":", 1)[0]


def is_json(value: str) -> bool:
    try:
        json.loads(value, parse_float=Decimal)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("value", sample_values() + EXTRA_CASES)
def test_models_and_json_schema_agree(value: str) -> None:
    if not is_json(value):
        verdict = classify(value.encode())
        assert isinstance(verdict, Rejection) and verdict.reason == "INVALID_JSON"
        return
    assert model_verdict(value) == schema_verdict(value)


@pytest.mark.parametrize(("value", "field"), STRICTER_THAN_SCHEMA)
def test_models_are_stricter_than_the_schema_only_where_the_spec_says(value: str, field: str) -> None:
    assert schema_verdict(value) is None
    assert model_verdict(value) == field


def test_an_unsupported_schema_version_is_decided_before_the_payload_is_read() -> None:
    v2 = json.dumps({"event_id": "e-2", "event_type": "LedgerEntryUpserted", "schema_version": 2,
                     "payload": {"transaction": {"id": "tx-1"}}})
    verdict = classify(v2.encode())
    assert isinstance(verdict, Rejection)
    assert (verdict.reason, verdict.event_id) == ("UNSUPPORTED_SCHEMA_VERSION", "e-2")


def test_every_sample_that_the_readme_calls_invalid_is_rejected_with_its_reason() -> None:
    reasons = {}
    for value in sample_values():
        verdict = classify(value.encode())
        if isinstance(verdict, Rejection):
            reasons[value[:40]] = (verdict.reason, verdict.detail)
    got = sorted((r, d.split(":", 1)[0]) for r, d in reasons.values())
    assert got == sorted([
        ("INVALID_JSON", "(root)"),
        ("SCHEMA_VIOLATION", "payload.entry_type"),
        ("SCHEMA_VIOLATION", "payload.amount"),
        ("UNKNOWN_EVENT_TYPE", "event_type"),
        ("UNSUPPORTED_SCHEMA_VERSION", "schema_version"),
        ("SCHEMA_VIOLATION", "payload.currency"),
    ])
