"""Reply extraction on real-looking mail: every fixture in tests/fixtures/mail is a raw message
as a client sends it (headers, MIME, transfer encoding), read with ``read`` and cut with
``extract`` exactly as the bridge's processor does."""

from __future__ import annotations

import re
from email.message import EmailMessage
from functools import cache
from pathlib import Path

import pytest

from email_bridge.extract import extract
from email_bridge.message import ReadMail, clean_text, html_to_text, read, unflow
from server.services.notification_mail import REPLY_MARKER

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


@cache
def mail(name: str) -> ReadMail:
    """A fixture as the processor reads it (read once; no test changes it)."""
    return read((FIXTURES / f"{name}.eml").read_bytes())


# The new words each top-posted fixture carries, exactly, and the signature set aside.
TOP_POSTED: dict[str, tuple[str, str]] = {
    "gmail_wrapped_attribution": (
        "Thanks Alice. 24 months is too long \u2013 we only need the raw events for 12\n"
        "months, then aggregated figures are enough.",
        "",
    ),
    "outlook_desktop": (
        "Hi Alice,\n\nWe can live with 12 months if the nightly aggregation job is in place first.",
        "Kind regards,\nCarol",
    ),
    "outlook_original_message": ("Agreed, please go ahead with 12 months.\n\nDan", ""),
    "ios_mail": (
        "Fine by me, but please check the backup copies are deleted too.",
        "Sent from my iPhone",
    ),
    "apple_mail": (
        "Hi Alice,\n\nLooks right to me. One question: does the 12 months also cover the CDN"
        " logs?\n\nFrank",
        "",
    ),
    "thunderbird_german_flowed": (
        "Hallo Alice,\n\ndie Aufbewahrungsfrist von 24 Monaten halten wir für zu lang. Wir "
        "schlagen 12 Monate vor; danach werden die Rohdaten gelöscht und nur die Aggregate "
        "bleiben.",
        "Viele Grüße\nJörg Müller",
    ),
    "gmail_french_wrapped": (
        "Bonjour Alice,\n\nNous sommes d'accord avec une durée de 12 mois à condition que les\n"
        "journaux bruts soient pseudonymisés dès la collecte.",
        "Cordialement,\nClaire Dubois\nDéléguée à la protection des données\n+33 1 23 45 67 89",
    ),
    "outlook_german": (
        "Hallo Frau Martin,\n\naus Sicht der Fachabteilung reichen 12 Monate. Bitte entsprechend "
        "ändern.",
        "",
    ),
    "lists_and_contact_signature": (
        "Hi Alice,\n"
        "\n"
        "Three points on the retention period:\n"
        "\n"
        "1. Raw event logs: 12 months, not 24.\n"
        "2. Aggregates may be kept for 5 years:\n"
        "   - only counts per week,\n"
        "   - no device identifiers.\n"
        "3. Backups follow the same schedule.\n"
        "\n"
        "    Legal basis: Art. 6(1)(f) GDPR, see the LIA of 2026-03-02.\n"
        "\n"
        "* Open question: who signs off the deletion job?",
        "Best regards,\nDana Lee\nData Protection Officer\n"
        "Partner GmbH | Friedrichstr. 12 | 10117 Berlin\n+49 30 1234567",
    ),
    "dash_signature": (
        "The 12 months proposal is fine. We will update our processing record.",
        "Eve Novak\nPrivacy Counsel, Partner GmbH\nhttps://partner.example",
    ),
    "wrong_charset_utf8_as_ascii": (
        "Smörgåsbord of opinions here \u2014 but we all agree: 12 months, naïve 24 is too long.",
        "",
    ),
    "latin1_no_charset": (
        "D'accord pour 12 mois, à réviser après l'été. Coût estimé : 4\u00a0500 £.",
        "",
    ),
    "base64_body": (
        "Bonjour, 你好, здравствуйте \u2014 our Shanghai office confirms: 12 months.",
        "",
    ),
    "marker_quoted": ("Please also document who can access the raw logs before we approve.", ""),
    "unsubscribe": ("Unsubscribe", ""),
}
INLINE = "inline_reply"
BOTTOM = "bottom_posted"
HOSTILE = "hostile_html_only"
QUOTE_ONLY = "quote_only"
ALL = [*TOP_POSTED, INLINE, BOTTOM, HOSTILE, QUOTE_ONLY]

# Whatever of our notification survives in a reply's text is a failure to cut.
NOTIFICATION_TRACES = (
    "Reply above this line",
    "Alice Martin edited",
    "Reply to this email to comment",
    "You get this because",
    "opendpia.test/r/",
    "opendpia.test/unsubscribe/",
    "notifications@opendpia.test",
    "wrote:",
    "schrieb",
    "a écrit",
    "Original Message",
    "Gesendet:",
    "Sent:",
    "____",
)


