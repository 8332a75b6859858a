"""The bridge in a process of its own, linked to the ``serve`` process that holds the rooms.

    serve: rooms, editors, EditingHost   <── socket pair, JSON lines ──>   bridge child
    BridgeProcess starts the child,                      SMTP/LMTP, parsing, checks,
    restarts it if it dies                               notifications, outcomes;
                                                         RemoteEditing, RemoteReviews

Everything a reply costs runs in the child; ``serve``'s event loop only writes the finished
comment into the room (one short step, then the commit the room does for any edit), so
mail never takes the editors' loop. In the embedded default there is one child, so when it
dies its leases are freed and the replies it held are processed again by the next one.

Wire: one JSON object a line. A request has an ``id`` and is answered by
``{"id", "ok": result}`` or ``{"id", "error": [domain error class, message]}``; a notice has
none. Child to serve: ``add_comment``, ``comment``, ``add_reply``, ``set_resolved``,
``raise_trigger`` (requests); ``ready``, ``announce``, ``queued``, ``outcome`` (notices).
Serve to child: ``wake`` (a held reply was released). Only JSON crosses, never pickles: the
child parses hostile mail and is trusted no further than its requests' shape.

Errors: a request whose link is gone raises ``ConnectionError`` in the child, and the
processor leaves the row pending for a retry; a domain error crosses as itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from email_bridge.processor import TriggerRaiser
from server.domain import errors
from server.domain.comments import CommentFacts, NewComment, NewReply
from server.domain.errors import DomainError
from server.services.inbound import InboundStore
from server.usecases.comments import CommentWriting, EmailParticipant

log = logging.getLogger("opendpia.bridge")

LINE_LIMIT = 16 * 1024 * 1024  # a comment is capped far below this; a line never reaches it
RESTART_FIRST, RESTART_MOST = 0.5, 30.0  # seconds between restarts of a child that died
STOP_SECONDS = 15.0  # how long a stopping child may take to finish what it holds

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]
Notice = Callable[[str, dict[str, Any]], None]


class Link:
    """Requests and notices both ways over one stream; ``run`` reads until the other end
    closes, then every request still waiting fails with ``ConnectionError``."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_request: Handler | None = None,
        on_notice: Notice = lambda op, args: None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._on_notice = on_notice
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._open = True

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                # Caught inside the group: raised out of its body, the error would leave
                # wrapped in an ExceptionGroup, past this handler and out of the supervisor
                # (a child killed with an answer unread in its socket resets the link).
                try:
                    while line := await self._reader.readline():
                        message = json.loads(line)
                        if "op" not in message:
                            self._answered(message)
                        elif "id" in message:
                            tasks.create_task(self._answer(message))
                        else:
                            self._on_notice(message["op"], message.get("args", {}))
                except (ConnectionError, ValueError) as error:
                    log.warning("bridge link: closed (%s)", error)
        finally:
            self._open = False
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionError("the bridge link closed"))
            self._waiting.clear()

    async def request(self, op: str, **args: Any) -> Any:
        if not self._open:
            raise ConnectionError("the bridge link is closed")
        self._next += 1
        waiting: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = waiting
        self._send({"id": self._next, "op": op, "args": args})
        return await waiting

    def notify(self, op: str, **args: Any) -> None:
        if self._open:
            self._send({"op": op, "args": args})

    def close(self) -> None:
        self._open = False
        self._writer.close()

    def _send(self, message: dict[str, Any]) -> None:
        self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def _answered(self, message: dict[str, Any]) -> None:
        waiting = self._waiting.pop(int(message["id"]), None)
        if waiting is None or waiting.done():
            return
        if "error" in message:
            waiting.set_exception(_error(*message["error"]))
        else:
            waiting.set_result(message.get("ok"))

    async def _answer(self, message: dict[str, Any]) -> None:
        answer: dict[str, Any] = {"id": message["id"]}
        try:
            if self._on_request is None:
                raise LookupError(f"no requests are served here ({message['op']})")
            answer["ok"] = await self._on_request(message["op"], message.get("args", {}))
        except DomainError as refused:
            answer["error"] = [type(refused).__name__, str(refused)]
        except Exception as error:
            log.exception("bridge link: %s failed", message.get("op"))
            answer["error"] = ["", f"{type(error).__name__}: {error}"]
        if self._open:
            self._send(answer)


