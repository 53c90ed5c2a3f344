"""The operator's console under `/ops`: server-rendered pages over the same data as the CLI.

- `session.py`: sign-in with an operator token, the signed session cookie every page needs, CSRF
  on every action, sign-out;
- `overview.py`: queues, workers, readiness, the counters, the schedule, recent jobs as charts;
- `failed.py`, `replays.py`: failed jobs, replaying a selection, and "replay all matching" in the
  background with its progress;
- `jobs.py`, `conflicts.py`: one job; conflict outcomes, asked again with another policy;
- `lookup.py`: a conversation (the ledger's view, and Twilio's on demand) and a pair.

`init_app` is called by the application factory.
"""

from __future__ import annotations

from flask import Flask

from webhooks.ops import conflicts, failed, jobs, lookup, overview, replays, session
from webhooks.ops.blueprint import blueprint
from workers.settings import Settings

__all__ = ["init_app"]

_VIEWS = (conflicts, failed, jobs, lookup, overview, replays)  # imported for their routes


def init_app(app: Flask, settings: Settings) -> None:
    """The session cookie's settings and signing key, and the console's routes."""
    session.configure(app, settings)
    app.register_blueprint(blueprint)
