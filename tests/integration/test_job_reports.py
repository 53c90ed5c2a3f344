"""What an operator is told about jobs, through the real stack (emulator, gunicorn, RQ workers) and
the real `bindery` command: a failed Twilio call recorded with its code, message and operation (a
page fetch too) and counted; the first enqueue kept; a retry in flight shown ("attempt 3 of 4, next
at ..."); one warning line per expected retry and a traceback only for the unexpected; the job
endpoints, the CLI's JSON and the OpenAPI description agreeing; a first-time success's attempt;
errors cut between words; replaying an unknown id; the cleanup's limit written for people."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
import time
from datetime import datetime

import jsonschema
import pytest
import redis
import requests

from devstack.processes import BINDERY, PrivateRedis, Process, wait_for
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.integration.conftest import conflicting_add, new_number
from tests.integration.stack import API_TOKEN
from tests.webhooks.test_openapi import description
from workers.queue import JobQueue
from workers.settings import Settings

pytestmark = pytest.mark.integration

MAX_RETRIES = 3
STACK = {"BINDERY_MAX_RETRIES": str(MAX_RETRIES), "BINDERY_STALE_AFTER": "1h"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MISSING_CONVERSATION = "CH" + "0123456789abcdef" * 2


def bindery(stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [BINDERY, *args], env=stack.env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def epoch(iso: str) -> float:
    assert ISO.match(iso), iso
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def worker_records(stack, job_id: str) -> list[dict]:
    """The worker processes' log records about one job (every line of their log is JSON)."""
    records = [json.loads(line) for line in stack.workers.output().splitlines() if line.strip()]
    return [r for r in records if r.get("job_id") == job_id or job_id in r["message"]]


def schema(name: str) -> dict:
    spec = description()
    return {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}


@pytest.fixture(scope="module")
def failed_read(stack):
    """A participant-add whose every attempt met a 500 on a list call (a page fetch, which the
    SDK raises as TwilioException, not TwilioRestException), and what the stack said meanwhile."""
    stack.reset()
    twilio_sid = requests.post(
        f"{stack.emulator_url}/v1/Conversations",
        auth=(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN),
        timeout=10,
    ).json()["sid"]
    stack.emulator_post("faults", {"error_rate_500": 1.0})  # reads too: the lookups fail first
    try:
        job_id = stack.add(twilio_sid, address=new_number(), proxy_address=new_number())

        def in_flight():
            info = stack.job(job_id)
            return info if info["retry"] and info["retry"]["state"] == "waiting" else None

        waiting = wait_for(in_flight, 30, "the job to wait for a retry", 0.05)
        status_text = bindery(stack, "status").stdout
        status_json = json.loads(bindery(stack, "status", "--json").stdout)
        [info] = stack.wait([job_id], timeout=60)
    finally:
        stack.emulator_post("faults", {})
    return {
        "job_id": job_id,
        "waiting": waiting,
        "status_text": status_text,
        "status_json": status_json,
        "info": info,
    }


def test_a_failed_page_fetch_is_recorded_with_code_message_and_operation(stack, failed_read):
    info = failed_read["info"]
    assert info["status"] == "failed" and info["attempt_count"] == 1 + MAX_RETRIES
    assert [a["number"] for a in info["attempts"]] == [1, 2, 3, 4]
    for attempt in info["attempts"]:
        assert attempt["status"] == "failed"
        assert attempt["code"] == 20500
        assert attempt["operation"] == "service.list"  # the first call a never-seen pair makes
        assert attempt["message"] == "Internal Server Error (injected)"
    assert info["code"] == 20500 and info["operation"] == "service.list"

    listed = json.loads(bindery(stack, "jobs", "failed", "--code", "20500", "--json").stdout)
    assert failed_read["job_id"] in [item["id"] for item in listed]
    other = json.loads(bindery(stack, "jobs", "failed", "--code", "20429", "--json").stdout)
    assert failed_read["job_id"] not in [item["id"] for item in other]

    metrics = stack.api.get(f"{stack.web_url}/metrics", timeout=10).text
    match = re.search(
        r'^bindery_twilio_calls_total\{code="20500",operation="service.list"\} (\S+)$',
        metrics,
        re.M,
    )
    assert match and float(match.group(1)) >= 1 + MAX_RETRIES, metrics


def test_enqueued_at_stays_the_first_enqueue(stack, failed_read):
    info = failed_read["info"]
    first = epoch(info["enqueued_at"])
    assert first <= epoch(info["attempts"][0]["at"])
    # RQ's own field moved with each retry; the job's report did not.
    rq_enqueued = stack.redis.hget(f"rq:job:{info['id']}", "enqueued_at").decode()
    moved = datetime.fromisoformat(rq_enqueued.replace("Z", "+00:00")).timestamp()
    assert moved > epoch(info["attempts"][-2]["at"]) > first


