"""Collaboration tokens: signed, expiring, bound to one document and one role."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.access import Channel, Role, TokenSigner
from server.domain.errors import InvalidToken, WrongDocument

KEY = "unit-test-secret-key-" + "k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_token_round_trips_to_a_grant() -> None:
    signer = TokenSigner(KEY)
    token = signer.issue(principal="ann", document_id="d1", role=Role.VIEWER, ttl_seconds=60)
    grant = signer.verify(token, "d1")
    assert (grant.principal, grant.document_id, grant.role, grant.channel) == (
        "ann",
        "d1",
        Role.VIEWER,
        Channel.API,
    )
    assert not grant.can_write


def test_token_expires_at_its_time() -> None:
    clock = Clock()
    signer = TokenSigner(KEY, now=clock)
    token = signer.issue(principal="ann", document_id="d1", role=Role.EDITOR, ttl_seconds=60)
    clock.now += 59
    assert signer.verify(token, "d1").can_write
    clock.now += 1
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, "d1")


def test_token_is_bound_to_its_document() -> None:
    signer = TokenSigner(KEY)
    token = signer.issue(principal="ann", document_id="d1", role=Role.EDITOR, ttl_seconds=60)
    with pytest.raises(WrongDocument):
        signer.verify(token, "d2")


def test_a_token_from_another_key_is_refused() -> None:
    token = TokenSigner("other-" + "k" * 40).issue(
        principal="ann", document_id="d1", role=Role.EDITOR, ttl_seconds=60
    )
    with pytest.raises(InvalidToken, match="not issued by this server"):
        TokenSigner(KEY).verify(token, "d1")


@given(st.text(max_size=300))
def test_arbitrary_strings_are_refused_cleanly(token: str) -> None:
    with pytest.raises(InvalidToken):
        TokenSigner(KEY).verify(token, "d1")


def test_invalid_document_ids_cannot_be_issued() -> None:
    with pytest.raises(ValueError, match="not a valid document id"):
        TokenSigner(KEY).issue(principal="a", document_id="../x", role=Role.EDITOR, ttl_seconds=1)


def test_a_command_line_token_for_a_person_is_short_lived_unless_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import main
    from server.settings import Settings

    for name in [key for key in os.environ if key.startswith("OPENDPIA_")]:
        monkeypatch.delenv(name)
    settings = Settings()
    signer = TokenSigner(settings.secret_key)
    lifetimes = {}
    for principal in ("user:7", "participant:3", "cli"):
        assert main(["token", "--dpia", "DPIA-CAM-2026-1", "--principal", principal]) == 0
        grant = signer.verify(capsys.readouterr().out.strip(), "DPIA-CAM-2026-1")
        lifetimes[principal] = grant.expires_at - time.time()
    assert lifetimes["user:7"] <= settings.person_token_seconds
    assert lifetimes["participant:3"] <= settings.person_token_seconds
    assert lifetimes["cli"] > settings.person_token_seconds
