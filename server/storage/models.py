"""Tables. A revision in ``migrations/versions`` is the source of truth for the schema;
these models mirror it (a test checks that autogenerate finds no difference)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Document(Base):
    """A collaborative document (one Y.Doc per DPIA)."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    # The last ``seq`` numbered in this document's log, when several processes write it
    # (``SqlUpdateStore`` with ``assign_seq``): its row lock orders those writers. A cache
    # of ``max(document_updates.seq)``: one process alone does not keep it, and a writer
    # that finds it behind (its next ``seq`` is taken) sets it again from the log.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class DocumentUpdate(Base):
    """The append-only update log: the history, kept for ever."""

    __tablename__ = "document_updates"

    document_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    update: Mapped[bytes] = mapped_column(LargeBinary)
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DocumentSnapshot(Base):
    """The merged state of a document up to and including ``seq``."""

    __tablename__ = "document_snapshots"

    document_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Organisation(Base):
    """A council, trust or other body whose staff use OpenDPIA."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Whether its DPIAs may take in people from outside their parties (decision: admin).
    outside_partners: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Months a closed DPIA is kept before deletion; None: the deployment's default.
    retention_months: Mapped[int | None]
    # A reviewing forum (as IGfL is): invited to projects, it comments and endorses (0015).
    reviewing_body: Mapped[bool] = mapped_column(default=False, server_default=false())


class User(Base):
    """A person who signs in; their email is unique and stored lower-cased."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A local password still works when the organisation forbids passwords (decision 83).
    break_glass: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Manages every organisation (``opendpia grant-deployment-admin``); not an org role.
    deployment_admin: Mapped[bool] = mapped_column(default=False, server_default=false())


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20))
    # Who may sign for the organisation, and as what: "dpo,siro,caldicott_guardian" (0015).
    signatory_roles: Mapped[str] = mapped_column(String(100), default="", server_default="")


class UserSession(Base):
    """A signed-in browser. Only a hash of the cookie's secret is stored."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """A failed sign-in, kept for rate limiting (by email and by address)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class PasswordReset(Base):
    """A link to set a new password, sent by email: single-use and expiring.

    Only a hash of the link's token is stored, as for sessions.
    """

    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordResetRequest(Base):
    """A request for a reset link, for rate limiting (by email and by client address);
    recorded whether or not the email has an account."""

    __tablename__ = "password_reset_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Dpia(Base):
    """A DPIA as a record; its content is the document with the same id."""

    __tablename__ = "dpias"

    id: Mapped[str] = mapped_column(
        String(100), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    title: Mapped[str] = mapped_column(String(300))
    lead_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[str] = mapped_column(String(30))
    template_id: Mapped[str] = mapped_column(String(50))
    template_version: Mapped[int]
    origin_id: Mapped[str | None] = mapped_column(String(100), ForeignKey("dpias.id"))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ig_step: Mapped[str] = mapped_column(String(30), server_default="co_create_dpia")
    # The head of the DPIA's audit chain: deleting its last events is detectable too.
    audit_count: Mapped[int] = mapped_column(server_default="0")
    audit_head: Mapped[str] = mapped_column(String(64), server_default="")
    # When it last entered a closed status (retention counts from here); None: open.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The project this document records a step of, and which step (0015). No foreign key:
    # adding one would rebuild ``dpias`` on SQLite (see the revision); services keep it.
    project_id: Mapped[str | None] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="dpia", server_default="dpia")


