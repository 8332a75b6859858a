"""Judging an attached file by its bytes, never by the name or type the sender gave it.

A file's declared type and its name are the sender's claims: a Windows program named
``invoice<RLO>fdp.exe`` reads as "invoiceexe.pdf" and may be declared ``application/pdf``.
The ``filetype`` library reads the magic numbers (including which Office or OpenDocument
file a ZIP container is); what it says is the type we store and serve. Text has no magic
number: a file is text when it decodes as UTF-8 (or Windows-1252) with no control bytes
and is not a script (``#!``). Programs are refused, and so is any ZIP-based file (an
archive, a Word or Excel file, an OpenDocument file) that carries a program, a macro
project or an archive nested too deep to read; other archive formats cannot be looked
inside and are refused.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import filetype

# What a partner may attach, by the type the bytes say, and the extension stored with it.
ACCEPTED = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/zip": ".zip",
}
_ZIP_BASED = {
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/epub+zip",
}
_PROGRAM_TYPES = {
    "application/x-msdownload",
    "application/x-executable",
    "application/x-elf",
    "application/x-mach-binary",
    "application/x-sharedlib",
    "application/vnd.microsoft.portable-executable",
    "application/x-shockwave-flash",
    "application/wasm",
    "application/java-archive",
    "application/x-dosexec",
}
# Inside an archive, names that Windows, macOS or a shell would run once extracted, whatever
# their bytes (a script is text). A file attached directly is stored under the extension of
# the type its bytes say, so its own name cannot make it run.
_PROGRAM_EXTENSIONS = {
    ".exe", ".com", ".scr", ".pif", ".cpl", ".dll", ".sys", ".msi", ".msp", ".msc", ".bat",
    ".cmd", ".ps1", ".psm1", ".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta", ".lnk",
    ".jar", ".reg", ".sh", ".app", ".command", ".apk", ".appx", ".iso", ".img", ".vhd",
    ".docm", ".xlsm", ".pptm", ".dotm", ".xltm",
}  # fmt: skip
_MACRO_PARTS = ("vbaproject.bin", "vbadata.xml", "basic/")
_MAX_MEMBERS = 1000
_MAX_NESTING = 2
_SNIFF_BYTES = 8192
_MAX_NESTED_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Verdict:
    """The type the bytes say (None when refused) and, if refused, why, for the partner."""

    content_type: str | None
    refusal: str | None = None


def judge(name: str, data: bytes, declared: str) -> Verdict:
    """Accept ``data`` as the type its bytes say, or refuse it with a reason."""
    sniffed = _sniff(data, declared, name)
    if sniffed in _PROGRAM_TYPES:
        return Verdict(None, "a program, which is never accepted")
    if sniffed is None:
        return Verdict(None, "not a file type we could recognise from its content")
    if sniffed in _ZIP_BASED:
        problem = _zip_problem(data, 0)
        if problem is not None:
            return Verdict(None, problem)
    if sniffed not in ACCEPTED:
        return Verdict(None, f"{sniffed} files are not accepted")
    return Verdict(sniffed)


def _extensions(name: str) -> list[str]:
    """Every extension in the name (``report.pdf.exe`` has two), lower case."""
    suffixes = PurePosixPath(name.replace("\\", "/").strip(". ").lower()).suffixes
    return [s.strip() for s in suffixes]


def _sniff(data: bytes, declared: str, name: str) -> str | None:
    kind = filetype.guess(data[:_SNIFF_BYTES]) if data else None
    if kind is not None and kind.mime in _ZIP_BASED | {"application/zip"}:
        kind = filetype.guess(data)  # telling Office files apart reads the whole container
    if kind is not None:
        return str(kind.mime)
    if data[:2] == b"MZ" or data[:4] in (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf"):
        return "application/x-executable"  # shorter than filetype's checks need
    if _is_text(data):
        csv = declared == "text/csv" or ".csv" in _extensions(name)
        return "text/csv" if csv else "text/plain"
    return None


def _is_text(data: bytes) -> bool:
    if data.startswith(b"#!") or b"\x00" in data:
        return False
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark, as Excel writes
    for encoding in ("utf-8", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return all(ch.isprintable() or ch in "\t\n\r\f" for ch in text)
    return False


def _zip_problem(data: bytes, depth: int) -> str | None:
    """Why a ZIP container may not come in, or None when every member is harmless."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return "a damaged archive or document that could not be read"
    if len(members) > _MAX_MEMBERS:
        return "an archive with too many files to check"
    for member in members:
        lowered = member.filename.lower()
        if any(part in lowered for part in _MACRO_PARTS):
            return "a document with macros, which is never accepted"
        if _PROGRAM_EXTENSIONS & set(_extensions(member.filename)):
            return "an archive holding a program, which is never accepted"
        if member.is_dir() or member.file_size == 0:
            continue
        try:
            with archive.open(member) as stream:
                head = stream.read(_SNIFF_BYTES)
        except (
            zipfile.BadZipFile,
            RuntimeError,
            ValueError,
            OSError,
            EOFError,
            NotImplementedError,
        ):
            return "an archive whose files could not be read (encrypted or damaged)"
        kind = filetype.guess(head)
        mime = kind.mime if kind is not None else None
        if (
            mime in _PROGRAM_TYPES
            or head[:2] == b"MZ"
            or head[:4] == b"\x7fELF"
            or head[:2] == b"#!"
        ):
            return "an archive holding a program, which is never accepted"
        if mime is not None and (mime in _ZIP_BASED or mime in _OTHER_ARCHIVES):
            if depth + 1 >= _MAX_NESTING or mime in _OTHER_ARCHIVES:
                return "an archive inside an archive, which cannot be checked"
            if member.file_size > _MAX_NESTED_BYTES:
                return "an archive inside an archive too large to check"
            with archive.open(member) as stream:  # reads at most the size the archive states
                problem = _zip_problem(stream.read(_MAX_NESTED_BYTES), depth + 1)
            if problem is not None:
                return problem
    return None


_OTHER_ARCHIVES = {
    "application/x-rar-compressed",
    "application/vnd.rar",
    "application/x-7z-compressed",
    "application/gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-tar",
    "application/x-lzip",
    "application/zstd",
    "application/x-compress",
    "application/vnd.ms-cab-compressed",
}
