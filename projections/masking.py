"""Masking of personal data (SPEC 6): what the read tables keep and the API shows by default."""

from __future__ import annotations

import re

PERSONAL_FIELDS = ("payer_name", "payer_email", "payer_phone", "account_number")


def mask_name(name: str | None) -> str | None:
    """First letter of the name: `Kim Minji` → `K***`."""
    if name is None:
        return None
    stripped = name.strip()
    return f"{stripped[0]}***" if stripped else "***"


def mask_email(email: str | None) -> str | None:
    """`jane.doe@example.com` → `j***@e***.com`."""
    if email is None:
        return None
    local, at, domain = email.partition("@")
    if not at:
        return mask_name(email)
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    masked_domain = f"{host[:1]}***" + (f".{tld}" if tld else "")
    return f"{local[:1]}***@{masked_domain}"


def mask_digits(value: str | None) -> str | None:
    """Phone and account numbers keep their last four digits: `***-****-5678`."""
    if value is None:
        return None
    digits = re.sub(r"\D", "", value)
    return f"***-****-{digits[-4:]}" if len(digits) >= 4 else "***"


MASKS = {
    "payer_name": mask_name,
    "payer_email": mask_email,
    "payer_phone": mask_digits,
    "account_number": mask_digits,
}


def mask_payload(payload: dict[str, object]) -> dict[str, object]:
    """A copy of a payload with every personal field masked (non-strings masked whole)."""
    masked = dict(payload)
    for name, mask in MASKS.items():
        if name in masked and masked[name] is not None:
            value = masked[name]
            masked[name] = mask(value) if isinstance(value, str) else "***"
    return masked
