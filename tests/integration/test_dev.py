"""The newcomer's path and the deployer's: `bindery dev` + `bindery demo`, and the Procfile as
written, each started as a real process."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests
from rq import Worker

from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.integration.stack import BINDERY, PrivateRedis, Process, free_port
from workers import keys

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_dev_and_demo(tmp_path, env, *dev_flags) -> str:
    web, emulator = free_port(), free_port()
    dev = Process(
        "dev",
        [BINDERY, "dev", "--port", str(web), "--emulator-port", str(emulator), *dev_flags],
        {**env, "PWD": str(tmp_path)},
        cwd=tmp_path,
    )
    try:
        state = tmp_path / ".bindery-dev.json"
        deadline = time.monotonic() + 60
        while not state.exists():
            assert dev.alive() and time.monotonic() < deadline, dev.output()[-3000:]
            time.sleep(0.2)
        demo = subprocess.run(
            [BINDERY, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert re.search(
            r"duplicate binding attempts \(50416, 50437, 50433\)\s+0$", demo.stdout, re.M
        ), demo.stdout
        assert "conflict_resolved" in demo.stdout
        return dev.output()
    finally:
        dev.stop(timeout=30)
        assert not (tmp_path / ".bindery-dev.json").exists()


def test_dev_on_the_embedded_redis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    output = run_dev_and_demo(tmp_path, env, "--embedded-redis")
    assert output.splitlines()[0].startswith("redis:    redis://127.0.0.1:")
    assert "(an embedded Redis (fakeredis)" in output.splitlines()[0]


def test_dev_on_a_real_redis(tmp_path):
    server = PrivateRedis()
    try:
        output = run_dev_and_demo(tmp_path, {**os.environ, "REDIS_URL": server.url})
        assert output.splitlines()[0] == f"redis:    {server.url} (REDIS_URL)"
    finally:
        server.stop()


def test_every_procfile_line_starts_as_written(tmp_path):
    server = PrivateRedis()
    emulator_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(BINDERY).parent}:{os.environ['PATH']}",
        "PORT": str(port),
        "REDIS_URL": server.url,
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "BINDERY_API_TOKEN": "procfile-token",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert set(lines) == {"web", "worker", "clock"}
    emulator = Process("emulator", [BINDERY, "emulator", "--port", str(emulator_port)], env)
    processes = {
        name: Process(name, ["bash", "-c", f"exec {command}"], env)
        for name, command in lines.items()
    }
    connection = redis.Redis.from_url(server.url)
    try:
        processes["web"].wait_http(f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 30
        while not (Worker.all(connection=connection) and connection.hlen(keys.schedule()) >= 3):
            for process in processes.values():
                assert process.alive(), process.output()[-3000:]
            assert time.monotonic() < deadline, {n: p.output()[-500:] for n, p in processes.items()}
            time.sleep(0.2)
        assert len(Worker.all(connection=connection)) == 2
        assert set(k.decode() for k in connection.hkeys(keys.schedule())) == {
            "cleanup",
            "reconcile",
            "prune",
        }
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["workers"] == 2
    finally:
        for process in [*processes.values(), emulator]:
            process.stop()
        connection.close()
        server.stop()
