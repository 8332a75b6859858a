"""Logging set-up shared by every command: secrets never reach a log line.

``OPENDPIA_LOG_FORMAT=json`` writes one JSON object a line, for log collectors. The request
id and document id of whatever is being handled ride along in context variables (set by the
web layer) and appear on every line logged meanwhile, in both formats.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:token|session)=)[^&\s\"']+")


class RedactSecrets(logging.Filter):
    """Masks ``token=`` and ``session=`` query values (uvicorn logs WebSocket paths whole)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact the formatted message: a secret may sit in an argument, or follow a
        # ``token=%s`` in the format string itself.
        try:
            message = record.getMessage()
        except Exception:
            return True  # logging reports its own formatting errors
        if "=" in message:
            redacted = _SECRET_QUERY.sub(r"\1[redacted]", message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
document_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "document_id", default=None
)


class AddContext(logging.Filter):
    """Puts the current request id and document id on each record (unless given)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "document_id", None) is None:
            record.document_id = document_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, ids, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "document_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{key}={value}"
            for key in ("request_id", "document_id")
            if (value := getattr(record, key, None)) is not None
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


def configure(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(AddContext())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    redact = RedactSecrets()
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "opendpia"):
        logging.getLogger(name).addFilter(redact)
    for each in logging.getLogger().handlers:
        each.addFilter(redact)
    # Alembic announces each of its plugins at INFO on every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # WeasyPrint announces each step of laying out every PDF export at INFO.
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
