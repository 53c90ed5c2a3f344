"""`bindery emulator`: the real command as a process, and its options."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from emulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_SERVICE_SID
from emulator.cli import emulator_command
from workers.twilio_http import make_client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bindery_argv() -> list[str]:
    script = Path(sys.executable).parent / "bindery"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from workers.cli import main; main()"]


def test_the_cli_serves_the_emulator(tmp_path):
    port = free_port()
    account_sid, token = "AC" + "12" * 16, "env-token-abcd"
    env = {**os.environ, "TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": token}
    log = tmp_path / "emulator.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*bindery_argv(), "emulator", "--port", str(port), "--latency-ms", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            try:
                requests.get(f"{url}/_emulator/stats", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        client = make_client(account_sid, token, base_url=url)
        try:
            created = client.conversations.v1.conversations.create(friendly_name="from the cli")
            assert created.sid.startswith("CH")
        finally:
            client.http_client.session.close()
        assert requests.get(f"{url}/_emulator/faults", timeout=5).json()["latency_ms"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            raise
    assert code == 0, log.read_text()
    output = log.read_text()
    assert f"listening on {url}" in output
    assert f"TWILIO_ACCOUNT_SID={account_sid}" in output
    assert "TWILIO_AUTH_TOKEN=...abcd (from TWILIO_AUTH_TOKEN)" in output
    assert token not in output  # a token from the environment is never printed whole
    assert "TWILIO_CONVERSATIONS_SERVICE_SID=IS" in output


def test_defaults_and_help():
    assert DEFAULT_ACCOUNT_SID == "ACdeadbeefdeadbeefdeadbeefdeadbeef"
    assert DEFAULT_AUTH_TOKEN == "0123456789abcdef0123456789abcdef"
    assert DEFAULT_SERVICE_SID.startswith("IS") and len(DEFAULT_SERVICE_SID) == 34
    result = CliRunner().invoke(emulator_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--account-sid",
        "--auth-token",
        "--writes-per-second-per-conversation",
        "--max-concurrency",
        "--latency-ms",
        "--omit-idempotency-token",
        "TWILIO_ACCOUNT_SID",
        "127.0.0.1",
    ):
        assert option in result.output


def test_bad_options_are_refused():
    runner = CliRunner()
    assert runner.invoke(emulator_command, ["--account-sid", "nope"]).exit_code == 2
    assert runner.invoke(emulator_command, ["--max-concurrency", "0"]).exit_code == 2
