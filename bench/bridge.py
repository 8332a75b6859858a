"""Email replies merged per second while 20 people edit the same DPIA (issue 5).

Run by hand: ``.venv/bin/python -m bench.bridge [--replies 1000] [--senders 8] [--partners 10]
[--rate 0] [--inline]``.

The bridge runs as ``serve``'s child process (the default since issue 18); ``--inline`` runs
it on ``serve``'s event loop as before, to compare. The editors type into the DPIA's
rich-text fields (the shape guard refuses other roots), and the SMTP senders run in a
process of their own, so that their work does not delay the editors' clients measured here.

One ``opendpia serve`` process (the embedded default: SQLite, the bridge and the mail worker
in-process) holds a DPIA with ``--partners`` email-only participants. 20 clients edit it
over the y-websocket protocol, 10 of them writing 10 updates/s each; the other clients
record when each update reaches them. First the editors run alone (the baseline), then
``--senders`` SMTP connections deliver ``--replies`` replies as fast as the bridge accepts
them, each to a partner's reply address (or, with ``--rate``, at that many replies per
second in total: the latencies at a load the server keeps up with, rather than when it is
saturated). Reported: SMTP acceptance time (end of DATA to 250, and the whole MAIL/RCPT/DATA
transaction), replies merged per second (first send to last merge, read from the database),
and the editors' delivery p99 with and without replies. Every merged reply also notifies the
DPIA's other participants (emails are composed in the same process), as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor
from email.message import EmailMessage

import aiosmtplib
from aiosmtpd.smtp import SMTP
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.common import OwnCpu, connect_many, percentile
from bench.mail import CountingSink
from bench.servers import OPENDPIA, Server, free_port
from bench.wsclient import Stats, YClient
from bench.yproto import FieldWriter

TARGET_MERGED_PER_S = 100
TARGET_ACCEPT_P99_MS = 50


async def _seed(database_url: str, partners: int) -> tuple[str, list[tuple[str, str]]]:
    """A DPIA with ``partners`` email-only commenters; (DPIA id, [(email, reply address)])."""
    from server.bootstrap import notification_service
    from server.services.accounts import AccountService, CurrentUser
    from server.services.dpias import DpiaService
    from server.settings import Settings
    from server.storage.database import create_engine
    from server.storage.updates import SqlUpdateStore

    settings = Settings.from_env(os.environ)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    org = await accounts.create_organisation("BEN", "Bench Borough")
    owner_id = await accounts.create_user("owner@bench.example", "Owner", "x" * 12, "BEN")
    owner = CurrentUser(owner_id, "owner@bench.example", "Owner", (org,))
    dpia_id = await dpias.create(owner, "Bench DPIA", org)
    mail = notification_service(settings, sessions, None).mail
    addresses = []
    for number in range(partners):
        email = f"partner{number}@partner.example"
        participant = await dpias.invite(owner, dpia_id, email, "commenter", f"Partner {number}")
        async with sessions.begin() as session:
            addresses.append((email, mail.issue_reply(session, participant, dpia_id, "need")))
    await engine.dispose()
    return dpia_id, addresses


def _reply(number: int, sender: str, to: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Re: Bench DPIA: Owner changed the aims"
    message["Message-ID"] = f"<bench-{number}-{time.time_ns()}@partner.example>"
    message.set_content(
        f"Reply {number}: we hold the records for six years, then delete them.\n\n"
        "- case notes only\n- no health data\n\nKind regards,\nA Partner\n\n"
        "On Tue, 24 Nov 2026 at 10:15, OpenDPIA <notifications@opendpia.localhost> wrote:\n"
        '> Owner changed the aims\n> "We share case notes with the partner borough."\n'
    )
    return message.as_bytes()


async def _sender(
    port: int,
    jobs: asyncio.Queue[tuple[int, str, str]],
    data_ms: list[float],
    whole_ms: list[float],
    pace: tuple[float, float],
) -> None:
    """Send jobs until none are left; with ``pace`` (start, rate) job n leaves at n / rate."""
    start, rate = pace
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    try:
        while True:
            try:
                number, sender, to = jobs.get_nowait()
            except asyncio.QueueEmpty:
                return
            raw = _reply(number, sender, to)
            if rate:
                await asyncio.sleep(max(0.0, start + number / rate - time.perf_counter()))
            started = time.perf_counter()
            await client.mail(sender)
            await client.rcpt(to)
            data_started = time.perf_counter()
            answer = await client.data(raw)
            done = time.perf_counter()
            assert answer.code == 250, answer
            data_ms.append((done - data_started) * 1000)
            whole_ms.append((done - started) * 1000)
    finally:
        await client.quit()


def _send_all(
    port: int, jobs: list[tuple[int, str, str]], senders: int, rate: float
) -> tuple[list[float], list[float]]:
    """Send every job over ``senders`` connections; (DATA -> 250 ms, whole transaction ms).

    Run in a process of its own: the SMTP client's work on the load generator's loop would
    otherwise delay the editors' clients, whose arrival times are the measurement.
    """

    async def send() -> tuple[list[float], list[float]]:
        queue: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        data_ms: list[float] = []
        whole_ms: list[float] = []
        start = time.perf_counter()
        await asyncio.gather(
            *(_sender(port, queue, data_ms, whole_ms, (start, rate)) for _ in range(senders))
        )
        return data_ms, whole_ms

    return asyncio.run(send())


def _merged(path: str) -> int:
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT count(*) FROM inbound_messages WHERE outcome = 'merged'"
        ).fetchone()
    return int(row[0])


# Each editor keeps typing into its own field across the runs (the warm-up, the baseline,
# with replies): a new writer would start a new paragraph.
_WRITERS: dict[str, list[FieldWriter]] = {}


def _rich_text_roots() -> list[str]:
    """The DPIA template's rich-text fields: what editors may write (server.domain.shape)."""
    from server.domain.shape import shape_of
    from server.domain.templates import DEFAULT_TEMPLATE, load_template

    return sorted(shape_of(load_template(DEFAULT_TEMPLATE, None)).rich_text)


