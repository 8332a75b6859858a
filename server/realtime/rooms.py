"""Loading, sharing and unloading rooms.

One room per document per process. Loading is serialised per document (concurrent first
connections must not load two rooms), and a room unloads after its last peer leaves and
a grace period, only once every change it holds is committed.

With a shared bus (several processes), a room follows its document's stream while loaded:
changes from other processes are applied and relayed to this process's peers, never logged
again; when the bus says messages may have been missed, the room catches up from the
database (committed updates it lacks, computed against its state vector).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from pycrdt import Doc, Map

from server.domain.access import Grant
from server.domain.bus import Bus, BusKind, BusMessage
from server.domain.changes import ChangeEvent
from server.domain.documents import StoredDocument, UpdateStore
from server.domain.errors import DocumentNotFound, DomainError
from server.domain.shape import Limits, shape_of
from server.domain.tasks import stop_if_cancelled
from server.domain.templates import Template, UnknownTemplate, load_template
from server.metrics import BUS_CATCH_UPS
from server.realtime.changes import ChangeTracker
from server.realtime.committer import GroupCommitter
from server.realtime.guard import UpdateGuard
from server.realtime.peer import Peer
from server.realtime.room import Room

T = TypeVar("T")
log = logging.getLogger("opendpia.realtime")


class RoomManager:
    """The rooms of this process. Created in the lifespan; ``run`` supervises unloads."""

    def __init__(
        self,
        store: UpdateStore,
        committer: GroupCommitter,
        *,
        grace_seconds: float,
        compact_every: int,
        on_change: Callable[[ChangeEvent], None] | None = None,
        quiet_seconds: float = 30.0,
        read_only: Callable[[str], Awaitable[str | None]] | None = None,
        bus: Bus | None = None,
        limits: Limits | None = None,
        recheck: Callable[[Grant], Awaitable[Grant]] | None = None,
        close_code: Callable[[DomainError], int] | None = None,
        recheck_seconds: float = 0.0,
        awareness_tick_seconds: float = 0.05,
    ) -> None:
        self._store = store
        self._committer = committer
        self._grace = grace_seconds
        self._compact_every = compact_every
        self._rooms: dict[str, Room] = {}
        self._template_refs: dict[str, tuple[str, int]] = {}  # the template each room follows
        # Weak: a lock lives while someone waits on it, so unloaded documents leave none.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks: asyncio.TaskGroup | None = None
        self.loads = 0
        self._on_change = on_change
        self._quiet = quiet_seconds
        self._read_only = read_only
        self._bus = bus
        self._catching_up: dict[str, bool] = {}  # document id -> asked again meanwhile
        self._early: dict[str, list[BusMessage]] = {}  # delivered while the room loads
        self.catch_ups = 0
        self._limits = limits
        self._recheck = recheck
        self._close_code = close_code or (lambda _error: 4403)
        self._rechecks: dict[str, bool] = {}
        self._recheck_seconds = recheck_seconds  # document id -> asked again meanwhile
        self._awareness_tick = awareness_tick_seconds

    @property
    def rooms(self) -> dict[str, Room]:
        return self._rooms

    async def run(self, started: asyncio.Event) -> None:
        # pycrdt imports anyio's asyncio backend the first time a Doc is made in a running
        # loop (about 10 ms): at start-up here, not in the first connection after it.
        Doc()
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                started.set()
                if self._recheck_seconds > 0 and self._recheck is not None:
                    await self._decide_again_every(self._recheck_seconds)
                await asyncio.Event().wait()
        finally:
            self._tasks = None
            for room in self._rooms.values():
                if room.unload_handle is not None:
                    room.unload_handle.cancel()
                    room.unload_handle = None

    def _lock(self, document_id: str) -> asyncio.Lock:
        lock = self._locks.get(document_id)
        if lock is None:
            lock = self._locks[document_id] = asyncio.Lock()
        return lock

    async def open(self, document_id: str, *, create_as: str | None) -> Room:
        """The loaded room of a document; ``create_as`` creates it if it does not exist."""
        async with self._lock(document_id):
            room = self._rooms.get(document_id)
            if room is None:
                if self._bus is not None:
                    # Before loading: what others publish meanwhile must reach this room,
                    # kept here until the room exists (it may be newer than what loads).
                    self._early[document_id] = []
                    await self._bus.follow(document_id)
                try:
                    stored, read_only = await self._load(document_id, create_as)
                except BaseException:
                    if self._bus is not None:
                        self._early.pop(document_id, None)
                        self._bus.unfollow(document_id)
                    raise
                room = Room(
                    stored,
                    self._committer,
                    compact_every=self._compact_every,
                    bus=self._bus,
                    awareness_tick_seconds=self._awareness_tick,
                )
                room.read_only = read_only
                # The room builds its document when first needed (a client holding nothing
                # is answered from the stored bytes before): the guard and the change
                # tracking, which follow the template the document names, come with it.
                room.on_built = self._equip
                self._rooms[document_id] = room
                # A tail left long (by a crash, or by an older version) is compacted now,
                # so that the next load of the document reads a snapshot, not the rows.
                self._committer.compact_if_due(room)
                early = self._early.pop(document_id, None)
                if early:
                    self.deliver(document_id, early)
                self.loads += 1
            if room.unload_handle is not None:
                room.unload_handle.cancel()
                room.unload_handle = None
            return room

    async def _load(
        self, document_id: str, create_as: str | None
    ) -> tuple[StoredDocument, str | None]:
        """What is stored of a document, and why nobody may change it (read beside it:
        reading that state also makes the template the document names loadable)."""
        reading = (
            None if self._read_only is None else asyncio.ensure_future(self._read_only(document_id))
        )
        try:
            stored = await self._store.load(document_id)
            if stored is None:
                if create_as is None:
                    raise DocumentNotFound(f"There is no document {document_id!r}")
                await self._store.create_document(document_id, create_as)
                stored = await self._store.load(document_id)
                assert stored is not None
            return stored, None if reading is None else await reading
        finally:
            if reading is not None:  # not wanted any more when the load failed
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

    def _equip(self, room: Room) -> None:
        template = _template_of(room)
        if self._limits is not None:
            room.guard = UpdateGuard(shape_of(template), self._limits, room.full_state)
        self._track(room, template)

    async def join(self, peer: Peer) -> Room:
        grant = peer.grant
        room = await self.open(
            grant.document_id, create_as=grant.principal if grant.can_write else None
        )
        room.join(peer)
        return room

    def _track(self, room: Room, template: Template | None) -> None:
        """Derive change events for documents made from a template (DPIAs)."""
        if template is not None:
            self._template_refs[room.document_id] = (template.id, template.version)
        if self._on_change is None or template is None:
            return
        room.tracker = ChangeTracker(
            room.document_id,
            template,
            quiet_seconds=self._quiet,
            writer=room.current_writer,
            emit=self._on_change,
        )
        room.tracker.attach(room.doc)

    async def _follow_template(self, room: Room) -> None:
        """The DPIA may have moved to another version of its template (announced, as any
        change of what may be done, by ``access_changed``): the room's guard and change
        tracking follow the version its document names now. Reading the lock first also
        makes that version loadable in this process (``DpiaService.state``)."""
        if self._read_only is not None:
            room.read_only = await self._read_only(room.document_id)
        template = _template_of(room)
        now = None if template is None else (template.id, template.version)
        if now is None or self._template_refs.get(room.document_id) == now:
            return
        if self._limits is not None:
            room.guard = UpdateGuard(shape_of(template), self._limits, room.full_state)
        if room.tracker is not None:
            room.tracker.close()
            room.tracker = None
        self._track(room, template)

    def set_read_only(self, document_id: str, reason: str | None) -> None:
        """A DPIA was locked or unlocked (and committed): its room follows at once, here
        and in every other process that has it loaded."""
        room = self._rooms.get(document_id)
        if room is not None:
            room.read_only = reason
        if self._bus is not None:
            self._bus.publish(document_id, BusKind.LOCK, (reason or "").encode())

    async def access_changed(self, document_id: str) -> None:
        """Who may do what on ``document_id`` changed (a role, a removal, a lock, a party):
        every open connection to it, in every process, is decided again from the current
        truth. Returns once this process's connections follow; others follow via the bus.
        """
        if self._bus is not None:
            self._bus.publish(document_id, BusKind.ACCESS, b"")
        await self._decide_again(document_id)

    async def evict(
        self, document_id: str, error: DomainError, then: Callable[[], Awaitable[T]]
    ) -> T:
        """Close every connection of this process to ``document_id`` with ``error``, wait
        until what its room had is committed, drop the room, and run ``then`` (a purge or a
        rewrite of the stored document) before anyone can open it again (decision 92).
        Other processes are told to decide their connections again."""
        async with self._lock(document_id):
            room = self._rooms.pop(document_id, None)
            self._template_refs.pop(document_id, None)
            if room is not None:
                for peer in list(room.peers):
                    peer.close(self._close_code(error), str(error))
                    room.leave(peer)
                await room.all_saved()
                room.close()
                if self._bus is not None:
                    self._bus.unfollow(document_id)
            result = await then()
        if self._bus is not None:
            self._bus.publish(document_id, BusKind.ACCESS, b"")
        return result

    async def _decide_again_every(self, seconds: float) -> None:
        """The backstop: changes made outside any web process (a command, the database
        itself) reach open connections within ``seconds`` even without a bus message."""
        while True:
            stop_if_cancelled()
            await asyncio.sleep(seconds)
            for document_id in list(self._rooms):
                self._decide_again_soon(document_id)

    def _decide_again_soon(self, document_id: str) -> None:
        """Another process says access changed: decide again (and once more if it says so
        again meanwhile, since the decision under way may have read the older truth)."""
        if document_id in self._rooms:
            self._until_settled(self._rechecks, document_id, self._decide_again, "deciding access")

    def _until_settled(
        self,
        pending: dict[str, bool],
        document_id: str,
        work: Callable[[str], Awaitable[None]],
        what: str,
    ) -> None:
        """Run ``work(document_id)`` in the background, once more after it if asked again
        while it runs (``pending``: document id -> asked again meanwhile)."""
        if self._tasks is None:
            return
        if document_id in pending:
            pending[document_id] = True
            return
        pending[document_id] = False

        async def run() -> None:
            try:
                while True:
                    await work(document_id)
                    if not pending.get(document_id):
                        return
                    pending[document_id] = False
            except Exception:
                log.exception("%s for document %s failed", what, document_id)
            finally:
                pending.pop(document_id, None)

        try:
            self._tasks.create_task(run())
        except RuntimeError:  # shutting down
            del pending[document_id]

    async def _decide_again(self, document_id: str) -> None:
        """Decide every connection of this process to ``document_id`` again, now."""
        room = self._rooms.get(document_id)
        if room is None:
            return
        await self._follow_template(room)
        if self._recheck is None:
            return
        decided: dict[tuple[str, str | None, str], Grant | DomainError] = {}
        for peer in list(room.peers):
            grant = peer.grant
            key = (grant.principal, grant.session, grant.role.value)
            outcome = decided.get(key)
            if outcome is None:
                try:
                    outcome = await self._recheck(grant)
                except DomainError as error:
                    outcome = error
                decided[key] = outcome
            if peer not in room.peers:
                continue  # left while the truth was read
            if isinstance(outcome, DomainError):
                log.info("closing %s on %s: %s", peer.id, document_id, outcome)
                peer.close(self._close_code(outcome), str(outcome))
                room.leave(peer)  # nothing more reaches it from this room
            else:
                room.regrant(peer, outcome)

    def close_trackers(self) -> None:
        """Emit every pending change event now (graceful shutdown)."""
        for room in self._rooms.values():
            if room.tracker is not None:
                room.tracker.close()
                room.tracker = None

    @asynccontextmanager
    async def borrow(self, document_id: str) -> AsyncIterator[Room]:
        """An existing document's room for a server-side change; unloads later if idle."""
        room = await self.open(document_id, create_as=None)
        try:
            yield room
        finally:
            self._unload_when_idle(room)

    def leave(self, room: Room, peer: Peer) -> None:
        room.leave(peer)
        self._unload_when_idle(room)

    def _unload_when_idle(self, room: Room) -> None:
        if not room.peers and room.unload_handle is None:
            room.unload_handle = asyncio.get_running_loop().call_later(
                self._grace, self._schedule_unload, room
            )

    def _schedule_unload(self, room: Room) -> None:
        room.unload_handle = None
        if self._tasks is not None:
            unload = self._unload(room)
            try:
                self._tasks.create_task(unload)
            except RuntimeError:  # shutting down: flush_all takes care of the room
                unload.close()

    async def _unload(self, room: Room) -> None:
        # Wait for the disk outside the lock: a client reconnecting meanwhile must not hang.
        while True:
            await room.all_saved()
            async with self._lock(room.document_id):
                if room.peers or room.unload_handle is not None:
                    return
                if self._rooms.get(room.document_id) is not room:
                    return
                if room.uncommitted:
                    continue  # written to meanwhile (a server-side edit): wait again
                room.close()
                # Its next load (after a restart, say) then reads one snapshot, which the
                # first client is answered with before the document is even built.
                with contextlib.suppress(RuntimeError):  # the committer is shutting down
                    self._committer.compact_if_due(room, leaving=True)
                del self._rooms[room.document_id]
                self._template_refs.pop(room.document_id, None)
                if self._bus is not None:
                    self._bus.unfollow(room.document_id)
                log.debug("room %s unloaded", room.document_id)
                return

    def compact_loaded(self) -> None:
        """Compact every loaded document with updates logged after its snapshot (shutdown)."""
        for room in self._rooms.values():
            self._committer.compact_if_due(room, leaving=True)

    async def flush_all(self) -> None:
        """Wait until every room's changes are committed (graceful shutdown)."""
        for room in list(self._rooms.values()):
            await room.all_saved()

    # -- the bus (DocumentSubscriber) ------------------------------------------------------

    def deliver(self, document_id: str, messages: Sequence[BusMessage]) -> None:
        room = self._rooms.get(document_id)
        if room is None:
            early = self._early.get(document_id)
            if early is not None:  # still loading
                early.extend(messages)
            return
        moved = False
        for message in messages:
            if message.kind is BusKind.UPDATE:
                room.apply_remote(message.payload)
                moved = moved or _named_template(room) != self._template_refs.get(document_id)
            elif message.kind is BusKind.AWARENESS:
                room.apply_remote_awareness(message.payload)
            elif message.kind is BusKind.LOCK:
                room.read_only = message.payload.decode(errors="replace") or None
            elif message.kind is BusKind.ACCESS:
                self._decide_again_soon(document_id)
        if moved:  # the DPIA moved to another template version (its guard follows)
            self._decide_again_soon(document_id)

    def catch_up(self, document_id: str) -> None:
        if document_id in self._rooms:
            self._until_settled(
                self._catching_up, document_id, self._catch_up, "catching up from the database"
            )

    async def _catch_up(self, document_id: str) -> None:
        room = self._rooms.get(document_id)
        if room is None:
            return
        stored = await self._store.load(document_id)
        room = self._rooms.get(document_id)
        if stored is None or room is None:
            return
        missing = await asyncio.to_thread(_missing_from, stored, room.doc.get_state())
        # What was missed may have been a lock or an unlock too.
        read_only = room.read_only
        if self._read_only is not None:
            read_only = await self._read_only(document_id)
        if self._rooms.get(document_id) is room:
            room.read_only = read_only
            room.apply_remote(missing)
            self.catch_ups += 1
            BUS_CATCH_UPS.inc()


def _missing_from(stored: StoredDocument, state_vector: bytes) -> bytes:
    """What the stored document has that a document at ``state_vector`` lacks."""
    return stored.to_doc().get_update(state_vector)


def _named_template(room: Room) -> tuple[str, int] | None:
    """The template and version the room's document names (``meta``), without loading it."""
    meta = room.doc.get("meta", type=Map)
    template_id, version = meta.get("template"), meta.get("template_version")
    if not isinstance(template_id, str) or not isinstance(version, int | float):
        return None
    return template_id, int(version)


def _template_of(room: Room) -> Template | None:
    meta = room.doc.get("meta", type=Map)
    template_id, version = meta.get("template"), meta.get("template_version")
    if not isinstance(template_id, str):
        return None
    try:
        return load_template(
            template_id, int(version) if isinstance(version, int | float) else None
        )
    except UnknownTemplate:
        log.warning("document %s names unknown template %r", room.document_id, template_id)
        return None
