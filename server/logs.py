"""Logging set-up shared by every command: secrets never reach a log line."""

from __future__ import annotations

import logging
import re

_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:token|session)=)[^&\s\"']+")


class RedactSecrets(logging.Filter):
    """Masks ``token=`` and ``session=`` query values (uvicorn logs WebSocket paths whole)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = _SECRET_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def configure(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    redact = RedactSecrets()
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "opendpia"):
        logging.getLogger(name).addFilter(redact)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    # Alembic announces each of its plugins at INFO on every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
