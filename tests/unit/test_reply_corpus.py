"""The reply corpus (issue 14): every case in tests/fixtures/mail/replies is a raw message as a
real client sends it, with the exact comment the bridge must post (``NNN-slug.expected``) and,
in ``cases.toml``, what it covers, the signature set aside and the attachments' fate.

Each message is read and cut exactly as the bridge's processor does: ``read`` (MIME, charsets,
format=flowed, HTML to text) and then ``extract``. The expected texts follow the extraction
rules in docs/email-bridge.md, written from those rules and never from the engine's output.
The coverage checks at the end keep the corpus from shrinking without anyone noticing.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from email_bridge.extract import extract
from email_bridge.message import ReadMail, read
from server.services.notification_mail import REPLY_MARKER

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "replies"
MANIFEST: dict[str, dict[str, Any]] = tomllib.loads(
    (CORPUS / "cases.toml").read_text(encoding="utf-8")
)

MIN_CASES = 160
MIN_PER_CATEGORY = 8
MIN_PER_LANGUAGE = 5
MIN_PER_CLIENT = 3
CATEGORIES = (
    "top-posted",
    "inline",
    "bottom-posted",
    "signature-dash",
    "signature-corporate",
    "disclaimer",
    "greater-than",
    "blank-lines",
    "forwarded",
    "html-only",
    "unsure",
    "attachments",
)
# Beyond English: the languages of the UK and the EU's largest.
LANGUAGES = ("cy", "ga", "gd", "de", "fr", "es", "it", "nl", "pl", "pt", "ro")
CLIENTS = (
    "gmail-web",
    "gmail-android",
    "gmail-ios",
    "apple-mail-macos",
    "apple-mail-ios",
    "outlook-windows",
    "outlook-windows-html",
    "outlook-web",
    "outlook-mobile",
    "thunderbird",
    "yahoo",
    "proton",
    "gmx",
    "webde",
    "orange",
    "libero",
    "onet",
    "wp",
    "sapo",
    "roundcube",
    "horde",
)
POSTINGS = {"top", "inline", "bottom", "none"}


@cache
def mail(case: str) -> ReadMail:
    """A case's message as the processor reads it (read once; no test changes it)."""
    return read((CORPUS / f"{case}.eml").read_bytes())


def expected(case: str) -> str:
    return (CORPUS / f"{case}.expected").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(MANIFEST))
def test_reply_keeps_exactly_the_words_the_partner_wrote(case: str) -> None:
    reply = extract(mail(case).text, REPLY_MARKER)
    assert reply.text == expected(case)
    if "signature" in MANIFEST[case]:
        assert reply.signature == MANIFEST[case]["signature"]


ATTACHMENT_CASES = sorted(c for c, e in MANIFEST.items() if "attachments" in e["categories"])


@pytest.mark.parametrize("case", ATTACHMENT_CASES)
def test_attachments_are_judged_by_their_bytes(case: str) -> None:
    """Accepted files carry the type their bytes say; executables (whatever their name or
    declared type) and archives holding one are refused, and the refusal names the file."""
    entry = MANIFEST[case]
    got = [(a.filename, a.content_type) for a in mail(case).attachments]
    assert got == [(a["name"], a["type"]) for a in entry["attachments"]]
    refused = mail(case).refused_attachments
    assert len(refused) == len(entry["refused"]), refused
    for name in entry["refused"]:
        assert any(name in line for line in refused), (name, refused)


def test_manifest_and_files_match_one_to_one() -> None:
    stems = {p.stem for p in CORPUS.glob("*.eml")}
    expectations = {p.stem for p in CORPUS.glob("*.expected")}
    assert stems == set(MANIFEST)
    assert expectations == set(MANIFEST)
    assert not [
        p.name for p in CORPUS.iterdir() if p.suffix not in (".eml", ".expected", ".toml", ".md")
    ]
    numbers = [stem.split("-", 1)[0] for stem in MANIFEST]
    assert all(len(n) == 3 and n.isdigit() for n in numbers)
    assert len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("case", sorted(MANIFEST))
def test_manifest_entry_is_well_formed(case: str) -> None:
    entry = MANIFEST[case]
    assert {"client", "language", "posting", "categories"} <= set(entry)
    assert entry["posting"] in POSTINGS
    assert entry["categories"] and all(isinstance(c, str) for c in entry["categories"])
    text = expected(case)
    assert text == text.strip("\n") and not text.endswith((" ", "\t"))
    if "attachments" in entry["categories"]:
        assert isinstance(entry["attachments"], list) and isinstance(entry["refused"], list)


def test_corpus_covers_every_category_language_and_client() -> None:
    """So the corpus cannot silently shrink below what issue 14 asks for."""
    assert len(MANIFEST) >= MIN_CASES
    categories = Counter(c for e in MANIFEST.values() for c in e["categories"])
    languages = Counter(e["language"] for e in MANIFEST.values())
    clients = Counter(e["client"] for e in MANIFEST.values())
    assert {c: categories[c] for c in CATEGORIES if categories[c] < MIN_PER_CATEGORY} == {}
    assert {lang: languages[lang] for lang in LANGUAGES if languages[lang] < MIN_PER_LANGUAGE} == {}
    assert languages["en"] >= MIN_PER_CATEGORY
    assert {c: clients[c] for c in CLIENTS if clients[c] < MIN_PER_CLIENT} == {}


def test_every_expected_line_is_in_the_decoded_message() -> None:
    """A guard on the corpus itself: each kept line (context lines as the quoted line they
    repeat) and each signature line is text the decoded message really holds."""
    missing = []
    for case, entry in MANIFEST.items():
        lines = {line.rstrip() for line in mail(case).text.split("\n")}
        quoted = {line.lstrip("> ").rstrip() for line in lines if line.startswith(">")}
        wanted = expected(case).split("\n") + entry.get("signature", "").split("\n")
        for line in filter(None, wanted):
            if line not in lines and not (line.startswith("> ") and line[2:] in quoted):
                missing.append((case, line))
    assert missing == []


def test_no_expected_comment_holds_our_own_notification_text() -> None:
    """Our marker, links and footer are never the partner's words, nor context for them."""
    ours = (REPLY_MARKER, "opendpia.test/", "You get this because", "Reply to this email to")
    leaks = [(case, o) for case in MANIFEST for o in ours if o in expected(case)]
    assert leaks == []