def test_every_fixture_is_in_a_table() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.eml")) == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_fixture_reads_with_one_sender_and_no_problems(name: str) -> None:
    parsed = mail(name)
    assert parsed.from_problem is None
    assert parsed.from_address is not None and parsed.from_address.endswith("@partner.example")
    assert parsed.problems == []
    assert parsed.subject.startswith(("Re:", "RE:", "AW:"))


@pytest.mark.parametrize("name", list(TOP_POSTED))
def test_top_posted_reply_keeps_exactly_the_new_text(name: str) -> None:
    expected_text, _ = TOP_POSTED[name]
    assert extract(mail(name).text, REPLY_MARKER).text == expected_text


@pytest.mark.parametrize("name", list(TOP_POSTED))
def test_signature_is_set_aside_not_dropped(name: str) -> None:
    _, expected_signature = TOP_POSTED[name]
    reply = extract(mail(name).text, REPLY_MARKER)
    assert reply.signature == expected_signature
    if expected_signature:
        assert expected_signature.splitlines()[0] not in reply.text


@pytest.mark.parametrize("name", [n for n in TOP_POSTED if n != "marker_quoted"])
def test_attribution_or_header_block_cuts_even_without_our_marker(name: str) -> None:
    expected_text, expected_signature = TOP_POSTED[name]
    reply = extract(mail(name).text, None)
    assert (reply.text, reply.signature) == (expected_text, expected_signature)


@pytest.mark.parametrize("name", ALL)
def test_quoted_notification_never_reaches_the_comment(name: str) -> None:
    """Beyond the (at most three) quoted context lines an inline answer keeps on purpose."""
    reply = extract(mail(name).text, REPLY_MARKER)
    words = "\n".join(line for line in reply.text.splitlines() if not line.startswith("> "))
    for trace in NOTIFICATION_TRACES:
        assert trace not in words, trace
        assert trace not in reply.signature, trace


@pytest.mark.parametrize("name", list(TOP_POSTED))
def test_top_posted_reply_carries_no_quoted_context(name: str) -> None:
    reply = extract(mail(name).text, REPLY_MARKER)
    assert reply.quoted_context is False
    assert not any(line.startswith(">") for line in reply.text.splitlines())


def test_gmail_attribution_wrapped_over_two_lines_is_cut_whole() -> None:
    text = mail("gmail_wrapped_attribution").text
    assert "OpenDPIA <notifications@opendpia.test>\nwrote:" in text  # the fixture wraps it
    reply = extract(text)
    assert "On Mon, 23 Nov 2026" not in reply.text
    assert reply.text.endswith("aggregated figures are enough.")


def test_french_attribution_wrapped_inside_the_address_is_cut_whole() -> None:
    text = mail("gmail_french_wrapped").text
    assert "OpenDPIA <\nnotifications@opendpia.test> a écrit :" in text
    reply = extract(text)
    assert "Le lun. 23 nov." not in reply.text
    assert "Le lun. 23 nov." not in reply.signature


def test_thunderbird_format_flowed_latin1_lines_are_joined_and_decoded() -> None:
    parsed = mail("thunderbird_german_flowed")
    assert parsed.message.get_content_charset() == "iso-8859-1"
    assert "Wir schlagen 12 Monate vor; danach werden die Rohdaten gelöscht und nur die " in (
        parsed.text
    )
    # quoted lines are unflowed at their own depth
    assert "> Alice Martin edited a field in Customer analytics platform (DPIA-2026-014)." in (
        parsed.text
    )


def test_outlook_german_von_gesendet_block_is_cut() -> None:
    reply = extract(mail("outlook_german").text)
    assert "Von:" not in reply.text
    assert reply.text.endswith("Bitte entsprechend ändern.")


def test_inline_reply_keeps_answer_with_the_one_quoted_line_it_answers() -> None:
    reply = extract(mail(INLINE).text, REPLY_MARKER)
    assert reply.text == (
        '> "Raw event logs are kept for 24 months."\n'
        "That is longer than our policy allows: 12 months is the maximum for raw\n"
        "behavioural data."
    )
    assert reply.quoted_context is True
    assert reply.signature == ""


def test_bottom_posted_reply_keeps_the_answer_without_our_notification() -> None:
    reply = extract(mail(BOTTOM).text, REPLY_MARKER)
    assert reply.text == "Fine with 12 months from our side.\n\nIvan"
    assert reply.quoted_context is False
    assert "Reply to this email to comment" in reply.history


@pytest.mark.parametrize("name", [INLINE, BOTTOM])
def test_quoted_context_never_carries_personal_links(name: str) -> None:
    text = mail(name).text
    assert "https://opendpia.test/unsubscribe/" in text  # the quote has them
    reply = extract(text, REPLY_MARKER)
    assert "http" not in reply.text


