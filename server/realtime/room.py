"""A room: one loaded document, the peers editing it, and what they have not yet saved.

The room applies each incoming update to its pycrdt ``Doc`` inside a transaction; the
document's observer yields exactly the change that transaction made (nothing for an update
the room already had), which is both what is logged and what is broadcast. Updates applied
in one event-loop turn are merged and sent to every peer as one frame, built once; the
disk is not waited for. Other server processes (the bus) get a change only once it is
committed, merged per commit. Each logged change goes to the group committer; a peer that asked
for "saved" acknowledgements is told how many of its write messages are committed.

Awareness (presence, carets) is merged per tick: the first change after a quiet tick goes
out at once, later ones wait for the end of the tick and go, each client's latest entry
only, to every peer as one frame and to the other processes as one bus message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, TransactionEvent, merge_updates

from server.domain.access import Grant
from server.domain.bus import Bus, BusKind
from server.domain.documents import StoredDocument, UpdateRecord
from server.domain.errors import DpiaLocked
from server.metrics import UPDATES
from server.realtime import protocol
from server.realtime.answers import EMPTY_STATE_VECTOR, EMPTY_UPDATE, SyncAnswers
from server.realtime.awareness import AwarenessBatch, AwarenessChanges, AwarenessTable
from server.realtime.guard import UpdateGuard, UpdateRefused
from server.realtime.peer import Peer
from server.realtime.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    ProtocolError,
    SyncMessage,
    SyncStep,
    UpdateRejected,
)

if TYPE_CHECKING:
    from server.realtime.changes import ChangeTracker
    from server.realtime.committer import CommitEntry, GroupCommitter

log = logging.getLogger("opendpia.realtime")

AWARENESS_RENEWAL_SECONDS = 5.0
AWARENESS_TICK_SECONDS = 0.05
PERMISSION_NOTICE_SECONDS = 1.0
# A room just loaded builds its document once the first client holding nothing is
# answered from the stored bytes, or this long after a client joined without asking.
BUILD_AFTER_JOIN_SECONDS = 0.05
# The shadow document the guard checks writes against is built this long after the last
# client was answered, and once what the peers were sent has left (or after the longest
# wait): building it holds the event loop, and with it every answer still being written
# (decision 146).
GUARD_PREPARE_DELAY_SECONDS = 1.0
GUARD_PREPARE_LONGEST_WAIT_SECONDS = 30.0
_LOCAL_UPDATES = UPDATES.labels(source="local")
_BUS_UPDATES = UPDATES.labels(source="bus")


@dataclass(slots=True)
class _PeerState:
    writes: int = 0
    client_ids: set[int] = field(default_factory=set)
    last_denied_notice: float = 0.0
    greeted: bool = False  # sent the room's sync step 1 (once the document is built)
    # Why an update of this peer was refused: its later updates build on what the server
    # never took, so they are refused too until it reconnects with what the server has.
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class _Writer:
    actor: str
    channel: str
    origin: str
    peer: Peer | None = None
    write_number: int = 0


class Room:
    """One document's live state. Not thread-safe: used from the event loop only."""

    def __init__(
        self,
        stored: StoredDocument,
        committer: GroupCommitter,
        *,
        compact_every: int,
        bus: Bus | None = None,
        awareness_tick_seconds: float = AWARENESS_TICK_SECONDS,
    ) -> None:
        self.document_id = stored.document_id
        # The document is built from what was stored when first needed (see ``doc``).
        self._stored: StoredDocument | None = stored
        self._doc: Doc[Any] | None = None
        self._build_handle: asyncio.TimerHandle | None = None
        self.answers = SyncAnswers(lambda: self.doc, stored.snapshot if not stored.tail else None)
        # Called once the document is built, before anything is applied to it (the
        # manager's guard and change tracking follow the template the document names).
        self.on_built: Callable[[Room], None] | None = None
        self._prepare_handle: asyncio.TimerHandle | None = None
        self.last_seq = stored.last_seq
        self.tail_length = len(stored.tail)
        self.compact_every = compact_every
        self.peers: dict[Peer, _PeerState] = {}
        self.awareness = AwarenessTable()
        self.uncommitted = 0
        self._committer = committer
        self._bus = bus
        self._remote = False
        self._loop = asyncio.get_running_loop()
        self._outgoing: list[bytes] = []
        self._broadcast_scheduled = False
        self._renewals: dict[int, AwarenessEntry] = {}
        self._renewal_handle: asyncio.TimerHandle | None = None
        # Awareness waiting for the tick: for this process's peers, and for the others.
        self._awareness_tick = awareness_tick_seconds
        self._awareness_out = AwarenessBatch()
        self._awareness_bus = AwarenessBatch()
        # The open tick (its end flushes what waits), or None: the room is quiet and the
        # next change goes out at once.
        self._awareness_window: asyncio.Handle | None = None
        self._writer: _Writer | None = None
        self._wrote = False
        self._all_saved = asyncio.Event()
        self._all_saved.set()
        self.unload_handle: asyncio.TimerHandle | None = None
        self.tracker: ChangeTracker | None = None
        # Why nobody may change the document (an approved DPIA), or None: writes from every
        # peer are then dropped with this notice, and server-side edits are refused.
        self.read_only: str | None = None
        # Checks client updates before they are applied (server.realtime.guard); None: the
        # room takes any update (only rooms built without a manager, in tests).
        self.guard: UpdateGuard | None = None
        self._checked = False
        self._subscription: Any = None

    @property
    def doc(self) -> Doc[Any]:
        """The room's document, built from what was stored on first use.

        A room that has just loaded answers a client holding nothing from the stored bytes
        first (``_answer_step1``) and builds the document right after: for a large document
        building it is most of the server's share of a first connection after a restart."""
        doc = self._doc
        return doc if doc is not None else self._build()

    @property
    def built(self) -> bool:
        return self._doc is not None

    def _build(self) -> Doc[Any]:
        stored = self._stored
        assert stored is not None
        if self._build_handle is not None:
            self._build_handle.cancel()
            self._build_handle = None
        doc = self._doc = stored.to_doc()
        self._stored = None
        self._subscription = doc.observe(self._on_transaction)
        if self.on_built is not None:
            self.on_built(self)
        for peer, state in self.peers.items():
            if not state.greeted:
                state.greeted = True
                peer.send(self.answers.step1())
        if self.peers:
            self._after_first_answer()
        return doc

    def _build_soon(self, delay: float) -> None:
        if self._doc is None and self._build_handle is None:
            self._build_handle = self._loop.call_later(delay, self._build_now)

    def _build_now(self) -> None:
        self._build_handle = None  # a build before this one would have cancelled it
        self._build()

    @property
    def full_encodings(self) -> int:
        return self.answers.full_encodings

    def current_writer(self) -> tuple[str, str] | None:
        """Who is changing the document right now (actor, channel), during a change."""
        writer = self._writer
        return None if writer is None else (writer.actor, writer.channel)

    # -- peers -------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        state = self.peers[peer] = _PeerState()
        if self._doc is None:
            self._build_soon(BUILD_AFTER_JOIN_SECONDS)  # step 1 goes once it is built
        else:
            state.greeted = True
            peer.send(self.answers.step1())
        present = self.awareness.present_frame()
        if present:
            peer.send(present)

    def leave(self, peer: Peer) -> None:
        state = self.peers.pop(peer, None)
        if state is None:
            return
        removed = self.awareness.remove(state.client_ids)
        if removed:
            # In the same batch as the clients' states: a state still waiting is replaced.
            self._queue_awareness(removed, to_bus=True)
            self._awareness_soon(now=True)

    # -- incoming ------------------------------------------------------------------------

    def receive(self, peer: Peer, frame: bytes) -> None:
        """Act on every message of one frame; ProtocolError means close this peer."""
        state = self.peers.get(peer)
        if state is None:  # sent in the same turn as its removal: it gets nothing more
            return
        try:
            for message in protocol.parse_frame(frame):
                if isinstance(message, SyncMessage):
                    if message.step is SyncStep.STEP1:
                        self._answer_step1(peer, message.payload)
                    else:
                        self._receive_write(peer, state, message.payload)
                elif isinstance(message, AwarenessMessage):
                    self._receive_awareness(state, message.entries)
                else:  # a query: answered even when nobody is there
                    present = self.awareness.present_frame()
                    peer.send(present or protocol.awareness(protocol.encode_awareness([])))
        finally:
            # All awareness messages of one frame travel together, at once if quiet.
            self._awareness_soon(now=True)

    def full_state(self) -> bytes:
        """The whole document as one update (encoded once per version of the document)."""
        return self.answers.full_state()

    def _answer_step1(self, peer: Peer, state_vector: bytes) -> None:
        # Not built yet, and stored as one snapshot with nothing logged after it: a client
        # holding nothing gets those bytes as its step 2, and the room builds the document
        # after. (Step 2 must hold everything: a client may treat "synced" as "has the
        # document", so a tail is never sent after it as updates.)
        from_stored = (
            self._doc is None
            and state_vector == EMPTY_STATE_VECTOR
            and self.answers.has_full_state()
        )
        peer.send(self.answers.answer(state_vector))
        if from_stored:
            self._build_soon(0)  # the build prepares the guard as after any first answer
        else:
            self._after_first_answer()

    def _after_first_answer(self) -> None:
        if self.guard is not None and not self.guard.prepared:
            # Built once the joining clients are answered (see UpdateGuard): building it
            # costs as much as loading the document, and holding the event loop for it
            # would hold up every answer still being written.
            if self._prepare_handle is not None:
                self._prepare_handle.cancel()
            give_up_at = self._loop.time() + GUARD_PREPARE_LONGEST_WAIT_SECONDS
            self._prepare_handle = self._loop.call_later(
                GUARD_PREPARE_DELAY_SECONDS, self._prepare_guard, give_up_at
            )

    def _prepare_guard(self, give_up_at: float) -> None:
        self._prepare_handle = None
        if self.guard is None or self.guard.prepared:
            return
        if self._loop.time() < give_up_at and any(peer.backlog() for peer in self.peers):
            self._prepare_handle = self._loop.call_later(
                GUARD_PREPARE_DELAY_SECONDS / 4, self._prepare_guard, give_up_at
            )
            return
        self.guard.prepare()

    def _receive_write(self, peer: Peer, state: _PeerState, update: bytes) -> None:
        state.writes += 1
        if self._doc is None:
            self._build()  # before anything is checked: the guard comes with the build
        grant = peer.grant
        if not grant.can_write or self.read_only is not None:
            if update != EMPTY_UPDATE:
                self._deny(peer, state)
            return
        if state.refused is None and self.guard is not None and update != EMPTY_UPDATE:
            try:
                self.guard.check(update)
            except UpdateRefused as refusal:
                state.refused = f"{refusal}. Reload the page to go on editing"
            except ValueError as error:
                raise UpdateRejected(f"invalid update: {error}") from None
            else:
                self._checked = True
        if state.refused is not None:
            if update != EMPTY_UPDATE:
                log.info(
                    "room %s: refused an update of %s: %s", self.document_id, peer.id, state.refused
                )
                self._notify(peer, state, state.refused)
            return
        writer = _Writer(grant.principal, grant.channel.value, f"ws:{peer.id}", peer, state.writes)
        try:
            self.apply(update, writer)
        finally:
            self._checked = False

    def _deny(self, peer: Peer, state: _PeerState) -> None:
        reason = (
            f"Read-only: you take part in this DPIA as {peer.grant.role.in_text}"
            if self.read_only is None
            else self.read_only[:1].upper() + self.read_only[1:]
        )
        self._notify(peer, state, reason)

    def _notify(self, peer: Peer, state: _PeerState, reason: str) -> None:
        """Tell a peer its write was not taken (at most once a second: no flood)."""
        now = time.monotonic()
        if now - state.last_denied_notice >= PERMISSION_NOTICE_SECONDS:
            state.last_denied_notice = now
            peer.send(protocol.permission_denied(reason))

    def regrant(self, peer: Peer, grant: Grant) -> None:
        """The peer's access was decided again: its next message is judged by ``grant``."""
        if peer in self.peers and grant != peer.grant:
            peer.grant = grant

    def apply(self, update: bytes, writer: _Writer) -> bool:
        """Apply an update as ``writer``; True if it changed the document."""
        try:
            return self._change(lambda doc: doc.apply_update(update), writer)
        except ValueError as error:
            raise UpdateRejected(f"invalid update: {error}") from None

    def edit(
        self, change: Callable[[Doc[Any]], None], *, actor: str, channel: str, origin: str
    ) -> bool:
        """Change the document on someone's behalf (API, email, templates), logged as theirs.

        Raises DpiaLocked when the document is read-only for everyone."""
        if self.read_only is not None:
            raise DpiaLocked(self.read_only)
        return self._change(change, _Writer(actor, channel, origin))

    def _change(self, change: Callable[[Doc[Any]], None], writer: _Writer) -> bool:
        self._writer = writer
        self._wrote = False
        doc = self.doc
        try:
            with doc.transaction():
                change(doc)
        finally:
            self._writer = None
        if not self._wrote and writer.peer is not None and writer.peer.wants_saved:
            # Nothing new (a re-sent or empty update): acknowledge it in order with the rest.
            self._submit(None, writer)
        return self._wrote

    def apply_remote(self, update: bytes) -> None:
        """Apply a change another process received (and logs): relay it, never log it."""
        self._remote = True
        doc = self.doc
        try:
            with doc.transaction():
                doc.apply_update(update)
        except ValueError as error:
            log.warning("room %s: an update from the bus was refused: %s", self.document_id, error)
        finally:
            self._remote = False

    def _on_transaction(self, event: TransactionEvent) -> None:
        update: bytes = event.update
        if update == EMPTY_UPDATE:
            return
        self.answers.forget()
        if self.guard is not None and not self._checked:
            self.guard.follow(update)  # a change the guard did not check: mirror it
        if self._remote:
            _BUS_UPDATES.inc()
            self._queue_broadcast(update)
            return
        _LOCAL_UPDATES.inc()
        writer = self._writer or _Writer("server", "api", "server")
        self._wrote = True
        self.last_seq += 1
        record = UpdateRecord(
            self.document_id,
            self.last_seq,
            update,
            writer.actor,
            writer.channel,
            writer.origin,
            datetime.now(UTC),
        )
        self._submit(record, writer)
        self._queue_broadcast(update)

    def _queue_broadcast(self, update: bytes) -> None:
        self._outgoing.append(update)
        if not self._broadcast_scheduled:
            self._broadcast_scheduled = True
            self._loop.call_soon(self._broadcast)

    def _submit(self, record: UpdateRecord | None, writer: _Writer) -> None:
        peer = writer.peer if writer.peer is not None and writer.peer.wants_saved else None
        self.uncommitted += 1
        self._all_saved.clear()
        self._committer.submit(self, record, peer, writer.write_number)

    def _broadcast(self) -> None:
        self._broadcast_scheduled = False
        updates, self._outgoing = self._outgoing, []
        if not updates:
            return
        update = updates[0] if len(updates) == 1 else merge_updates(*updates)
        self._send_all(protocol.sync_update(update))

    def _send_all(self, frame: bytes) -> None:
        for peer in self.peers:
            peer.send(frame)

    def _receive_awareness(self, state: _PeerState, entries: list[AwarenessEntry]) -> None:
        changes = self.awareness.apply(entries)
        accepted = [*changes.changed, *changes.renewed]
        for entry in accepted:
            if entry.is_removal:
                state.client_ids.discard(entry.client_id)
            else:
                state.client_ids.add(entry.client_id)
        if accepted and self._bus is not None:
            # Renewals too: the other processes' peers time out at 30 s like ours.
            self._awareness_bus.add(accepted)
        self._spread_awareness(changes)

    def apply_remote_awareness(self, payload: bytes) -> None:
        """Awareness entries of another process's clients: relay what changed (at the end
        of this event-loop turn at the earliest, so a batch of bus messages goes as one)."""
        try:
            entries = protocol.parse_awareness(payload)
        except ProtocolError as error:
            log.warning("room %s: bad awareness from the bus: %s", self.document_id, error)
            return
        self._spread_awareness(self.awareness.apply(entries))
        self._awareness_soon(now=False)

    def _spread_awareness(self, changes: AwarenessChanges) -> None:
        if changes.changed:
            self._queue_awareness(changes.changed, to_bus=False)
        if changes.renewed:
            waiting = self._awareness_out
            for entry in changes.renewed:
                if entry.client_id in waiting:  # a change waits: it now carries this clock
                    waiting.add([entry])
                else:
                    self._renewals[entry.client_id] = entry
            if self._renewals and self._renewal_handle is None:
                self._renewal_handle = self._loop.call_later(
                    AWARENESS_RENEWAL_SECONDS, self._send_renewals
                )

    def _queue_awareness(self, entries: list[AwarenessEntry], *, to_bus: bool) -> None:
        """Send ``entries`` with the next flush (they are newer than any renewal waiting)."""
        self._awareness_out.add(entries)
        if to_bus and self._bus is not None:
            self._awareness_bus.add(entries)
        if self._renewals:
            for entry in entries:
                self._renewals.pop(entry.client_id, None)

    def _awareness_soon(self, *, now: bool) -> None:
        """Flush what waits: ``now`` if the room is quiet, else at the end of the open tick
        (or of this event-loop turn when not ``now``)."""
        if self._awareness_window is not None:
            return
        if not (self._awareness_out or self._awareness_bus):
            return
        if now:
            self._flush_awareness()
        else:
            self._awareness_window = self._loop.call_soon(self._end_awareness_tick)

    def _end_awareness_tick(self) -> None:
        self._awareness_window = None
        self._flush_awareness()

    def _flush_awareness(self) -> None:
        """Send what waits, each client's latest entry encoded once for every peer, and keep
        the tick open for what comes next; an empty tick closes it."""
        local, remote = self._awareness_out.take(), self._awareness_bus.take()
        if local:
            self._send_all(protocol.awareness(protocol.encode_awareness(local)))
        if remote and self._bus is not None:
            self._bus.publish(
                self.document_id, BusKind.AWARENESS, protocol.encode_awareness(remote)
            )
        if (local or remote) and self._awareness_tick > 0:
            self._awareness_window = self._loop.call_later(
                self._awareness_tick, self._end_awareness_tick
            )
        else:
            self._awareness_window = None

    def _send_renewals(self) -> None:
        self._renewal_handle = None
        renewals = list(self._renewals.values())
        self._renewals.clear()
        if renewals:
            self._queue_awareness(renewals, to_bus=False)
            self._awareness_soon(now=True)

    # -- persistence ---------------------------------------------------------------------

    def committed(self, entries: list[CommitEntry]) -> None:
        """Called by the committer once ``entries`` (all of this room) are durable."""
        acks: dict[Peer, int] = {}
        records = 0
        durable = []
        for entry in entries:
            if entry.record is not None:
                records += 1
                durable.append(entry.record.update)
            if entry.peer is not None:
                acks[entry.peer] = max(acks.get(entry.peer, 0), entry.write_number)
        if durable and self._bus is not None:
            # Other processes get only what is durable: none of them can ever hold, or
            # let its clients build on, a change that a crash here would lose.
            merged = durable[0] if len(durable) == 1 else merge_updates(*durable)
            self._bus.publish(self.document_id, BusKind.UPDATE, merged)
        for peer, count in acks.items():
            if peer in self.peers:
                peer.send(protocol.saved(count))
        self.tail_length += records
        self.uncommitted -= len(entries)
        if self.uncommitted == 0:
            self._all_saved.set()

    def wants_compaction(self) -> bool:
        return self.tail_length >= self.compact_every

    async def all_saved(self) -> None:
        """Wait until every change applied so far is committed."""
        await self._all_saved.wait()

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        if self._doc is not None:
            self._doc.unobserve(self._subscription)
        if self._build_handle is not None:
            self._build_handle.cancel()
            self._build_handle = None
        if self._prepare_handle is not None:
            self._prepare_handle.cancel()
        if self._renewal_handle is not None:
            self._renewal_handle.cancel()
        if self._awareness_window is not None:
            self._awareness_window.cancel()
            self._awareness_window = None
        remote = self._awareness_bus.take()
        if remote and self._bus is not None:  # removals of the last peers, say
            self._bus.publish(
                self.document_id, BusKind.AWARENESS, protocol.encode_awareness(remote)
            )
        if self.unload_handle is not None:
            self.unload_handle.cancel()
