"""Property tests: whatever bytes arrive, reading, cutting and classifying them never raises;
text taken from HTML carries no markup or unsafe link; attachment names stay harmless."""

from __future__ import annotations

import re
import unicodedata
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from email_bridge.attachments import ACCEPTED as ALLOWED_TYPES
from email_bridge.classify import Classification, classify, dmarc_failed, read_bounce
from email_bridge.extract import Reply, extract
from email_bridge.message import ReadMail, read, safe_filename
from server.mail.compose import LOOP_HEADER
from server.services.notification_mail import REPLY_MARKER

# 200 examples a test: about 10 s on an idle machine, several times that on a busy one.
pytestmark = pytest.mark.timeout(360)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Every format character (category Cf) of the running Python's Unicode: bidi controls,
# zero-width characters, the BOM, tag characters.
FORMAT_CHARACTERS = "".join(
    chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf"
)
BIDI_AND_INVISIBLE = re.compile(f"[{re.escape(FORMAT_CHARACTERS)}]")
# A tag as html2text could only have copied it from markup (its own "<https://…>" link
# protection and "<mailto:…>" are not tags).
TAG = re.compile(r"<\s*/?\s*(?!https?:|mailto:)[a-zA-Z][\w:-]*(?:\s[^<>]*)?/?>")
LINK_TARGET = re.compile(r"\]\(<?([^)>\s]*)")


def everything(raw: bytes) -> tuple[ReadMail, Reply, Classification]:
    """What the processor does with a message, up to merging."""
    mail = read(raw)
    kind = classify(
        mail,
        envelope_from="bob@partner.example",
        to_bounce_address=False,
        installation="opendpia.test",
        own_addresses=frozenset({"notifications@opendpia.test"}),
        loop_header=LOOP_HEADER,
    )
    classify(
        mail,
        envelope_from="",
        to_bounce_address=True,
        installation="opendpia.test",
        own_addresses=frozenset(),
        loop_header=LOOP_HEADER,
    )
    read_bounce(mail)
    dmarc_failed(mail, frozenset({"mx.opendpia.test"}))
    reply = extract(mail.text, REPLY_MARKER)
    _ = reply.is_unsubscribe
    assert isinstance(mail.text, str)
    assert not BIDI_AND_INVISIBLE.search(mail.text)
    return mail, reply, kind


# -- building valid mail to mutate --------------------------------------------------------

words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="&:<>\\"),
    max_size=40,
)
# One header line's worth: no line breaks (the generator refuses them), anything else goes.
line = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    max_size=40,
)


@st.composite
def valid_message(draw: st.DrawFn) -> bytes:
    message = EmailMessage()
    message["From"] = "Bob Jones <bob@partner.example>"
    message["To"] = "reply+k1.abc@reply.opendpia.test"
    message["Subject"] = "Re: " + draw(line)
    message["Message-ID"] = "<fuzz.1@partner.example>"
    plain = draw(words) + "\n\nOn Mon, 23 Nov 2026 at 10:15, OpenDPIA wrote:\n> " + REPLY_MARKER
    message.set_content(plain, cte=draw(st.sampled_from(["quoted-printable", "base64", "8bit"])))
    message.add_alternative(
        f"<p>{draw(words)}</p><script>alert(1)</script><a href='javascript:x()'>y</a>",
        subtype="html",
    )
    if draw(st.booleans()):
        message.add_attachment(
            draw(st.binary(max_size=200)),
            maintype="application",
            subtype=draw(st.sampled_from(["pdf", "octet-stream", "x-msdownload"])),
            filename=draw(st.one_of(line, st.just("../..\\x\u202egpj.exe"))) or "a.pdf",
        )
    if draw(st.booleans()):
        forwarded = EmailMessage()
        forwarded["From"] = "someone@else.example"
        forwarded.set_content(draw(words))
        message.add_attachment(forwarded)
    return as_bytes(message)


def as_bytes(message: EmailMessage) -> bytes:
    """Serialised with fixed boundaries (the generator's own come from ``random``)."""
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_fuzz_{index}_=")
    return message.as_bytes(policy=SMTP)


def _boundaries(raw: bytes) -> list[bytes]:
    return re.findall(rb'boundary="?([^";\r\n]+)', raw)


