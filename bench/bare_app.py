"""The baseline web app: Flask answering 200 to every webhook, with nothing behind it.

Served by the same gunicorn command and config as `bindery web` (see `harness.Stack.start_bare`), so
the difference between the two is Bindery's own work: signature check, parsing, de-duplication,
enqueueing or the ledger read.
"""

from __future__ import annotations

from flask import Flask, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.route("/twilio/conversations/<kind>", methods=["POST", "GET"])
    def webhook(kind: str):
        request.get_data()  # read the body, as any real handler must
        return "{}", 200, {"Content-Type": "application/json"}

    @app.get("/healthz")
    def healthz():
        return "{}", 200, {"Content-Type": "application/json"}

    return app
