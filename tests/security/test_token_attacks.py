"""Attacks on the bearer token, through the real WSGI app against a real issuer on loopback.

Each forged or broken token gets a 401 problem+json that says nothing about the resource,
and a valid token still works after every one of them.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Iterator
from hashlib import sha256
from typing import Any

import falcon.testing
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.app import AppDeps, create_app
from api.auth import BearerTokens
from api.tokens import JwksCache, TokenVerifier, jwks_fetcher
from bo.migrate import schema_expectation
from eventstore.db import open_pool
from tests.conftest import SAMPLES
from tests.integration.helpers import append_all, runner, sample_records
from tests.oidc import Issuer

PATH = "/admin/tx/tx-1d"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.close()


@pytest.fixture(scope="module")
def client(database_url: str, issuer: Issuer) -> Iterator[falcon.testing.TestClient]:
    append_all(database_url, sample_records(SAMPLES))
    runner(database_url).catch_up()
    pool = open_pool(database_url)
    verifier = TokenVerifier(issuer=issuer.url, audience=issuer.audience, leeway_s=5,
                             keys=JwksCache(jwks_fetcher(jwks_url=None, issuer=issuer.url)))
    client = falcon.testing.TestClient(create_app(AppDeps(
        pool=pool, authenticator=BearerTokens(verifier), cursor_secret=b"x" * 32, schema=schema_expectation())))
    client.audit_url = database_url  # type: ignore[attr-defined]
    yield client
    pool.close()


def audit_rows(client: falcon.testing.TestClient) -> int:
    with psycopg.connect(client.audit_url) as conn:  # type: ignore[attr-defined]
        row = conn.execute("SELECT count(*) FROM bo.audit_log").fetchone()
    return int(row[0]) if row else 0


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header))}.{b64(json.dumps(claims))}.{b64(signature)}"


def call(client: falcon.testing.TestClient, token: str | None, path: str = PATH) -> falcon.testing.Result:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.simulate_get(path, headers=headers)


def assert_refused(client: falcon.testing.TestClient, issuer: Issuer, token: str | None,
                   status: int = 401) -> None:
    """Refused with `status`, exactly one audit row for it, and a valid token still works (its own row)."""
    before = audit_rows(client)
    result = call(client, token)
    assert audit_rows(client) == before + 1
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert "tx-1d" not in result.text.replace(PATH, "")  # nothing about the resource
    if status == 401:
        assert result.headers["www-authenticate"].startswith('Bearer realm="bo"')
    assert call(client, issuer.token("ES256")).status_code == 200  # a valid token still works


def signed_raw(issuer: Issuer, claims: dict[str, Any]) -> str:
    """Claims PyJWT would refuse to encode (an `iss` list), signed by the issuer's ES256 key."""
    kid = issuer.kid_for("ES256")
    return jwt.api_jws.encode(json.dumps(claims).encode(), issuer.keys[kid][1], algorithm="ES256",
                              headers={"kid": kid})


def forged(issuer: Issuer, **header: Any) -> str:
    """A token signed by the issuer's ES256 key, with header fields added or replaced."""
    return issuer.token("ES256", headers=header)