def _error(kind: str, text: str) -> Exception:
    """The domain error a request raised in the other process, or a retryable failure."""
    cls = getattr(errors, kind, None) if kind else None
    if isinstance(cls, type) and issubclass(cls, DomainError):
        error = cls.__new__(cls)
        Exception.__init__(error, text)
        return error
    return RuntimeError(text)


class EditingHost:
    """``serve``'s side: the child's requests, answered with the rooms' own use cases."""

    def __init__(
        self,
        editing: CommentWriting,
        reviews: TriggerRaiser | None,
        *,
        announce: Callable[[Iterable[int]], None],
        queued: Callable[[], None],
        outcome: Callable[[str], None],
    ) -> None:
        self._editing = editing
        self._reviews = reviews
        self._announce = announce
        self._queued = queued
        self._outcome = outcome

    async def handle(self, op: str, args: dict[str, Any]) -> Any:
        editing = self._editing
        if op == "add_comment":
            return list(
                await editing.add_comment(
                    str(args["document_id"]),
                    NewComment(**args["comment"]),
                    origin=str(args["origin"]),
                    comment_id=args.get("comment_id"),
                    extra=args.get("extra"),
                )
            )
        if op == "comment":
            facts = await editing.comment(str(args["document_id"]), str(args["comment_id"]))
            return dataclasses.asdict(facts) if facts is not None else None
        if op == "add_reply":
            return list(
                await editing.add_reply(
                    str(args["document_id"]),
                    str(args["comment_id"]),
                    NewReply(**args["reply"]),
                    origin=str(args["origin"]),
                    reply_id=args.get("reply_id"),
                    extra=args.get("extra"),
                )
            )
        if op == "set_resolved":
            return await editing.set_resolved(
                str(args["document_id"]),
                str(args["comment_id"]),
                bool(args["resolved"]),
                by_name=str(args["by_name"]),
                actor=str(args["actor"]),
                channel=str(args["channel"]),
            )
        if op == "raise_trigger" and self._reviews is not None:
            return await self._reviews.raise_trigger(
                EmailParticipant(int(args["participant_id"])),
                str(args["trigger"]),
                str(args["what"]),
                dpia_id=str(args["dpia_id"]),
            )
        raise LookupError(f"unknown request {op!r}")

    def notice(self, op: str, args: dict[str, Any]) -> None:
        if op == "announce":
            self._announce([int(user) for user in args["users"]])
        elif op == "queued":
            self._queued()
        elif op == "outcome":
            self._outcome(str(args["outcome"]))


