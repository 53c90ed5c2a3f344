"""gunicorn settings for `bindery web` (loaded as `--config python:webhooks.gunicorn_config`)."""

import os

from gunicorn import glogging

from workers import logs, metrics

worker_class = "gthread"
graceful_timeout = 10
# Twilio waits 5 s for a pre-event answer; a request still running after 30 s is stuck.
timeout = 30
accesslog = None  # one JSON line per event comes from the app; access lines would repeat it
# gunicorn 27 opens ~/.gunicorn/gunicorn.ctl by default, one socket shared by every gunicorn the
# user runs (tests, benchmarks, dev); Bindery is managed by signals, so it needs none.
control_socket_disable = True


class JsonLogger(glogging.Logger):
    """gunicorn's own records (start-up, worker boots and exits, errors) through the JSON handler
    every Bindery process logs with, in the master and, inherited, in each worker (gunicorn's
    `logger_class` setting)."""

    def setup(self, cfg):
        super().setup(cfg)
        logs.configure(os.environ.get("BINDERY_LOG_LEVEL", "INFO"), secrets=_secrets())
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True


logger_class = JsonLogger


def _secrets() -> tuple[str, ...]:
    return (
        os.environ.get("TWILIO_AUTH_TOKEN", ""),
        os.environ.get("BINDERY_API_TOKEN", ""),
        *(t.strip() for t in os.environ.get("BINDERY_OPS_TOKENS", "").split(",")),
    )


def child_exit(server, worker):
    metrics.process_exited(worker.pid)
