"""Reply extraction accuracy over the corpus (issue 14): ``python -m bench.replies``.

Every case in tests/fixtures/mail/replies is read once with the bridge's ``read`` (MIME,
charsets, format=flowed, HTML to text), and the same decoded text goes to each engine: ours
(``email_bridge.extract``) and the published reply parsers that are installed
(``mail-parser-reply``, ``email-reply-parser``). Each engine's kept text is compared with the
case's ``.expected``:

- exact: the kept text equals the expected text, after the same tidying for every engine
  (trailing whitespace of each line and leading/trailing blank lines removed; the peers strip
  their output, ours does this already);
- lost per 1,000: words of the expected text missing from the kept text, per 1,000 expected
  words (multiset difference, lower case, punctuation stripped);
- leaked per 1,000: words kept that the expected text does not have, per 1,000 expected words.

Printed for all cases and per category; ``--json`` also writes every figure and each case's
outcome. No network, no servers: a run takes a few seconds.
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from email_bridge.extract import extract
from email_bridge.message import read
from server.services.notification_mail import REPLY_MARKER

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mail" / "replies"

Engine = Callable[[str], str]


@dataclass(frozen=True)
class Case:
    name: str
    text: str  # the decoded body, as the bridge's processor has it
    expected: str
    categories: tuple[str, ...]
    language: str


@dataclass
class Score:
    cases: int = 0
    exact: int = 0
    expected_words: int = 0
    lost: int = 0
    leaked: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, case: Case, kept: str) -> None:
        want, got = words(case.expected), words(kept)
        self.cases += 1
        self.expected_words += sum(want.values())
        self.lost += sum((want - got).values())
        self.leaked += sum((got - want).values())
        if tidy(kept) == case.expected:
            self.exact += 1
        else:
            self.failed.append(case.name)

    def row(self) -> dict[str, Any]:
        per_k = 1000 / self.expected_words if self.expected_words else 0.0
        return {
            "cases": self.cases,
            "exact_pct": 100 * self.exact / self.cases if self.cases else 0.0,
            "lost_per_1000": self.lost * per_k,
            "leaked_per_1000": self.leaked * per_k,
        }


def tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip("\n")


def words(text: str) -> Counter[str]:
    """Lower-cased words with punctuation and symbols taken out (so '>500' counts as '500')."""
    out: Counter[str] = Counter()
    for token in text.lower().split():
        word = "".join(ch for ch in token if not unicodedata.category(ch).startswith(("P", "S")))
        if word:
            out[word] += 1
    return out


def load(corpus: Path = CORPUS) -> list[Case]:
    manifest = tomllib.loads((corpus / "cases.toml").read_text(encoding="utf-8"))
    return [
        Case(
            name=name,
            text=read((corpus / f"{name}.eml").read_bytes()).text,
            expected=(corpus / f"{name}.expected").read_text(encoding="utf-8"),
            categories=tuple(entry["categories"]),
            language=entry["language"],
        )
        for name, entry in sorted(manifest.items())
    ]


def attachments_as_listed(corpus: Path = CORPUS) -> tuple[int, int]:
    """How many attachment cases ``read`` judges as the manifest says (accepted names and the
    types their bytes say, refused files): ours only, the peers do not read attachments."""
    manifest = tomllib.loads((corpus / "cases.toml").read_text(encoding="utf-8"))
    right = total = 0
    for name, entry in manifest.items():
        if "attachments" not in entry["categories"]:
            continue
        total += 1
        mail = read((corpus / f"{name}.eml").read_bytes())
        accepted = [(a.filename, a.content_type) for a in mail.attachments]
        refused = mail.refused_attachments
        if (
            accepted == [(a["name"], a["type"]) for a in entry["attachments"]]
            and len(refused) == len(entry["refused"])
            and all(any(part in line for line in refused) for part in entry["refused"])
        ):
            right += 1
    return right, total


def ours(text: str) -> str:
    return extract(text, REPLY_MARKER).text


def engines() -> tuple[dict[str, Engine], list[str]]:
    """Ours and every peer that imports; the names of the peers that did not."""
    found: dict[str, Engine] = {"opendpia": ours}
    missing: list[str] = []
    try:
        from mailparser_reply import EmailReplyParser as MailParserReply
        from mailparser_reply.constants import MAIL_LANGUAGES

        # Every language it has rules for (it has none for cy, ga, gd, pt or ro); it is not
        # told each case's language, as our engine is not.
        parser = MailParserReply(languages=[lang for lang in MAIL_LANGUAGES if lang != "david"])

        def mail_parser_reply(text: str) -> str:
            replies = parser.read(text).replies
            return replies[0].body if replies else ""

        found["mail-parser-reply"] = mail_parser_reply
    except ImportError:
        missing.append("mail-parser-reply")
    try:
        from email_reply_parser import EmailReplyParser

        found["email-reply-parser"] = EmailReplyParser.parse_reply
    except ImportError:
        missing.append("email-reply-parser")
    return found, missing


def run(cases: list[Case], found: dict[str, Engine]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, engine in found.items():
        overall = Score()
        by_category: dict[str, Score] = {}
        errors: list[str] = []
        started = time.perf_counter()
        for case in cases:
            try:
                kept = engine(case.text)
            except Exception as exc:  # a peer that crashes keeps nothing for that case
                errors.append(f"{case.name}: {type(exc).__name__}")
                kept = ""
            overall.add(case, kept)
            for category in case.categories:
                by_category.setdefault(category, Score()).add(case, kept)
        elapsed = time.perf_counter() - started
        results[name] = {
            "all": overall.row(),
            "ms_per_message": 1000 * elapsed / max(len(cases), 1),
            "categories": {c: s.row() for c, s in sorted(by_category.items())},
            "failed": overall.failed,
            "errors": errors,
        }
    return results


def table(results: dict[str, Any]) -> str:
    names = list(results)
    categories = sorted({c for r in results.values() for c in r["categories"]})
    head = f"{'':22}" + "".join(f"{n:>30}" for n in names)
    sub = f"{'category (cases)':22}" + "".join(
        f"{'exact %':>10}{'lost/1k':>10}{'leaked/1k':>10}" for _ in names
    )
    lines = [head, sub]

    def cells(row: dict[str, Any]) -> str:
        return (
            f"{row['exact_pct']:>10.1f}{row['lost_per_1000']:>10.1f}{row['leaked_per_1000']:>10.1f}"
        )

    first = results[names[0]]
    lines.append(
        f"{'all (' + str(first['all']['cases']) + ')':22}"
        + "".join(cells(results[n]["all"]) for n in names)
    )
    for category in categories:
        count = first["categories"][category]["cases"]
        lines.append(
            f"{category + ' (' + str(count) + ')':22}"
            + "".join(cells(results[n]["categories"][category]) for n in names)
        )
    lines.append(
        f"{'ms per message':22}" + "".join(f"{results[n]['ms_per_message']:>30.2f}" for n in names)
    )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.replies", description=__doc__)
    p.add_argument("--json", type=Path, help="also write every figure and failing case here")
    p.add_argument("--failures", action="store_true", help="list the cases each engine misses")
    args = p.parse_args()
    cases = load()
    found, missing = engines()
    results = run(cases, found)
    print(f"{len(cases)} cases from tests/fixtures/mail/replies")
    for name in missing:
        print(f"{name}: not installed (pip install -e '.[dev]'), not measured")
    print(table(results))
    right, total = attachments_as_listed()
    print(f"attachments judged as listed (opendpia only): {right} of {total} cases")
    for name, result in results.items():
        if result["errors"]:
            print(
                f"{name}: {len(result['errors'])} cases raised: {', '.join(result['errors'][:5])}"
            )
        if args.failures:
            print(f"\n{name} misses {len(result['failed'])}:")
            print("\n".join(f"  {case}" for case in result["failed"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
