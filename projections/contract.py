"""The topic contract (SPEC section 2) as pydantic models, and the classification of a log row.

`classify(raw_value)` answers either a `ValidEvent` or a `Rejection` with a reason code
of SPEC 4.4 and a detail naming the offending field. The models mirror
`contracts/events.schema.json`; a contract test holds the two to the same verdicts.
Numbers are parsed as Decimal, so money is never a float.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from eventstore import jsontext

EVENT_TYPES = ("LedgerEntryUpserted", "PaymentOrderUpserted")
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_AMOUNT_TEXT = re.compile(r"[0-9]{1,18}(\.[0-9]{1,8})?")


def _timestamp(value: object) -> datetime:
    """RFC 3339 with an offset, within years 1–9999 in UTC (what bo can store and compare).

    Fractions finer than a microsecond are truncated to the microsecond.
    """
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset")
    try:
        parsed = datetime.fromisoformat(value.upper())
        parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError("must be a valid RFC 3339 timestamp within years 1-9999 UTC") from exc
    return parsed


def _not_null(value: object) -> object:
    # The JSON Schema types optional fields without null: absent is fine, null is not.
    if value is None:
        raise ValueError("must not be null (leave the field out instead)")
    return value


NOT_NULL = BeforeValidator(_not_null)


def _amount(value: object) -> Decimal:
    """A JSON string or number, >= 0, at most 18 integer and 8 fractional digits, exact."""
    if isinstance(value, str):
        if not _AMOUNT_TEXT.fullmatch(value):
            raise ValueError("must be a non-negative decimal with at most 18 integer and 8 fractional digits")
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError("must be a decimal string or a JSON number")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be greater than or equal to 0")
    _sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    fraction = max(0, -exponent)
    integer = max(0, len(digits) + exponent)
    if fraction > 8 or integer > 18:
        raise ValueError("must have at most 18 integer and 8 fractional digits")
    return amount


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; such an event is kept in the log and dead-lettered.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _upper3(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError("must be an ISO 4217 code of 3 upper-case letters")
    return value


Text = Annotated[StrictStr, AfterValidator(_no_nul)]
NonEmptyText = Annotated[StrictStr, Field(min_length=1), AfterValidator(_no_nul)]
Id = Annotated[StrictStr, Field(min_length=1, max_length=64), AfterValidator(_no_nul)]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
Amount = Annotated[Decimal, BeforeValidator(_amount)]
Currency = Annotated[StrictStr, AfterValidator(_upper3)]
Version = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]  # stored as bigint


class _Payload(BaseModel):
    # Unknown fields are allowed (kept in the log) and ignored by projectors.
    model_config = ConfigDict(extra="allow", frozen=True)


class LedgerEntryPayload(_Payload):
    tx_id: Id
    wallet_id: Id
    entry_type: Literal["DEBIT", "CREDIT"]
    amount: Amount
    currency: Currency
    status: NonEmptyText
    related_id: Annotated[Id | None, NOT_NULL] = None
    related_type: Annotated[NonEmptyText | None, NOT_NULL] = None
    created_at: Annotated[Timestamp | None, NOT_NULL] = None
    updated_at: Annotated[Timestamp | None, NOT_NULL] = None
    version: Annotated[Version | None, NOT_NULL] = None


class PaymentOrderPayload(_Payload):
    order_id: Id
    wallet_id: Id
    merchant_id: Annotated[Id | None, NOT_NULL] = None
    amount: Amount
    currency: Currency
    status: NonEmptyText
    payment_method: Annotated[Text | None, NOT_NULL] = None
    payer_name: Annotated[Text | None, NOT_NULL] = None
    payer_email: Annotated[Text | None, NOT_NULL] = None
    payer_phone: Annotated[Text | None, NOT_NULL] = None
    account_number: Annotated[Text | None, NOT_NULL] = None
    created_at: Annotated[Timestamp | None, NOT_NULL] = None
    updated_at: Annotated[Timestamp | None, NOT_NULL] = None
    version: Annotated[Version | None, NOT_NULL] = None


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: Id
    event_type: Literal["LedgerEntryUpserted", "PaymentOrderUpserted"]
    schema_version: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] = 1
    occurred_at: Annotated[Timestamp | None, NOT_NULL] = None
    payload: dict[str, Any]


PAYLOAD_MODELS: dict[str, type[LedgerEntryPayload] | type[PaymentOrderPayload]] = {
    "LedgerEntryUpserted": LedgerEntryPayload,
    "PaymentOrderUpserted": PaymentOrderPayload,
}


@dataclass(frozen=True, slots=True)
class ValidEvent:
    envelope: Envelope
    payload: LedgerEntryPayload | PaymentOrderPayload

    @property
    def payload_sha256(self) -> bytes:
        """Computed when asked: only a repeated event_id needs it (duplicate or conflict)."""
        return payload_digest(self.envelope.payload)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    event_id: str | None = None


def parse_json(raw: bytes | None) -> Any:
    """The value as strict JSON with numbers as Decimal; raises ValueError when it is not JSON."""
    if raw is None:
        raise ValueError("the message has no value")
    try:
        return jsontext.parse(raw.decode("utf-8")).value
    except UnicodeDecodeError as exc:
        raise ValueError(f"the value is not UTF-8 ({exc.reason} at byte {exc.start})") from exc


def validate_document(document: object) -> ValidEvent | Rejection:
    """The contract of SPEC 2 alone: what the JSON Schema says (schema_version >= 1 is valid)."""
    if not isinstance(document, dict):
        return Rejection("SCHEMA_VIOLATION", "(root): the value must be a JSON object")
    event_id = reported_event_id(document.get("event_id"))
    if "event_type" in document and document["event_type"] not in EVENT_TYPES:
        return Rejection("UNKNOWN_EVENT_TYPE",
                         f"event_type: {str(document['event_type'])[:80]!r} is not one of "
                         f"{', '.join(EVENT_TYPES)}", event_id)
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        return Rejection("SCHEMA_VIOLATION", _describe(exc, ""), event_id)
    try:
        payload = PAYLOAD_MODELS[envelope.event_type].model_validate(envelope.payload)
    except ValidationError as exc:
        return Rejection("SCHEMA_VIOLATION", _describe(exc, "payload."), event_id)
    return ValidEvent(envelope, payload)


def classify(raw_value: bytes | None) -> ValidEvent | Rejection:
    """What a version-1 projector makes of a log row's value (SPEC 4.4 reason codes)."""
    try:
        document = parse_json(raw_value)
    except ValueError as exc:
        return Rejection("INVALID_JSON", f"(root): not valid JSON: {str(exc)[:200]}")
    unsupported = _unsupported_version(document)
    return unsupported or validate_document(document)


