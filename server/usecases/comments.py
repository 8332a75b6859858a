"""Posting a comment, replying to one, resolving or reopening it: the one path for the
browser, API tokens and email replies.

Whoever comments, the same steps run in the same order: who is it (a signed-in member, an
API token's grant, an email reply's participant) and what is their standing now; the one
rule (``domain.comments.comment_policy``); what a valid comment is (``check_comment``);
written into the document through the room, so open editors see it at once and the log
records it as the author's; then the other participants are told. A reply follows the
same rule as a comment and tells the comment's author and earlier repliers; resolving has
its own rule (``resolve_policy``) and tells nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from server.domain.access import Channel, Grant, Role
from server.domain.comments import (
    CommentFacts,
    NewComment,
    NewReply,
    check_comment,
    check_reply,
    comment_policy,
    require_comment,
    resolve_policy,
)
from server.domain.dpias import DpiaStatus
from server.domain.errors import DocumentNotFound, WrongDocument
from server.domain.templates import load_template
from server.services.dpias import DpiaService
from server.services.notifications import NotificationService
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class EmailParticipant:
    """The author of an email reply: a participant known by id, with or without an account."""

    participant_id: int


# A signed-in member (channel browser), an API token (api), an email reply (email).
Commenter = Member | Grant | EmailParticipant


@dataclass(frozen=True, slots=True)
class PostedComment:
    id: str
    created: bool  # False when a comment with the caller's id was there already
    comment: NewComment  # as written: the cleaned text, its author and channel


@dataclass(frozen=True, slots=True)
class PostedReply:
    comment_id: str  # the comment replied to
    created: bool  # False when a reply with the caller's id was there already
    reply: NewReply


@dataclass(frozen=True, slots=True)
class _Standing:
    participant_id: int | None
    name: str
    channel: Channel
    actor: str
    role: Role
    status: DpiaStatus | None  # None: a tooling document with no DPIA record
    template_id: str
    template_version: int | None = None


class CommentWriting(Protocol):
    """Where comments are written: the rooms (``realtime.editing.DocumentEditing``), or,
    in the email bridge's own process, a link to the process that holds the rooms.

    Each call returns only once the change is committed."""

    async def add_comment(
        self,
        document_id: str,
        comment: NewComment,
        *,
        origin: str,
        comment_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, bool]: ...

    async def comment(self, document_id: str, comment_id: str) -> CommentFacts | None: ...

    async def add_reply(
        self,
        document_id: str,
        comment_id: str,
        reply: NewReply,
        *,
        origin: str,
        reply_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[bool, bool]: ...

    async def set_resolved(
        self,
        document_id: str,
        comment_id: str,
        resolved: bool,
        *,
        by_name: str,
        actor: str,
        channel: str,
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class Comments:
    dpias: DpiaService
    editing: CommentWriting
    notifications: NotificationService

    async def post(
        self,
        dpia_id: str,
        by: Commenter,
        *,
        section: str,
        field: str | None,
        text: str,
        origin: str | None = None,
        comment_id: str | None = None,
        extra: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> PostedComment:
        """Post a comment, or raise the domain error that says why not.

        ``comment_id`` makes posting idempotent (the email bridge derives one per message);
        ``notify=False`` leaves telling people to the caller (the bridge tells a burst of
        replies as one notification).
        """
        who = await self._standing(dpia_id, by)
        comment_policy(who.role, who.status).require()
        cleaned = check_comment(
            load_template(who.template_id, who.template_version), section, field, text
        )
        comment = NewComment(
            section, field, cleaned, who.participant_id, who.name, who.channel.value, who.actor
        )
        posted_id, created = await self.editing.add_comment(
            dpia_id,
            comment,
            origin=origin or f"api:comment:{who.actor}",
            comment_id=comment_id,
            extra=extra,
        )
        if created and notify:
            await self.notifications.record_comment(
                dpia_id,
                section=section,
                text=cleaned,
                author=comment.author_name,
                actor=comment.actor,
                channel=comment.channel,
                comment_id=posted_id,
            )
        return PostedComment(posted_id, created, comment)

    async def reply(
        self,
        dpia_id: str,
        by: Commenter,
        comment_id: str,
        text: str,
        *,
        origin: str | None = None,
        reply_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> PostedReply:
        """Reply to a comment, or raise the domain error that says why not (CommentNotFound
        for an id the DPIA has no comment by).

        ``reply_id`` makes replying idempotent (the email bridge derives one per message):
        a reply with that id already in the thread is left alone and nobody is told again.
        """
        who = await self._standing(dpia_id, by)
        comment_policy(who.role, who.status).require()
        cleaned = check_reply(text)
        comment = require_comment(await self.editing.comment(dpia_id, comment_id), comment_id)
        reply = NewReply(cleaned, who.participant_id, who.name, who.channel.value, who.actor)
        found, created = await self.editing.add_reply(
            dpia_id,
            comment_id,
            reply,
            origin=origin or f"api:reply:{who.actor}",
            reply_id=reply_id,
            extra=extra,
        )
        require_comment(comment if found else None, comment_id)
        if created:
            await self.notifications.record_reply(
                dpia_id,
                section=comment.section,
                text=cleaned,
                author=reply.author_name,
                actor=reply.actor,
                channel=reply.channel,
                comment_id=comment_id,
                thread=[
                    p for p in (comment.author_participant, *comment.repliers) if p is not None
                ],
            )
        return PostedReply(comment_id, created, reply)

    async def resolve(self, dpia_id: str, by: Commenter, comment_id: str) -> None:
        """Mark a comment resolved, or raise the domain error that says why not."""
        await self._set_resolved(dpia_id, by, comment_id, True)

    async def reopen(self, dpia_id: str, by: Commenter, comment_id: str) -> None:
        """Open a resolved comment again, or raise the domain error that says why not."""
        await self._set_resolved(dpia_id, by, comment_id, False)

    async def _set_resolved(
        self, dpia_id: str, by: Commenter, comment_id: str, resolved: bool
    ) -> None:
        who = await self._standing(dpia_id, by)
        comment = require_comment(await self.editing.comment(dpia_id, comment_id), comment_id)
        is_author = (
            who.participant_id is not None and who.participant_id == comment.author_participant
        )
        resolve_policy(who.role, who.status, is_author=is_author, resolved=resolved).require()
        written = await self.editing.set_resolved(
            dpia_id,
            comment_id,
            resolved,
            by_name=who.name,
            actor=who.actor,
            channel=who.channel.value,
        )
        require_comment(comment if written else None, comment_id)

    async def _standing(self, dpia_id: str, by: Commenter) -> _Standing:
        if isinstance(by, Member):
            access = by.access
            return _Standing(
                access.participant_id,
                by.user.name,
                Channel.BROWSER,
                f"user:{by.user.id}",
                access.role,
                access.status,
                access.template_id,
                access.template_version,
            )
        if isinstance(by, Grant):
            if by.document_id != dpia_id:
                raise WrongDocument("The token is for another document")
            state = await self.dpias.state(dpia_id)
            return _Standing(
                None,
                by.principal,
                Channel.API,
                by.principal,
                by.role,
                state.status if state is not None else None,
                state.template_id if state is not None else "uk-dpia",
                state.template_version if state is not None else None,
            )
        participant = await self.dpias.participant_access(by.participant_id)
        if participant is None or participant.dpia_id != dpia_id:
            raise DocumentNotFound("You no longer take part in this DPIA")
        return _Standing(
            participant.participant_id,
            participant.name,
            Channel.EMAIL,
            f"participant:{participant.participant_id}",
            participant.role,
            participant.status,
            participant.template_id,
            participant.template_version,
        )
