"""From a stored message to an outcome: the bridge's pipeline, run from the store.

parse → classify (loop, bounce, list, automatic) → route by the recipient address →
authenticate (From must be the address's owner; DMARC only from trusted headers) →
authorise (still a participant, may comment, DPIA not locked) → deduplicate → rate-limit →
extract the reply → merge it as a comment through the room the browsers use → record.

Every row ends with exactly one recorded outcome. An unexpected failure leaves the row
pending for a retry after a back-off; after ``MAX_ATTEMPTS`` it is recorded as failed, with
the raw message still kept, so nothing accepted is ever lost silently.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from email_bridge.answers import Answerer
from email_bridge.classify import Kind, classify, dmarc_failed, read_bounce
from email_bridge.extract import extract
from email_bridge.message import ReadMail, read
from server.domain.access import Channel, Role
from server.domain.comments import MAX_COMMENT, comment_policy
from server.domain.content import WHOLE
from server.domain.errors import (
    AccessDenied,
    CommentNotFound,
    DomainError,
    DpiaLocked,
    InvalidToken,
)
from server.domain.reviews import TRIGGERABLE, review_cycle_of, trigger_in_reply
from server.domain.tasks import stop_if_cancelled
from server.domain.templates import Template
from server.mail.compose import LOOP_HEADER
from server.services.inbound import (
    Finished,
    InboundStore,
    NewAttachment,
    ReplyContext,
    Situation,
)
from server.services.notification_mail import REPLY_MARKER
from server.services.notifications import CommentNotice, NotificationService
from server.services.template_library import TemplateLibrary
from server.storage.models import InboundMessage
from server.usecases.comments import Comments, EmailParticipant

log = logging.getLogger("opendpia.bridge")

MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=2)
DPIA_LEVEL = WHOLE  # where a reply goes when its section no longer exists
NOTICE_WINDOW = 1.0  # seconds of merged replies told together
# Merged replies not told about this long after (their process stopped first) are told by
# whichever processor looks next; it looks at most this often.
UNTOLD_AFTER = timedelta(seconds=2 * NOTICE_WINDOW + 5)
UNTOLD_EVERY = 10.0


class TriggerRaiser(Protocol):
    """Raises a review trigger for a reply (``usecases.reviews.Reviews``, or a link to the
    process holding the rooms when the bridge runs in its own)."""

    async def raise_trigger(
        self, by: EmailParticipant, trigger: str, what: str, *, dpia_id: str = ""
    ) -> str: ...


@dataclass(frozen=True)
class BridgePolicy:
    installation: str
    own_addresses: frozenset[str]
    trusted_authserv_ids: frozenset[str]
    replies_per_hour: int


@dataclass
class Outcome:
    outcome: str
    reason: str
    values: dict[str, Any]


class ReplyProcessor:
    def __init__(
        self,
        store: InboundStore,
        comments: Comments,
        notifications: NotificationService,
        answerer: Answerer,
        policy: BridgePolicy,
        templates: TemplateLibrary,
        *,
        concurrency: int = 16,
        poll_seconds: float = 5.0,
        on_outcome: Callable[[str], None] = lambda outcome: None,
        reviews: TriggerRaiser | None = None,
    ) -> None:
        self._store = store
        # Each reply's document names its template by id and version; an organisation's
        # template may have been published after this process started (a separate bridge),
        # so it is read through the library, which fills this process's registry.
        self._templates = templates
        self._reviews = reviews
        self._comments = comments
        self._notifications = notifications
        self._answerer = answerer
        self._policy = policy
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._on_outcome = on_outcome
        self._wake = asyncio.Event()
        self._notices: asyncio.Queue[tuple[str, str, int, CommentNotice]] = asyncio.Queue()
        self._looked_for_untold = -UNTOLD_EVERY

    def wake(self) -> None:
        self._wake.set()

    async def run(self, started: asyncio.Event) -> None:
        """Process pending rows until cancelled (rows left by a crash are taken first)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._tell_in_batches())
            started.set()
            await self._process_forever()

    async def _tell_in_batches(self) -> None:
        """Notify participants of merged replies off the merging path, a window at a time:
        a burst of replies to one section is one notification per person, not one each."""
        while True:
            batch = [await self._notices.get()]
            try:
                await asyncio.sleep(NOTICE_WINDOW)
            finally:  # also on shutdown: what was merged is still told
                while not self._notices.empty():
                    batch.append(self._notices.get_nowait())
                groups: dict[tuple[str, str], list[tuple[int, CommentNotice]]] = {}
                for dpia_id, section, row_id, notice in batch:
                    groups.setdefault((dpia_id, section), []).append((row_id, notice))
                for (dpia_id, section), told in groups.items():
                    await asyncio.shield(self._tell(dpia_id, section, told))

    async def _tell(
        self, dpia_id: str, section: str, told: list[tuple[int, CommentNotice]]
    ) -> bool:
        """Record one notification per person about these replies, then mark them told.

        Not told (an error, or a crash first): ``_tell_untold`` tries again later."""
        try:
            await self._notifications.record_comments(
                dpia_id, section, [notice for _, notice in told]
            )
            await self._store.mark_notified([row_id for row_id, _ in told])
        except Exception:
            log.exception("bridge: could not notify about %d replies", len(told))
            return False
        return True

    async def _tell_untold(self) -> None:
        """Tell about merged replies whose telling a stopped process never recorded."""
        untold = await self._store.claim_untold(UNTOLD_AFTER)
        groups: dict[tuple[str, str], list[tuple[int, CommentNotice]]] = {}
        for item in untold:
            row = item.row
            notice = CommentNotice(
                row.text or "", item.author, f"participant:{row.participant_id}", "email"
            )
            groups.setdefault((row.dpia_id or "", row.section or ""), []).append((row.id, notice))
        for (dpia_id, section), told in groups.items():
            log.warning("bridge: telling about %d replies merged before a stop", len(told))
            if not await self._tell(dpia_id, section, told):
                await self._store.unmark([row_id for row_id, _ in told])

    async def _process_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            stop_if_cancelled()
            self._wake.clear()
            try:
                worked = await self.drain()
                if loop.time() - self._looked_for_untold >= UNTOLD_EVERY:
                    self._looked_for_untold = loop.time()
                    await self._tell_untold()
            except Exception:  # the database is away: try again later, keep the loop alive
                log.exception("bridge: processing failed; retrying")
                worked = 0
            if worked:
                continue
            try:
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Process what is pending now; the number of rows processed.

        Outcomes of a batch are recorded together, in one transaction.
        """
        rows = await self._store.claim(self._concurrency, LEASE)
        # Copies of one message are processed one after the other (the second is then a
        # duplicate); different messages side by side.
        copies: dict[tuple[str, str], list[InboundMessage]] = {}
        for row in rows:
            copies.setdefault((row.message_key, row.recipient), []).append(row)
        done = await asyncio.gather(*(self._one_by_one(group) for group in copies.values()))
        results = [result for group in done for result in group]
        await self._store.finish_many(results)
        for result in results:
            self._on_outcome(result.outcome)
            log.info("bridge: message %d %s %s", result.row_id, result.outcome, result.reason)
        return len(rows)

    async def _one_by_one(self, rows: list[InboundMessage]) -> list[Finished]:
        results: list[Finished] = []
        merged: int | None = None
        for row in rows:
            if merged is not None and row.outcome != "held":
                results.append(
                    Finished(
                        row.id, "duplicate", f"the same message was processed as #{merged}", {}
                    )
                )
                continue
            result = await self._process_safely(row)
            if result is not None:
                results.append(result)
                if result.outcome == "merged":
                    merged = row.id
        return results

    async def _process_safely(self, row: InboundMessage) -> Finished | None:
        """The row's outcome; None when it is left pending for a retry."""
        try:
            result = await self.process(row)
        except Exception as error:
            log.exception("bridge: message %d failed (attempt %d)", row.id, row.attempts)
            if row.attempts >= MAX_ATTEMPTS:
                return Finished(
                    row.id, "failed", f"could not be processed: {type(error).__name__}", {}
                )
            delay = timedelta(seconds=min(300, 5 * 2**row.attempts))
            await self._store.postpone(row.id, delay, f"retrying: {type(error).__name__}")
            return None
        return Finished(row.id, result.outcome, result.reason, result.values)

    async def process(self, row: InboundMessage) -> Outcome:
        mail = await (
            asyncio.to_thread(read, row.raw) if len(row.raw) > 256 * 1024 else _read(row.raw)
        )
        values: dict[str, Any] = {
            "from_address": (mail.from_address or "")[:254],
            "subject": mail.subject,
        }
        to_bounce = row.recipient.startswith("bounce+")
        kind = classify(
            mail,
            envelope_from=row.envelope_from,
            to_bounce_address=to_bounce,
            installation=self._policy.installation,
            own_addresses=self._policy.own_addresses,
            loop_header=LOOP_HEADER,
        )
        if to_bounce:
            return await self._bounce(mail, row, values, to_bounce=True)
        try:
            token = self._store.reply_keys.token_of(row.recipient)
        except InvalidToken as error:  # accepted at RCPT, refused now: a key was retired
            return Outcome("refused", str(error), values)
        situation = await self._store.situation(row, token)
        context = situation.context
        if context is None:
            return Outcome("refused", "This reply address is no longer known", values)
        values.update(
            dpia_id=context.token.dpia_id,
            participant_id=context.token.participant_id,
            section=context.token.section,
            field=context.token.field,
        )
        if kind.kind is Kind.BOUNCE:
            return await self._bounce(mail, row, values, to_bounce=False)
        if kind.kind is not Kind.HUMAN:
            return Outcome("dropped", kind.reason, values)
        return await self._reply(mail, row, situation, values)

    async def _bounce(
        self, mail: ReadMail, row: InboundMessage, values: dict[str, Any], *, to_bounce: bool
    ) -> Outcome:
        if to_bounce:
            participant_id = self._store.reply_keys.bounced_participant(row.recipient)
            participant = await self._store.participant(participant_id)
            values.update(
                participant_id=participant_id,
                dpia_id=participant.dpia_id if participant is not None else None,
            )
        else:
            participant_id = int(values["participant_id"])
        bounce = read_bounce(mail)
        paused = await self._store.record_bounce(
            participant_id, hard=bounce.hard, reason=bounce.reason
        )
        kind = "Hard bounce" if bounce.hard else "Soft bounce"
        note = "; notifications paused" if paused else ""
        return Outcome("bounce", kind + f": {bounce.reason}{note}", values)

    async def _reply(
        self, mail: ReadMail, row: InboundMessage, situation: Situation, values: dict[str, Any]
    ) -> Outcome:
        context = situation.context
        assert context is not None
        participant = context.participant
        dpia = context.dpia
        reply_to = mail.from_address or ""

        async def refuse(code: str, why: str, *, answer: bool = True) -> Outcome:
            if answer and reply_to:
                link = self._link(context)
                await self._answerer.answer(
                    to=reply_to,
                    reason_code=code,
                    explanation=why,
                    link=link,
                    in_reply_to=mail.message_id,
                    subject=mail.subject,
                    dpia_id=context.token.dpia_id,
                )
            return Outcome("refused", why, values)

        if mail.from_problem is not None:
            return await refuse("from", mail.from_problem, answer=False)
        if participant is None or dpia is None:
            return await refuse("removed", "You no longer take part in this DPIA", answer=False)
        dmarc = dmarc_failed(mail, self._policy.trusted_authserv_ids)
        if reply_to != participant.email.strip().lower():
            # Anyone can write any From: only a sender our own server authenticated hears back.
            why = (
                f"The sender {reply_to} is not the address this reply address was sent to; "
                "ask the DPIA's owner to invite you"
            )
            return await refuse("not-invited", why, answer=dmarc is False)
        released = row.outcome == "held"
        if dmarc is True and not released:
            return Outcome(
                "held", "DMARC failed for the sender's domain: held for an owner", values
            )
        if context.token.revoked:
            return await refuse("withdrawn", "This reply address was withdrawn")
        if context.token.expires_at.replace(tzinfo=context.token.expires_at.tzinfo or UTC) <= (
            datetime.now(UTC)
        ):
            return await refuse("expired", "This reply address has expired")
        raised = await self._raised_trigger(mail, context)
        if raised is not None:
            return await self._trigger(raised, row, situation, context, values, refuse)
        # The comment rule, asked before deduplication and extraction so that a refused
        # reply is answered as such; the use case decides again when it posts.
        refusal = comment_policy(Role(participant.role), context.status).refusal
        if refusal is not None:
            return await refuse(_answer_code(refusal), str(refusal))
        earlier = situation.earlier
        if earlier is not None and not released:
            return Outcome("duplicate", f"The same message was processed as #{earlier.id}", values)
        if situation.merged_last_hour >= self._policy.replies_per_hour:
            return await refuse(
                "rate",
                f"More than {self._policy.replies_per_hour} replies in an hour; try again later",
            )
        reply = extract(mail.text, REPLY_MARKER)
        if reply.is_unsubscribe or (
            not reply.text.strip() and mail.subject.strip().lower() == "unsubscribe"
        ):
            await self._store.unsubscribe(participant.id)
            return Outcome("unsubscribed", "Asked by email to stop notifications", values)
        text = reply.text
        # Whatever happens next, the owners can read what was not posted.
        values["set_aside"] = reply.set_aside or None
        values["possibly_quoted"] = reply.unsure
        notes = [f"Not attached: {note}" for note in mail.refused_attachments]
        if not text.strip() and not mail.attachments:
            return await refuse("empty", "Nothing was left once the quoted email was removed")
        if len(text) > MAX_COMMENT:
            text = text[: MAX_COMMENT - 60].rstrip() + "\n[… shortened; the full email is kept]"
        if notes:
            text = f"{text}\n\n" + "\n".join(f"[{note}]" for note in notes)
            text = text[:MAX_COMMENT]  # many refused attachments: their notes are cut short
        return await self._merge(mail, row, context, values, text.strip(), reply.signature)

    async def _template(self, context: ReplyContext) -> Template:
        """The template and version the reply's document follows."""
        assert context.dpia is not None
        return await self._templates.template(
            context.dpia.template_id, context.dpia.template_version
        )

    async def _raised_trigger(
        self, mail: ReadMail, context: ReplyContext
    ) -> tuple[str, str] | None:
        """(trigger id, what changed) when the reply raises a review trigger on an approved
        document ("This has changed: …", or a trigger's name and a colon; issue 17)."""
        if self._reviews is None or context.dpia is None:
            return None
        if context.status not in TRIGGERABLE:
            return None  # the content can still change: a reply is a comment
        found = trigger_in_reply(
            review_cycle_of((await self._template(context)).content),
            extract(mail.text, REPLY_MARKER).text,
        )
        return (found[0].id, found[1]) if found is not None else None

    async def _trigger(
        self,
        raised: tuple[str, str],
        row: InboundMessage,
        situation: Situation,
        context: ReplyContext,
        values: dict[str, Any],
        refuse: Callable[[str, str], Awaitable[Outcome]],
    ) -> Outcome:
        assert self._reviews is not None and context.participant is not None
        if situation.earlier is not None:
            return Outcome(
                "duplicate", f"The same message was processed as #{situation.earlier.id}", values
            )
        if situation.merged_last_hour >= self._policy.replies_per_hour:
            return await refuse(
                "rate",
                f"More than {self._policy.replies_per_hour} replies in an hour; try again later",
            )
        trigger, what = raised
        try:
            label = await self._reviews.raise_trigger(
                EmailParticipant(context.participant.id),
                trigger,
                what,
                dpia_id=context.token.dpia_id,
            )
        except DomainError as refused:
            return await refuse(_answer_code(refused), str(refused))
        values.update(text=what)
        # Told already (the owners and the DPO, as the trigger is recorded).
        values["notified_at"] = datetime.now(UTC)
        return Outcome("trigger", f"Raised a review trigger: {label}", values)

    async def _merge(
        self,
        mail: ReadMail,
        row: InboundMessage,
        context: ReplyContext,
        values: dict[str, Any],
        text: str,
        signature: str,
    ) -> Outcome:
        assert context.participant is not None and context.dpia is not None
        template = await self._template(context)
        section = context.token.section
        field = context.token.field
        if section not in template.section_ids():
            section, field = DPIA_LEVEL, None
        elif field is not None and field not in {
            f["id"] for s in template.sections if s["id"] == section for f in s["fields"]
        }:
            field = None
        files = await self._store.keep_attachments(
            row.id,
            context.dpia.id,
            [NewAttachment(a.filename, a.content_type, a.data) for a in mail.attachments],
        )
        extra: dict[str, Any] = {}
        if signature:
            extra["signature"] = signature[:2000]
        if files:
            extra["attachments"] = [
                {"id": str(f.id), "name": f.filename, "size": f.size, "type": f.content_type}
                for f in files
            ]
        actor = f"participant:{context.participant.id}"
        comment_id = (
            "e-" + hashlib.sha256(f"{row.message_key}|{row.recipient}".encode()).hexdigest()[:16]
        )
        if context.token.comment_id is not None:
            # The notification was about one comment: the answer joins its thread.
            try:
                replied = await self._comments.reply(
                    context.dpia.id,
                    EmailParticipant(context.participant.id),
                    context.token.comment_id,
                    text or "(attachments only)",
                    origin=f"email:{mail.message_id or row.message_key}"[:255],
                    reply_id=comment_id,
                    extra=extra,
                )
            except CommentNotFound:
                pass  # not in this document (any more): posted as a comment below
            except DomainError as refused:  # locked, or the role changed, since the check
                return Outcome("refused", str(refused), values)
            else:
                values.update(
                    section=section, field=field, comment_id=context.token.comment_id, text=text
                )
                values["signature"] = signature or None
                reason = (
                    "Posted as a reply to the comment it answers"
                    if replied.created
                    else "It was already in the document"
                )
                return Outcome("merged", reason, values)
        try:
            posted = await self._comments.post(
                context.dpia.id,
                EmailParticipant(context.participant.id),
                section=section,
                field=field,
                text=text or "(attachments only)",
                origin=f"email:{mail.message_id or row.message_key}"[:255],
                comment_id=comment_id,
                extra=extra,
                notify=False,  # told in batches, below
            )
        except DomainError as refused:  # locked, or the role changed, since the check above
            return Outcome("refused", str(refused), values)
        if posted.created:
            notice = CommentNotice(text, posted.comment.author_name, actor, Channel.EMAIL.value)
            self._notices.put_nowait((context.dpia.id, section, row.id, notice))
        values.update(section=section, field=field, comment_id=comment_id, text=text)
        values["signature"] = signature or None
        reason = "Posted as a comment" if posted.created else "It was already in the document"
        return Outcome("merged", reason, values)

    def _link(self, context: ReplyContext) -> str:
        if context.participant is not None:
            return (
                "read the DPIA and ask its owner for help at "
                + self._notifications.mail.read_link(context.participant.id)
            )
        return f"ask the DPIA's owner for help ({self._notifications.mail.base})"


def _answer_code(refusal: DomainError) -> str:
    """The reason code of the answer to a refused reply (one answer per code and day)."""
    if isinstance(refusal, DpiaLocked):
        return "locked"
    if isinstance(refusal, AccessDenied):
        return "viewer"
    return "refused"


async def _read(raw: bytes) -> ReadMail:
    return read(raw)