class Project(Base):
    """A data collaboration project: the seven IG steps, its parties, its documents."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    lead_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    step: Mapped[str] = mapped_column(String(30))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Adoption of an endorsed agreement: the project copied, and the endorsement (JSON:
    # the reviewing body, the sign-off, the content hash endorsed, when).
    adopted_from: Mapped[str | None] = mapped_column(String(100))
    endorsement_origin: Mapped[str | None] = mapped_column(Text)


class ProjectParty(Base):
    """An organisation taking part in a project, in a role (controller, joint controller,
    processor, recipient, reviewing body). ``organisation_id`` is None for an organisation
    not on this deployment (it takes part by email)."""

    __tablename__ = "project_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))


class SourceLink(Base):
    """A field of one document drafted from a field of another (the ISA from the DPIA): what
    the source said when it was drafted or last confirmed, so a later change shows as
    "source changed" with the difference."""

    __tablename__ = "source_links"

    document_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_document_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), index=True
    )
    source_fields: Mapped[str] = mapped_column(String(1000))  # JSON list of field paths
    source_hash: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    confirmed_by: Mapped[str] = mapped_column(String(200))
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DpiaParty(Base):
    """An organisation taking part in the processing, with its role."""

    __tablename__ = "dpia_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    dpia_id: Mapped[str] = mapped_column(ForeignKey("dpias.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))


class Participant(Base):
    """Someone taking part in one DPIA: a user of any organisation, or an email-only contact."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("dpia_id", "email", name="uq_participants_dpia_id_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dpia_id: Mapped[str] = mapped_column(ForeignKey("dpias.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """An email to send, written in the same transaction as what caused it.

    The message is rendered once, with its Message-ID, so every retry sends the same bytes:
    a crash between sending and recording can repeat a delivery, never change it.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    dpia_id: Mapped[str | None] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(250), default="")
    sender: Mapped[str] = mapped_column(String(254))
    recipient: Mapped[str] = mapped_column(String(254))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(10), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DevMail(Base):
    """Mail caught by the development SMTP sink (never used in production)."""

    __tablename__ = "dev_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    mail_from: Mapped[str] = mapped_column(String(254))
    rcpt_to: Mapped[str] = mapped_column(String(2000))
    message: Mapped[bytes] = mapped_column(LargeBinary)


class ChangeEventRow(Base):
    """A debounced change: one person's burst of edits to one field."""

    __tablename__ = "change_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    field: Mapped[str] = mapped_column(String(200))
    row: Mapped[str | None] = mapped_column(String(100))
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    edits: Mapped[int]
    excerpt: Mapped[str] = mapped_column(String(500))


class Notification(Base):
    """Something a participant should hear about, shown in the app and maybe emailed."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    dpia_id: Mapped[str] = mapped_column(ForeignKey("dpias.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    section: Mapped[str] = mapped_column(String(100))
    field: Mapped[str | None] = mapped_column(String(200))
    actor_name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    excerpt: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email: Mapped[str] = mapped_column(String(10), index=True)  # queued | digest | none


class SectionWatch(Base):
    """A participant's choice about one section; absent means the default (watching)."""

    __tablename__ = "section_watches"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    section: Mapped[str] = mapped_column(String(100), primary_key=True)
    watching: Mapped[bool]


class SectionReviewer(Base):
    """A participant an owner asked to review a section; they always hear about it."""

    __tablename__ = "section_reviewers"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    section: Mapped[str] = mapped_column(String(100), primary_key=True)


class MailPreference(Base):
    """How a participant wants email about one DPIA; no mode means their global choice."""

    __tablename__ = "mail_preferences"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str | None] = mapped_column(String(10))
    last_digest_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserMailPreference(Base):
    """A user's email choice for every DPIA that has none of its own."""

    __tablename__ = "user_mail_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(10))


class ReplyToken(Base):
    """The random part of a personal reply address and what it may be used for.

    The address also carries an HMAC of this value under a key the database does not
    hold, so a copy of this table yields no working address.
    """

    __tablename__ = "reply_tokens"

    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    dpia_id: Mapped[str] = mapped_column(ForeignKey("dpias.id", ondelete="CASCADE"))
    section: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(default=False)
    field: Mapped[str | None] = mapped_column(String(200))
    # The comment the notification was about: an emailed answer joins its thread.
    comment_id: Mapped[str | None] = mapped_column(String(64))


