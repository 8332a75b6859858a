"""What kind of mail arrived (person, loop, bounce, list, automatic), bounces read, DMARC from
trusted headers only, and the one well-formed From a reply must carry."""

from __future__ import annotations

import pytest

from email_bridge.classify import Kind, classify, dmarc_failed, read_bounce
from email_bridge.message import ReadMail, read
from server.mail.compose import LOOP_HEADER

INSTALLATION = "opendpia.test"
OWN = frozenset({"notifications@opendpia.test", "bounces@opendpia.test"})
TRUSTED = frozenset({"mx.opendpia.test"})
SENDER = "bob@partner.example"


def message(*headers: tuple[str, str], body: str = "Fine with 12 months.\r\n") -> ReadMail:
    base = [
        ("From", f"Bob Jones <{SENDER}>"),
        ("To", "reply+k1.abc@reply.opendpia.test"),
        ("Subject", "Re: Alice Martin edited Retention period"),
        ("Date", "Mon, 23 Nov 2026 10:42:01 +0000"),
        ("Message-ID", "<reply.1@partner.example>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]
    names = {name.lower() for name, _ in headers}
    lines = [f"{n}: {v}" for n, v in base if n.lower() not in names]
    lines += [f"{n}: {v}" for n, v in headers]
    return read(("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8"))


def kind(mail: ReadMail, *, envelope_from: str = SENDER, to_bounce_address: bool = False) -> Kind:
    return classify(
        mail,
        envelope_from=envelope_from,
        to_bounce_address=to_bounce_address,
        installation=INSTALLATION,
        own_addresses=OWN,
        loop_header=LOOP_HEADER,
    ).kind


# -- people ------------------------------------------------------------------------------


def test_plain_reply_from_a_person_is_human() -> None:
    assert kind(message()) is Kind.HUMAN


@pytest.mark.parametrize("value", ["no", "No", "no (a person wrote this)"])
def test_auto_submitted_no_is_a_person(value: str) -> None:
    assert kind(message(("Auto-Submitted", value))) is Kind.HUMAN


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Out of office hours processing of logs",
        "Re: Absence records in the HR system",
        "AW: Automatische Löschung nach 12 Monaten",
    ],
)
def test_reply_subject_mentioning_absence_is_still_a_person(subject: str) -> None:
    assert kind(message(("Subject", subject))) is Kind.HUMAN


# -- automatic replies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["auto-replied", "auto-generated", "auto-notified", "Auto-Replied", "auto-replied; owner=x"],
)
def test_auto_submitted_other_than_no_is_automatic(value: str) -> None:
    assert kind(message(("Auto-Submitted", value))) is Kind.AUTO


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "vacation"),
        ("X-Auto-Response-Suppress", "OOF"),
        ("X-Auto-Response-Suppress", "All"),
    ],
)
def test_autoreply_headers_mark_automatic_mail(name: str, value: str) -> None:
    assert kind(message((name, value))) is Kind.AUTO


@pytest.mark.parametrize("value", ["bulk", "junk", "Bulk", "auto_reply"])
def test_precedence_bulk_or_junk_is_automatic(value: str) -> None:
    assert kind(message(("Precedence", value))) is Kind.AUTO


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Re: Alice Martin edited Retention period",
        "Automatic reply: Alice Martin edited Retention period",
        "AutoReply: Alice Martin edited Retention period",
        "Auto-Response: on holiday",
        "Abwesenheitsnotiz: Alice Martin edited Retention period",
        "Automatische Antwort: Alice Martin edited Retention period",
        "Réponse automatique : Alice Martin edited Retention period",
        "Respuesta automática: Alice Martin edited Retention period",
        "Risposta automatica: Alice Martin edited Retention period",
        "Automatisch antwoord: Alice Martin edited Retention period",
        "Autosvar: Alice Martin edited Retention period",
        "Odpowiedź automatyczna: Alice Martin edited Retention period",
        "=?utf-8?q?R=C3=A9ponse_automatique_=3A_Alice_Martin_edited?=",
    ],
)
def test_auto_reply_subject_in_several_languages_is_automatic(subject: str) -> None:
    assert kind(message(("Subject", subject))) is Kind.AUTO


def test_empty_envelope_sender_from_a_person_is_automatic() -> None:
    assert kind(message(), envelope_from="") is Kind.AUTO


# -- lists -------------------------------------------------------------------------------


def test_list_id_is_list_traffic() -> None:
    mail = message(("List-Id", "DPO network <dpo.lists.partner.example>"))
    assert kind(mail) is Kind.LIST


def test_list_post_is_list_traffic() -> None:
    assert kind(message(("List-Post", "<mailto:dpo@lists.partner.example>"))) is Kind.LIST


def test_precedence_list_is_list_traffic() -> None:
    assert kind(message(("Precedence", "list"))) is Kind.LIST


# -- loops -------------------------------------------------------------------------------


def test_our_loop_header_is_a_loop() -> None:
    assert kind(message((LOOP_HEADER, INSTALLATION))) is Kind.LOOP