def _unsupported_version(document: Any) -> Rejection | None:
    """A known event type with a well-formed schema_version this code does not read.

    Decided before the payload is checked: a version-2 payload is not a v1 violation.
    """
    if not isinstance(document, dict) or document.get("event_type") not in EVENT_TYPES:
        return None
    version = document.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return None
    if version in SUPPORTED_SCHEMA_VERSIONS:
        return None
    event_id = reported_event_id(document.get("event_id"))
    supported = sorted(SUPPORTED_SCHEMA_VERSIONS)
    return Rejection("UNSUPPORTED_SCHEMA_VERSION",
                     f"schema_version: {version} is not supported (supported: {supported})",
                     event_id)


def reported_event_id(value: object) -> str | None:
    """The event_id a rejection names, when it is one a table can hold (1-64 characters, no NUL):
    a rejected message must not be able to make its own dead letter fail to insert."""
    if isinstance(value, str) and 0 < len(value) <= 64 and "\x00" not in value:
        return value
    return None


def payload_digest(payload: dict[str, Any]) -> bytes:
    """SHA-256 of the payload in canonical JSON: equal payloads give equal digests."""
    return hashlib.sha256(jsontext.canonical(payload).encode("utf-8")).digest()


def _describe(exc: ValidationError, prefix: str) -> str:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "(root)"
    return f"{prefix}{field}: {first['msg']}"