def test_a_retry_in_flight_is_shown(stack, failed_read):
    retry = failed_read["waiting"]["retry"]
    assert 2 <= retry["attempt"] <= 1 + MAX_RETRIES and retry["of"] == 1 + MAX_RETRIES
    assert retry["last_code"] == 20500 and "service.list" in retry["last_error"]
    assert epoch(retry["next_at"]) > time.time() - 60
    [shown] = [
        j for j in failed_read["status_json"]["retrying"] if j["id"] == failed_read["job_id"]
    ]
    assert shown["retry"]["of"] == 1 + MAX_RETRIES
    line = next(
        line for line in failed_read["status_text"].splitlines() if failed_read["job_id"] in line
    )
    assert re.search(
        rf"participant-add CH\w+ \+1555\*+\d\d\|\+1555\*+\d\d: attempt [2-4] of {1 + MAX_RETRIES}, "
        r"(next at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ|running|queued)$",
        line,
    ), failed_read["status_text"]


def test_an_expected_retry_logs_one_warning_line_without_a_traceback(stack, failed_read):
    records = worker_records(stack, failed_read["job_id"])
    warnings = [r for r in records if r["level"] == "warning"]
    errors = [r for r in records if r["level"] == "error"]
    assert len(warnings) == MAX_RETRIES, records  # one per retry
    assert [w["message"].split(" failed")[0] for w in warnings] == [
        f"attempt {n} of {1 + MAX_RETRIES}" for n in range(1, 1 + MAX_RETRIES)
    ]
    assert all("retrying in" in w["message"] and "(service.list)" in w["message"] for w in warnings)
    assert len(errors) == 1 and "no retry left" in errors[0]["message"], errors
    assert not any("Traceback" in json.dumps(r) for r in records)


def test_an_unexpected_failure_keeps_its_traceback(stack):
    settings = Settings.from_env(stack.env)
    queue = JobQueue(redis.Redis.from_url(stack.redis_url), settings)
    job, _ = queue.enqueue(
        "workers.jobs.participant_add",
        {"conversation_sid": MISSING_CONVERSATION, "not_an_argument": 1},
        kind="participant-add",
    )

    def failed():
        return stack.job(job.id)["status"] == "failed"

    wait_for(failed, 60, "the broken job to fail", 0.2)
    records = worker_records(stack, job.id)
    tracebacks = [r for r in records if r["level"] == "error" and "Traceback" in r["message"]]
    assert len(tracebacks) == 1 + MAX_RETRIES, records  # RQ's record of every attempt
    assert "TypeError" in tracebacks[0]["message"]
    assert not [r for r in records if r["logger"] == "workers.jobs"]  # nothing explained it away


def test_the_job_endpoints_and_the_cli_agree(stack, failed_read):
    job_id = failed_read["job_id"]
    one = stack.job(job_id)
    jsonschema.validate(one, schema("Job"))
    listing = stack.api.get(f"{stack.web_url}/api/v1/jobs", params={"code": 20500}).json()
    [item] = [j for j in listing["jobs"] if j["id"] == job_id]
    jsonschema.validate(item, schema("JobSummary"))
    assert item == {name: one[name] for name in item}  # the same names, the same values
    for name in ("enqueued_at", "failed_at", "ended_at"):
        epoch(one[name])
    [cli_item] = [
        j
        for j in json.loads(bindery(stack, "jobs", "failed", "--json").stdout)
        if j["id"] == job_id
    ]
    assert cli_item == item
    assert json.loads(bindery(stack, "jobs", "show", job_id).stdout) == one


def test_conflicts_are_listed_with_the_same_names(stack, twilio):
    info, holder, newer, customer, proxy = conflicting_add(stack, twilio)
    assert info["outcome"]["outcome"] == "conflict"
    listing = stack.api.get(f"{stack.web_url}/api/v1/jobs", params={"status": "conflict"}).json()
    [item] = [c for c in listing["jobs"] if c["id"] == info["id"]]
    jsonschema.validate(item, schema("Conflict"))
    assert item["holder"] == holder and item["reason"]
    epoch(item["at"])
    cli = json.loads(bindery(stack, "jobs", "conflicts", "--json").stdout)
    assert item in cli


