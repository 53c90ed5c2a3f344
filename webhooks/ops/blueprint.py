"""The console's blueprint, its templates and static files, and what every page shares."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, current_app, render_template

from webhooks.ops import formatting

log = logging.getLogger(__name__)

blueprint = Blueprint(
    "ops",
    __name__,
    url_prefix="/ops",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
blueprint.add_app_template_filter(formatting.mask_address, "mask")
blueprint.add_app_template_filter(formatting.mask_pair, "mask_pair")
blueprint.add_app_template_filter(formatting.when, "when")
blueprint.add_app_template_filter(formatting.ago, "ago")

SECURITY_HEADERS = {
    # No inline script or style anywhere: everything the pages run or wear is a file of /ops/static.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@blueprint.after_request
def secure(response):
    response.headers.update(SECURITY_HEADERS)
    if not response.headers.get("Cache-Control"):
        response.headers["Cache-Control"] = "no-store"  # operational data: never kept by a cache
    return response


@blueprint.errorhandler(redis.RedisError)
def redis_down(error: redis.RedisError):
    log.error("ops: Redis unavailable: %s", type(error).__name__)
    return render_template("ops/message.html", title="Redis unavailable", status=503), 503


def runtime():
    """This process's runtime (Redis, the ledger, the queue; Twilio when asked for)."""
    return current_app.extensions["bindery"].runtime


def settings():
    return current_app.config["BINDERY_SETTINGS"]
