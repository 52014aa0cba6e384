"""Bearer tokens: verifying an OIDC issuer's JWTs (SPEC 6), and the cache of its signing keys.

A token is accepted only when all of this holds, checked in this order (cheap and
attacker-controlled things first, the signature before any claim is trusted):

1. it is at most `MAX_TOKEN_BYTES` long and a 3-part compact JWS of base64url segments with
   a non-empty signature (no JWE, no unsecured JWT);
2. its header names an algorithm from the exact-case allow-list (RS256, PS256, ES256, EdDSA:
   never `none`, never HS*), a `kid`, no `jku`, `x5u`, `jwk` or `x5c` (keys come from the
   issuer's JWKS only, never from the token), no `crit` (bo understands no extension), and is
   not a nested JWT (`cty: JWT`);
3. the `kid` is one of the issuer's keys, whose type fits the algorithm; the signature
   verifies with that key and that algorithm (PyJWT does the cryptography);
4. `iss` equals the issuer exactly, `aud` names the audience (a list is fine), `exp` is
   present and not past, `nbf` and `iat` are not in the future, each with `leeway_s`.

Keys (`JwksCache`) are fetched once per miss by one thread (the others wait for its answer),
with a timeout; an unknown `kid` refreshes them at most once per cool-down and is then
remembered as unknown for a while, so a flood of random kids cannot hammer the issuer or
the API; a failed refresh keeps the last good keys; new keys are picked up without a restart,
and keys older than ten minutes are fetched again in the background, so a withdrawn key
stops being trusted.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt
from jwt import PyJWK

log = logging.getLogger(__name__)

ALGORITHMS: Final = ("RS256", "PS256", "ES256", "EdDSA")
# Which key type (and curve) each allowed algorithm needs.
_KEY_TYPES: Final = {"RS256": ("RSA", None), "PS256": ("RSA", None), "ES256": ("EC", "P-256"),
                     "EdDSA": ("OKP", "Ed25519")}
MAX_TOKEN_BYTES: Final = 8192
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_FORBIDDEN_HEADERS: Final = ("jku", "x5u", "jwk", "x5c", "crit")
MAX_JWKS_BYTES: Final = 1024 * 1024
FETCH_TIMEOUT_S: Final = 5.0
MAX_REMEMBERED_TOKENS: Final = 4096


class TokenError(Exception):
    """Why a token is refused. Never carries the token itself."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    issuer: str
    claims: Mapping[str, Any]

    @property
    def name(self) -> str | None:
        for claim in ("name", "preferred_username"):
            value = self.claims.get(claim)
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def token_id(self) -> str | None:
        for claim in ("jti", "uti"):  # uti: Entra ID's token id
            value = self.claims.get(claim)
            if isinstance(value, str) and value:
                return value
        return None

    def claim_at(self, path: str) -> Any:
        """The claim at a dotted path (`roles`, `realm_access.roles`), or None."""
        value: Any = self.claims
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value


@dataclass(frozen=True, slots=True)
class _Verified:
    token: VerifiedToken
    kid: str
    jwk: dict[str, Any]
    expires: float


class KeySource:
    """Where verification finds a signing key by `kid` (a JWKS cache, or a fixed set)."""

    def key(self, kid: str) -> dict[str, Any] | None:
        raise NotImplementedError