class RemoteEditing:
    """The child's ``CommentWriting``: each change is made, and committed, by ``serve``."""

    def __init__(self, link: Link) -> None:
        self._link = link

    async def add_comment(
        self,
        document_id: str,
        comment: NewComment,
        *,
        origin: str,
        comment_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, bool]:
        posted_id, created = await self._link.request(
            "add_comment",
            document_id=document_id,
            comment=dataclasses.asdict(comment),
            origin=origin,
            comment_id=comment_id,
            extra=extra,
        )
        return str(posted_id), bool(created)

    async def comment(self, document_id: str, comment_id: str) -> CommentFacts | None:
        facts = await self._link.request("comment", document_id=document_id, comment_id=comment_id)
        if facts is None:
            return None
        return CommentFacts(**{**facts, "repliers": tuple(facts["repliers"])})

    async def add_reply(
        self,
        document_id: str,
        comment_id: str,
        reply: NewReply,
        *,
        origin: str,
        reply_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[bool, bool]:
        found, created = await self._link.request(
            "add_reply",
            document_id=document_id,
            comment_id=comment_id,
            reply=dataclasses.asdict(reply),
            origin=origin,
            reply_id=reply_id,
            extra=extra,
        )
        return bool(found), bool(created)

    async def set_resolved(
        self,
        document_id: str,
        comment_id: str,
        resolved: bool,
        *,
        by_name: str,
        actor: str,
        channel: str,
    ) -> bool:
        return bool(
            await self._link.request(
                "set_resolved",
                document_id=document_id,
                comment_id=comment_id,
                resolved=resolved,
                by_name=by_name,
                actor=actor,
                channel=channel,
            )
        )


class RemoteReviews:
    """The child's ``TriggerRaiser``: the trigger is raised by ``serve`` (it locks rooms)."""

    def __init__(self, link: Link) -> None:
        self._link = link

    async def raise_trigger(
        self, by: EmailParticipant, trigger: str, what: str, *, dpia_id: str = ""
    ) -> str:
        return str(
            await self._link.request(
                "raise_trigger",
                participant_id=by.participant_id,
                trigger=trigger,
                what=what,
                dpia_id=dpia_id,
            )
        )


class BridgeProcess:
    """Runs the bridge as a child of this process and keeps it running.

    The child is ``command`` plus ``--child-fd N`` (its end of the link), with
    ``environment``; it says ``ready`` once it listens. ``started`` is set then, or after
    the first child died before that (the web app must not wait for mail), loudly logged.
    """

    def __init__(
        self,
        command: Sequence[str],
        environment: dict[str, str],
        host: EditingHost,
        store: InboundStore,
        listeners: Callable[[], dict[str, socket.socket]],
    ) -> None:
        self._listeners = listeners
        self._command = list(command)
        self._environment = environment
        self._host = host
        self._store = store
        self._link: Link | None = None
        self.pid: int | None = None  # the running child's, for operators and tests
        store.on_pending(self._wake)

    def _wake(self) -> None:
        if self._link is not None:
            self._link.notify("wake")

    async def run(self, started: asyncio.Event) -> None:
        # Bound here and kept: while a child restarts, mail servers wait in the backlog.
        sockets = self._listeners()
        try:
            await self._keep_running(started, sockets)
        finally:
            for sock in sockets.values():
                sock.close()

    async def _keep_running(
        self, started: asyncio.Event, sockets: dict[str, socket.socket]
    ) -> None:
        delay = RESTART_FIRST
        while True:
            ready = await self._one_child(started, sockets)
            started.set()
            if ready:
                delay = RESTART_FIRST
            freed = await self._store.release_claims()
            log.error(
                "email bridge: its process stopped; starting another in %g s "
                "(%d replies it held will be processed again)",
                delay,
                freed,
            )
            await asyncio.sleep(delay)
            delay = min(RESTART_MOST, delay * 2)

    async def _one_child(self, started: asyncio.Event, sockets: dict[str, socket.socket]) -> bool:
        """Run one child until it exits; whether it said it was ready."""
        ours, theirs = socket.socketpair()
        listening = [f"{name}={sock.fileno()}" for name, sock in sockets.items()]
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                "--child-fd",
                str(theirs.fileno()),
                *(["--listen", ",".join(listening)] if listening else []),
                pass_fds=(theirs.fileno(), *(sock.fileno() for sock in sockets.values())),
                env=self._environment,
            )
        finally:
            theirs.close()
        self.pid = process.pid
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=LINE_LIMIT)
        ready = False

        def notice(op: str, args: dict[str, Any]) -> None:
            nonlocal ready
            if op == "ready":
                ready = True
                started.set()
            else:
                self._host.notice(op, args)

        link = self._link = Link(reader, writer, on_request=self._host.handle, on_notice=notice)
        try:
            await link.run()  # until the child's end closes: it exited, or is exiting
            code = await process.wait()
            log.error("email bridge: its process %d exited with %s", process.pid, code)
        finally:
            self._link = None
            link.close()  # a stopping serve: the child reads the end and stops
            if process.returncode is None:
                await _stop(process)
            self.pid = None
        return ready


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Let a child that was told to stop finish, then make sure it has gone."""
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        async with asyncio.timeout(STOP_SECONDS):
            await process.wait()
            return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(asyncio.CancelledError):
        await process.wait()


def child_command() -> list[str]:
    """How ``serve`` starts its bridge child: this Python, the same program."""
    return [sys.executable, "-m", "server", "bridge"]


def inherited_listeners(listen: str) -> dict[str, socket.socket]:
    """The listening sockets ``serve`` passed its child ("smtp=7,lmtp=8")."""
    sockets: dict[str, socket.socket] = {}
    for item in filter(None, listen.split(",")):
        name, _, fd = item.partition("=")
        sockets[name] = socket.socket(fileno=int(fd))
        os.set_inheritable(int(fd), False)
    return sockets


async def child_link(fd: int, on_notice: Notice) -> Link:
    """The child's end of the link, from the descriptor ``serve`` passed it."""
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
    return Link(reader, writer, on_notice=on_notice)