def test_loop_header_is_read_case_insensitively() -> None:
    assert kind(message((LOOP_HEADER.lower(), INSTALLATION.upper()))) is Kind.LOOP


def test_another_installations_loop_header_is_not_our_loop() -> None:
    assert kind(message((LOOP_HEADER, "dpia.other.example"))) is Kind.HUMAN


@pytest.mark.parametrize(
    "sender", ["notifications@opendpia.test", "OpenDPIA <Notifications@OpenDPIA.test>"]
)
def test_mail_from_our_own_address_is_a_loop(sender: str) -> None:
    assert kind(message(("From", sender))) is Kind.LOOP


def test_loop_wins_over_auto_reply_headers() -> None:
    mail = message((LOOP_HEADER, INSTALLATION), ("Auto-Submitted", "auto-replied"))
    assert kind(mail) is Kind.LOOP


# -- bounces -----------------------------------------------------------------------------


def dsn(action: str, status: str, diagnostic: str = "") -> ReadMail:
    diagnostic_line = f"Diagnostic-Code: smtp; {diagnostic}\r\n" if diagnostic else ""
    raw = (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@mail.partner.example (Mail Delivery System)\r\n"
        "To: bounce+k1.p42.x9@reply.opendpia.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        '\tboundary="4Zk3P1.1732357200/mail.partner.example"\r\n'
        "Message-Id: <20261123102000.4Zk3P1@mail.partner.example>\r\n"
        "\r\n"
        "This is a MIME-encapsulated message.\r\n"
        "\r\n"
        "--4Zk3P1.1732357200/mail.partner.example\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n"
        "--4Zk3P1.1732357200/mail.partner.example\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mail.partner.example\r\n"
        "X-Postfix-Queue-ID: 4Zk3P1\r\n"
        "Arrival-Date: Mon, 23 Nov 2026 10:15:02 +0000 (UTC)\r\n"
        "\r\n"
        "Final-Recipient: rfc822; gone@partner.example\r\n"
        "Original-Recipient: rfc822;gone@partner.example\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mx.partner.example\r\n"
        f"{diagnostic_line}"
        "\r\n"
        "--4Zk3P1.1732357200/mail.partner.example\r\n"
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: OpenDPIA <notifications@opendpia.test>\r\n"
        "To: gone@partner.example\r\n"
        "Subject: Alice Martin edited Retention period\r\n"
        "\r\n"
        "--4Zk3P1.1732357200/mail.partner.example--\r\n"
    )
    return read(raw.encode("ascii"))


def test_delivery_status_report_is_a_bounce() -> None:
    assert kind(dsn("failed", "5.1.1"), envelope_from="") is Kind.BOUNCE


def test_anything_to_the_bounce_address_is_a_bounce() -> None:
    assert kind(message(), to_bounce_address=True) is Kind.BOUNCE


def test_mailer_daemon_with_empty_envelope_is_a_bounce() -> None:
    mail = message(("From", "MAILER-DAEMON@mail.partner.example"))
    assert kind(mail, envelope_from="") is Kind.BOUNCE


def test_permanent_failure_is_a_hard_bounce() -> None:
    bounce = read_bounce(
        dsn("failed", "5.1.1", "550 5.1.1 <gone@partner.example>: Recipient address rejected")
    )
    assert bounce.hard is True
    assert bounce.reason.startswith("failed 5.1.1")
    assert "Recipient address rejected" in bounce.reason


def test_delayed_delivery_is_a_soft_bounce() -> None:
    bounce = read_bounce(dsn("delayed", "4.4.7", "421 4.4.7 mailbox temporarily unavailable"))
    assert bounce.hard is False
    assert bounce.reason.startswith("delayed 4.4.7")


def test_failed_with_temporary_status_is_a_soft_bounce() -> None:
    assert read_bounce(dsn("failed", "4.2.2")).hard is False


def test_bounce_without_delivery_status_is_soft_and_says_so() -> None:
    mail = message(
        ("From", "MAILER-DAEMON@mail.partner.example"),
        ("Subject", "Undeliverable: Alice Martin edited"),
        body="Your message could not be delivered. Sorry.\r\n",
    )
    bounce = read_bounce(mail)
    assert bounce.hard is False
    assert "without a readable status" in bounce.reason


def test_garbled_delivery_status_is_soft() -> None:
    raw = (
        b"From: MAILER-DAEMON@mail.partner.example\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"\xff\xfe garbage ::: \x00\r\n--b--\r\n"
    )
    assert read_bounce(read(raw)).hard is False


# -- DMARC from trusted Authentication-Results only --------------------------------------------


def auth(*values: str) -> ReadMail:
    return message(*(("Authentication-Results", v) for v in values))


def test_trusted_dmarc_fail_is_failed() -> None:
    mail = auth("mx.opendpia.test; dkim=none; spf=softfail; dmarc=fail (p=reject) header.from=x.y")
    assert dmarc_failed(mail, TRUSTED) is True


def test_trusted_dmarc_permerror_is_failed() -> None:
    assert dmarc_failed(auth("mx.opendpia.test; dmarc=permerror"), TRUSTED) is True


