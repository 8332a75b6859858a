"""The pure rules of the tool's own data protection: retention expiry, who may delete and
erase, the pseudonym, the redactor, rewriting Yjs updates, and redaction in the audit
chain."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from server.domain.access import Role
from server.domain.audit import (
    ERASURE,
    GENESIS,
    AuditRecord,
    content_digest,
    encode_data,
    erasure_data,
    verify,
)
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, Conflict, InvalidInput
from server.domain.protection import (
    CLOSED,
    DeletionRule,
    Erasable,
    Eraser,
    add_months,
    check_retention_months,
    closed_at_after,
    delete_policy,
    erase_policy,
    expires_at,
    is_expired,
    pseudonym,
    pseudonym_code,
    redactor,
)
from server.domain.yupdates import rewrite_strings
from server.mail.redact import redact_message

CLOSED_AT = datetime(2026, 1, 31, 9, tzinfo=UTC)


# -- retention -------------------------------------------------------------------------------


def test_calendar_months_end_on_the_last_day_of_a_shorter_month() -> None:
    assert add_months(CLOSED_AT, 1) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert add_months(CLOSED_AT, 13) == datetime(2027, 2, 28, 9, tzinfo=UTC)
    assert add_months(datetime(2027, 12, 15, tzinfo=UTC), 1) == datetime(2028, 1, 15, tzinfo=UTC)
    assert add_months(CLOSED_AT, 72) == datetime(2032, 1, 31, 9, tzinfo=UTC)


@pytest.mark.parametrize("status", list(DpiaStatus))
def test_only_closed_dpias_expire(status: DpiaStatus) -> None:
    later = datetime(2040, 1, 1, tzinfo=UTC)
    expected = status in CLOSED
    assert (expires_at(status, CLOSED_AT, 12) is not None) is expected
    assert is_expired(status, CLOSED_AT, 12, later) is expected


def test_a_closed_dpia_expires_exactly_when_its_period_ends() -> None:
    end = datetime(2027, 1, 31, 9, tzinfo=UTC)
    assert not is_expired(DpiaStatus.REJECTED, CLOSED_AT, 12, end.replace(hour=8))
    assert is_expired(DpiaStatus.REJECTED, CLOSED_AT, 12, end)
    assert expires_at(DpiaStatus.REJECTED, None, 12) is None  # closing unknown: kept


def test_retention_counts_from_the_first_closed_status_and_reopening_clears_it() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert closed_at_after(DpiaStatus.ABANDONED, None, now) == now
    assert closed_at_after(DpiaStatus.ARCHIVED, CLOSED_AT, now) == CLOSED_AT
    assert closed_at_after(DpiaStatus.DRAFT, CLOSED_AT, now) is None
    assert closed_at_after(DpiaStatus.IN_FORCE, None, now) is None


@pytest.mark.parametrize(
    "raw", ["", "0", "601", "-3", "12.5", "twelve", "1e3", "²", "١٢", "9" * 400]
)
def test_a_retention_period_outside_1_to_600_whole_months_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        check_retention_months(raw)


def test_a_retention_period_is_read_as_whole_months() -> None:
    assert check_retention_months(" 72 ") == 72


# -- who may delete ----------------------------------------------------------------------------


def test_owners_may_delete_a_draft_any_time() -> None:
    assert delete_policy(Role.OWNER, DpiaStatus.DRAFT, False) is DeletionRule.DRAFT


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.OWNER])
def test_nobody_but_an_owner_may_delete(role: Role) -> None:
    with pytest.raises(AccessDenied):
        delete_policy(role, DpiaStatus.DRAFT, False)
    with pytest.raises(AccessDenied):
        delete_policy(role, DpiaStatus.REJECTED, True)


def test_a_closed_dpia_may_be_deleted_only_once_its_retention_ended() -> None:
    with pytest.raises(Conflict, match="retention"):
        delete_policy(Role.OWNER, DpiaStatus.ARCHIVED, False)
    assert delete_policy(Role.OWNER, DpiaStatus.ARCHIVED, True) is DeletionRule.RETENTION


@pytest.mark.parametrize("status", [DpiaStatus.IN_REVIEW, DpiaStatus.APPROVED, DpiaStatus.IN_FORCE])
def test_a_dpia_in_review_approved_or_in_force_is_never_deleted(status: DpiaStatus) -> None:
    with pytest.raises(Conflict):
        delete_policy(Role.OWNER, status, True)


# -- who may erase -----------------------------------------------------------------------------

MEMBER = Erasable(True, frozenset({1}), frozenset({"D1", "D2"}))
PARTNER = Erasable(False, frozenset(), frozenset({"D1", "D2"}))


def test_the_deployment_administrator_may_erase_anyone() -> None:
    admin = Eraser(True, frozenset(), frozenset())
    assert erase_policy(admin, MEMBER).allowed and erase_policy(admin, PARTNER).allowed


def test_a_member_is_erased_by_an_administrator_of_their_organisation_only() -> None:
    assert erase_policy(Eraser(False, frozenset({1}), frozenset()), MEMBER).allowed
    assert not erase_policy(Eraser(False, frozenset({2}), frozenset()), MEMBER).allowed
    owner_of_all = Eraser(False, frozenset(), frozenset({"D1", "D2"}))
    assert not erase_policy(owner_of_all, MEMBER).allowed  # owners cannot erase members


def test_a_partner_is_erased_by_an_owner_of_every_dpia_they_take_part_in() -> None:
    assert erase_policy(Eraser(False, frozenset(), frozenset({"D1", "D2", "D3"})), PARTNER).allowed
    refusal = erase_policy(Eraser(False, frozenset({1}), frozenset({"D1"})), PARTNER)
    assert not refusal.allowed and "every DPIA" in str(refusal.refusal)


def test_nobody_may_erase_the_only_owner_of_a_dpia() -> None:
    sole = Erasable(True, frozenset({1}), frozenset({"D1"}), sole_owner_of=frozenset({"D1"}))
    refusal = erase_policy(Eraser(True, frozenset(), frozenset()), sole)
    assert isinstance(refusal.refusal, Conflict) and "only owner of D1" in str(refusal.refusal)


# -- pseudonyms and the redactor -------------------------------------------------------------------


def test_the_pseudonym_is_stable_per_address_and_key_and_differs_otherwise() -> None:
    code = pseudonym_code("k" * 40, "Paula@Example.org ")
    assert code == pseudonym_code("k" * 40, "paula@example.org")
    assert code != pseudonym_code("k" * 40, "paul@example.org")
    assert code != pseudonym_code("j" * 40, "paula@example.org")
    assert pseudonym(code) == f"Former participant {code}" and len(code) == 6


def test_the_redactor_replaces_every_spelling_whole_and_leaves_short_names() -> None:
    rewrite = redactor(["Alice Smith", "Alice", "Al"], ["alice@x.org"], "7f3a9c")
    assert rewrite("ALICE SMITH (alice@X.org) met Alice and Al, not Alicia or Alicestone") == (
        "Former participant 7f3a9c (erased-7f3a9c@erased.invalid) met "
        "Former participant 7f3a9c and Al, not Alicia or Alicestone"
    )
    assert redactor([], [], "x")("unchanged") == "unchanged"


# -- Yjs updates -------------------------------------------------------------------------------


def _updates(build: Any) -> tuple[Doc[Any], list[bytes]]:
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    build(doc)
    return doc, updates


def test_rewriting_strings_keeps_the_history_and_changes_only_values() -> None:
    def build(doc: Doc[Any]) -> None:
        body = doc.get("body", type=Text)
        body += "Alice typed this"
        comments = doc.get("comments", type=Map)
        comments["c1"] = Map({"author_name": "Alice", "n": 3, "ok": True, "replies": Array()})
        comments["c1"]["replies"].append(Map({"author_name": "Bob", "text": "hi Alice"}))
        comments["c1"]["resolved_by"] = "Alice"
        comments["c1"]["nested"] = {"list": ["Alice", None, 1.5]}

    doc, updates = _updates(build)
    rewritten = [rewrite_strings(u, lambda s: s.replace("Alice", "P")) for u in updates]
    replayed: Doc[Any] = Doc()
    for update in rewritten:
        replayed.apply_update(update)
    assert replayed.get("comments", type=Map).to_py() == {
        "c1": {
            "author_name": "P",
            "n": 3.0,
            "ok": True,
            "replies": [{"author_name": "Bob", "text": "hi P"}],
            "resolved_by": "P",
            "nested": {"list": ["P", None, 1.5]},
        }
    }
    assert str(replayed.get("body", type=Text)) == "Alice typed this"  # typed text stays
    assert replayed.get_state() == doc.get_state()  # the same items, the same ids
    # The whole state rewritten at once equals the log rewritten update by update.
    whole: Doc[Any] = Doc()
    whole.apply_update(rewrite_strings(doc.get_update(), lambda s: s.replace("Alice", "P")))
    assert whole.get("comments", type=Map).to_py() == replayed.get("comments", type=Map).to_py()


def test_a_rewrite_that_changes_nothing_returns_the_same_bytes() -> None:
    _, updates = _updates(lambda d: d.get("m", type=Map).update({"a": "x", "b": [1, "y"]}))
    assert all(rewrite_strings(u, lambda s: s) == u for u in updates)


def test_a_truncated_update_is_refused_rather_than_half_rewritten() -> None:
    _, updates = _updates(lambda d: d.get("m", type=Map).update({"a": "Alice"}))
    with pytest.raises(ValueError):
        rewrite_strings(updates[0][:-8], lambda s: s)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=6,
        ),
        max_size=5,
    )
)
def test_any_map_of_values_survives_an_identity_rewrite_and_a_real_one(
    values: dict[str, Any],
) -> None:
    doc, updates = _updates(lambda d: d.get("m", type=Map).update(values))
    upper = [rewrite_strings(u, str.upper) for u in updates]
    replayed: Doc[Any] = Doc()
    for update in upper:
        replayed.apply_update(update)

    def shout(value: Any) -> Any:
        if isinstance(value, str):
            return value.upper()
        if isinstance(value, list):
            return [shout(v) for v in value]
        return value

    assert replayed.get("m", type=Map).to_py() == {
        k: shout(v) for k, v in doc.get("m", type=Map).to_py().items()
    }


# -- mail ----------------------------------------------------------------------------------------


def test_an_encoded_name_in_a_stored_mail_is_rewritten() -> None:
    from tests.support.protection import mail

    raw = mail("Pärtner <p@x.org>", "o@y.org", "Hello Pärtner", "Dear Pärtner,\nbye", True)
    assert b"P\xc3\xa4rtner" not in raw  # encoded: a byte search would miss it
    redacted = redact_message(raw, lambda s: s.replace("Pärtner", "P7").replace("p@x.org", "e"))
    message = BytesParser(policy=policy.default).parsebytes(redacted)
    assert message["From"] == "P7 <e>" and message["Subject"] == "Hello P7"
    body = message.get_body(("plain",))
    assert body is not None and "Dear P7," in body.get_content()  # type: ignore[attr-defined]
    assert "Paula P7 notes.txt" in [p.get_filename() for p in message.iter_attachments()]
    assert redact_message(raw, lambda s: s) == raw


# -- audit chain with redaction -----------------------------------------------------------------


def _chain(*data: dict[str, Any]) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    previous = GENESIS
    for position, item in enumerate(data, start=1):
        kind = ERASURE if "redacted" in item else "note"
        record = AuditRecord(
            "D",
            position,
            kind,
            "user:1",
            "browser",
            None,
            0,
            datetime(2026, 1, position, tzinfo=UTC),
            encode_data(item),
            previous,
        ).chained()
        records.append(record)
        previous = record.hash
    return records


def _verify(records: list[AuditRecord]) -> Any:
    return verify(list(enumerate(records, start=1)), len(records), records[-1].hash)


def test_a_redaction_named_by_a_later_erasure_verifies_and_any_other_change_breaks() -> None:
    redacted = replace(_chain({"who": "Alice"})[0], data=encode_data({"who": "P"}))
    digest = content_digest(redacted.actor, redacted.data)
    chain = _chain({"who": "Alice"}, erasure_data({1: digest}, rule="test"))
    chain[0] = replace(chain[0], data=redacted.data)
    assert _verify(chain) is None
    # Redacted otherwise than the erasure says: broken at the event.
    other = [replace(chain[0], data=encode_data({"who": "Q"})), chain[1]]
    assert _verify(other).position == 1
    # An erasure's claim that was altered: broken.
    forged = erasure_data({1: content_digest("user:1", encode_data({"who": "Q"}))})
    assert _verify([other[0], replace(chain[1], data=encode_data(forged))]) is not None


def test_an_erasure_cannot_cover_an_event_written_after_it() -> None:
    chain = _chain(erasure_data({2: content_digest("user:1", encode_data({"who": "P"}))}), {})
    chain[1] = replace(chain[1], data=encode_data({"who": "P"}))
    assert _verify(chain).position == 2


def test_a_legacy_link_is_checked_by_the_old_rule() -> None:
    record = AuditRecord("D", 1, "note", "a", "browser", None, 0, CLOSED_AT, "{}", GENESIS)
    legacy = replace(record, hash=record.legacy_hash())
    assert _verify([legacy]) is None
    assert _verify([replace(legacy, data='{"x":1}')]).position == 1