class StaticKeys(KeySource):
    """A fixed JWKS (the development issuer's public keys)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = _signing_keys(jwks)

    def key(self, kid: str) -> dict[str, Any] | None:
        return self._keys.get(kid)


class JwksCache(KeySource):
    """The issuer's keys, fetched on a miss, at most once per cool-down (see module docstring)."""

    def __init__(self, fetch: Callable[[], Mapping[str, Any]], *, cooldown_s: float = 30.0,
                 unknown_ttl_s: float = 300.0, max_age_s: float = 600.0, clock: Callable[[], float] = time.monotonic,
                 deadline_s: float = FETCH_TIMEOUT_S) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._deadline_s = deadline_s
        self._cooldown_s = cooldown_s
        self._unknown_ttl_s = unknown_ttl_s
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._unknown: dict[str, float] = {}  # kid -> when it was found unknown
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str) -> dict[str, Any] | None:
        found = self._keys.get(kid)
        if found is not None:
            self._refresh_if_old()
            return found
        if self._known_unknown(kid):
            return None
        with self._lock:  # single flight: whoever holds the lock fetches, the others then look again
            found = self._keys.get(kid)
            if found is not None:
                return found
            refreshed = self._may_refresh() and self._refresh()
            found = self._keys.get(kid)
            if found is None and refreshed:  # unknown to keys fetched just now, not merely not fetched yet
                self._remember_unknown(kid)
            return found

    def _refresh_if_old(self) -> None:
        """Keys older than `max_age_s` are fetched again in the background, so that a key the
        issuer has withdrawn stops being trusted; requests go on with the keys at hand."""
        if self._fetched_at is None or self._clock() - self._fetched_at < self._max_age_s:
            return
        if not self._lock.acquire(blocking=False):  # a fetch is under way
            return
        if self._fetched_at is not None and self._clock() - self._fetched_at < self._max_age_s:
            self._lock.release()  # another thread refreshed them meanwhile
            return

        def refresh() -> None:
            try:
                self._refresh()
            finally:
                self._lock.release()

        try:
            threading.Thread(target=refresh, name="jwks-refresh", daemon=True).start()
        except BaseException:
            self._lock.release()  # no thread: never leave the lock held
            raise

    def _known_unknown(self, kid: str) -> bool:
        seen = self._unknown.get(kid)
        return seen is not None and self._clock() - seen < self._unknown_ttl_s

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._cooldown_s

    def _refresh(self) -> bool:
        """Fetch the keys; False (keeping the last good ones) when the issuer fails or has none."""
        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            keys = _signing_keys(_within(self._fetch, self._deadline_s))
            if not keys:
                raise TokenError("the JWKS has no usable signing key")
        except Exception as exc:  # the issuer is down or answered nonsense: keep the last good keys
            log.warning("issuer keys could not be refreshed; keeping the last good ones",
                        extra={"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                               "keys": len(self._keys)})
            return False
        # A key the issuer still publishes unchanged stays the same object, so the tokens it
        # verified stay remembered (TokenVerifier.verify); a withdrawn or replaced one does not.
        self._keys = {kid: self._keys[kid] if self._keys.get(kid) == jwk else jwk for kid, jwk in keys.items()}
        self._unknown = {kid: at for kid, at in self._unknown.items() if kid not in keys}
        return True

    def _remember_unknown(self, kid: str) -> None:
        if len(self._unknown) >= 10_000:  # bounded: drop the oldest half
            for old in sorted(self._unknown, key=self._unknown.__getitem__)[:5_000]:
                del self._unknown[old]
        self._unknown[kid] = self._clock()


def _within(fetch: Callable[[], Mapping[str, Any]], seconds: float) -> Mapping[str, Any]:
    """`fetch()`, but give up after `seconds` in all (DNS, connect, a slow drip): the request
    that waits for the keys is answered in time; the fetch ends on its own socket timeouts."""
    answer: list[Mapping[str, Any]] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            answer.append(fetch())
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    worker = threading.Thread(target=run, name="jwks-fetch", daemon=True)
    worker.start()
    worker.join(seconds)
    if failure:
        raise failure[0]
    if not answer:
        raise TokenError(f"the issuer's keys took longer than {seconds} s")
    return answer[0]


def _signing_keys(jwks: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The JWKS's asymmetric signature keys by kid (symmetric and encryption keys are dropped)."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise TokenError("the JWKS has no keys list")
    usable: dict[str, dict[str, Any]] = {}
    for jwk in keys:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("kty") not in ("RSA", "EC", "OKP") or jwk.get("use", "sig") != "sig":
            continue
        usable[jwk["kid"]] = jwk
    return usable


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        raise TokenError("the issuer answered with a redirect: refused")


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch_json(url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> dict[str, Any]:
    """GET a small JSON document (discovery, JWKS): at most `timeout_s` in all, at most 1 MiB,
    no redirects."""
    if not url.startswith(("https://", "http://")):
        raise TokenError(f"not an http(s) URL: {url!r}")
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (checked above)
    body = b""
    with _OPENER.open(request, timeout=timeout_s) as answer:
        while len(body) <= MAX_JWKS_BYTES:
            if time.monotonic() > deadline:  # a slow drip: each read has its own timeout, the whole too
                raise TokenError(f"{url} took longer than {timeout_s} s")
            chunk = answer.read1(65536)
            if not chunk:
                break
            body += chunk
    if len(body) > MAX_JWKS_BYTES:
        raise TokenError(f"{url} answered more than {MAX_JWKS_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise TokenError(f"{url} answered no JSON object")
    return document


def jwks_fetcher(*, jwks_url: str | None, issuer: str | None, timeout_s: float = FETCH_TIMEOUT_S,
                 require_https: bool = False) -> Callable[[], Mapping[str, Any]]:
    """Fetch the JWKS from `jwks_url`, or from the `jwks_uri` of the issuer's discovery document
    (whose `issuer` must be the configured one, exactly, as OpenID Connect Discovery requires)."""
    if jwks_url:
        url = jwks_url
        return lambda: fetch_json(url, timeout_s=timeout_s)
    if not issuer:
        raise TokenError("set BO_OIDC_JWKS_URL or BO_OIDC_ISSUER")
    discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"

    def fetch() -> Mapping[str, Any]:
        started = time.monotonic()
        document = fetch_json(discovery, timeout_s=timeout_s)
        if document.get("issuer") != issuer:
            raise TokenError(f"{discovery} names another issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or (require_https and not uri.startswith("https://")):
            raise TokenError(f"{discovery} names no usable jwks_uri")
        return fetch_json(uri, timeout_s=max(0.1, timeout_s - (time.monotonic() - started)))

    return fetch


class TokenVerifier:
    """Verifies one issuer's tokens for one audience (see the module docstring for the rules)."""

    def __init__(self, *, issuer: str, audience: str, keys: KeySource, leeway_s: float = 30.0,
                 algorithms: tuple[str, ...] = ALGORITHMS) -> None:
        unknown = set(algorithms) - set(_KEY_TYPES)
        if unknown:
            raise ValueError(f"algorithms not allowed: {sorted(unknown)}")
        self.issuer, self.audience, self.keys = issuer, audience, keys
        self.leeway_s, self.algorithms = leeway_s, algorithms
        # Parsed keys by (kid, alg), with the JWK they were parsed from: a refresh that brings
        # another JWK for the kid replaces it. Parsing a JWK costs more than checking a signature.
        self._parsed: dict[tuple[str, str], tuple[dict[str, Any], PyJWK]] = {}
        # Tokens that verified, with the JWK that verified them (see `verify`).
        self._verified: dict[str, _Verified] = {}

    def verify(self, token: str) -> VerifiedToken:
        """The token's claims if it passes every check, else `TokenError`.

        A token that verified is remembered, by its exact text (signature included), with the
        JWK that verified it. The same text again is accepted without a second signature
        check while it has not expired and the issuer's keys still hold that very JWK (a
        refresh that drops or replaces the key forgets it). Every other check cannot change
        its answer for the same text as time goes on. Failures are never remembered.
        """
        remembered = self._verified.get(token)
        if remembered is not None and self._still_valid(remembered):
            return remembered.token
        verified, kid, jwk = self._verify(token)
        if len(self._verified) >= MAX_REMEMBERED_TOKENS:  # only the issuer can mint these; still bounded
            self._verified.clear()
        self._verified[token] = _Verified(verified, kid, jwk, int(verified.claims["exp"]))  # PyJWT's int(exp)
        return verified

    def _still_valid(self, remembered: _Verified) -> bool:
        return time.time() < remembered.expires + self.leeway_s and self.keys.key(remembered.kid) is remembered.jwk

    def _verify(self, token: str) -> tuple[VerifiedToken, str, dict[str, Any]]:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        if not _COMPACT_JWS.fullmatch(token):
            raise TokenError("the token is not a signed JWT (three base64url parts)")
        header = self._header(token)
        alg, kid = header["alg"], header["kid"]
        jwk, key = self._key(kid, alg)
        try:
            claims = jwt.decode(
                token, key=key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True, "verify_exp": True,
                         "verify_nbf": True, "verify_iat": True, "verify_aud": True, "verify_iss": True},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token does not verify: {type(exc).__name__}") from None
        self._check_issued_at(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenError("the token names no subject")
        return VerifiedToken(subject=subject, issuer=self.issuer, claims=claims), kid, jwk

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("the token's header is not readable") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:  # exact case: `none`, `None`, HS256 …
            raise TokenError("the token's algorithm is not allowed")
        forbidden = [name for name in _FORBIDDEN_HEADERS if name in header]
        if forbidden:
            raise TokenError(f"the token's header has {', '.join(forbidden)}: refused")
        if str(header.get("cty", "")).upper() == "JWT":
            raise TokenError("nested JWTs are refused")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise TokenError("the token names no usable key id")
        return header

    def _key(self, kid: str, alg: str) -> tuple[dict[str, Any], PyJWK]:
        jwk = self.keys.key(kid)
        if jwk is None:
            raise TokenError("the token's key is not one of the issuer's")
        kty, crv = _KEY_TYPES[alg]
        if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
            raise TokenError("the token's algorithm does not fit its key")
        if "alg" in jwk and jwk["alg"] != alg:
            raise TokenError("the token's algorithm is not its key's")
        cached = self._parsed.get((kid, alg))
        if cached is not None and cached[0] is jwk:
            return cached
        try:
            parsed = PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError:
            raise TokenError("the issuer's key is not usable") from None
        if len(self._parsed) >= 1000:  # issuers have a handful of keys; never grow without bound
            self._parsed.clear()
        self._parsed[(kid, alg)] = (jwk, parsed)
        return jwk, parsed

    def _check_issued_at(self, claims: Mapping[str, Any]) -> None:
        issued = claims.get("iat")
        if issued is None:
            return
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            raise TokenError("the token's iat is not a number")
        if issued > time.time() + self.leeway_s:
            raise TokenError("the token was issued in the future")
