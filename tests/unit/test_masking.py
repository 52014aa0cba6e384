"""Personal data is masked as SPEC 6 shows."""

from __future__ import annotations

import pytest

from projections.masking import mask_digits, mask_email, mask_name, mask_payload


@pytest.mark.parametrize(("value", "masked"), [
    ("jane.doe@example.com", "j***@e***.com"),
    ("minji.kim@mail.example.co.kr", "m***@m***.kr"),
    ("no-at-sign", "n***"),
])
def test_email(value: str, masked: str) -> None:
    assert mask_email(value) == masked


def test_phone_and_account_keep_last_four_digits() -> None:
    assert mask_digits("010-1234-5678") == "***-****-5678"
    assert mask_digits("110-222-333444") == "***-****-3444"
    assert mask_digits("12") == "***"


def test_name_keeps_its_first_letter() -> None:
    assert mask_name("Kim Minji") == "K***"


def test_payload_masking_leaves_other_fields() -> None:
    masked = mask_payload({"payer_name": "Kim", "payer_email": 5, "amount": "1"})
    assert masked == {"payer_name": "K***", "payer_email": "***", "amount": "1"}
