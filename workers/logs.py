"""Logging, configured once per process: one JSON line per record, phone numbers masked, secrets
redacted, and the current job id and conversation SID on every record a job writes."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

from workers.addresses import mask_text

job_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "job_context", default=None
)


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
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
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
