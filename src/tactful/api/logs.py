"""Process logging that cannot leak personal data through tracebacks.

An exception's message and a traceback's local values can carry request data (an SQL error quotes
its parameters; a validation error quotes the input). Every record that carries an exception is
rewritten to its type and the innermost frame's location, which is what an operator needs to find
the bug, and nothing of the data that triggered it.
"""

from __future__ import annotations

import logging
import traceback

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RedactExceptions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            frames = traceback.extract_tb(error.__traceback__)
            where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
            record.msg = f"{record.getMessage()} [{type(error).__name__}{where}]"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def uvicorn_log_config(level: str) -> dict[str, object]:
    """Uvicorn's logging config with the redacting filter on its handlers."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactExceptions}},
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level.upper(), "propagate": True},
        },
    }