@st.composite
def mutated_message(draw: st.DrawFn) -> bytes:
    raw = draw(valid_message())
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(
            st.sampled_from(
                ["truncate", "flip", "insert", "boundary", "nest", "header", "headers", "charset"]
            )
        )
        if operation == "truncate":
            raw = raw[: draw(st.integers(0, len(raw)))]
        elif operation == "flip" and raw:
            data = bytearray(raw)
            for _ in range(draw(st.integers(1, 20))):
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            raw = bytes(data)
        elif operation == "insert":
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=60)) + raw[at:]
        elif operation == "boundary":
            found = _boundaries(raw)
            if found:
                line = (
                    b"\r\n--"
                    + draw(st.sampled_from(found))
                    + draw(st.sampled_from([b"", b"--", b"  ", b"--\r\n--"]))
                )
                for _ in range(draw(st.integers(1, 5))):
                    at = draw(st.integers(0, len(raw)))
                    raw = raw[:at] + line + b"\r\n" + raw[at:]
        elif operation == "nest":
            depth = draw(st.integers(1, 40))
            for level in range(depth):
                b = f"n{level}".encode()
                raw = (
                    b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b
                    + b"\r\n" + raw + b"\r\n--" + b + b"--\r\n"
                )  # fmt: skip
            raw = b"From: bob@partner.example\r\nMIME-Version: 1.0\r\n" + raw
        elif operation == "header":
            name = draw(
                st.sampled_from(
                    ["Subject", "From", "Content-Type", "Authentication-Results", "Received"]
                )
            )
            value = draw(
                st.sampled_from(
                    [
                        b"x" * 100_000,
                        b"=?utf-8?q?" + b"=C3=A9" * 5_000 + b"?=",
                        b"(" * 300 + b"c" + b")" * 300 + b" a@b.example",
                        b"text/plain; " + b"p=v; " * 3_000,
                        b'"' + b"\\" * 5_000,
                        b" a@b, " * 2_000,
                    ]
                )
            )
            raw = name.encode() + b": " + value + b"\r\n" + raw
        elif operation == "headers":
            raw = b"X-Fuzz: 1\r\n" * draw(st.integers(100, 3_000)) + raw
        elif operation == "charset":
            raw = re.sub(
                rb"charset=\"?[\w-]+\"?",
                draw(st.sampled_from([b"charset=x-unknown", b"charset=", b"charset=utf-7"])),
                raw,
            )
    return raw


# -- properties -------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=4_000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    everything(raw)


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                b"From: a@b\r\n",
                b"From: \xff\xfe@\x00\r\n",
                b"Content-Type: multipart/mixed; boundary=x\r\n",
                b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n",
                b"Content-Type: message/delivery-status\r\n",
                b"Content-Type: message/rfc822\r\n",
                b"Content-Type: text/html; charset=bogus\r\n",
                b"Content-Transfer-Encoding: base64\r\n",
                b"Content-Transfer-Encoding: quoted-printable\r\n",
                b"Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fx\r\n",
                b"Authentication-Results: mx.opendpia.test; dmarc=fail\r\n",
                b"Auto-Submitted: auto-replied\r\n",
                b"\r\n",
                b"--x\r\n",
                b"--x--\r\n",
                b"Action: failed\r\nStatus: 5.1.1\r\n",
                b"=?utf-8?b?////?=\r\n",
                b"> quoted\r\n",
                b"<p onclick=x>hi</p>\r\n",
                b"=\r\n",
            ]
        ),
        max_size=40,
    )
)
def test_mail_shaped_garbage_never_raises(pieces: list[bytes]) -> None:
    everything(b"".join(pieces))


@FUZZ
@given(valid_message())
def test_valid_multipart_reads_the_plain_part(raw: bytes) -> None:
    mail, _, _ = everything(raw)
    assert mail.from_address == "bob@partner.example"
    assert mail.from_html is False
    assert "Reply above this line" in mail.text


@FUZZ
@given(mutated_message())
def test_mutated_mime_never_raises(raw: bytes) -> None:
    mail, _, _ = everything(raw)
    if mail.from_html:
        assert not TAG.search(mail.text)
        assert "javascript:" not in mail.text.lower()