async def _editing(
    server: Server, dpia_id: str, seconds: float, stats: Stats, clients: list[YClient]
) -> int:
    """10 of the clients write 10 updates/s each for ``seconds``; the updates sent."""
    writers = _WRITERS.setdefault(
        dpia_id, [FieldWriter(i, root) for i, root in enumerate(_rich_text_roots()[:10])]
    )
    loop = asyncio.get_running_loop()
    sent = [0] * len(writers)
    deadline = loop.time() + seconds

    async def write(i: int) -> None:
        next_t = loop.time() + 0.1 * i / len(writers)
        while next_t < deadline:
            await asyncio.sleep(max(0.0, next_t - loop.time()))
            clients[i].send(writers[i].next_message(sent[i], time.perf_counter_ns()))
            sent[i] += 1
            next_t += 0.1

    await asyncio.gather(*(write(i) for i in range(len(writers))))
    return sum(sent)


def _own_cpu(server: Server) -> float:
    """CPU seconds of the serve process alone (its event loop: the editors'), without the
    bridge's child process."""
    times = server._procs()[0].cpu_times()
    return float(times.user + times.system)


async def run(
    replies: int,
    senders: int,
    partners: int,
    rate: float,
    baseline_s: float,
    keep: bool,
    inline: bool = False,
) -> None:
    os.environ["OPENDPIA_BRIDGE_PROCESS"] = "false" if inline else "true"
    os.environ["OPENDPIA_ENV"] = "development"
    os.environ["OPENDPIA_LOG_LEVEL"] = "warning"
    os.environ["OPENDPIA_BRIDGE_PORT"] = str(free_port())
    os.environ["OPENDPIA_DEV_SMTP_PORT"] = str(free_port())
    os.environ["OPENDPIA_BRIDGE_REPLIES_PER_HOUR"] = str(10 * replies)
    # Notification mail leaves for a relay (here a counting sink in this process), as it
    # would in production, rather than into the development mailbox's table.
    sink = CountingSink()
    relay = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay"), "127.0.0.1", 0
    )
    os.environ["OPENDPIA_SMTP_URL"] = f"smtp://127.0.0.1:{relay.sockets[0].getsockname()[1]}"
    server = Server(OPENDPIA)
    db = server.workdir / "bench.db"
    os.environ["OPENDPIA_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
    from server.storage.database import migrate

    await asyncio.to_thread(migrate, os.environ["OPENDPIA_DATABASE_URL"])
    dpia_id, addresses = await _seed(os.environ["OPENDPIA_DATABASE_URL"], partners)
    await server.start()
    bridge_port = int(os.environ["OPENDPIA_BRIDGE_PORT"])
    try:
        stats = Stats(recording=True)
        clients = await connect_many(server, [dpia_id] * 20, stats=stats)
        await _editing(server, dpia_id, 2.0, Stats(recording=False), clients)  # warm-up
        stats.latencies_ns.clear()
        cpu0 = server.cpu_seconds()
        await _editing(server, dpia_id, baseline_s, stats, clients)
        await asyncio.sleep(0.5)
        baseline = list(stats.latencies_ns)
        baseline_cpu = server.cpu_seconds() - cpu0
        print(
            f"editors alone ({baseline_s:.0f} s, {len(baseline)} deliveries): "
            f"p50 {percentile(baseline, 50):.2f} ms  p99 {percentile(baseline, 99):.2f} ms  "
            f"server {100 * baseline_cpu / baseline_s:.0f} % CPU"
        )

        jobs = [(n, *addresses[n % len(addresses)]) for n in range(replies)]
        stats.latencies_ns.clear()
        before = _merged(str(db))
        sending = True
        loop = asyncio.get_running_loop()
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        await loop.run_in_executor(pool, time.perf_counter)  # started before the clock
        own, cpu0, started = OwnCpu(), server.cpu_seconds(), time.perf_counter()
        serve_cpu0 = _own_cpu(server)

        async def editing_while_sending() -> None:
            while sending or _merged(str(db)) - before < replies:
                await _editing(server, dpia_id, 1.0, stats, clients)

        editing = asyncio.create_task(editing_while_sending())
        try:
            data_ms, whole_ms = await loop.run_in_executor(
                pool, _send_all, bridge_port, jobs, senders, rate
            )
        finally:
            sending = False
            pool.shutdown()
        sent_at = time.perf_counter()
        while _merged(str(db)) - before < replies:
            await asyncio.sleep(0.02)
        merged_at = time.perf_counter()
        await editing
        elapsed = merged_at - started
        cpu = server.cpu_seconds() - cpu0
        serve_cpu = _own_cpu(server) - serve_cpu0
        during = list(stats.latencies_ns)
        offered = f" offered at {rate:g}/s" if rate else ""
        print(
            f"{replies} replies{offered} over {senders} SMTP connections: all accepted in "
            f"{sent_at - started:.2f} s, all merged in {elapsed:.2f} s"
        )
        print(f"  merged: {replies / elapsed:.0f} replies/s (target >= {TARGET_MERGED_PER_S})")
        print(
            f"  SMTP DATA -> 250: p50 {_pct(data_ms, 50):.1f} ms  p99 {_pct(data_ms, 99):.1f} ms"
            f" (target p99 < {TARGET_ACCEPT_P99_MS}); whole transaction p99 "
            f"{_pct(whole_ms, 99):.1f} ms"
        )
        print(
            f"  editors meanwhile ({len(during)} deliveries): p50 {percentile(during, 50):.2f} ms"
            f"  p99 {percentile(during, 99):.2f} ms (baseline p99 "
            f"{percentile(baseline, 99):.2f} ms; target: at most 2 ms more)"
        )
        print(
            f"  server CPU {100 * cpu / elapsed:.0f} %, {1000 * cpu / replies:.2f} ms per reply "
            f"(including its notifications); load generator {own.percent():.0f} % CPU"
        )
        where = "on serve's loop" if inline else "in its own process"
        print(
            f"  of which the serve process (the editors' loop) {100 * serve_cpu / elapsed:.0f} %,"
            f" {1000 * serve_cpu / replies:.2f} ms per reply; the bridge runs {where}"
        )
        await asyncio.gather(*(c.close() for c in clients))
        print(f"  notification emails relayed meanwhile: {sink.count}")
    finally:
        await server.stop()
        server.cleanup(keep=keep)
        if keep:
            print(f"  server log and database kept in {server.workdir}")
        relay.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--partners", type=int, default=10)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="replies per second offered (0: as fast as taken)"
    )
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of editing alone")
    parser.add_argument("--keep", action="store_true", help="keep the server's directory")
    parser.add_argument(
        "--inline",
        action="store_true",
        help="run the bridge on serve's event loop (OPENDPIA_BRIDGE_PROCESS=false), as before",
    )
    args = parser.parse_args()
    asyncio.run(
        run(
            args.replies,
            args.senders,
            args.partners,
            args.rate,
            args.baseline,
            args.keep,
            args.inline,
        )
    )


if __name__ == "__main__":
    main()
