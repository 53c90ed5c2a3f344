"""Bindery's web side: receives Twilio's webhooks and the app's requests, verifies them, enqueues jobs.

Served by gunicorn as `webhooks:create_app()`.
"""

from webhooks.app import create_app

__all__ = ["create_app"]