def test_a_first_time_success_shows_the_attempt_that_worked(stack, twilio):
    sid = twilio.conversations.v1.conversations.create().sid
    [info] = stack.wait([stack.add(sid, identity="agent-1")])
    assert info["status"] == "finished" and info["attempt_count"] == 1
    [attempt] = info["attempts"]
    assert attempt["number"] == 1 and attempt["status"] == "finished"
    assert attempt["outcome"] == "added" and attempt["at"] == info["ended_at"]
    assert info["retry"] is None and info["code"] == 0 and info["failed_at"] is None


def test_jobs_failed_cuts_the_error_between_words(stack, twilio):
    [info] = stack.wait([stack.add(MISSING_CONVERSATION, identity="agent-2")])
    assert info["status"] == "failed" and MISSING_CONVERSATION in info["error"], info
    table = bindery(stack, "jobs", "failed", "--conversation", MISSING_CONVERSATION).stdout
    header, row = table.splitlines()[:2]
    start, end = header.index("ERROR"), header.index("ATTEMPTS")
    cell = row[start:end].strip()
    assert cell.endswith("...") and len(cell) <= 60, cell
    assert all(len(sid) == 34 for sid in re.findall(r"CH[0-9a-fA-F]*", cell)), cell


def test_replaying_an_unknown_job_fails(stack):
    result = bindery(stack, "jobs", "replay", "nope", check=False)
    assert result.returncode == 1
    assert "replayed 1 job(s): 1 missing" in result.stdout
    assert "no job with id nope" in result.stderr


def test_the_cleanup_writes_its_limit_for_people(stack, twilio):
    sid = twilio.conversations.v1.conversations.create().sid
    stack.emulator_post("clock", {"advance_seconds": 2 * 3600})
    result = bindery(stack, "cleanup", "--dry-run", "--stale-after", "90s")
    assert result.stdout.rstrip().endswith("idle longer than 1m 30s"), result.stdout
    [stale] = [
        s
        for s in json.loads(
            bindery(stack, "cleanup", "--dry-run", "--stale-after", "90s", "--json").stdout
        )
        if s["conversation_sid"] == sid
    ]
    assert stale["reason"] == "active, stale: idle 2h (limit 1m 30s)", stale
    assert epoch(stale["last_activity"]) < time.time() + 2 * 3600  # ISO, as every JSON time


class _BadGateway(http.server.BaseHTTPRequestHandler):
    """What a proxy in front of Twilio may answer: a 502 with an HTML body, no Twilio code."""

    def _answer(self):
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_):
        pass


def test_an_answer_without_a_twilio_code_is_recorded_with_its_http_status(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    private = PrivateRedis()
    env = {
        **{k: v for k, v in __import__("os").environ.items()},
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "REDIS_URL": private.url,
        "BINDERY_API_TOKEN": API_TOKEN,
        "BINDERY_MAX_RETRIES": "1",  # RQ refuses a Retry of 0 (see queue.py)
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    connection = redis.Redis.from_url(private.url)
    try:
        queue = JobQueue(connection, Settings.from_env(env))
        pair, _ = queue.enqueue(
            "workers.jobs.participant_add",
            {
                "conversation_sid": MISSING_CONVERSATION,
                "address": new_number(),
                "proxy_address": new_number(),
                "identity": "",
                "policy": "",
            },
            kind="participant-add",
        )
        chat, _ = queue.enqueue(
            "workers.jobs.participant_add",
            {
                "conversation_sid": MISSING_CONVERSATION,
                "identity": "agent-3",
                "address": "",
                "proxy_address": "",
                "policy": "",
            },
            kind="participant-add",
        )
        worker = Process("worker", [BINDERY, "worker", "--processes", "1"], env)
        failed = queue.rq.failed_job_registry
        try:
            wait_for(lambda: failed.count == 2, 60, "both jobs to fail (after their retry)", 0.2)
        finally:
            log = worker.output()[-3000:]
            worker.stop()
        listed = subprocess.run(
            [BINDERY, "jobs", "failed", "--code", "502", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        items = {item["id"]: item for item in json.loads(listed.stdout)}
        assert set(items) == {pair.id, chat.id}, log
        # A list (a page fetch) and a create, both answered 502 without a body Twilio wrote.
        assert items[pair.id]["operation"] == "service.list"
        shown = subprocess.run(
            [BINDERY, "jobs", "show", chat.id], env=env, capture_output=True, text=True, timeout=60
        )
        # The create, then (a retried identity add asks first) the list of participants.
        operations = [a["operation"] for a in json.loads(shown.stdout)["attempts"]]
        assert operations == ["participant.create", "participant.list"], operations
        assert all(item["code"] == 502 for item in items.values())
        assert all("HTTP 502" in item["error"] for item in items.values()), items
    finally:
        connection.close()
        private.stop()
        server.shutdown()
        server.server_close()
