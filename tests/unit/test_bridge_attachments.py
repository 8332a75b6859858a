"""Attachments are judged by their bytes: the type stored is what the content says, programs
and archives holding them are refused, whatever the name or declared type claims."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from email.message import EmailMessage

import pytest

from email_bridge.attachments import judge
from email_bridge.message import read

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
    + b"\x00" * 48
    + b"PE\x00\x00"
    + b"\x00" * 64
)
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 60
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def office(part: str, extra: dict[str, bytes] | None = None) -> bytes:
    return zipped({"[Content_Types].xml": b"<Types/>", part: b"<x/>", **(extra or {})})


@pytest.mark.parametrize(
    ("name", "data", "declared", "stored"),
    [
        ("report.pdf", PDF, "application/pdf", "application/pdf"),
        ("scan", PDF, "application/octet-stream", "application/pdf"),
        ("chart.pdf", png(), "application/pdf", "image/png"),
        ("notes.docx", office("word/document.xml"), "application/octet-stream", DOCX),
        ("sheet.xlsx", office("xl/workbook.xml"), DOCX, XLSX),
        ("data.csv", "a,b\nLondon,£5\n".encode(), "text/csv", "text/csv"),
        ("data.csv", b"\xef\xbb\xbfa,b\n1,2\n", "application/vnd.ms-excel", "text/csv"),
        ("readme", b"Plain words.\n", "application/octet-stream", "text/plain"),
        (
            "csvs.zip",
            zipped({"a.csv": b"a,b\n", "b.csv": b"c,d\n"}),
            "application/zip",
            "application/zip",
        ),
    ],
)
def test_a_harmless_file_is_kept_as_the_type_its_bytes_say(
    name: str, data: bytes, declared: str, stored: str
) -> None:
    verdict = judge(name, data, declared)
    assert (verdict.content_type, verdict.refusal) == (stored, None)


@pytest.mark.parametrize(
    ("name", "data", "declared", "reason"),
    [
        ("invoice\u202efdp.exe", EXE, "application/pdf", "program"),
        ("photo.png", EXE, "image/png", "program"),
        ("tool", ELF, "application/octet-stream", "program"),
        ("run.txt", b"#!/bin/sh\nrm -rf ~\n", "text/plain", "recognise"),
        ("bundle.zip", zipped({"setup.exe": EXE}), "application/zip", "program"),
        ("bundle.zip", zipped({"readme.pdf": EXE}), "application/zip", "program"),
        ("bundle.zip", zipped({"install.bat": b"del *"}), "application/zip", "program"),
        ("deep.zip", zipped({"inner.zip": zipped({"x.exe": EXE})}), "application/zip", "program"),
        ("macro.docx", office("word/document.xml", {"word/vbaProject.bin": b"x"}), DOCX, "macros"),
        ("broken.zip", b"PK\x03\x04" + b"\x00" * 30, "application/zip", "damaged"),
        ("blob.bin", bytes(range(256)) * 4, "application/octet-stream", "recognise"),
        (
            "a.7z",
            b"7z\xbc\xaf\x27\x1c" + b"\x00" * 40,
            "application/x-7z-compressed",
            "not accepted",
        ),
    ],
)
def test_programs_and_archives_holding_them_are_refused_whatever_they_claim(
    name: str, data: bytes, declared: str, reason: str
) -> None:
    verdict = judge(name, data, declared)
    assert verdict.content_type is None
    assert verdict.refusal is not None and reason in verdict.refusal


def test_a_disguised_program_in_a_reply_is_refused_and_named_as_it_really_reads() -> None:
    message = EmailMessage()
    message["From"] = "bob@partner.example"
    message.set_content("Invoice attached.")
    message.add_attachment(
        EXE, maintype="application", subtype="pdf", filename="invoice\u202efdp.exe"
    )
    message.add_attachment(PDF, maintype="image", subtype="png", filename="scan.png")
    mail = read(message.as_bytes())
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("scan.png.pdf", "application/pdf")
    ]
    [refused] = mail.refused_attachments
    assert refused.startswith("invoicefdp.exe (") and "program" in refused
