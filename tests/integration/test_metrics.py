"""`/metrics` sums every web process, whether gunicorn is started by `bindery web` or the
Flask-standard way (`gunicorn 'webhooks:create_app()'`, no config, no PROMETHEUS_MULTIPROC_DIR):
the app factory sets up the host's shared directory itself."""

from __future__ import annotations

import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devstack.processes import BINDERY, PrivateRedis, Process, free_port, wait_for

pytestmark = pytest.mark.integration

TOKEN = "metrics-api-token"
WEB_PROCESSES = 3


@pytest.fixture(scope="module")
def redis_server():
    server = PrivateRedis()
    yield server
    server.stop()


def serve(how: str, port: int) -> list[str]:
    if how == "plain gunicorn":
        return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"] + [
            "--workers",
            str(WEB_PROCESSES),
            "webhooks:create_app()",
        ]
    return [BINDERY, "web", "--port", str(port), "--workers", str(WEB_PROCESSES), "--threads", "1"]


def signature_failures(url: str) -> float:
    response = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    match = re.search(r"^bindery_signature_failures_total (\S+)$", response.text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize("how", ["plain gunicorn", "bindery web"])
def test_metrics_sum_every_web_process(tmp_path, redis_server, how):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {
        "TMPDIR": str(tmp_path),  # the default shared directory goes under it
        "REDIS_URL": redis_server.url,
        "TWILIO_AUTH_TOKEN": "metrics-auth-token",
        "BINDERY_API_TOKEN": TOKEN,
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = Process("web", serve(how, port), env, cwd=tmp_path)
    try:
        web.wait_http(f"{url}/healthz")
        directory = tmp_path / f"bindery-metrics-{os.getuid()}"
        sent = 0

        def refused(_) -> None:
            response = requests.post(
                f"{url}/twilio/conversations/post",
                data={"EventType": "onMessageAdded"},
                headers={"X-Twilio-Signature": "forged", "Connection": "close"},
                timeout=10,
            )
            assert response.status_code == 403

        def counted_by_several() -> bool:
            nonlocal sent
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(refused, range(16)))
            sent += 16
            return len(list(directory.glob("counter_*.db"))) >= 2

        wait_for(counted_by_several, 60, "signature failures counted by two web processes", 0)
        for _ in range(2 * WEB_PROCESSES):  # each scrape may land on any process: all see the sum
            assert signature_failures(url) == sent
    finally:
        web.stop()