def test_trusted_dmarc_pass_is_not_failed() -> None:
    mail = auth("mx.opendpia.test; spf=pass; dmarc=pass (p=none) header.from=partner.example")
    assert dmarc_failed(mail, TRUSTED) is False


def test_authserv_id_is_matched_case_insensitively() -> None:
    assert dmarc_failed(auth("MX.OpenDPIA.test; dmarc=fail"), TRUSTED) is True


def test_untrusted_dmarc_fail_is_ignored() -> None:
    mail = auth("mx.partner.example; dmarc=fail header.from=partner.example")
    assert dmarc_failed(mail, TRUSTED) is None


def test_untrusted_pass_cannot_clear_a_trusted_fail() -> None:
    mail = auth("mx.partner.example; dmarc=pass", "mx.opendpia.test; dmarc=fail")
    assert dmarc_failed(mail, TRUSTED) is True


@pytest.mark.parametrize(
    "order",
    [
        ("mx.opendpia.test; dmarc=pass", "mx.opendpia.test; dmarc=fail"),
        ("mx.opendpia.test; dmarc=fail", "mx.opendpia.test; dmarc=pass"),
    ],
)
def test_a_forged_trusted_pass_never_outweighs_a_trusted_fail(order: tuple[str, str]) -> None:
    assert dmarc_failed(auth(*order), TRUSTED) is True


@pytest.mark.parametrize(
    "value",
    [
        "mx.opendpia.test; dmarc=",
        "mx.opendpia.test dmarc=fail",
        "mx.opendpia.test; dmarc=fail (p=reject",
        ";;; dmarc=fail",
        "mx.opendpia.test; dmarc fail",
        "mx.opendpia.test; =fail",
    ],
)
def test_malformed_header_is_ignored(value: str) -> None:
    assert dmarc_failed(auth(value), TRUSTED) is None


def test_malformed_header_does_not_hide_a_readable_one() -> None:
    mail = auth("mx.opendpia.test; dmarc=", "mx.opendpia.test; dmarc=pass")
    assert dmarc_failed(mail, TRUSTED) is False


def test_no_dmarc_result_says_nothing() -> None:
    assert dmarc_failed(auth("mx.opendpia.test; spf=pass smtp.mailfrom=x.y"), TRUSTED) is None
    assert dmarc_failed(auth("mx.opendpia.test; none"), TRUSTED) is None
    assert dmarc_failed(message(), TRUSTED) is None


def test_without_trusted_ids_nothing_is_trusted() -> None:
    assert dmarc_failed(auth("mx.opendpia.test; dmarc=fail"), frozenset()) is None


# -- From ---------------------------------------------------------------------------------


def test_one_well_formed_from_is_read_lowercased() -> None:
    mail = message(("From", "Bob Jones <Bob.Jones@Partner.Example>"))
    assert (mail.from_address, mail.from_problem) == ("bob.jones@partner.example", None)


def test_encoded_display_name_is_fine() -> None:
    mail = message(("From", "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@partner.example>"))
    assert (mail.from_address, mail.from_problem) == ("joerg@partner.example", None)


def test_raw_utf8_display_name_is_fine() -> None:
    """RFC 6532 mail (we offer SMTPUTF8) carries the name unencoded."""
    mail = message(("From", '"Müller, Jörg" <joerg@partner.example>'))
    assert (mail.from_address, mail.from_problem) == ("joerg@partner.example", None)


@pytest.mark.parametrize(
    "value", ["Jörg alice@partner.example <mallory@evil.example>", "jörg@partner.example"]
)
def test_raw_utf8_does_not_excuse_a_bad_address(value: str) -> None:
    mail = message(("From", value))
    assert mail.from_address is None
    assert mail.from_problem is not None


@pytest.mark.parametrize(
    "value",
    [
        "alice@partner.example <mallory@evil.example>",
        "alice@partner.example, mallory@evil.example",
        "Alice <alice@partner.example>, Mallory <mallory@evil.example>",
        "undisclosed-recipients:;",
        "not an address",
        "<>",
        "",
    ],
)
def test_from_that_is_not_exactly_one_clean_address_is_refused(value: str) -> None:
    mail = message(("From", value))
    assert mail.from_address is None
    assert mail.from_problem is not None


def test_two_from_headers_are_refused() -> None:
    mail = message(("From", "alice@partner.example"), ("From", "mallory@evil.example"))
    assert mail.from_address is None
    assert mail.from_problem == "the message must have exactly one From header"


def test_missing_from_is_refused() -> None:
    mail = read(b"To: reply+k1.abc@reply.opendpia.test\r\nSubject: hi\r\n\r\nHello\r\n")
    assert mail.from_address is None
    assert mail.from_problem == "the message must have exactly one From header"


def test_message_id_and_subject_are_read_cleanly() -> None:
    mail = message(("Subject", "=?utf-8?q?Re=3A_Aufbewahrung_=E2=80=AE_12_Monate?="))
    assert mail.subject == "Re: Aufbewahrung 12 Monate"
    assert mail.message_id == "<reply.1@partner.example>"
