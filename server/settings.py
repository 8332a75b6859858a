"""Settings, read once from the environment into one frozen object.

Every setting is an ``OPENDPIA_*`` environment variable; the README's settings table lists
them all (a test keeps the two in step). Nothing here is read at import time:
``Settings.from_env(os.environ)`` is called by the composition root and the result is passed
down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# The editor bundle ``make setup`` builds, beside the server in a checkout (and in the image).
EDITOR_BUILD = Path(__file__).resolve().parents[1] / "frontend" / "dist"
DEVELOPMENT_SECRET_KEY = "opendpia-development-secret-key-do-not-use-in-production"
ENVIRONMENTS = ("development", "test", "production")
PASSWORD_HASHING = ("standard", "fast-for-tests")
LOG_FORMATS = ("text", "json")


def system_clock() -> datetime:
    """The time now, in UTC: what every scheduled job reads unless a test injects a clock."""
    return datetime.now(UTC)


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe for the chosen environment."""


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one OpenDPIA process."""

    env: str = field(default="development", metadata={"env": "OPENDPIA_ENV"})
    database_url: str = field(
        default="sqlite+aiosqlite:///./var/opendpia.db", metadata={"env": "OPENDPIA_DATABASE_URL"}
    )
    secret_key: str = field(default=DEVELOPMENT_SECRET_KEY, metadata={"env": "OPENDPIA_SECRET_KEY"})
    host: str = field(default="127.0.0.1", metadata={"env": "OPENDPIA_HOST"})
    port: int = field(default=8000, metadata={"env": "OPENDPIA_PORT"})
    forwarded_allow_ips: str = field(
        default="127.0.0.1", metadata={"env": "OPENDPIA_FORWARDED_ALLOW_IPS"}
    )
    max_frame_bytes: int = field(
        default=4 * 1024 * 1024, metadata={"env": "OPENDPIA_MAX_FRAME_BYTES"}
    )
    room_grace_seconds: float = field(default=10.0, metadata={"env": "OPENDPIA_ROOM_GRACE_SECONDS"})
    compact_every: int = field(default=500, metadata={"env": "OPENDPIA_COMPACT_EVERY"})
    commit_window_ms: float = field(default=20.0, metadata={"env": "OPENDPIA_COMMIT_WINDOW_MS"})
    awareness_tick_ms: float = field(default=50.0, metadata={"env": "OPENDPIA_AWARENESS_TICK_MS"})
    search_index_delay_seconds: float = field(
        default=1.0, metadata={"env": "OPENDPIA_SEARCH_INDEX_DELAY_SECONDS"}
    )
    search_sweep_seconds: float = field(
        default=60.0, metadata={"env": "OPENDPIA_SEARCH_SWEEP_SECONDS"}
    )
    # "fast-for-tests" hashes passwords with argon2 at its cheapest cost, so a test suite that
    # signs in thousands of times does not spend minutes of CPU on it; only in OPENDPIA_ENV=test.
    password_hashing: str = field(default="standard", metadata={"env": "OPENDPIA_PASSWORD_HASHING"})
    ws_ping_seconds: float = field(default=20.0, metadata={"env": "OPENDPIA_WS_PING_SECONDS"})
    # permessage-deflate on WebSocket connections: off, as in the Node y-websocket server.
    # Each compressed connection deflates every broadcast on its own (bench/README.md).
    ws_deflate: bool = field(default=False, metadata={"env": "OPENDPIA_WS_DEFLATE"})
    send_queue_bytes: int = field(
        default=32 * 1024 * 1024, metadata={"env": "OPENDPIA_SEND_QUEUE_BYTES"}
    )
    token_ttl_seconds: int = field(
        default=12 * 3600, metadata={"env": "OPENDPIA_TOKEN_TTL_SECONDS"}
    )
    person_token_seconds: int = field(
        default=600, metadata={"env": "OPENDPIA_PERSON_TOKEN_SECONDS"}
    )
    access_recheck_seconds: float = field(
        default=30.0, metadata={"env": "OPENDPIA_ACCESS_RECHECK_SECONDS"}
    )
    max_field_bytes: int = field(default=1024 * 1024, metadata={"env": "OPENDPIA_MAX_FIELD_BYTES"})
    max_document_bytes: int = field(
        default=32 * 1024 * 1024, metadata={"env": "OPENDPIA_MAX_DOCUMENT_BYTES"}
    )
    auto_migrate: bool | None = field(default=None, metadata={"env": "OPENDPIA_AUTO_MIGRATE"})
    log_level: str = field(default="info", metadata={"env": "OPENDPIA_LOG_LEVEL"})
    change_quiet_seconds: float = field(
        default=30.0, metadata={"env": "OPENDPIA_CHANGE_QUIET_SECONDS"}
    )
    base_url: str = field(default="http://127.0.0.1:8000", metadata={"env": "OPENDPIA_BASE_URL"})
    reply_domain: str = field(
        default="reply.opendpia.localhost", metadata={"env": "OPENDPIA_REPLY_DOMAIN"}
    )
    reply_key_ids: str = field(default="k1", metadata={"env": "OPENDPIA_REPLY_KEY_IDS"})
    reply_days: int = field(default=30, metadata={"env": "OPENDPIA_REPLY_DAYS"})
    smtp_url: str = field(default="", metadata={"env": "OPENDPIA_SMTP_URL"})
    mail_from: str = field(
        default="OpenDPIA <notifications@opendpia.localhost>",
        metadata={"env": "OPENDPIA_MAIL_FROM"},
    )
    dev_smtp_port: int = field(default=8025, metadata={"env": "OPENDPIA_DEV_SMTP_PORT"})
    mail_retry_seconds: float = field(default=30.0, metadata={"env": "OPENDPIA_MAIL_RETRY_SECONDS"})
    mail_give_up_hours: float = field(default=48.0, metadata={"env": "OPENDPIA_MAIL_GIVE_UP_HOURS"})
    mail_lease_seconds: float = field(
        default=300.0, metadata={"env": "OPENDPIA_MAIL_LEASE_SECONDS"}
    )
    run_worker: bool | None = field(default=None, metadata={"env": "OPENDPIA_RUN_WORKER"})
    run_bridge: bool | None = field(default=None, metadata={"env": "OPENDPIA_RUN_BRIDGE"})
    # The bridge's parsing, checks and notifications run in a process of their own, so that
    # mail never takes the editors' event loop; only the final edit reaches the rooms.
    bridge_process: bool = field(default=True, metadata={"env": "OPENDPIA_BRIDGE_PROCESS"})
    bridge_host: str = field(default="127.0.0.1", metadata={"env": "OPENDPIA_BRIDGE_HOST"})
    bridge_port: int = field(default=2525, metadata={"env": "OPENDPIA_BRIDGE_PORT"})
    bridge_lmtp_port: int = field(default=0, metadata={"env": "OPENDPIA_BRIDGE_LMTP_PORT"})
    bridge_max_bytes: int = field(
        default=25 * 1024 * 1024, metadata={"env": "OPENDPIA_BRIDGE_MAX_BYTES"}
    )
    bridge_tls_cert: str = field(default="", metadata={"env": "OPENDPIA_BRIDGE_TLS_CERT"})
    bridge_tls_key: str = field(default="", metadata={"env": "OPENDPIA_BRIDGE_TLS_KEY"})
    bridge_trusted_authserv_ids: str = field(
        default="", metadata={"env": "OPENDPIA_BRIDGE_TRUSTED_AUTHSERV_IDS"}
    )
    bridge_imap_url: str = field(default="", metadata={"env": "OPENDPIA_BRIDGE_IMAP_URL"})
    bridge_imap_seconds: float = field(
        default=60.0, metadata={"env": "OPENDPIA_BRIDGE_IMAP_SECONDS"}
    )
    bridge_replies_per_hour: int = field(
        default=30, metadata={"env": "OPENDPIA_BRIDGE_REPLIES_PER_HOUR"}
    )
    redis_url: str = field(default="", metadata={"env": "OPENDPIA_REDIS_URL"})
    redis_prefix: str = field(default="opendpia", metadata={"env": "OPENDPIA_REDIS_PREFIX"})
    bus_stream_length: int = field(default=1000, metadata={"env": "OPENDPIA_BUS_STREAM_LENGTH"})
    db_pool_size: int = field(default=10, metadata={"env": "OPENDPIA_DB_POOL_SIZE"})
    db_max_overflow: int = field(default=10, metadata={"env": "OPENDPIA_DB_MAX_OVERFLOW"})
    log_format: str = field(default="text", metadata={"env": "OPENDPIA_LOG_FORMAT"})
    metrics_port: int = field(default=0, metadata={"env": "OPENDPIA_METRICS_PORT"})
    editor_dir: str = field(default="", metadata={"env": "OPENDPIA_EDITOR_DIR"})
    accessibility_contact: str = field(
        default="", metadata={"env": "OPENDPIA_ACCESSIBILITY_CONTACT"}
    )
    import_max_bytes: int = field(
        default=4 * 1024 * 1024, metadata={"env": "OPENDPIA_IMPORT_MAX_BYTES"}
    )
    sso_session_hours: float = field(default=8.0, metadata={"env": "OPENDPIA_SSO_SESSION_HOURS"})
    oidc_timeout_seconds: float = field(
        default=10.0, metadata={"env": "OPENDPIA_OIDC_TIMEOUT_SECONDS"}
    )
    default_retention_months: int = field(
        default=72, metadata={"env": "OPENDPIA_DEFAULT_RETENTION_MONTHS"}
    )
    retention_check_seconds: float = field(
        default=3600.0, metadata={"env": "OPENDPIA_RETENTION_CHECK_SECONDS"}
    )
    controller_name: str = field(default="", metadata={"env": "OPENDPIA_CONTROLLER_NAME"})
    dpo_contact: str = field(default="", metadata={"env": "OPENDPIA_DPO_CONTACT"})
    # Days before a review date at which its owners and DPO are reminded (issue 17).
    review_reminder_days: str = field(
        default="30,7,1", metadata={"env": "OPENDPIA_REVIEW_REMINDER_DAYS"}
    )
    review_check_seconds: float = field(
        default=300.0, metadata={"env": "OPENDPIA_REVIEW_CHECK_SECONDS"}
    )
    # The time now for scheduled work (review reminders, the dashboard's "overdue"). Not an
    # environment variable: only a test injects another clock, to move time without sleeping.
    clock: Callable[[], datetime] = field(default=system_clock, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, check: bool = True) -> Settings:
        """Build the settings from ``environ``, refusing unsafe or malformed values
        (``check=False``: the parent process checked them, e.g. ``serve``'s bridge child)."""
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            if "env" not in f.metadata:
                continue  # injected by code (the clock), never read from the environment
            name = f.metadata["env"]
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, f.default)
        settings = cls(**values)  # type: ignore[arg-type]
        if check:
            settings.check()
        return settings

    def environment(self) -> dict[str, str]:
        """These settings as environment variables: ``from_env`` of them gives them back
        (but the clock, which is never read from the environment)."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "env" not in f.metadata or value is None:
                continue
            out[f.metadata["env"]] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
        return out

    def check(self) -> None:
        """Refuse combinations that are unsafe or cannot work."""
        if self.env not in ENVIRONMENTS:
            raise SettingsError(
                f"OPENDPIA_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}"
            )
        if self.env == "production" and self.secret_key == DEVELOPMENT_SECRET_KEY:
            raise SettingsError(
                "OPENDPIA_SECRET_KEY is the development default; set a long random secret "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))') "
                "before running with OPENDPIA_ENV=production"
            )
        if self.password_hashing not in PASSWORD_HASHING:
            raise SettingsError(
                "OPENDPIA_PASSWORD_HASHING must be one of "
                f"{', '.join(PASSWORD_HASHING)}, not {self.password_hashing!r}"
            )
        if self.password_hashing != "standard" and self.env != "test":
            raise SettingsError(
                "OPENDPIA_PASSWORD_HASHING=fast-for-tests is only for OPENDPIA_ENV=test: "
                "it makes stolen password hashes cheap to guess"
            )
        if len(self.secret_key) < 32:
            raise SettingsError("OPENDPIA_SECRET_KEY must be at least 32 characters long")
        if self.max_frame_bytes < 1024:
            raise SettingsError("OPENDPIA_MAX_FRAME_BYTES must be at least 1024")
        if self.import_max_bytes < 64 * 1024:
            raise SettingsError("OPENDPIA_IMPORT_MAX_BYTES must be at least 65536")
        if not 1 <= self.default_retention_months <= 600:
            raise SettingsError("OPENDPIA_DEFAULT_RETENTION_MONTHS must be between 1 and 600")
        if self.retention_check_seconds < 1:
            raise SettingsError("OPENDPIA_RETENTION_CHECK_SECONDS must be at least 1")
        if self.compact_every < 1:
            raise SettingsError("OPENDPIA_COMPACT_EVERY must be at least 1")
        if not 0 <= self.awareness_tick_ms <= 1000:
            # Longer and carets visibly lag; renewals (every 5 s) must outrun peers' 30 s.
            raise SettingsError("OPENDPIA_AWARENESS_TICK_MS must be between 0 and 1000")
        if self.max_field_bytes < 1024 or self.max_document_bytes < self.max_field_bytes:
            raise SettingsError(
                "OPENDPIA_MAX_FIELD_BYTES must be at least 1024, and "
                "OPENDPIA_MAX_DOCUMENT_BYTES at least as large"
            )
        if self.person_token_seconds < 30:
            raise SettingsError("OPENDPIA_PERSON_TOKEN_SECONDS must be at least 30")
        if self.env == "production" and not self.smtp_url:
            raise SettingsError(
                "OPENDPIA_SMTP_URL is required in production, e.g. smtp://user:pass@host:587"
            )
        if self.bridge_tls_cert and not self.bridge_tls_key:
            raise SettingsError("OPENDPIA_BRIDGE_TLS_CERT needs OPENDPIA_BRIDGE_TLS_KEY too")
        if self.bridge_imap_url and not self.bridge_imap_url.startswith(("imap://", "imaps://")):
            raise SettingsError("OPENDPIA_BRIDGE_IMAP_URL must start with imap:// or imaps://")
        if self.bridge_max_bytes < 64 * 1024:
            raise SettingsError("OPENDPIA_BRIDGE_MAX_BYTES must be at least 65536")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("OPENDPIA_REDIS_URL must start with redis://, rediss:// or unix://")
        if self.redis_url and self.is_sqlite:
            raise SettingsError(
                "OPENDPIA_REDIS_URL is for several processes sharing one PostgreSQL database; "
                "SQLite serves one process: set OPENDPIA_DATABASE_URL to PostgreSQL"
            )
        if self.bus_stream_length < 10:
            raise SettingsError("OPENDPIA_BUS_STREAM_LENGTH must be at least 10")
        if self.db_pool_size < 1 or self.db_max_overflow < 0:
            raise SettingsError(
                "OPENDPIA_DB_POOL_SIZE must be at least 1 and OPENDPIA_DB_MAX_OVERFLOW at least 0"
            )
        if not 0 < self.sso_session_hours <= 24 * 30:
            raise SettingsError("OPENDPIA_SSO_SESSION_HOURS must be above 0 and at most 720")
        if not 0 < self.oidc_timeout_seconds <= 120:
            raise SettingsError("OPENDPIA_OIDC_TIMEOUT_SECONDS must be above 0 and at most 120")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"OPENDPIA_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
        if self.review_check_seconds < 1:
            raise SettingsError("OPENDPIA_REVIEW_CHECK_SECONDS must be at least 1")
        try:
            _ = self.review_offsets
        except ValueError:
            raise SettingsError(
                "OPENDPIA_REVIEW_REMINDER_DAYS must be whole numbers of days from 1 to 366 "
                "separated by commas, e.g. 30,7,1"
            ) from None
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError("OPENDPIA_SMTP_URL must start with smtp:// or smtps://")

    @property
    def review_offsets(self) -> tuple[int, ...]:
        """The days before a review date at which reminders go, largest first (ValueError
        if the setting is not a list of whole numbers of days)."""
        days = {int(part) for part in self.review_reminder_days.split(",") if part.strip()}
        if not days or any(not 1 <= d <= 366 for d in days):
            raise ValueError(self.review_reminder_days)
        return tuple(sorted(days, reverse=True))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def migrate_on_start(self) -> bool:
        """Embedded (SQLite) installations migrate themselves; production runs ``migrate``."""
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def worker_in_process(self) -> bool:
        """The embedded default runs the mail worker inside ``serve``."""
        return self.is_sqlite if self.run_worker is None else self.run_worker

    @property
    def bridge_in_process(self) -> bool:
        """The embedded default runs the email bridge inside ``serve``."""
        return self.is_sqlite if self.run_bridge is None else self.run_bridge

    @property
    def uses_dev_mailbox(self) -> bool:
        """Without OPENDPIA_SMTP_URL, development mail goes to the built-in sink."""
        return not self.smtp_url and self.env != "production"

    @property
    def editor_bundle(self) -> Path:
        """The directory served at ``/static/editor/`` (it may not be built)."""
        return Path(self.editor_dir) if self.editor_dir else EDITOR_BUILD

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL, or None for other databases or memory."""
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and not path.startswith(":memory:") else None

    @classmethod
    def env_names(cls) -> list[str]:
        return [f.metadata["env"] for f in dataclasses.fields(cls) if "env" in f.metadata]


def _convert(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool) or default is None:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid value") from None
    return raw
