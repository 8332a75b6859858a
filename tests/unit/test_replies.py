"""Reply addresses: only ours verify, whatever case they come back in."""

from __future__ import annotations

import pytest

from server.domain.errors import InvalidToken
from server.domain.replies import ReplyKeys

SECRET = "s" * 40


def test_an_address_round_trips_to_its_token_in_any_case() -> None:
    keys = ReplyKeys(SECRET, ["k1"], "reply.opendpia.example")
    reply = keys.new()
    assert reply.address.startswith("reply+") and reply.address.endswith("@reply.opendpia.example")
    assert len(reply.address.split("@")[0]) <= 64
    assert keys.token_of(reply.address) == reply.token
    assert keys.token_of(reply.address.upper()) == reply.token


def test_a_changed_character_or_another_domain_is_refused() -> None:
    keys = ReplyKeys(SECRET, ["k1"], "reply.opendpia.example")
    address = keys.new().address
    local, domain = address.split("@")
    flipped = local[:-1] + ("a" if local[-1] != "a" else "b")
    for forged in (f"{flipped}@{domain}", f"{local}@reply.evil.example", "reply+x@y", "bob@x.y"):
        with pytest.raises(InvalidToken):
            keys.token_of(forged)


def test_a_leaked_token_cannot_be_turned_into_an_address_without_the_key() -> None:
    ours = ReplyKeys(SECRET, ["k1"], "reply.opendpia.example")
    theirs = ReplyKeys("another secret of forty characters......", ["k1"], "reply.opendpia.example")
    stolen = ours.new().token  # what a copy of the database holds
    forged_mac = theirs.new().address.split(".")[2].split("@")[0]
    with pytest.raises(InvalidToken, match="forged"):
        ours.token_of(f"reply+{stolen}.k1.{forged_mac}@reply.opendpia.example")


def test_keys_rotate_by_id() -> None:
    old = ReplyKeys(SECRET, ["k1"], "reply.opendpia.example").new()
    rotated = ReplyKeys(SECRET, ["k2", "k1"], "reply.opendpia.example")
    assert rotated.token_of(old.address) == old.token
    assert ".k2." in rotated.new().address
    retired = ReplyKeys(SECRET, ["k2"], "reply.opendpia.example")
    with pytest.raises(InvalidToken, match="retired"):
        retired.token_of(old.address)
