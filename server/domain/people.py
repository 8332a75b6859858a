"""People and organisations: the rules for names, emails, codes and passwords."""

from __future__ import annotations

import re

from server.domain.errors import InvalidInput

_EMAIL = re.compile(r"^[^@\s<>\"'(),;:\\\[\]]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_ORG_CODE = re.compile(r"^[A-Z0-9]{2,12}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def normalise_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidInput(f"This is not an email address: {raw.strip()[:60]!r}")
    return email


def check_name(raw: str, what: str = "name", maximum: int = 200) -> str:
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput(f"A {what} is required")
    if len(name) > maximum:
        raise InvalidInput(f"The {what} is longer than {maximum} characters")
    if any(ord(c) < 32 for c in name):
        raise InvalidInput(f"The {what} contains control characters")
    return name


def check_org_code(raw: str) -> str:
    code = raw.strip().upper()
    if not _ORG_CODE.fullmatch(code):
        raise InvalidInput("An organisation code is 2 to 12 letters or digits, e.g. CAM")
    return code


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"A password needs at least {MIN_PASSWORD} characters; choose a longer one"
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"A password can have at most {MAX_PASSWORD} characters")
    return password
