"""Where a server's busy time goes: sums py-spy's collapsed stacks by part of the server.

    .venv/bin/python -m bench.stacks /tmp/prof/p4-server0.txt [more files...]

Each line of py-spy's ``--format raw`` output is ``frame;frame;...;frame count``. A sample
is counted once, in the first part (in the order below) that one of its frames names, so
the shares add up to 100 %. py-spy counts a thread that is runnable but waiting for a core
as busy, so on a loaded machine the shares weigh time wanted, not only CPU used; a sample
whose last Python frame is the event loop's entry is uvloop's C code, idle in ``epoll`` or
not, and is shown apart.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (part, substrings of a frame that put a sample in it), first match wins.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("bus: delivering to rooms", ("RedisBus._receive", "RoomManager.deliver")),
    ("bus: reading and parsing", ("RedisBus._read_documents", "RedisBus._read_streams")),
    ("bus: publishing", ("RedisBus._write", "RedisBus._send", "RedisBus.publish")),
    ("bus: notices", ("RedisBus._read_notices",)),
    ("bus: Redis socket (redis-py)", ("redis/",)),
    ("database: pool pre-ping", ("_async_ping",)),
    ("database: transaction begin / rollback (pool reset)", ("_start_transaction", "rollback")),
    ("database: statements", ("committer.py", "storage/", "asyncpg", "sqlalchemy")),
    ("room: receive, apply, broadcast", ("realtime/room.py", "realtime/rooms.py", "guard.py")),
    ("WebSocket frames and sockets", ("wsprotocol.py", "websockets/", "uvicorn/", "web/collab")),
    ("event loop", ("asyncio/", "uvloop")),
]


def part_of(stack: str) -> str:
    if stack.rstrip().endswith("Runner.run (asyncio/runners.py:118)"):
        # The loop's own C code (uvloop): waiting in epoll, or its own work, which py-spy
        # cannot tell apart without native frames.
        return "uvloop (waiting or its own work)"
    for part, needles in PARTS:
        if any(needle in stack for needle in needles):
            return part
    return "other"


def shares(paths: list[Path]) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, number = line.rpartition(" ")
            if not number.isdigit():
                continue
            counts[part_of(stack)] += int(number)
            total += int(number)
    return counts, total


def main() -> None:
    counts, total = shares([Path(p) for p in sys.argv[1:]])
    print(f"{total} samples")
    for part, count in counts.most_common():
        print(f"{100 * count / max(1, total):5.1f} %  {part}")


if __name__ == "__main__":
    main()
