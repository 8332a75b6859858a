"""The embedded bridge runs in a child process of serve: mail never takes the editors' event
loop, and a child killed mid-way loses no reply (issue 18, target 5)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_asyncio

from email_bridge.message import read
from tests.support.bridge import PARTNER, Env, bridge_env, deliver

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with bridge_env(sqlite_url, child=True) as running:
        yield running


def heavy_reply(to: str, number: int) -> bytes:
    """A valid reply that is costly to read: about 220 KiB of HTML only (below the size at
    which the bridge would parse it in a thread), so its text is made from the markup."""
    points = "".join(
        f"<div><p>Point {i} of reply {number}: we keep <b>case notes</b> <i>only</i> for "
        f"<a href='https://records.example/{i}'>six years</a>, then delete them.</p></div>"
        for i in range(1300)
    )
    message = EmailMessage()
    message["From"] = PARTNER
    message["To"] = to
    message["Subject"] = f"Re: DPIA change ({number})"
    message["Message-ID"] = f"<heavy-{number}-{time.time_ns()}@partner.example>"
    message.set_content(f"<html><body>{points}</body></html>", subtype="html")
    return message.as_bytes()


def bridge_children() -> list[int]:
    """This process's children that are serve's bridge (the live server runs in-process)."""
    found = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--child-fd" in command and b"bridge" in command:
                found.append(int(pid))
    return found


async def test_replies_are_parsed_and_merged_without_taking_the_servers_event_loop(
    env: Env,
) -> None:
    to = await env.address("need")
    raws = [heavy_reply(to, n) for n in range(6)]
    # What reading them costs, measured here: the server's loop must not pay it.
    spent = time.process_time()
    for raw in raws:
        read(raw)
    parse_seconds = time.process_time() - spent
    one_message = parse_seconds / len(raws)
    assert one_message > 0.05, "the messages are too cheap to tell where they are read"

    live = env.live
    assert live.loop is not None
    done = False

    async def worst_lag() -> float:
        loop = asyncio.get_running_loop()
        worst = 0.0
        while not done:
            before = loop.time()
            await asyncio.sleep(0.005)
            worst = max(worst, loop.time() - before - 0.005)
        return worst

    async def loop_cpu() -> float:
        return time.thread_time()  # the CPU time of the thread that runs the server's loop

    cpu_before = live.call(loop_cpu())
    probe = asyncio.run_coroutine_threadsafe(worst_lag(), live.loop)
    try:
        for raw in raws:
            delivery = await deliver(env.port, raw, [to])
            assert delivery.data == 250, delivery
        rows = await env.db.settled(len(raws))
    finally:
        done = True
    lag = await asyncio.wrap_future(probe)
    loop_seconds = live.call(loop_cpu()) - cpu_before

    assert [row.outcome for row in rows] == ["merged"] * len(raws)
    comments = await env.db.comments(env.dpia)
    assert len([c for c in comments.values() if c.get("channel") == "email"]) == len(raws)
    # Read on the loop, these six would cost the loop their whole parse time, and block it
    # for one message's at least; written by the child, each is one short edit.
    assert loop_seconds < parse_seconds / 4, (loop_seconds, parse_seconds)
    assert lag < one_message, (lag, one_message)
    [child] = bridge_children()
    assert child != os.getpid()


async def test_a_killed_bridge_process_is_replaced_and_every_stored_reply_is_merged(
    env: Env,
) -> None:
    to = await env.address("need")
    raws = [heavy_reply(to, n) for n in range(8)]
    [first] = bridge_children()
    for raw in raws:
        assert (await deliver(env.port, raw, [to])).data == 250  # stored: ours to keep
    # Kill the child while it holds a claimed reply it has not finished.
    async with asyncio.timeout(30):
        while True:
            rows = await env.db.rows()
            if any(r.status == "pending" and r.claimed_until is not None for r in rows):
                break
            assert not all(r.status == "done" for r in rows), "all merged before the kill"
            await asyncio.sleep(0.005)
    os.kill(first, signal.SIGKILL)

    rows = await env.db.settled(len(raws))
    assert [row.outcome for row in rows] == ["merged"] * len(raws)
    comments = await env.db.comments(env.dpia)
    merged = [c for c in comments.values() if c.get("channel") == "email"]
    assert len(merged) == len(raws)  # each once: none lost, none twice
    assert all(c["author"] == env.site.partner_id for c in merged)
    [second] = bridge_children()
    assert second != first