def test_a_valid_token_of_each_algorithm_is_accepted(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    for alg in ("RS256", "PS256", "ES256", "EdDSA"):
        assert call(client, issuer.token(alg)).status_code == 200, alg


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer", "Token abc"])
def test_a_missing_or_malformed_authorization_header_is_401(
        client: falcon.testing.TestClient, issuer: Issuer, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    result = client.simulate_get(PATH, headers=headers)
    assert result.status_code == 401 and result.headers["content-type"] == "application/problem+json"
    assert call(client, issuer.token("ES256")).status_code == 200


def test_malformed_truncated_and_unsigned_tokens_are_401(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    good = issuer.token("ES256")
    head, body, signature = good.split(".")
    for token in ("garbage", "a.b", "a.b.c.d", f"{head}.{body}", f"{head}.{body}.", good[:-10], f"{head}..{signature}",
                  f"{head}.{body}.{signature[::-1]}", "." * 2, f"{head}.{b64('not json')}.{signature}"):
        assert_refused(client, issuer, token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_spelling_is_401(client: falcon.testing.TestClient, issuer: Issuer, alg: str) -> None:
    claims = issuer.claims()
    kid = issuer.kid_for("ES256")
    assert_refused(client, issuer, compact({"alg": alg, "typ": "JWT", "kid": kid}, claims))
    assert_refused(client, issuer, compact({"alg": alg, "typ": "JWT", "kid": kid}, claims, b"x"))


def test_hs256_signed_with_the_public_key_in_pem_or_jwk_form_is_401(
        client: falcon.testing.TestClient, issuer: Issuer) -> None:
    kid = issuer.kid_for("RS256")
    public = issuer.keys[kid][1].public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk = json.dumps(next(k for k in issuer.jwks()["keys"] if k["kid"] == kid)).encode()
    for secret in (pem, jwk):
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        signing_input = f"{b64(json.dumps(header))}.{b64(json.dumps(issuer.claims()))}"
        signature = hmac.new(secret, signing_input.encode(), sha256).digest()
        assert_refused(client, issuer, f"{signing_input}.{b64(signature)}")
    for alg in ("HS384", "HS512", "RS512", "ES384", "PS512", "rs256", "es256"):
        assert_refused(client, issuer, compact({"alg": alg, "kid": kid}, issuer.claims(), b"sig"))


def test_an_ecdsa_signature_of_zeros_is_401(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    """CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify."""
    kid = issuer.kid_for("ES256")
    assert_refused(client, issuer, compact({"alg": "ES256", "kid": kid}, issuer.claims(), bytes(64)))


def test_a_token_signed_on_another_curve_or_by_another_key_is_401(
        client: falcon.testing.TestClient, issuer: Issuer) -> None:
    kid = issuer.kid_for("ES256")
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert_refused(client, issuer, jwt.encode(issuer.claims(), p384, algorithm="ES384", headers={"kid": kid}))
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert_refused(client, issuer, jwt.encode(issuer.claims(), stranger, algorithm="ES256", headers={"kid": kid}))
    # the RSA key's kid with an ES256 signature: the algorithm does not fit the key
    assert_refused(client, issuer, jwt.encode(issuer.claims(), stranger, algorithm="ES256",
                                              headers={"kid": issuer.kid_for("RS256")}))


def test_expired_not_yet_valid_and_future_iat_tokens_are_401(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    now = int(time.time())
    for claims in ({"exp": now - 60}, {"nbf": now + 600}, {"iat": now + 600}, {"exp": None}, {"exp": "tomorrow"},
                   {"iat": "yesterday"}):
        assert_refused(client, issuer, issuer.token("ES256", **claims))


def test_a_wrong_partial_or_missing_issuer_or_audience_is_401(
        client: falcon.testing.TestClient, issuer: Issuer) -> None:
    assert_refused(client, issuer, signed_raw(issuer, {**issuer.claims(), "iss": [issuer.url]}))
    for claims in ({"iss": "https://evil.example"}, {"iss": issuer.url + "/"}, {"iss": issuer.url[:-1]},
                   {"iss": None}, {"aud": "another-api"}, {"aud": None},
                   {"aud": ["another-api"]}, {"aud": issuer.audience + "x"}, {"sub": None}, {"sub": ""}):
        assert_refused(client, issuer, issuer.token("ES256", **claims))
    assert call(client, issuer.token("ES256", aud=["another-api", issuer.audience])).status_code == 200


def test_unknown_traversing_or_injected_kids_are_401(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    for kid in ("unknown", "../../etc/passwd", "' OR '1'='1", "x" * 300, ""):
        assert_refused(client, issuer, forged(issuer, kid=kid))
    assert_refused(client, issuer, compact({"alg": "ES256"}, issuer.claims(), b"sig"))  # no kid


def test_keys_offered_by_the_token_are_never_used_or_fetched(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key()))
    fetches = issuer.jwks_fetches
    for header in ({"jwk": attacker_jwk}, {"jku": issuer.jwks_url}, {"x5u": issuer.jwks_url + "?x"},
                   {"x5c": ["MIIB"]}):
        token = jwt.encode(issuer.claims(), attacker, algorithm="ES256", headers={"kid": "attacker", **header})
        assert_refused(client, issuer, token)
        assert_refused(client, issuer, forged(issuer, **header))  # even with the issuer's own signature
    assert issuer.jwks_fetches <= fetches + 1  # at most the one refresh an unknown kid may cause


def test_an_unknown_crit_jwe_and_nested_jwts_are_401(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    assert_refused(client, issuer, forged(issuer, crit=["exp"], exp=1))
    assert_refused(client, issuer, forged(issuer, crit=["b64"], b64=False))
    jwe = ".".join(b64(part) for part in ('{"alg":"RSA-OAEP","enc":"A256GCM"}', "k", "iv", "ct", "tag"))
    assert_refused(client, issuer, jwe)
    inner = issuer.token("ES256")
    kid = issuer.kid_for("ES256")
    nested = jwt.encode({"token": inner}, issuer.keys[kid][1], algorithm="ES256", headers={"kid": kid, "cty": "JWT"})
    assert_refused(client, issuer, nested)


def test_a_100_kb_token_is_refused_before_anything_is_parsed(client: falcon.testing.TestClient, issuer: Issuer) -> None:
    assert_refused(client, issuer, issuer.token("ES256", padding="x" * 100_000))


def test_a_tampered_role_claim_is_401_and_a_role_in_the_wrong_claim_is_403(
        client: falcon.testing.TestClient, issuer: Issuer) -> None:
    head, body, signature = issuer.token("ES256", roles=["ADMIN_READ"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["roles"] = ["ADMIN_READ", "ADMIN_AUDIT"]
    assert_refused(client, issuer, f"{head}.{b64(json.dumps(claims))}.{signature}")
    in_wrong_claim = issuer.token("ES256", roles=None, groups=["ADMIN_READ"])
    assert_refused(client, issuer, in_wrong_claim, status=403)
    assert_refused(client, issuer, issuer.token("ES256", roles=["admin_read"]), status=403)  # exact case


def test_a_reader_is_refused_auditor_routes_with_403_whether_or_not_the_record_exists(
        client: falcon.testing.TestClient, issuer: Issuer) -> None:
    reader = issuer.token("ES256", roles=["ADMIN_READ"])
    for path in ("/admin/tx/tx-1c/history", "/admin/tx/nope/history", "/admin/audit-log",
                 "/admin/payment-orders/ord-1/history", f"{PATH}?as_of=2026-01-01T00:00:00Z"):
        route, _, query = path.partition("?")
        result = client.simulate_get(route, query_string=query, headers={"Authorization": f"Bearer {reader}"})
        assert result.status_code == 403 and result.json["detail"] == "the ADMIN_AUDIT role is required", path
    auditor_only = issuer.token("ES256", roles=["ADMIN_AUDIT"])
    assert call(client, auditor_only).status_code == 403  # ADMIN_AUDIT does not imply ADMIN_READ
    assert call(client, auditor_only, "/admin/tx/tx-1c/history").status_code == 200


def test_anonymous_requests_to_unknown_admin_routes_are_401_not_404(
        client: falcon.testing.TestClient, issuer: Issuer) -> None:
    assert call(client, None, "/admin/nothing-here").status_code == 401
    assert call(client, None, "/admin/tx/tx-1d/../../etc/passwd").status_code == 401
    assert call(client, issuer.token("ES256"), "/admin/nothing-here").status_code == 404


def test_a_doubled_slash_or_a_nul_in_the_path_is_still_authenticated_and_audited(
        client: falcon.testing.TestClient, issuer: Issuer) -> None:
    for path in ("//admin/tx/tx-1d", "///admin/audit-log", "/admin/tx/%00", "/admin/tx/\x00x"):
        before = audit_rows(client)
        assert call(client, None, path).status_code == 401, path
        assert audit_rows(client) == before + 1, path
    before = audit_rows(client)
    result = call(client, issuer.token("ES256"), "/admin/tx/a\x00b")
    assert result.status_code == 400 and result.json["detail"] == "tx_id: contains a NUL character"
    assert audit_rows(client) == before + 1
    result = client.simulate_get("/admin/wallets/w-payer/tx", query_string="status_group=%00",
                                 headers={"Authorization": f"Bearer {issuer.token('ES256')}"})
    assert result.status_code == 400


@pytest.mark.parametrize("evil", ["' OR '1'='1", "1; DROP TABLE bo.event_log; --", "../../etc/passwd", "..%2F..%2F",
                                  "%27%20OR%201=1", "$(id)", "\\", "tx-1d' --", "😀" * 70])
def test_sql_metacharacters_and_path_traversal_in_ids_and_queries_are_harmless(
        client: falcon.testing.TestClient, issuer: Issuer, evil: str) -> None:
    token = {"Authorization": f"Bearer {issuer.token('ES256')}"}
    for route in ("/admin/tx/{}", "/admin/payment-orders/{}", "/admin/wallets/{}/tx", "/admin/tx/{}/history",
                  "/admin/payment-orders/{}/history"):
        before = audit_rows(client)
        result = client.simulate_get(route.format(evil), headers=token)
        assert result.status_code in (200, 404), (route, result.text)
        assert audit_rows(client) == before + 1
    for name in ("status_group", "from", "cursor", "limit", "actor", "resource"):
        path = "/admin/audit-log" if name in ("actor", "resource") else "/admin/wallets/w-payer/tx"
        result = client.simulate_get(path, params={name: evil}, headers=token)
        assert result.status_code in (200, 400), (name, result.text)
    with psycopg.connect(client.audit_url) as conn:  # type: ignore[attr-defined]
        assert conn.execute("SELECT count(*) FROM bo.event_log").fetchone() != (0,)
