"""Exceptions reach the logs as a type and a location, never with the data that caused them."""

from __future__ import annotations

import io
import logging

from tactful.api.logs import FORMAT, RedactExceptions, uvicorn_log_config


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactExceptions())
    logger = logging.getLogger("tests.redaction")
    logger.handlers = [handler]
    logger.propagate = False
    return logger


def test_an_exception_is_logged_without_its_message_or_traceback() -> None:
    stream = io.StringIO()
    logger = _logger(stream)
    try:
        raise ValueError("duplicate key (email)=(ada@example.com)")
    except ValueError:
        logger.exception("request failed for %s", "POST /v1/identify")
    text = stream.getvalue()
    assert "ada@example.com" not in text
    assert "Traceback" not in text
    assert "request failed for POST /v1/identify [ValueError at test_logs.py:" in text


def test_records_without_exceptions_pass_unchanged() -> None:
    stream = io.StringIO()
    _logger(stream).warning("retention removed %d rows", 3)
    assert stream.getvalue().rstrip().endswith("retention removed 3 rows")


def test_uvicorn_config_routes_every_record_through_the_filter() -> None:
    config = uvicorn_log_config("info")
    handlers = config["handlers"]
    assert isinstance(handlers, dict)
    assert all("redact" in handler["filters"] for handler in handlers.values())
    assert config["root"] == {"handlers": ["default"], "level": "INFO"}
