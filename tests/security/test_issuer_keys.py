"""Tokens of a real OIDC issuer on loopback: every allowed algorithm, discovery, key rotation,
an unreachable or slow issuer, and a flood of unknown key ids that cannot hammer it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from api.tokens import JwksCache, TokenError, TokenVerifier, jwks_fetcher
from tests.oidc import Issuer


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(issuer: Issuer, cache: JwksCache) -> TokenVerifier:
    return TokenVerifier(issuer=issuer.url, audience=issuer.audience, keys=cache, leeway_s=5)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_a_token_of_each_allowed_algorithm_verifies_with_keys_from_discovery(issuer: Issuer, alg: str) -> None:
    cache = JwksCache(jwks_fetcher(jwks_url=None, issuer=issuer.url))
    verified = verifier(issuer, cache).verify(issuer.token(alg))
    assert (verified.subject, verified.issuer, verified.name) == ("alice", issuer.url, "Alice Auditor")
    assert verified.token_id and verified.claim_at("roles") == ["ADMIN_READ", "ADMIN_AUDIT"]


def test_keys_are_fetched_once_and_reused(issuer: Issuer) -> None:
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None))
    check = verifier(issuer, cache)
    for _ in range(20):
        check.verify(issuer.token("ES256"))
    assert issuer.jwks_fetches == 1


def test_a_rotated_key_is_picked_up_without_a_restart_after_the_cool_down(issuer: Issuer) -> None:
    clock = Clock()
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None), cooldown_s=30, clock=clock)
    check = verifier(issuer, cache)
    check.verify(issuer.token("ES256"))
    new_kid = issuer.rotate()
    clock.now += 31
    assert check.verify(issuer.token("ES256", kid=new_kid)).subject == "alice"
    assert issuer.jwks_fetches == 2


def test_a_thousand_random_kids_cause_at_most_one_fetch_per_cool_down_and_valid_tokens_still_work(
        issuer: Issuer) -> None:
    clock = Clock()
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None), cooldown_s=30, clock=clock)
    check = verifier(issuer, cache)
    valid = issuer.token("ES256")
    check.verify(valid)
    errors: list[str] = []
    refused = 0
    lock = threading.Lock()

    def attack(n: int) -> None:
        nonlocal refused
        for i in range(n):
            try:
                check.verify(issuer.token("ES256", headers={"kid": uuid.uuid4().hex}))
            except TokenError:
                with lock:
                    refused += 1
            if i % 25 == 0:
                try:
                    check.verify(valid)
                except TokenError as exc:
                    errors.append(str(exc))

    clock.now += 31  # the cool-down after the first fetch is over: one refresh is allowed
    threads = [threading.Thread(target=attack, args=(125,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refused == 1000 and not errors
    assert issuer.jwks_fetches == 2  # the first fetch, then one refresh for the whole flood


def test_an_unreachable_issuer_refuses_unknown_keys_and_keeps_the_last_good_ones(issuer: Issuer) -> None:
    clock = Clock()
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None, timeout_s=1), cooldown_s=30, clock=clock)
    check = verifier(issuer, cache)
    known = issuer.token("RS256")
    check.verify(known)
    issuer.close()
    clock.now += 31
    with pytest.raises(TokenError):
        check.verify(issuer.token("ES256", headers={"kid": "rotated-away"}))
    assert check.verify(known).subject == "alice"


def test_a_slow_issuer_costs_at_most_the_fetch_timeout(issuer: Issuer) -> None:
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None, timeout_s=1))
    check = verifier(issuer, cache)
    issuer.delay_s = 4
    started = time.monotonic()
    with pytest.raises(TokenError):
        check.verify(issuer.token("ES256"))
    assert time.monotonic() - started < 3
    issuer.delay_s = 0


def test_an_issuer_answering_errors_keeps_the_last_good_keys(issuer: Issuer) -> None:
    clock = Clock()
    cache = JwksCache(jwks_fetcher(jwks_url=None, issuer=issuer.url), cooldown_s=30, clock=clock)
    check = verifier(issuer, cache)
    known = issuer.token("EdDSA")
    check.verify(known)
    issuer.failing = True
    clock.now += 31
    with pytest.raises(TokenError):
        check.verify(issuer.token("ES256", headers={"kid": "new"}))
    assert check.verify(known).subject == "alice"


def test_an_issuer_down_at_the_first_fetch_is_asked_again_after_the_cool_down(issuer: Issuer) -> None:
    clock = Clock()
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None), cooldown_s=30, clock=clock)
    check = verifier(issuer, cache)
    valid = issuer.token("ES256")
    issuer.failing = True
    with pytest.raises(TokenError):
        check.verify(valid)
    issuer.failing = False
    clock.now += 31
    assert check.verify(valid).subject == "alice"  # not remembered as unknown after a failed fetch


def test_a_new_kid_seen_during_the_cool_down_is_accepted_once_it_is_over(issuer: Issuer) -> None:
    clock = Clock()
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None), cooldown_s=30, clock=clock)
    check = verifier(issuer, cache)
    check.verify(issuer.token("ES256"))
    new_kid = issuer.add_key("ES256")
    clock.now += 5
    with pytest.raises(TokenError):
        check.verify(issuer.token("ES256", kid=new_kid))  # within the cool-down: no fetch
    clock.now += 30
    assert check.verify(issuer.token("ES256", kid=new_kid)).subject == "alice"
    assert issuer.jwks_fetches == 2


def test_a_redirecting_issuer_is_not_followed(issuer: Issuer) -> None:
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None))
    issuer.redirect_to = "http://127.0.0.1:9/jwks"
    with pytest.raises(TokenError):
        verifier(issuer, cache).verify(issuer.token("ES256"))


def test_discovery_naming_another_issuer_is_refused(issuer: Issuer) -> None:
    issuer.claimed_issuer = "https://login.example/other-tenant"
    cache = JwksCache(jwks_fetcher(jwks_url=None, issuer=issuer.url))
    with pytest.raises(TokenError):
        verifier(issuer, cache).verify(issuer.token("ES256"))
    assert issuer.jwks_fetches == 0


def test_a_slow_drip_of_keys_costs_at_most_the_deadline(issuer: Issuer) -> None:
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None, timeout_s=5), deadline_s=1.5)
    issuer.drip_s = 0.05  # each byte in time for the socket timeout; the whole answer far too slow
    started = time.monotonic()
    with pytest.raises(TokenError):
        verifier(issuer, cache).verify(issuer.token("ES256"))
    assert time.monotonic() - started < 3


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_remembered_token_is_refused_once_the_issuer_withdraws_its_key(issuer: Issuer) -> None:
    clock = Clock()
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None), max_age_s=600, clock=clock)
    check = verifier(issuer, cache)
    token = issuer.token("ES256")
    check.verify(token)
    check.verify(token)  # remembered: no second fetch, no second signature check
    assert issuer.jwks_fetches == 1
    issuer.rotate()  # the key that signed `token` is withdrawn (say, it leaked)
    clock.now += 601
    check.verify(token)  # still the keys at hand: this request does not wait for the issuer ...
    wait_for(lambda: issuer.jwks_fetches == 2)  # ... the refresh runs beside it
    wait_for(lambda: cache.key(issuer.kid_for("ES256")) is not None)
    with pytest.raises(TokenError, match="not one of the issuer's"):
        check.verify(token)


def test_a_remembered_token_is_refused_once_it_expires(issuer: Issuer) -> None:
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None))
    check = TokenVerifier(issuer=issuer.url, audience=issuer.audience, keys=cache, leeway_s=0)
    token = issuer.token("ES256", exp=int(time.time()) + 1)
    check.verify(token)
    time.sleep(2.1)
    with pytest.raises(TokenError):
        check.verify(token)


def test_a_refused_token_is_never_remembered(issuer: Issuer) -> None:
    cache = JwksCache(jwks_fetcher(jwks_url=issuer.jwks_url, issuer=None))
    check = verifier(issuer, cache)
    token = issuer.token("ES256")
    header, claims, signature = token.split(".")
    tampered = f"{header}.{claims}.{signature[:-4]}AAAA"
    for _ in range(3):
        with pytest.raises(TokenError):
            check.verify(tampered)
    assert check.verify(token).subject == "alice"
