"""How several processes number a document's log: one group commit, before and after issue 18.

    .venv/bin/python -m bench.numbering            # about 20 s; needs PostgreSQL on :5432

Interleaved, on one fresh database: a group commit of 10 documents with one row each,
numbered the old way (decision 46: ``BEGIN``, a per-document advisory lock, ``max(seq)``,
the insert, ``COMMIT``) and the new way (decision 144: one statement bumping the
documents' counter rows and inserting, committed on its own), the new way also on an engine
that pings every connection it checks out (``pool_pre_ping``, as before decision 153: with
asyncpg, ``BEGIN``, ``;`` and ``ROLLBACK`` first). Prints each way's commit
latency (median, p90) and this process's CPU per commit (the server's share; PostgreSQL's
is not counted). Interleaving keeps a shared machine's load the same for both.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from server.domain.documents import UpdateRecord
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore, _updates

POSTGRES = os.environ.get("OPENDPIA_BENCH_POSTGRES", "127.0.0.1:5432")
ROUNDS = 300


class AdvisoryLockStore(SqlUpdateStore):
    """The numbering of decision 46, kept here only to be measured against."""

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        rows: list[dict[str, Any]] = [
            {
                "document_id": r.document_id,
                "seq": r.seq,
                "update": r.update,
                "actor": r.actor,
                "channel": r.channel,
                "origin": r.origin,
                "created_at": r.created_at,
            }
            for r in records
        ]
        by_document: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_document.setdefault(row["document_id"], []).append(row)
        ids = sorted(by_document)
        async with self._engine.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(id, 7)) "
                    "FROM (SELECT unnest(CAST(:ids AS text[])) AS id ORDER BY 1) AS locked"
                ),
                {"ids": ids},
            )
            result = await connection.execute(
                select(_updates.c.document_id, func.max(_updates.c.seq))
                .where(_updates.c.document_id.in_(ids))
                .group_by(_updates.c.document_id)
            )
            last = {document_id: seq for document_id, seq in result}
            for document_id, document_rows in by_document.items():
                start = int(last.get(document_id) or 0)
                for offset, row in enumerate(document_rows, start=1):
                    row["seq"] = start + offset
            await connection.execute(insert(_updates), rows)


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(f"postgresql://postgres@{POSTGRES}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def main() -> None:
    database = f"opendpia_bench_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{database}"')
    url = f"postgresql+asyncpg://postgres@{POSTGRES}/{database}"
    try:
        await asyncio.to_thread(migrate, url)
        engine = create_engine(url, pool_size=5)
        pinging = create_async_engine(url, pool_size=5, pool_pre_ping=True)
        ways = {
            "advisory lock + max(seq), pre-ping": AdvisoryLockStore(pinging, assign_seq=True),
            "counter row, pre-ping (decision 144)": SqlUpdateStore(pinging, assign_seq=True),
            "counter row, ping if idle (153)": SqlUpdateStore(engine, assign_seq=True),
        }
        documents = {name: [f"{n}-{i}" for i in range(10)] for n, name in enumerate(ways)}
        for name, store in ways.items():
            for document_id in documents[name]:
                await store.create_document(document_id, "bench")
        latency: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, float] = dict.fromkeys(ways, 0.0)
        now = datetime.now(UTC)
        for _ in range(ROUNDS):
            for name, store in ways.items():
                records = [
                    UpdateRecord(d, 0, b"\x01\x01\x02\x03" * 8, "bench", "api", "bench", now)
                    for d in documents[name]
                ]
                began, cpu_began = time.perf_counter(), time.process_time()
                await store.append(records)
                latency[name].append(time.perf_counter() - began)
                cpu[name] += time.process_time() - cpu_began
        await engine.dispose()
        await pinging.dispose()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(f"{ROUNDS} group commits of 10 documents x 1 row each, interleaved")
    print(f"load average {os.getloadavg()[0]:.2f}")
    for name, times in latency.items():
        times.sort()
        print(
            f"{name:38} median {1000 * times[len(times) // 2]:6.2f} ms  "
            f"p90 {1000 * times[int(len(times) * 0.9)]:6.2f} ms  "
            f"CPU {1000 * cpu[name] / ROUNDS:5.2f} ms per commit"
        )


if __name__ == "__main__":
    asyncio.run(main())
