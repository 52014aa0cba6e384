"""`bo.logs.redact`: what leaves the process as text carries no password, token or secret setting."""

from __future__ import annotations

import pytest

from bo import logs
from bo.settings import Settings

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(("text", "expected"), [
    ('missing "=" after "postgresql+psycopg://bo:s3cret@127.0.0.1:5432/bo"',
     'missing "=" after "postgresql+psycopg://bo:***@127.0.0.1:5432/bo"'),
    ("host=db password=s3cret user=bo", "host=db password=*** user=bo"),
    ("host=db password='s 3cret' user=bo", "host=db password=*** user=bo"),
    (f"GET /admin/tx/x?access_token={JWT} HTTP/1.1", "GET /admin/tx/x?access_token=*** HTTP/1.1"),
    ("postgresql://bo@db/bo and http://x:80/a@b", "postgresql://bo@db/bo and http://x:80/a@b"),  # nothing secret
])
def test_passwords_and_tokens_are_replaced_and_nothing_else(text: str, expected: str) -> None:
    assert logs.redact(text) == expected


def test_the_processs_secret_settings_are_replaced_wherever_they_appear() -> None:
    logs.redact_secrets_of(Settings(database_url="postgresql://bo:pw-in-a-url-1@db/bo", cursor_secret="c" * 32))
    assert logs.redact("failed with pw-in-a-url-1 and " + "c" * 32) == "failed with *** and ***"


def test_an_empty_secret_setting_masks_nothing() -> None:
    logs.redact_secrets_of(Settings(database_url=""))
    assert logs.redact("an ordinary line") == "an ordinary line"
