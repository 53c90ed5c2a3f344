"""gunicorn settings for `bindery web` (loaded as `--config python:webhooks.gunicorn_config`)."""

import os

from workers import logs, metrics

worker_class = "gthread"
graceful_timeout = 10
# Twilio waits 5 s for a pre-event answer; a request still running after 30 s is stuck.
timeout = 30
accesslog = None  # one JSON line per event comes from the app; access lines would repeat it
# gunicorn 27 opens ~/.gunicorn/gunicorn.ctl by default, one socket shared by every gunicorn the
# user runs (tests, benchmarks, dev); Bindery is managed by signals, so it needs none.
control_socket_disable = True


def child_exit(server, worker):
    metrics.process_exited(worker.pid)


def post_fork(server, worker):
    logs.configure(
        os.environ.get("BINDERY_LOG_LEVEL", "INFO"),
        secrets=(
            os.environ.get("TWILIO_AUTH_TOKEN", ""),
            os.environ.get("BINDERY_API_TOKEN", ""),
            *(t.strip() for t in os.environ.get("BINDERY_OPS_TOKENS", "").split(",")),
        ),
    )