hostile_fragments = st.sampled_from(
    [
        "<script>alert('LEAK')</script>",
        "<script src=https://evil.example/x.js></script>",
        "<style>p { background: url(javascript:alert(1)) } LEAK</style>",
        "<img src='https://tracker.example/p.gif'>",
        "<img src=x onerror=alert(1)>",
        "<a href='javascript:alert(1)'>js</a>",
        "<a href='JaVaScRiPt:alert(1)'>js2</a>",
        "<a href='java&#x09;script:alert(1)'>js3</a>",
        "<a href=' javascript:alert(1)'>js4</a>",
        "<a href='data:text/html;base64,PHNjcmlwdD4='>data</a>",
        "<a href='vbscript:msgbox(1)'>vb</a>",
        "<a href='https://opendpia.test/ok'>fine</a>",
        "<a href='mailto:bob@partner.example'>mail</a>",
        "<iframe src='https://evil.example'></iframe>",
        "<object data='x.swf'></object>",
        "<svg><script>alert(1)</script><a xlink:href='javascript:alert(1)'>s</a></svg>",
        "<math><mi xlink:href='javascript:alert(1)'>m</mi></math>",
        "<p onclick='steal()' style='color:red'>para</p>",
        "<form action='https://evil.example'><input value='v'><button>b</button></form>",
        "<!-- <script>alert(1)</script> -->",
        "<![CDATA[<script>alert(1)</script>]]>",
        "<scr<script>ipt>alert(1)</script>",
        "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>",
        "<table><tr><td>cell</td></tr></table>",
        "<ul><li>one</li><li>two</li></ul>",
        "<blockquote>quoted <b>bold</b></blockquote>",
        "<div>\u202egnp.exe\u202c \u200bzero\u200d\ufeff</div>",
        "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
        "<base href='javascript:/'>",
        "<a href='https://x.example/' target=_blank rel=opener>t</a>",
        "</p></div></body>",
    ]
)
# No fragment holds a literal "<" as text ("a < b", "&lt;b&gt;"): that is the writer's text,
# kept as text like any other (whoever shows a comment escapes it), not markup that survived.


@FUZZ
@given(st.lists(st.one_of(hostile_fragments, words), min_size=1, max_size=25))
def test_text_from_html_carries_no_tag_script_or_unsafe_link(parts: list[str]) -> None:
    html = "<html><body>" + "".join(parts) + "</body></html>"
    message = EmailMessage()
    message["From"] = "mallory@partner.example"
    message.set_content(html, subtype="html")
    mail, reply, _ = everything(as_bytes(message))
    assert mail.from_html is True
    for text in (mail.text, reply.text, reply.signature):
        assert not TAG.search(text), text
        squeezed = re.sub(r"\s+", "", text).lower()
        assert "javascript:" not in squeezed
        assert "vbscript:" not in squeezed
        assert "data:" not in squeezed
        assert "LEAK" not in text  # script and style content
        assert "tracker.example" not in text
        assert not BIDI_AND_INVISIBLE.search(text)
        for target in LINK_TARGET.findall(text):
            assert target.startswith(("https://", "http://", "mailto:")), target


@FUZZ
@given(st.text(max_size=300), st.integers(0, 3))
def test_extract_never_raises_and_keeps_no_blank_edges(body: str, marker_at: int) -> None:
    lines = body.split("\n")
    lines.insert(min(marker_at, len(lines)), "> " + REPLY_MARKER)
    reply = extract("\n".join(lines), REPLY_MARKER)
    assert reply.text == reply.text.strip("\n")
    assert REPLY_MARKER not in reply.text


content_types = st.sampled_from([*ALLOWED_TYPES, "application/octet-stream", "text/html"])


@FUZZ
@given(st.text(max_size=400), content_types)
def test_safe_filename_cannot_climb_hide_or_reverse(name: str, content_type: str) -> None:
    safe = safe_filename(name, content_type)
    assert safe
    assert "/" not in safe and "\\" not in safe
    assert not safe.startswith(".")
    assert not BIDI_AND_INVISIBLE.search(safe)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in safe)
    extension = ALLOWED_TYPES.get(content_type)
    if extension:
        assert safe.lower().endswith(extension)
    assert len(safe) <= 125


