"""The OpenAPI 3.1 document served at `/openapi.json`, built from the app's own route table.

`ROUTES` is what `create_app` registers (path, resource factory, role, parameters, answer
schema), so a route cannot exist without its description; schemathesis checks, against the
live app, that every answer conforms to the schema written here (tests/integration/
test_openapi.py). Schemas are JSON Schema 2020-12, as OpenAPI 3.1 uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
MONEY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": "decimal, scale as sent"}
PAIRING_STATUS = {"enum": ["COMPLETE", "MISMATCH", "PARTIAL", "UNPAIRED"]}
MISSING = {"type": "array", "items": {"enum": ["PAYMENT_ORDER", "DEBIT", "CREDIT"]}}

SOURCE = {
    "oneOf": [
        {"type": "object", "required": ["topic", "partition", "offset"],
         "properties": {"position": {"type": "integer"}, "topic": {"type": "string"},
                        "partition": {"type": "integer"}, "offset": {"type": "integer"}}},
        {"type": "object", "required": ["file", "line"],
         "properties": {"position": {"type": "integer"}, "file": {"type": "string"}, "line": {"type": "integer"}}},
    ]
}
PROJECTION = {"type": "object", "required": ["name", "version"],
              "properties": {"name": {"type": "string"}, "version": {"type": "integer"}}}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status"],
        "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "detail": {"type": "string"}, "instance": {"type": "string"}},
    },
    "LedgerEntry": {
        "type": "object",
        "required": ["tx_id", "wallet_id", "entry_type", "amount", "currency", "status", "status_group",
                     "related_id", "related_type", "created_at", "updated_at", "version", "pairing_status",
                     "paired_tx_id", "missing", "version_missing_cnt", "data_lag_sec", "source", "projection"],
        "properties": {
            "tx_id": {"type": "string"}, "wallet_id": {"type": "string"}, "entry_type": {"enum": ["DEBIT", "CREDIT"]},
            "amount": MONEY, "amount_minor": {"type": ["integer", "null"], "description": "ledger_entries v2+"},
            "currency": {"type": "string"}, "status": {"type": "string"},
            "status_group": {"enum": ["SUCCESS", "PENDING", "FAILED", "CANCELED", "UNKNOWN"]},
            "related_id": NULLABLE_STRING, "related_type": {"type": "string"},
            "created_at": NULLABLE_TIME, "updated_at": NULLABLE_TIME, "version": {"type": ["integer", "null"]},
            "pairing_status": PAIRING_STATUS, "paired_tx_id": NULLABLE_STRING, "missing": MISSING,
            "version_missing_cnt": {"type": "integer"}, "data_lag_sec": {"type": "number", "minimum": 0},
            "source": SOURCE, "projection": PROJECTION, "as_of": TIME,
        },
    },
    "PaymentOrder": {
        "type": "object",
        "required": ["order_id", "wallet_id", "amount", "currency", "status", "status_group", "source", "projection"],
        "properties": {
            "order_id": {"type": "string"}, "wallet_id": {"type": "string"}, "merchant_id": NULLABLE_STRING,
            "amount": MONEY, "currency": {"type": "string"}, "status": {"type": "string"},
            "status_group": {"type": "string"}, "payment_method": NULLABLE_STRING,
            "payer_name": NULLABLE_STRING, "payer_email": NULLABLE_STRING, "payer_phone": NULLABLE_STRING,
            "account_number": NULLABLE_STRING, "created_at": NULLABLE_TIME, "updated_at": NULLABLE_TIME,
            "version": {"type": ["integer", "null"]}, "version_missing_cnt": {"type": "integer"},
            "source": SOURCE, "projection": PROJECTION,
        },
    },
    "Pair": {
        "type": "object",
        "required": ["pairing_status", "missing", "debit_tx_id", "credit_tx_id", "first_seen_at", "completed_at"],
        "properties": {
            "pairing_status": {"enum": ["COMPLETE", "MISMATCH", "PARTIAL"]}, "missing": MISSING,
            "order_present": {"type": "boolean"}, "debit_tx_id": NULLABLE_STRING, "credit_tx_id": NULLABLE_STRING,
            "first_seen_at": TIME, "completed_at": NULLABLE_TIME, "projection": PROJECTION,
        },
    },
    "PaymentOrderAnswer": {
        "type": "object", "required": ["order_id", "order", "pair", "ledger_entries", "data_lag_sec"],
        "properties": {
            "order_id": {"type": "string"},
            "order": {"oneOf": [{"$ref": "#/components/schemas/PaymentOrder"}, {"type": "null"}]},
            "pair": {"oneOf": [{"$ref": "#/components/schemas/Pair"}, {"type": "null"}]},
            "ledger_entries": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerEntry"}},
            "data_lag_sec": {"type": "number", "minimum": 0}, "as_of": TIME,
        },
    },
    "WalletPage": {
        "type": "object", "required": ["items", "next_cursor", "data_lag_sec"],
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerEntry"}},
                       "next_cursor": NULLABLE_STRING, "data_lag_sec": {"type": "number", "minimum": 0}},
    },
    "HistoryItem": {
        "type": "object",
        "required": ["position", "source", "event_id", "event_type", "ingested_at", "payload", "fate", "reason"],
        "properties": {
            "position": {"type": "integer"}, "source": SOURCE, "event_id": NULLABLE_STRING,
            "event_type": NULLABLE_STRING, "ingested_at": TIME, "payload": {"type": ["object", "null"]},
            "fate": {"enum": ["APPLIED", "SUPERSEDED", "DUPLICATE", "DEAD_LETTERED", None]},
            "reason": NULLABLE_STRING, "detail": NULLABLE_STRING,
        },
    },
    "HistoryPage": {
        "type": "object", "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryItem"}},
                       "next_cursor": NULLABLE_STRING},
    },
    "Projections": {
        "type": "object", "required": ["projectors", "quality"],
        "properties": {
            "projectors": {"type": "array", "items": {
                "type": "object",
                "required": ["name", "version", "status", "checkpoint", "lag_events", "lag_seconds",
                             "open_dead_letters"],
                "properties": {"name": {"type": "string"}, "version": {"type": "integer"},
                               "status": {"enum": ["BUILDING", "READY", "ACTIVE", "RETIRED"]},
                               "checkpoint": {"type": "integer"}, "head": {"type": "integer"},
                               "lag_events": {"type": "integer"}, "lag_seconds": {"type": "number"},
                               "open_dead_letters": {"type": "integer"}, "build_started_at": NULLABLE_TIME,
                               "built_at": NULLABLE_TIME, "activated_at": NULLABLE_TIME,
                               "code_changed": {"type": "boolean"}}}},
            "quality": {"type": "object"},
        },
    },
    "AuditPage": {
        "type": "object", "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "at", "actor", "name", "issuer", "token_id", "roles", "method", "route", "path",
                             "resource", "query", "unmask", "status", "result", "client_ip", "user_agent",
                             "correlation_id", "trace_id"],
                "properties": {"id": {"type": "integer"}, "at": TIME, "actor": NULLABLE_STRING,
                               "name": NULLABLE_STRING, "issuer": NULLABLE_STRING, "token_id": NULLABLE_STRING,
                               "roles": {"type": "array", "items": {"type": "string"}}, "method": {"type": "string"},
                               "route": NULLABLE_STRING, "path": {"type": "string"}, "resource": NULLABLE_STRING,
                               "query": NULLABLE_STRING, "unmask": {"type": "boolean"}, "status": {"type": "integer"},
                               "result": {"enum": ["ALLOWED", "DENIED", "NOT_FOUND", "ERROR"]},
                               "client_ip": NULLABLE_STRING, "user_agent": NULLABLE_STRING,
                               "correlation_id": NULLABLE_STRING, "trace_id": NULLABLE_STRING}}},
            "next_cursor": NULLABLE_STRING,
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}


def _param(name: str, schema: dict[str, Any], description: str, where: str = "query",
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


LIMIT = _param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "page size")
CURSOR = _param("cursor", {"type": "string", "minLength": 1},
                "next_cursor of the previous page (opaque, tamper-evident)")
AS_OF = _param("as_of", {"type": "string", "format": "date-time"},
               "the record as it was at this time (ADMIN_AUDIT)")


UNMASK = _param("unmask", {"enum": ["true", "false"]}, "payer data as logged, unmasked (audited as such)")


@dataclass(frozen=True)
class Route:
    path: str
    summary: str
    answer: str
    role: str | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    not_found: bool = False
    path_parameters: tuple[str, ...] = field(default=())
    media_type: str = "application/json"


ROUTES: tuple[Route, ...] = (
    Route("/admin/tx/{tx_id}", "A ledger entry with its pairing and provenance", "LedgerEntry", "ADMIN_READ",
          (AS_OF,), not_found=True, path_parameters=("tx_id",)),
    Route("/admin/payment-orders/{order_id}", "A payment order (masked), its pair and its ledger entries",
          "PaymentOrderAnswer", "ADMIN_READ", (AS_OF,), not_found=True, path_parameters=("order_id",)),
    Route("/admin/wallets/{wallet_id}/tx", "A wallet's ledger entries, newest first", "WalletPage", "ADMIN_READ",
          (LIMIT, CURSOR,
           _param("status_group", {"enum": ["SUCCESS", "PENDING", "FAILED", "CANCELED", "UNKNOWN"]}, "filter"),
           _param("from", {"type": "string", "format": "date-time"}, "booked at or after"),
           _param("to", {"type": "string", "format": "date-time"}, "booked before")),
          path_parameters=("wallet_id",)),
    Route("/admin/tx/{tx_id}/history", "Every log row about a ledger entry, with its fate", "HistoryPage",
          "ADMIN_AUDIT", (LIMIT, CURSOR, UNMASK), path_parameters=("tx_id",)),
    Route("/admin/payment-orders/{order_id}/history", "Every log row about a payment order, with its fate",
          "HistoryPage", "ADMIN_AUDIT", (LIMIT, CURSOR, UNMASK), path_parameters=("order_id",)),
    Route("/admin/projections", "Projector versions: checkpoints, lag, dead letters", "Projections", "ADMIN_READ"),
    Route("/admin/audit-log", "The access audit trail, newest first", "AuditPage", "ADMIN_AUDIT",
          (LIMIT, CURSOR, _param("actor", {"type": "string"}, "only this actor"),
           _param("resource", {"type": "string"}, "only this resource, e.g. tx:tx-1d"),
           _param("from", {"type": "string", "format": "date-time"}, "at or after"),
           _param("to", {"type": "string", "format": "date-time"}, "before"))),
    Route("/metrics", "Prometheus text format: projector lag, dead letters, pairing quality", "",
          media_type="text/plain"),
    Route("/healthz", "Liveness", "Health"),
    Route("/readyz", "Readiness: database reachable, migrations current", "Health"),
)


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                               "schema": {"type": "integer", "minimum": 1}}}


def document() -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    paths: dict[str, Any] = {}
    for route in ROUTES:
        responses: dict[str, Any] = {
            "200": {"description": "OK", "content": {
                route.media_type: {"schema": {"$ref": f"#/components/schemas/{route.answer}"}}
                if route.answer else {"schema": {"type": "string"}}}},
            "400": {"description": "a bad parameter", "content": problem},
            "404": {"description": "not found", "content": problem},
            "405": {"description": "method not allowed", "content": problem},
            "406": {"description": "the client accepts no JSON", "content": problem},
            "500": {"description": "failure (logged with the correlation id)", "content": problem},
        }
        if route.role:
            responses["401"] = {"description": "no or bad credentials", "content": problem, "headers": {
                "WWW-Authenticate": {"description": "the Bearer challenge", "schema": {"type": "string"}}}}
            responses["403"] = {"description": f"the {route.role} role is required", "content": problem}
        if route.path == "/readyz":
            responses["503"] = {"description": "not ready: why, in `detail`", "content": problem,
                                "headers": RETRY_AFTER}
        elif route.path != "/healthz":
            responses["503"] = {"description": "the database is unavailable; retry after the given seconds",
                                "content": problem, "headers": RETRY_AFTER}
        parameters = [_param(name, {"type": "string", "minLength": 1}, name, "path", required=True)
                      for name in route.path_parameters] + list(route.parameters)
        paths[route.path] = {"get": {
            "summary": route.summary, "operationId": _operation_id(route.path), "parameters": parameters,
            "responses": responses,
            **({"x-role": route.role, "security": [{"bearer": []}]} if route.role else {}),
        }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "bo admin API", "version": "1",
                 "description": "Look-ups for admins, history and point-in-time state for auditors (SPEC 5)."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "a JWT of the OIDC issuer (RS256, PS256, ES256 or EdDSA) with the route's role"}}},
    }


def _operation_id(path: str) -> str:
    words = [w.strip("{}") for w in path.strip("/").replace("-", "_").split("/")]
    return "get_" + "_".join(words)