class InboundMessage(Base):
    """One received message for one recipient, stored before the bridge answers 250.

    ``status`` is pending until processed (a lease in ``claimed_until`` keeps two processors
    apart), then done with an ``outcome``: merged, duplicate, dropped, refused, held,
    bounce, unsubscribed, released or discarded, and a ``reason`` for the owners to read.
    """

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    transport: Mapped[str] = mapped_column(String(8))
    peer: Mapped[str] = mapped_column(String(100))
    envelope_from: Mapped[str] = mapped_column(String(254))
    recipient: Mapped[str] = mapped_column(String(254))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    message_key: Mapped[str] = mapped_column(String(300), index=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    dpia_id: Mapped[str | None] = mapped_column(String(100), index=True)
    participant_id: Mapped[int | None] = mapped_column(index=True)
    section: Mapped[str | None] = mapped_column(String(100))
    field: Mapped[str | None] = mapped_column(String(200))
    comment_id: Mapped[str | None] = mapped_column(String(60))
    from_address: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(250), default="")
    text: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(Text)
    # What the bridge did not post (quoted email, signature, disclaimer), for the owners, and
    # whether the posted text kept lines that may be quoted (the bridge keeps when unsure).
    set_aside: Mapped[str | None] = mapped_column(Text)
    possibly_quoted: Mapped[bool] = mapped_column(default=False, server_default=false())
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # When the participants were told of a merged reply (None: not yet, or not merged).
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InboundAttachment(Base):
    """A file that came with an email reply; served only as a download to participants."""

    __tablename__ = "inbound_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="CASCADE"), index=True
    )
    dpia_id: Mapped[str] = mapped_column(String(100), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MailHealth(Base):
    """Bounces seen for a participant's address; notifications pause after repeated hard ones."""

    __tablename__ = "mail_health"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    hard_bounces: Mapped[int] = mapped_column(default=0)
    soft_bounces: Mapped[int] = mapped_column(default=0)
    last_bounce_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_reason: Mapped[str] = mapped_column(String(500), default="")
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AutoAnswer(Base):
    """One automatic answer sent by the bridge: at most one per address, reason and day."""

    __tablename__ = "auto_answers"

    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class SectionState(Base):
    """Where a section stands in its review; ``content_hash`` is what was reviewed or signed,
    so a later edit shows as stale without anyone having to notice it."""

    __tablename__ = "section_states"

    dpia_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), primary_key=True
    )
    section: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    reasons: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignOffRow(Base):
    """A sign-off: who signed what exact content (its hash, at a document seq), and how."""

    __tablename__ = "signoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dpia_id: Mapped[str] = mapped_column(ForeignKey("dpias.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    signer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signer_participant_id: Mapped[int]
    signer_name: Mapped[str] = mapped_column(String(200))
    signer_role: Mapped[str] = mapped_column(String(20))
    signer_organisation: Mapped[str] = mapped_column(String(200))
    party: Mapped[str] = mapped_column(String(200))
    # The party's organisation the signer signed for, and in which capacity (dpo, siro,
    # caldicott_guardian, reviewer), read from their membership, never from the form (0015).
    party_organisation_id: Mapped[int | None]
    capacity: Mapped[str] = mapped_column(String(30), default="", server_default="")
    decision: Mapped[str] = mapped_column(String(30))
    conditions: Mapped[str] = mapped_column(Text)
    reasons: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stale_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by: Mapped[int | None]


class SignOffReminder(Base):
    """When an outstanding signatory (by address) was last reminded to sign a document:
    at most once a day (0016)."""

    __tablename__ = "signoff_reminders"

    dpia_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_by: Mapped[str] = mapped_column(String(200))