@FUZZ
@given(
    st.lists(
        st.sampled_from(["..", ".", "/", "\\", "\u202e", "\u2066", "\u200b", "exe", "gpj", "a"]),
        max_size=20,
    ),
    content_types,
)
def test_safe_filename_of_traversal_pieces_stays_in_place(
    pieces: list[str], content_type: str
) -> None:
    safe = safe_filename("".join(pieces), content_type)
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert "\u202e" not in safe and "\u2066" not in safe and "\u200b" not in safe


def test_known_hostile_filenames() -> None:
    assert safe_filename("../../etc/passwd", "text/plain") == "passwd.txt"
    assert safe_filename("..\\..\\boot.ini", "text/plain") == "boot.ini.txt"
    assert safe_filename("invoice\u202egpj.exe", "image/jpeg") == "invoicegpj.exe.jpg"
    assert safe_filename("...", "application/pdf") == "attachment.pdf"
    assert safe_filename(".htaccess", "text/plain") == "htaccess.txt"


def test_attachment_names_from_mail_are_made_safe() -> None:
    message = EmailMessage()
    message["From"] = "bob@partner.example"
    message.set_content("See attached.")
    message.add_attachment(
        b"%PDF-1.7", maintype="application", subtype="pdf", filename="../../x\u202efdp.exe"
    )
    message.add_attachment(b"MZ", maintype="application", subtype="x-msdownload", filename="a.exe")
    mail = read(as_bytes(message))
    assert [a.filename for a in mail.attachments] == ["xfdp.exe.pdf"]
    assert len(mail.refused_attachments) == 1
    assert "a.exe" in mail.refused_attachments[0]


def test_nesting_deeper_than_the_parser_can_follow_is_refused_not_raised() -> None:
    raw = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for level in range(1_200):
        b = f"b{level}".encode()
        raw = (
            b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
            + raw + b"\r\n--" + b + b"--\r\n"
        )  # fmt: skip
    mail, reply, _ = everything(b"From: bob@partner.example\r\nMIME-Version: 1.0\r\n" + raw)
    assert mail.from_problem is not None
    assert mail.text == "" and reply.text == ""
    assert mail.problems


def test_deeply_nested_comment_in_content_type_is_refused_not_raised() -> None:
    deep = b"(" * 5_000 + b"x" + b")" * 5_000
    raw = b"From: bob@partner.example\r\nContent-Type: text/plain; " + deep + b"\r\n\r\nhello\r\n"
    mail, _, _ = everything(raw)
    assert mail.from_problem is not None


# Lines of a partner's own words: lower-case made-up words, so that no line reads as an
# attribution, a header, a valediction or a legal notice (those have their own tests).
partner_line = st.lists(st.from_regex(r"[a-z]{3,9}", fullmatch=True), min_size=2, max_size=8).map(
    " ".join
)
partner_body = st.lists(st.one_of(partner_line, st.just("")), min_size=1, max_size=8).filter(
    lambda lines: any(lines)
)
QUOTE = ["> -- Reply above this line to comment --", ">", "> Is 7 years right?", ">"]
ATTRIBUTION = "On Mon, 23 Nov 2026 at 10:15, OpenDPIA <notify@opendpia.test> wrote:"


@FUZZ
@given(partner_body, st.sampled_from(["above", "between", "below", "all"]))
def test_every_word_the_partner_wrote_is_posted_wherever_it_stands(
    body: list[str], place: str
) -> None:
    if place == "above":
        lines = [*body, "", ATTRIBUTION, *QUOTE]
    elif place == "between":
        lines = [ATTRIBUTION, *QUOTE, *body, *QUOTE]
    elif place == "below":
        lines = [ATTRIBUTION, *QUOTE, *body]
    else:
        lines = [ATTRIBUTION, *QUOTE, *body, *QUOTE, *body, "", *QUOTE, *body]
    reply = extract("\n".join(lines), REPLY_MARKER)
    posted = reply.text.split()
    for word in " ".join(body).split():
        assert word in posted
    assert REPLY_MARKER not in reply.text
    if place in ("above", "below"):  # and exactly as written, blank lines included
        assert reply.text == "\n".join(body).strip("\n")


def test_every_format_character_is_removed_from_mail_text() -> None:
    text = "before" + FORMAT_CHARACTERS + "after"
    mail = read(f"From: a@b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}".encode())
    assert mail.text.strip() == "beforeafter"
