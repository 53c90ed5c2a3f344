"""`bindery dev` as a newcomer meets it, through the real command against a real dev stack: the
operator commands find it, a second one refuses before it prints or writes anything, its data
lives in its own database, `--reset`, a banner that says what /metrics needs, one log format (JSON
lines, numbers masked) for every process it starts, `bindery status` naming the clock, and the
README's "Try it by hand" run as written."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from devstack.processes import BINDERY, PrivateRedis, Process, free_port, wait_for
from devstack.stack import CONSOLE_PATH, DEV_DATABASE, choose_redis
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from workers.cli import local_stack

pytestmark = pytest.mark.integration

LEFT_OUT = (*local_stack.CONNECTION_VARIABLES, "BINDERY_API_TOKEN", "PROMETHEUS_MULTIPROC_DIR")
ROOT = Path(__file__).resolve().parents[2]
MAKE_DEV_WEB, MAKE_DEV_EMULATOR = "127.0.0.1:8000", "127.0.0.1:8090"
"""The addresses `make dev` listens on, as the README's steps name them."""


def clean_env() -> dict[str, str]:
    """A shell that names no Twilio, no Redis and no token."""
    return {k: v for k, v in os.environ.items() if k not in LEFT_OUT}


def bindery(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120):
    return subprocess.run(
        [BINDERY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


class Dev:
    """A `bindery dev` in `folder`, on a private Redis, with free ports."""

    def __init__(self, folder: Path, server: PrivateRedis, *flags: str):
        self.folder, self.server = folder, server
        self.web_port, self.emulator_port = free_port(), free_port()
        argv = [BINDERY, "dev", "--port", str(self.web_port)]
        argv += ["--emulator-port", str(self.emulator_port), *flags]
        env = {**clean_env(), "REDIS_URL": server.url}
        self.process = Process("dev", argv, env, cwd=folder, split_stderr=True)
        self.state_file = folder / local_stack.STATE_FILE

        def up():
            assert self.process.alive(), self.process.output(3000) + self.process.errors()[-3000:]
            return local_stack.read(self.state_file)

        self.state = wait_for(up, 90, "bindery dev to write its state file", 0.2)
        self.web_url = self.state.web_url

    def stop(self) -> None:
        self.process.stop(timeout=30)


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    server = PrivateRedis()
    stack = Dev(tmp_path_factory.mktemp("dev"), server)
    yield stack
    stack.stop()
    server.stop()


def test_operator_commands_find_the_running_dev_stack(dev):
    for args in (
        ["cleanup", "--dry-run"],
        ["reconcile", "--dry-run"],
        ["status"],
        ["jobs", "failed"],
        ["jobs", "conflicts"],
    ):
        result = bindery(*args, cwd=dev.folder, env=clean_env())
        assert result.returncode == 0, (args, result.stderr + result.stdout)
        assert f"using the dev stack of {local_stack.STATE_FILE}" in result.stderr, args
    cleanup = bindery("cleanup", "--dry-run", cwd=dev.folder, env=clean_env())
    assert "would close 0 of" in cleanup.stdout
    status = json.loads(bindery("status", "--json", cwd=dev.folder, env=clean_env()).stdout)
    assert len(status["workers"]) == 2  # the dev stack's own workers, seen through its Redis


def test_the_environment_wins_over_the_state_file(dev):
    env = {**clean_env(), "REDIS_URL": dev.server.url}
    result = bindery("cleanup", "--dry-run", cwd=dev.folder, env=env)
    assert result.returncode == 1
    assert "using the dev stack" not in result.stderr
    assert "missing required setting(s): TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN" in result.stderr


def test_a_missing_setting_names_the_variable_and_where_to_get_it(tmp_path):
    result = bindery("reconcile", "--dry-run", cwd=tmp_path, env=clean_env())
    assert result.returncode == 1
    message = result.stderr
    assert "TWILIO_ACCOUNT_SID: from the Twilio console's Account Info" in message
    assert "TWILIO_AUTH_TOKEN: from the Twilio console's Account Info" in message
    assert "TWILIO_API_BASE_URL" in message and ".bindery-dev.json" in message
    assert "Traceback" not in message


def test_a_second_dev_in_the_same_folder_changes_nothing(dev):
    before = dev.state_file.read_text()
    second = bindery(
        "dev",
        "--port",
        str(free_port()),
        "--emulator-port",
        str(free_port()),
        cwd=dev.folder,
        env=clean_env(),
        timeout=60,
    )
    assert second.returncode == 1
    assert second.stdout == ""  # no banner, no token
    assert f"a dev stack already runs in this folder (pid {dev.state.pid}" in second.stderr
    assert dev.state_file.read_text() == before
    assert requests.get(f"{dev.web_url}/healthz", timeout=5).status_code == 200


def test_a_second_dev_on_taken_ports_writes_nothing(dev, tmp_path):
    for ports in (
        ["--port", str(dev.web_port), "--emulator-port", str(free_port())],
        ["--port", str(free_port()), "--emulator-port", str(dev.emulator_port)],
    ):
        second = bindery("dev", *ports, cwd=tmp_path, env=clean_env(), timeout=60)
        assert second.returncode == 1
        assert second.stdout == ""
        assert "is in use" in second.stderr
        assert not (tmp_path / local_stack.STATE_FILE).exists()
    assert local_stack.read(dev.state_file) == dev.state


def test_the_banner_says_what_metrics_and_the_console_need(dev):
    banner = dev.process.output()
    token = dev.state.api_token
    assert f"api:      {dev.web_url}/api/v1  (Authorization: Bearer {token})" in banner
    assert f"metrics:  {dev.web_url}/metrics  (the same Authorization header)" in banner
    metrics = requests.get(f"{dev.web_url}/metrics", timeout=5)
    assert metrics.status_code == 401
    authorized = requests.get(
        f"{dev.web_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert authorized.status_code == 200
    console = requests.get(f"{dev.web_url}{CONSOLE_PATH}", timeout=5, allow_redirects=False)
    assert ("console:" in banner) == (console.status_code != 404)
    assert f"redis:    {dev.server.url} (REDIS_URL)" in banner


def by_hand_steps() -> list[str]:
    """The shell blocks of the README's "Try it by hand", in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Try it by hand\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_readmes_steps_by_hand_work_as_written(dev):
    steps = by_hand_steps()
    assert len(steps) >= 6, "the README's Try it by hand section lost its steps"
    # In the folder the stack runs in, with the project's virtualenv, on this stack's ports.
    venv = dev.folder / ".venv"
    if not venv.exists():
        venv.symlink_to(Path(sys.executable).parents[1])
    script = "set -euo pipefail\n" + "\n".join(steps)
    script = script.replace(MAKE_DEV_WEB, dev.web_url.split("//")[1])
    script = script.replace(MAKE_DEV_EMULATOR, dev.state.emulator_url.split("//")[1])
    try:
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=dev.folder,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        requests.post(f"{dev.state.emulator_url}/_emulator/faults", json={}, timeout=10)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "Error:" not in output, output[-4000:]
    assert re.search(r"^CH[0-9a-f]{32} active by-hand$", result.stdout, re.M)  # the client
    assert re.search(r"^3\.1\.0$", result.stdout, re.M)  # the API's description, no token
    assert re.search(r'^bindery_twilio_calls_total\{code="ok",operation=', result.stdout, re.M)
    assert re.search(r"identity agent-7: attempt [2-9] of 9, ", result.stdout), result.stdout
    assert '"code": 20500' in result.stdout and '"operation": "participant.create"' in result.stdout
    assert "replayed 0 job(s): nothing to do" in result.stdout


def test_every_process_logs_json_lines_with_numbers_masked(dev):
    customer, proxy = "+15557654321", "+15550009876"
    conversation = requests.post(
        f"{dev.state.emulator_url}/v1/Conversations",
        auth=(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN),
        timeout=10,
    ).json()["sid"]
    api = {"Authorization": f"Bearer {dev.state.api_token}"}
    job_id = requests.post(
        f"{dev.web_url}/api/v1/conversations/{conversation}/participants",
        json={"address": customer, "proxy_address": proxy},
        headers=api,
        timeout=10,
    ).json()["job_id"]

    def finished():
        job = requests.get(f"{dev.web_url}/api/v1/jobs/{job_id}", headers=api, timeout=10)
        return job.json()["status"] == "finished"

    wait_for(finished, 60, "the add to finish", 0.2)
    wait_for(lambda: job_id in dev.process.errors(), 10, "the worker's lines about it", 0.2)
    stderr, stdout = dev.process.errors(), dev.process.output()
    records = []
    for line in stderr.splitlines():
        record = json.loads(line)  # every line of every child's log: no other format
        assert {"time", "level", "logger", "message"} <= set(record), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), line
        records.append(record)
    loggers = {r["logger"] for r in records}
    # gunicorn's own start-up lines, the emulator, the workers, RQ, the clock: all of them.
    assert {"gunicorn.error", "emulator.access", "workers.worker", "rq.worker"} <= loggers
    assert "workers.schedule" in loggers, loggers
    assert any(r["message"].startswith("Starting gunicorn") for r in records)
    # stdout is the banner: no log line, and not the emulator's banner besides.
    assert not any(line.startswith("{") for line in stdout.splitlines())
    assert "emulator listening" not in stdout
    for number in (customer, proxy):
        for form in (number, number[1:], "%2B" + number[1:]):
            assert form not in stderr and form not in stdout, form
    assert "+1555*****21" in stderr  # the numbers did reach the logs, masked


def test_status_names_the_clock_by_host_pid_and_start(dev):
    text = bindery("status", cwd=dev.folder, env=clean_env()).stdout
    match = re.search(
        rf"^clock:     host {re.escape(socket.gethostname())}, pid (\d+), running since "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(\d+[smhd][ \dsmh]*\)$",
        text,
        re.M,
    )
    assert match, text
    command = Path(f"/proc/{match.group(1)}/cmdline").read_bytes().split(b"\0")
    assert command[-2:] == [b"clock", b""] and command[-3].endswith(b"bindery"), command
    status = json.loads(bindery("status", "--json", cwd=dev.folder, env=clean_env()).stdout)
    assert status["clock"]["pid"] == int(match.group(1))
    assert status["clock"]["since"].endswith("Z")


def test_reset_and_a_state_file_that_is_no_longer_its_own(tmp_path):
    server = PrivateRedis()
    seeded = redis.Redis.from_url(server.url)
    seeded.set("bindery:conv:CHseed", "1")
    seeded.set("rq:job:seed", "1")
    seeded.set("someone-else:key", "1")
    stack = None
    try:
        stack = Dev(tmp_path, server, "--reset")
        assert "reset:    removed 2 keys (bindery:*, rq:*)" in stack.process.output()
        assert not seeded.exists("bindery:conv:CHseed") and not seeded.exists("rq:job:seed")
        assert seeded.exists("someone-else:key")
        # Another run wrote the file meanwhile: this one must leave it when it stops.
        replaced = json.loads(stack.state_file.read_text()) | {"nonce": "another-run"}
        stack.state_file.write_text(json.dumps(replaced))
        stack.stop()
        assert json.loads(stack.state_file.read_text())["nonce"] == "another-run"
    finally:
        if stack:
            stack.stop()
        seeded.close()
        server.stop()


def test_its_own_database_of_the_redis_it_finds(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    server = PrivateRedis()
    try:
        choice = choose_redis(default_url=server.url)
        assert choice.url == f"redis://127.0.0.1:{server.port}/{DEV_DATABASE}"
        assert f"database {DEV_DATABASE}: bindery dev's own" in choice.how
        assert choice.embedded is None
    finally:
        server.stop()
