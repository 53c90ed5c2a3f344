"""`bindery emulator`: the real command as a process, and its options."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
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


@contextmanager
def cli_emulator(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """`bindery emulator` as a process; yields (url, stdout file, stderr file, exit codes)."""
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [*bindery_argv(), "emulator", "--port", str(port), *args],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    codes: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, err.read_text()
            try:
                requests.get(f"{url}/_emulator/stats", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
        yield url, out, err, codes
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            codes.append(process.wait(timeout=10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            raise


def test_the_cli_serves_the_emulator(tmp_path):
    account_sid, token = "AC" + "12" * 16, "env-token-abcd"
    env = {"TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": token}
    with cli_emulator(tmp_path, "--latency-ms", "1", env=env) as (url, out, err, codes):
        client = make_client(account_sid, token, base_url=url)
        try:
            created = client.conversations.v1.conversations.create(friendly_name="from the cli")
            assert created.sid.startswith("CH")
        finally:
            client.http_client.session.close()
        assert requests.get(f"{url}/_emulator/faults", timeout=5).json()["latency_ms"] == 1
    assert codes == [0], err.read_text()
    output = out.read_text()
    assert f"listening on {url}" in output
    assert f"TWILIO_ACCOUNT_SID={account_sid}" in output
    assert "TWILIO_AUTH_TOKEN=...abcd (from TWILIO_AUTH_TOKEN)" in output
    assert token not in output + err.read_text()  # a token from the environment is never printed
    assert "TWILIO_CONVERSATIONS_SERVICE_SID=IS" in output


def test_the_log_is_json_lines_with_numbers_masked(tmp_path):
    customer = "+15551230001"
    args = ("--omit-idempotency-token", "--date-updated-on", "update,message")
    with cli_emulator(tmp_path, *args) as (url, _, err, codes):
        client = make_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, base_url=url)
        try:
            v1 = client.conversations.v1
            v1.conversations.create().participants.create(
                messaging_binding_address=customer, messaging_binding_proxy_address="+15550001111"
            )
            assert v1.participant_conversations.list(address=customer)
        finally:
            client.http_client.session.close()
        admin = f"{url}/_emulator"
        assert requests.get(f"{admin}/faults", timeout=5).json()["omit_idempotency_token"] is True
        assert requests.get(admin + "/", timeout=5).json()["date_updated_on"] == [
            "update",
            "message",
        ]
        inbound = {"from": "whatsapp:+15551230002", "to": "whatsapp:+15550001111"}
        assert requests.post(f"{admin}/inbound", json=inbound, timeout=5).ok
    assert codes == [0], err.read_text()
    text = err.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    access = [line for line in lines if line["logger"] == "emulator.access"]
    assert any("/v1/ParticipantConversations?Address=+1555*****01" in a["message"] for a in access)
    assert any(a["message"].endswith(" 201") for a in access)
    assert all(line["level"] in ("info", "warning", "error") and line["time"] for line in lines)
    for number in (customer, "+15551230002", "%2B1555"):
        assert number not in text


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
