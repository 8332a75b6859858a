"""Changes the server makes to documents on someone's behalf (comments, replies, resolving).

They go through the same room as browser edits, so connected browsers see them at once and
the log records them like any edit, attributed to their author and channel. Each call returns
only once the change is committed.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pycrdt import Array, Doc, Map

from server.domain.comments import CommentFacts, NewComment, NewReply
from server.domain.content import find_field, write_field
from server.domain.templates import Template
from server.realtime.rooms import RoomManager


class DocumentEditing:
    def __init__(self, rooms: RoomManager) -> None:
        self._rooms = rooms

    async def add_comment(
        self,
        document_id: str,
        comment: NewComment,
        *,
        origin: str,
        comment_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, bool]:
        """Write the comment; (its id, whether it is new).

        With a ``comment_id`` of the caller's (the email bridge derives one from the
        message), a comment already there is left alone: reprocessing changes nothing.
        """
        comment_id = comment_id or f"c-{secrets.token_hex(8)}"
        entry: dict[str, Any] = {
            "section": comment.section,
            "author": comment.author_participant,
            "author_name": comment.author_name,
            "channel": comment.channel,
            "text": comment.text,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "resolved": False,
        }
        if comment.field is not None:
            entry["field"] = comment.field
        for key, value in (extra or {}).items():
            entry[key] = Array([Map(v) for v in value]) if isinstance(value, list) else value
        created = False

        def write(doc: Doc[Any]) -> None:
            nonlocal created
            comments = doc.get("comments", type=Map)
            if comment_id in comments:
                return
            comments[comment_id] = Map({**entry, "replies": Array()})
            created = True

        async with self._rooms.borrow(document_id) as room:
            room.edit(
                write,
                actor=comment.actor,
                channel=comment.channel,
                origin=origin,
            )
            await room.all_saved()
        return comment_id, created

    async def comment(self, document_id: str, comment_id: str) -> CommentFacts | None:
        """What the rules need to know of one comment, or None if the document has none by
        that id. Comments are never deleted, so what this reads still holds when a use case
        writes after deciding."""
        async with self._rooms.borrow(document_id) as room:
            comments = room.doc.get("comments", type=Map)
            entry = comments.get(comment_id) if comment_id in comments else None
            if not isinstance(entry, Map):
                return None
            replies = entry.get("replies")
            repliers: list[int] = []
            for reply in replies if isinstance(replies, Array) else []:
                author = reply.get("author") if isinstance(reply, Map) else None
                if isinstance(author, int | float) and int(author) not in repliers:
                    repliers.append(int(author))
            author = entry.get("author")
            return CommentFacts(
                comment_id,
                str(entry.get("section") or ""),
                int(author) if isinstance(author, int | float) else None,
                tuple(repliers),
                entry.get("resolved") is True,
            )

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
        """Append ``reply`` to the comment's ``replies``: (comment found, reply written).

        With a ``reply_id`` of the caller's (the email bridge derives one from the message),
        a reply with that id already in the thread is left alone."""
        entry: dict[str, Any] = {
            "author": reply.author_participant,
            "author_name": reply.author_name,
            "channel": reply.channel,
            "text": reply.text,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if reply_id is not None:
            entry["id"] = reply_id
        for key, value in (extra or {}).items():
            entry[key] = Array([Map(v) for v in value]) if isinstance(value, list) else value
        found = created = False

        def write(doc: Doc[Any]) -> None:
            nonlocal found, created
            comment = doc.get("comments", type=Map).get(comment_id)
            if not isinstance(comment, Map):
                return
            found = True
            replies = comment.get("replies")
            if not isinstance(replies, Array):
                replies = comment["replies"] = Array()
            if reply_id is not None and any(
                isinstance(r, Map) and r.get("id") == reply_id for r in replies
            ):
                return
            replies.append(Map(entry))
            created = True

        async with self._rooms.borrow(document_id) as room:
            room.edit(write, actor=reply.actor, channel=reply.channel, origin=origin)
            await room.all_saved()
        return found, created

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
        """Mark the comment resolved (recording who and when) or open again; False if there
        is no such comment. Reopening clears ``resolved_by`` and ``resolved_at``."""
        found = False
        now = datetime.now(UTC).isoformat(timespec="seconds")

        def write(doc: Doc[Any]) -> None:
            nonlocal found
            comment = doc.get("comments", type=Map).get(comment_id)
            if not isinstance(comment, Map):
                return
            found = True
            if (comment.get("resolved") is True) == resolved:
                return  # already so: no update, nothing logged
            comment["resolved"] = resolved
            if resolved:
                comment["resolved_by"] = by_name
                comment["resolved_at"] = now
            else:
                for key in ("resolved_by", "resolved_at"):
                    if key in comment:
                        del comment[key]

        async with self._rooms.borrow(document_id) as room:
            room.edit(write, actor=actor, channel=channel, origin=f"resolve:{comment_id}")
            await room.all_saved()
        return found

    async def restore_field(
        self,
        document_id: str,
        path: str,
        value: Any,
        *,
        template: Template,
        actor: str,
        channel: str,
    ) -> bool:
        """Write an earlier value of one field as a new change attributed to ``actor``.

        The earlier version is not re-applied: history stays append-only and the restore
        is one more logged update (True if it changed anything)."""
        section, field = find_field(template, path)

        def write(doc: Doc[Any]) -> None:
            write_field(doc, section, field, value)

        async with self._rooms.borrow(document_id) as room:
            changed = room.edit(write, actor=actor, channel=channel, origin=f"restore:{path}")
            await room.all_saved()
        return changed
