"""Secrets in URLs never reach a log line; structured logs carry the request and document ids."""

from __future__ import annotations

import io
import json
import logging

import pytest

from server import logs
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


def _capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if fmt == "json" else logs.TextFormatter())
    handler.addFilter(logs.AddContext())
    handler.addFilter(logs.RedactSecrets())
    logger = logging.getLogger(f"test.logs.{fmt}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_request_and_document_ids() -> None:
    logger, stream = _capture("json")
    request = logs.request_id.set("req-1")
    document = logs.document_id.set("CAM-2026-001")
    try:
        logger.info("opened %s?token=%s", "/ws/dpia/x", "secret-token")
    finally:
        logs.request_id.reset(request)
        logs.document_id.reset(document)
    logger.warning("outside any request")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == "req-1" and first["document_id"] == "CAM-2026-001"
    assert first["level"] == "info" and first["logger"] == "test.logs.json"
    assert "secret-token" not in first["message"] and "[redacted]" in first["message"]
    assert "request_id" not in second and second["message"] == "outside any request"


def test_json_lines_include_the_exception() -> None:
    logger, stream = _capture("json")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed")
    entry = json.loads(stream.getvalue())
    assert "ValueError: boom" in entry["exception"]


def test_text_lines_name_the_ids_at_the_end() -> None:
    logger, stream = _capture("text")
    request = logs.request_id.set("abc")
    try:
        logger.info("hello")
    finally:
        logs.request_id.reset(request)
    assert stream.getvalue().rstrip().endswith("hello [request_id=abc]")
