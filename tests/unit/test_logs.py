"""Secrets in URLs never reach a log line."""

from __future__ import annotations

import logging

import pytest

from server.logs import RedactSecrets


@pytest.mark.parametrize(
    "path",
    [
        "/ws/dpia/d1?token=eyJzdWIi.abc-DEF_123",
        "/ws/dpia/d1?saved=1&token=eyJzdWIi.abc",
    ],
)
def test_token_query_values_are_redacted_from_log_arguments(path: str) -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5", path),
        None,
    )
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert "eyJzdWIi" not in message
    assert "token=[redacted]" in message