class ReviewReminder(Base):
    """A reminder of a document's review date, ``days_before`` it, went out (0017): once
    per document, review date and offset, whichever process or restart looks again.
    ``emailed`` is False for an offset passed while a nearer one was due (covered by it)."""

    __tablename__ = "review_reminders"

    dpia_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), primary_key=True
    )
    due: Mapped[date] = mapped_column(Date, primary_key=True)
    days_before: Mapped[int] = mapped_column(primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    emailed: Mapped[bool]


class OverdueReviewDigest(Base):
    """The day an organisation's DPO (by address) had the list of overdue reviews (0017)."""

    __tablename__ = "overdue_review_digests"

    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    documents: Mapped[int]


class AuditEvent(Base):
    """One link of a DPIA's audit chain: ``hash`` covers the frame, ``content_hash`` and
    ``prev_hash`` (``domain.audit``)."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("dpia_id", "position", name="uq_audit_events_dpia_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dpia_id: Mapped[str] = mapped_column(ForeignKey("dpias.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    section: Mapped[str | None] = mapped_column(String(100))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # SHA-256 of (actor, data): the link covers it, so the content can be redacted (0014).
    content_hash: Mapped[str | None] = mapped_column(String(64))


class OrganisationSignIn(Base):
    """An organisation's identity provider (OpenID Connect); at most one per organisation."""

    __tablename__ = "organisation_sign_in"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str] = mapped_column(String(1000))
    tenant: Mapped[str] = mapped_column(String(100), server_default="")
    jit: Mapped[bool] = mapped_column(server_default=false())
    admin_group: Mapped[str] = mapped_column(String(255), server_default="")
    forbid_passwords: Mapped[bool] = mapped_column(server_default=false())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrganisationDomain(Base):
    """An email domain of an organisation: unique, so an address leads to one provider."""

    __tablename__ = "organisation_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )


class ExternalIdentity(Base):
    """A person as a provider knows them: (issuer, stable subject) names one user."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_external_identities_issuer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignInAttempt(Base):
    """A sign-in sent to a provider and not yet back: its state (hashed), nonce and PKCE
    verifier stay here, single use and short-lived."""

    __tablename__ = "sign_in_attempts"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditChain(Base):
    """The head of an audit chain that has no DPIA row to keep it (the administration's):
    deleting its last events is detectable too."""

    __tablename__ = "audit_chains"

    chain: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(server_default="0")
    head: Mapped[str] = mapped_column(String(64), server_default="")


class AdminAuditEvent(Base):
    """One link of the administration's audit chain, hashed as a DPIA's links are
    (``domain.audit.AuditRecord`` with the chain's name in place of a DPIA), always over
    ``content_hash`` so erasure can redact the people it names."""

    __tablename__ = "admin_audit_events"
    __table_args__ = (UniqueConstraint("chain", "position", name="uq_admin_audit_events_chain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[str] = mapped_column(String(100))
    position: Mapped[int]
    organisation_id: Mapped[int | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))


class DeletedDpia(Base):
    """The tombstone of a purged DPIA: what was deleted, when, by whom, under which rule.

    It keeps the reference, never the title or content (decision 92)."""

    __tablename__ = "deleted_dpias"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(100))
    organisation: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(30))
    rule: Mapped[str] = mapped_column(String(40))
    deleted_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    records: Mapped[str] = mapped_column(Text)  # JSON: table → rows deleted


class Erasure(Base):
    """The record of a person's erasure, by pseudonym only: who erased, when, which rule,
    and how many records of each kind were rewritten."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str] = mapped_column(String(40))
    erased_by: Mapped[str] = mapped_column(String(200))
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    records: Mapped[str] = mapped_column(Text)  # JSON: table → rows rewritten


class RopaEntry(Base):
    """An entry of an organisation's record of processing activities added by hand (one
    not backed by a DPIA): its columns as JSON, keyed by ``domain.ropa.EDITABLE`` (0018)."""

    __tablename__ = "ropa_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    entry: Mapped[str] = mapped_column(Text)  # JSON: column → text
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RopaConfirmation(Base):
    """A person's confirmation that a RoPA entry drawn from a DPIA's processing activity is
    right: what the columns said (and their fingerprint), the DPIA's version and status
    then, who and when. A later DPIA whose columns differ shows "changed since" (0018)."""

    __tablename__ = "ropa_confirmations"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    dpia_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), primary_key=True
    )
    activity: Mapped[str] = mapped_column(String(100), primary_key=True)
    entry: Mapped[str] = mapped_column(Text)  # JSON: column → text, as confirmed
    entry_hash: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(30))
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SearchIndexRow(Base):
    """A document's searchable text as it was at ``indexed_seq`` of its update log.

    The full-text index over it is each database's own and is not mapped here (migration
    0019): on SQLite the FTS5 table ``search_fts`` (kept in step by triggers), on
    PostgreSQL the generated ``vector`` column and its GIN index."""

    __tablename__ = "search_index"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("dpias.id", ondelete="CASCADE"), unique=True
    )
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    comments: Mapped[str] = mapped_column(Text)
    next_review: Mapped[date | None] = mapped_column(Date, index=True)
    indexed_seq: Mapped[int] = mapped_column(BigInteger)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# Made by migration 0019 with each database's own full-text search, not by these models:
# what a comparison of the models with the database leaves out.
FULL_TEXT_OBJECTS = frozenset(
    {
        "search_fts",
        "search_fts_data",
        "search_fts_idx",
        "search_fts_docsize",
        "search_fts_config",
        "search_fts_content",
        "vector",
        "ix_search_index_vector",
    }
)


class OrganisationTemplate(Base):
    """One version of an organisation's own template (0020): a draft its administrators
    edit, or a published version that never changes again (docs/template-library.md)."""

    __tablename__ = "organisation_templates"

    template_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)  # the template's JSON, checked on save
    based_on: Mapped[str] = mapped_column(String(80))  # "<template id>@<version>"
    state: Mapped[str] = mapped_column(String(12))  # "draft" or "published"
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TemplateAdoption(Base):
    """An organisation's use of another organisation's published template (0020): a
    reference, so that its new versions reach the adopter (decision on adoption)."""

    __tablename__ = "template_adoptions"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    template_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    adopted_by: Mapped[str] = mapped_column(String(200))
    adopted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RiskDecision(Base):
    """A person's decision on a risk proposed from the template's catalogue (0021): accepted
    (``ref`` is the register row it became) or dismissed with a reason. ``round`` counts the
    decisions on that risk before this one (a dismissed risk may be proposed again on new
    grounds), so the primary key lets each proposal be decided once, whichever process
    decides it (docs/decisions.md, "a proposal is decided once")."""

    __tablename__ = "risk_decisions"

    dpia_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), primary_key=True
    )
    risk_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    round: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    outcome: Mapped[str] = mapped_column(String(12))  # accepted | dismissed
    grounds: Mapped[str] = mapped_column(Text)  # JSON: the ground keys it was taken on
    reason: Mapped[str] = mapped_column(Text)  # a dismissal's reason, in the person's words
    ref: Mapped[str | None] = mapped_column(String(20))  # the register row an acceptance added
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_by_name: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewAnswers(Base):
    """The answers a document's review date is read from (``domain.reviews.schedule_answers``,
    JSON), as read at ``read_seq`` of its log from that template version (0022): the
    reminder pass reads a document whole again only when its log has moved."""

    __tablename__ = "review_answers"

    dpia_id: Mapped[str] = mapped_column(
        ForeignKey("dpias.id", ondelete="CASCADE"), primary_key=True
    )
    read_seq: Mapped[int] = mapped_column(BigInteger)
    template_id: Mapped[str] = mapped_column(String(100))
    template_version: Mapped[int] = mapped_column()
    answers: Mapped[str] = mapped_column(Text)