def test_an_unknown_language_attribution_above_our_quoted_mail_is_cut() -> None:
    text = mail("marker_quoted").text
    assert f"> {REPLY_MARKER}" in text
    with_marker = extract(text, REPLY_MARKER)
    assert with_marker.text == TOP_POSTED["marker_quoted"][0]
    assert "2026年11月23日" in with_marker.history
    # without the marker, the quote is still recognised by our notification's wording
    assert extract(text).text == TOP_POSTED["marker_quoted"][0]


def test_unquoted_marker_with_nothing_above_leaves_nothing() -> None:
    body = f"{REPLY_MARKER}\n\nAlice Martin edited a field in Customer analytics platform.\n"
    assert extract(body, REPLY_MARKER).text == ""


def test_reply_that_only_quotes_is_empty() -> None:
    reply = extract(mail(QUOTE_ONLY).text, REPLY_MARKER)
    assert (reply.text, reply.signature, reply.quoted_context) == ("", "", False)


def test_lists_numbers_and_indentation_survive() -> None:
    lines = extract(mail("lists_and_contact_signature").text, REPLY_MARKER).text.splitlines()
    assert "1. Raw event logs: 12 months, not 24." in lines
    assert "   - only counts per week," in lines
    assert "    Legal basis: Art. 6(1)(f) GDPR, see the LIA of 2026-03-02." in lines
    assert "* Open question: who signs off the deletion job?" in lines


def test_valediction_with_contact_block_goes_to_signature() -> None:
    reply = extract(mail("lists_and_contact_signature").text, REPLY_MARKER)
    assert reply.signature.startswith("Best regards,\nDana Lee")
    assert "+49 30 1234567" not in reply.text


def test_dash_dash_space_signature_goes_to_signature() -> None:
    reply = extract(mail("dash_signature").text, REPLY_MARKER)
    assert "Eve Novak" not in reply.text
    assert reply.signature.startswith("Eve Novak")


def test_sent_from_my_iphone_goes_to_signature() -> None:
    reply = extract(mail("ios_mail").text, REPLY_MARKER)
    assert "iPhone" not in reply.text
    assert reply.signature == "Sent from my iPhone"


def test_ios_byte_order_mark_in_quote_is_removed() -> None:
    assert "\ufeff" not in mail("ios_mail").text


def test_hostile_html_only_reply_is_read_from_html() -> None:
    parsed = mail(HOSTILE)
    assert parsed.from_html is True
    reply = extract(parsed.text, REPLY_MARKER)
    assert reply.text == (
        "We agree with 12 months.\n\nPlease click here or open this.\n\n"
        "Invoice gnp.exe and hiddenzerowidth."
    )


@pytest.mark.parametrize(
    "forbidden",
    [
        "<",
        "javascript:",
        "data:",
        "base64",
        "tracker.evil.example",
        "pixel.gif",
        "evil.example",
        "SCRIPT-LEAK",
        "STYLE-LEAK",
        "FORM-LEAK",
        "alert",
        "onclick",
        "color: red",
        "\u202e",
        "\u202c",
        "\u200b",
        "\u200d",
        "\ufeff",
    ],
)
def test_hostile_html_leaves_no_markup_script_link_image_or_invisible_char(
    forbidden: str,
) -> None:
    parsed = mail(HOSTILE)
    assert forbidden not in parsed.text
    assert forbidden not in extract(parsed.text, REPLY_MARKER).text


def test_declared_us_ascii_with_utf8_bytes_decodes_as_utf8() -> None:
    text = mail("wrong_charset_utf8_as_ascii").text
    assert text.startswith("Smörgåsbord")
    assert "\ufffd" not in text


def test_missing_charset_with_latin1_bytes_decodes_without_mojibake() -> None:
    text = mail("latin1_no_charset").text
    assert text.startswith("D'accord pour 12 mois, à réviser après l'été.")
    assert "\ufffd" not in text and "Ã" not in text


def test_base64_body_is_decoded() -> None:
    assert "здравствуйте" in mail("base64_body").text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "gmail_wrapped_attribution",
            TOP_POSTED["gmail_wrapped_attribution"][0].replace("\n", " "),
        ),
        ("gmail_french_wrapped", TOP_POSTED["gmail_french_wrapped"][0].replace("les\n", "les ")),
        ("outlook_desktop", TOP_POSTED["outlook_desktop"][0]),
        ("apple_mail", TOP_POSTED["apple_mail"][0]),
    ],
)
def test_html_alternative_alone_gives_the_same_reply(name: str, expected: str) -> None:
    html = next(p for p in mail(name).message.walk() if p.get_content_type() == "text/html")
    assert isinstance(html, EmailMessage)
    text = clean_text(html_to_text(html.get_content()))
    reply = extract(text, REPLY_MARKER)
    assert reply.text == expected
    assert "gmail_quote" not in reply.text


