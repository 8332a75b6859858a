"""Notifications per minute, from change events to a local SMTP sink (issue 4).

Run by hand: ``.venv/bin/python -m bench.mail [--dpias 100] [--people 10] [--rounds 10]``.
Builds 100 DPIAs with 10 participants each (1,000 in all) in a fresh SQLite database,
records one change event per DPIA per round through the notification service (the same
transaction that writes events, notifications and outbox rows), then lets one outbox
worker deliver everything to an aiosmtpd sink on loopback. Worker, sink and generator
share this process, as they would share the machine's two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.changes import ChangeEvent
from server.mail.smtp import SmtpTransport
from server.services.accounts import AccountService, CurrentUser
from server.services.dpias import DpiaService
from server.services.notifications import NotificationService
from server.services.outbox import OutboxWorker
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore


class CountingSink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        return "250 OK"


async def run(dpias: int, people: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="opendpia-mail-bench-"))
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    service = DpiaService(sessions, SqlUpdateStore(engine))
    org = await accounts.create_organisation("BEN", "Bench Borough")
    owner_id = await accounts.create_user("owner@bench.example", "Owner", "x" * 12, "BEN")
    owner = CurrentUser(owner_id, "owner@bench.example", "Owner", (org,))
    started = time.perf_counter()
    ids = []
    for d in range(dpias):
        dpia_id = await service.create(owner, f"Bench DPIA {d}", org)
        for p in range(people - 1):
            await service.invite(owner, dpia_id, f"p{p}.d{d}@partner.example", "editor")
        ids.append(dpia_id)
    print(f"set up {dpias} DPIAs x {people} participants in {time.perf_counter() - started:.1f} s")

    notifications = NotificationService(
        sessions,
        base_url="https://opendpia.bench",
        mail_from="n@opendpia.bench",
        secret_key="b" * 40,
    )
    started = time.perf_counter()
    events = 0
    for _ in range(rounds):
        now = datetime.now(UTC)
        batch = [
            ChangeEvent(d, f"user:{owner_id}", "browser", "need.aims", None, now, now, 5, "x" * 80)
            for d in ids
        ]
        await notifications.record_changes(batch)
        events += len(batch)
    generating = time.perf_counter() - started
    emails = events * (people - 1)
    print(
        f"recorded {events} change events -> {emails} notifications and emails in "
        f"{generating:.1f} s ({generating / events * 1000:.2f} ms per event)"
    )

    sink = CountingSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="bench"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    worker = OutboxWorker(
        sessions,
        SmtpTransport(f"smtp://127.0.0.1:{port}"),
        batch=200,
        retry_base=timedelta(seconds=1),
        idle_poll_seconds=0.05,
    )
    started = time.perf_counter()
    task = asyncio.create_task(worker.run(asyncio.Event()))
    while sink.count < emails:
        await asyncio.sleep(0.05)
    delivering = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    server.close()
    await engine.dispose()
    print(
        f"one worker delivered {emails} emails in {delivering:.1f} s: "
        f"{emails / delivering * 60:,.0f} emails/minute (target >= 10,000)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dpias", type=int, default=100)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.dpias, args.people, args.rounds))


if __name__ == "__main__":
    main()
