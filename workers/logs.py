"""Logging, configured once per process: one JSON line per record, phone numbers masked, secrets
redacted, and the current job id and conversation SID on every record a job writes.

A job attempt that fails in a way Bindery expects (a `Retryable` or a `Permanent` error) is logged
by the job itself in one line; RQ's own record of it, with the traceback, is then left out
(`ExplainedFailures`), so a traceback in the log always means something unexpected.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from datetime import datetime

from workers.addresses import mask_text

job_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "job_context", default=None
)


def iso_time(moment: float | datetime | None) -> str | None:
    """How Bindery writes a moment for machines (log records, the API, the CLI's JSON): ISO 8601
    in UTC with milliseconds, `2026-11-26T20:00:05.123Z`; None for no moment (0 or None)."""
    if isinstance(moment, datetime):
        moment = moment.timestamp()
    if not moment:
        return None
    whole = int(moment)
    millis = int(round((moment - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


class ContextFilter(logging.Filter):
    """Adds `job_id` and `conversation_sid` from the job being run, masks numbers, hides secrets."""

    def __init__(self, secrets: tuple[str, ...] = ()):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s and len(s) >= 6)

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (job_context.get() or {}).items():
            setattr(record, key, value)
        message = mask_text(record.getMessage())
        for secret in self.secrets:
            message = message.replace(secret, "[redacted]")
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
            for secret in self.secrets:
                record.exc_text = record.exc_text.replace(secret, "[redacted]")
        return True


class JsonFormatter(logging.Formatter):
    FIELDS = ("job_id", "conversation_sid", "kind")

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            if getattr(record, field, None):
                line[field] = getattr(record, field)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


RQ_FAILURE = "exception raised while executing"
"""What RQ's worker says (with the traceback) about every job attempt that raised."""


class ExplainedFailures(logging.Filter):
    """On RQ's worker logger: leaves out RQ's traceback record of a job attempt whose failure the
    job already logged in one line (`explained`). Any other failure keeps RQ's record."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = getattr(record, "job_id", None)
        if job_id and job_id == _explained.get("job_id") and RQ_FAILURE in str(record.msg):
            _explained.clear()
            return False
        return True


_explained: dict[str, str] = {}


def explained(job_id: str) -> None:
    """The attempt of `job_id` now failing has been logged by the job: RQ need not log it."""
    _explained["job_id"] = job_id


_configured = False


def configure(level: str = "INFO", secrets: tuple[str, ...] = ()) -> None:
    """Route every logger (RQ's, gunicorn's error log, ours) through one masking JSON handler."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