def test_whole_reply_unsubscribe_is_recognised() -> None:
    assert extract(mail("unsubscribe").text, REPLY_MARKER).is_unsubscribe is True


@pytest.mark.parametrize("name", [n for n in ALL if n != "unsubscribe"])
def test_ordinary_reply_is_not_an_unsubscribe(name: str) -> None:
    assert extract(mail(name).text, REPLY_MARKER).is_unsubscribe is False


@pytest.mark.parametrize(
    "body",
    ["Unsubscribe", "unsubscribe.", "  STOP  ", "Remove me!", "Abmelden", "se désabonner"],
)
def test_unsubscribe_words_alone_unsubscribe(body: str) -> None:
    assert extract(body).is_unsubscribe is True


def test_unsubscribe_inside_a_sentence_is_a_comment() -> None:
    assert extract("Please don't unsubscribe me, I want to follow this.").is_unsubscribe is False


@pytest.mark.parametrize(
    ("attribution", "language"),
    [
        (
            "El lun, 23 nov 2026 a las 10:15, OpenDPIA (<notifications@opendpia.test>) escribió:",
            "es",
        ),
        ("Il giorno lun 23 nov 2026 alle ore 10:15 OpenDPIA ha scritto:", "it"),
        ("Op ma 23 nov 2026 om 10:15 schreef OpenDPIA <notifications@opendpia.test>:", "nl"),
        ("Em seg., 23 de nov. de 2026 às 10:15, OpenDPIA escreveu:", "pt"),
        ("Den mån 23 nov. 2026 kl 10:15 skrev OpenDPIA <notifications@opendpia.test>:", "sv"),
        ("W dniu 23.11.2026 o 10:15, OpenDPIA pisze:", "pl"),
    ],
)
def test_attribution_in_other_languages_is_cut(attribution: str, language: str) -> None:
    body = f"New words ({language}).\n\n{attribution}\n> {REPLY_MARKER}\n> Alice Martin edited\n"
    assert extract(body).text == f"New words ({language})."


def test_sent_from_in_german_goes_to_signature() -> None:
    reply = extract("Passt so.\n\nVon meinem iPhone gesendet\n")
    assert (reply.text, reply.signature) == ("Passt so.", "Von meinem iPhone gesendet")


def test_valediction_followed_by_prose_is_kept_as_text() -> None:
    prose = "x" * 120
    reply = extract(f"First point.\n\nThanks\n{prose}\n")
    assert reply.signature == ""
    assert reply.text.endswith(prose)


def test_markdown_style_dash_list_is_not_a_signature() -> None:
    body = "Two things:\n- delete raw logs\n- keep aggregates\n"
    reply = extract(body)
    assert reply.text == "Two things:\n- delete raw logs\n- keep aggregates"
    assert reply.signature == ""


def test_unflow_joins_soft_breaks_per_quote_depth_and_keeps_signature_separator() -> None:
    flowed = "one \ntwo\n> q1 \n> q2\n-- \nsig"
    assert unflow(flowed) == "one two\n> q1 q2\n-- \nsig"


def test_unflow_delsp_removes_the_soft_break_space() -> None:
    assert unflow("Gr\u00fc \n\u00dfe", delsp=True) == "Gr\u00fc\u00dfe"


def test_crlf_and_lone_cr_line_endings_read_alike() -> None:
    body = "Answer.\n\nOn Mon, 23 Nov 2026 at 10:15, OpenDPIA wrote:\n> quoted\n"
    expected = extract(body)
    assert extract(body.replace("\n", "\r\n")) == expected
    assert extract(body.replace("\n", "\r")) == expected
    assert re.fullmatch(r"Answer\.", expected.text)


def test_a_partners_own_sentence_about_confidentiality_is_not_a_disclaimer() -> None:
    body = (
        "Agreed.\n\n"
        "The data is confidential and only the intended recipient (the DPO) should see it.\n\n"
        "On Mon, 23 Nov 2026 at 10:15, OpenDPIA <notify@opendpia.test> wrote:\n"
        f"> {REPLY_MARKER}\n"
    )
    reply = extract(body, REPLY_MARKER)
    assert reply.text == (
        "Agreed.\n\n"
        "The data is confidential and only the intended recipient (the DPO) should see it."
    )
    assert reply.disclaimer == ""


def test_html_mail_keeps_a_partners_list_and_numbering_as_written() -> None:
    text = html_to_text(
        "<p>Our answers:<br>- paper copies are shredded<br>1. first review in May<br>"
        "+ one more site<br>a path C:\\Users\\dpo and a literal \\- dash</p>"
    )
    assert [line.rstrip() for line in text.strip().split("\n")] == [
        "Our answers:",
        "- paper copies are shredded",
        "1. first review in May",
        "+ one more site",
        "a path C:\\Users\\dpo and a literal \\- dash",
    ]
