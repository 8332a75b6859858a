"""What deriving change events adds to applying one update (issue 4: target < 1 ms).

Run by hand: ``.venv/bin/python -m bench.derive``. Applies 5,000 one-keystroke updates
to a document without and with the change tracker observing the whole uk-dpia template.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from server.domain.templates import load_template
from server.realtime.changes import ChangeTracker

UPDATES = 5000


def keystrokes(count: int) -> list[bytes]:
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    paragraph = XmlElement("paragraph")
    doc.get("field:need.aims", type=XmlFragment).children.append(paragraph)
    text = XmlText()
    paragraph.children.append(text)
    for _ in range(count):
        text.insert(len(text), "x")
    return updates


def microseconds_per_update(track: bool, updates: list[bytes]) -> float:
    doc: Doc[Any] = Doc()
    if track:
        tracker = ChangeTracker(
            "bench",
            load_template(),
            quiet_seconds=3600,
            writer=lambda: ("user:1", "browser"),
            emit=lambda event: None,
            clock=time.time,
        )
        tracker.attach(doc)
    started = time.perf_counter()
    for update in updates:
        with doc.transaction():
            doc.apply_update(update)
    return (time.perf_counter() - started) / len(updates) * 1e6


async def measure() -> None:
    updates = keystrokes(UPDATES)
    for _ in range(3):
        without = microseconds_per_update(False, updates)
        tracked = microseconds_per_update(True, updates)
        print(
            f"apply one update: {without:5.1f} µs untracked, {tracked:5.1f} µs tracked, "
            f"+{tracked - without:.1f} µs for event derivation"
        )


def main() -> None:
    asyncio.run(measure())  # the tracker schedules its sweeps on the running loop, as in serve


if __name__ == "__main__":
    main()
