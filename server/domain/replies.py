"""Personal reply addresses: ``reply+<random>.<key id>.<mac>@<reply domain>``, and bounce
addresses ``bounce+<participant id>.<key id>.<mac>@<reply domain>`` (the envelope sender of
notification mail, so a delivery failure says whose address failed).

The random part is stored with its scope (participant, DPIA, section) and expiry; the MAC
is an HMAC-SHA256 of ``<key id>.<random>`` under a key derived from the server's secret,
so a leaked database yields no working address, and keys rotate by id. Everything is
lower-case base32: mail systems may change the case of a local part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from server.domain.errors import InvalidToken

_ADDRESS = re.compile(r"^reply\+([a-z2-7]{26})\.([a-z0-9]{1,8})\.([a-z2-7]{26})@(.+)$")
_BOUNCE = re.compile(r"^bounce\+([0-9]{1,12})\.([a-z0-9]{1,8})\.([a-z2-7]{26})@(.+)$")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


@dataclass(frozen=True, slots=True)
class ReplyAddress:
    token: str
    key_id: str
    address: str


class ReplyKeys:
    """Makes and checks reply addresses; the first key id is used for new addresses."""

    def __init__(self, secret_key: str, key_ids: list[str], domain: str) -> None:
        if not key_ids or not all(re.fullmatch(r"[a-z0-9]{1,8}", k) for k in key_ids):
            raise ValueError("reply key ids are 1 to 8 lower-case letters or digits")
        self._keys = {
            key_id: hmac.new(
                secret_key.encode(), f"reply-key:{key_id}".encode(), hashlib.sha256
            ).digest()
            for key_id in key_ids
        }
        self._current = key_ids[0]
        self._domain = domain.lower()

    def new(self) -> ReplyAddress:
        token = _b32(secrets.token_bytes(16))
        mac = self._mac(self._current, token)
        return ReplyAddress(
            token, self._current, f"reply+{token}.{self._current}.{mac}@{self._domain}"
        )

    def token_of(self, address: str) -> str:
        """The stored token an address names, once its MAC checks; else InvalidToken."""
        match = _ADDRESS.fullmatch(address.strip().lower())
        if match is None:
            raise InvalidToken("Not a reply address of ours")
        token, key_id, mac, domain = match.groups()
        if domain != self._domain:
            raise InvalidToken("Not a reply address of ours")
        if key_id not in self._keys:
            raise InvalidToken("This reply address uses a retired key")
        if not hmac.compare_digest(mac, self._mac(key_id, token)):
            raise InvalidToken("This reply address is forged")
        return token

    def bounce_address(self, participant_id: int) -> str:
        """The envelope sender (VERP) of mail to a participant: bounces name who they were for."""
        mac = self._mac(self._current, f"bounce:{participant_id}")
        return f"bounce+{participant_id}.{self._current}.{mac}@{self._domain}"

    def bounced_participant(self, address: str) -> int:
        """The participant a bounce address names, once its MAC checks; else InvalidToken."""
        match = _BOUNCE.fullmatch(address.strip().lower())
        if match is None or match.group(4) != self._domain:
            raise InvalidToken("Not a bounce address of ours")
        number, key_id, mac, _ = match.groups()
        if key_id not in self._keys:
            raise InvalidToken("This bounce address uses a retired key")
        if not hmac.compare_digest(mac, self._mac(key_id, f"bounce:{number}")):
            raise InvalidToken("This bounce address is forged")
        return int(number)

    def is_ours(self, address: str) -> bool:
        """Whether ``address`` is in the reply domain (a reply or bounce address, valid or not)."""
        return address.strip().lower().rpartition("@")[2] == self._domain

    def _mac(self, key_id: str, token: str) -> str:
        digest = hmac.new(self._keys[key_id], f"{key_id}.{token}".encode(), hashlib.sha256)
        return _b32(digest.digest()[:16])
