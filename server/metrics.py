"""Prometheus metrics, served at ``/metrics``.

Counters and histograms are process-wide (prometheus_client's default registry), so any
package may import this module and count: the realtime layer counts updates and commit
latency, the bus what it relays, the email bridge (``email_bridge``) each message's outcome
with ``BRIDGE_MESSAGES.labels(outcome="applied").inc()``. Gauges of the current state
(connections, rooms, outbox depth) are set by the ``/metrics`` handler when scraped.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("opendpia_connections", "Open collaboration WebSocket connections")
ROOMS = Gauge("opendpia_rooms", "Documents loaded in this process")
UPDATES = Counter(
    "opendpia_updates_total",
    "Document updates applied, by source (local: from this process's clients and "
    "server-side edits, written to the database here; bus: from other processes)",
    ["source"],
)
COMMIT_SECONDS = Histogram(
    "opendpia_commit_seconds",
    "Time to commit one group-commit batch of updates",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
FIRST_SYNC_SECONDS = Histogram(
    "opendpia_first_sync_seconds",
    "The server's share of a client's first sync: from the HTTP upgrade request of a "
    "collaboration connection to its first sync step 2 handed to the socket",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SYNC_ANSWERS = Counter(
    "opendpia_sync_answers_encoded_total",
    "Sync step 2 answers encoded (each sent to every client that asks the same of the same "
    "version of a document), by kind: full (a client holding nothing) or diff",
    ["kind"],
)
OUTBOX_DEPTH = Gauge("opendpia_outbox_depth", "Mail messages waiting in the outbox")
BUS_PUBLISHED = Counter("opendpia_bus_published_total", "Messages published on the bus")
BUS_CATCH_UPS = Counter(
    "opendpia_bus_catch_ups_total", "Times a document caught up from the database"
)
BRIDGE_MESSAGES = Counter(
    "opendpia_bridge_messages_total",
    "Inbound email messages handled by the bridge, by outcome",
    ["outcome"],
)
