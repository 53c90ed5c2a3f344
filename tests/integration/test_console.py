"""The operator's console in a real browser (headless Chromium) against the real stack: Redis,
the emulator, gunicorn and RQ workers as processes, and a clock.

An outage (an emulator fault) fails participant-adds, and one of them is then made by hand behind
Bindery's back. The operator is refused first (no session, a wrong token, a form without its CSRF
token), then signs in, sees the failures on the overview and in the failed list, filters them to
one conversation, replays all that match in the background and watches the progress (the add made
by hand ends `already_present`, never as a duplicate), sees the conversation's participants arrive
in Twilio, and signs out. No page ever shows a full phone number or a token.

Screenshots go to a temporary folder; with `BINDERY_CONSOLE_SCREENSHOTS=docs/console` they replace
the README's (`docs/console/`).
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from emulator.defaults import DEFAULT_AUTH_TOKEN
from tests.integration.browser import Browser, require_chromium
from tests.integration.conftest import new_number
from tests.integration.stack import API_TOKEN, BINDERY, Process, free_port

pytestmark = pytest.mark.integration

OPS_TOKEN = "integration-operator-token-0123"
STACK = {
    "workers": 2,
    "BINDERY_OPS_TOKENS": OPS_TOKEN,
    "BINDERY_MAX_RETRIES": "1",
    "BINDERY_RECONCILE_INTERVAL": "1h",
    "BINDERY_CLEANUP_INTERVAL": "15m",
}
OUTAGE_CUSTOMERS = 6


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("BINDERY_CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(stack, screenshots):
    require_chromium()
    browser = Browser(stack.web_url, screenshots)
    yield browser
    browser.quit()


@pytest.fixture
def clock(stack):
    process = Process("clock", [BINDERY, "clock", "--tick", "1"], stack.env)
    yield process
    process.stop()


def failed_ids(stack, **filters) -> set[str]:
    response = stack.api.get(
        f"{stack.web_url}/api/v1/jobs", params={"status": "failed", **filters}, timeout=10
    )
    return {job["id"] for job in response.json()["jobs"]}


def listed(browser) -> list[str]:
    return [row.get_attribute("data-job-id") for row in browser.find_all("#failed-jobs tbody tr")]


def test_an_operator_replays_what_an_outage_failed(stack, twilio, browser, clock):
    started = time.monotonic()
    conversations = twilio.conversations.v1.conversations
    outage, elsewhere, calm = (conversations.create().sid for _ in range(3))
    proxy = new_number()
    customers = [new_number() for _ in range(OUTAGE_CUSTOMERS + 2)]
    secrets = [OPS_TOKEN, API_TOKEN, DEFAULT_AUTH_TOKEN]

    def clean(page: str) -> str:
        """The page, after checking it shows no full number and no token."""
        for secret in (*customers, proxy, *secrets):
            assert secret not in page, f"{secret[:6]}... on {browser.path}"
        return page

    # A calm morning, then an outage: every write to Twilio answers 500.
    done = [
        stack.add(calm, identity="agent-1"),
        stack.add(calm, address=customers[-1], proxy_address=proxy),
    ]
    assert {r["status"] for r in stack.wait(done)} == {"finished"}
    stack.emulator_post("faults", {"error_rate_500": 1.0, "writes_only": True})
    jobs = [stack.add(outage, address=c, proxy_address=proxy) for c in customers[:OUTAGE_CUSTOMERS]]
    jobs.append(stack.add(outage, identity="agent-1"))
    jobs.append(stack.add(elsewhere, address=customers[OUTAGE_CUSTOMERS], proxy_address=proxy))
    assert {r["status"] for r in stack.wait(jobs, timeout=90)} == {"failed"}
    stack.emulator_post("faults", {})  # Twilio is back
    # Meanwhile somebody added the agent by hand: its replay must end already_present.
    conversations(outage).participants.create(identity="agent-1")

    # -- refusals -------------------------------------------------------------------------------
    browser.open("/ops/failed")  # no session: the sign-in form
    assert browser.path == "/ops/login?next=/ops/failed"
    browser.type("#token", "not-an-operator-token-at-all")
    browser.follow("#sign-in button")
    assert "not an operator token" in browser.text("#sign-in-error")
    # The form without its CSRF token: refused, even with the right operator token.
    browser.driver.execute_script("document.querySelector('input[name=csrf_token]').remove()")
    browser.type("#token", OPS_TOKEN)
    browser.follow("#sign-in button")
    assert "Missing or wrong CSRF token" in browser.text("h1")
    browser.open("/ops/")
    assert browser.path.startswith("/ops/login")
    clean(browser.source)

    # -- sign in, the overview ------------------------------------------------------------------
    browser.screenshot("sign-in")
    browser.type("#token", OPS_TOKEN)
    browser.follow("#sign-in button")
    assert browser.path == "/ops/"
    browser.wait_for(lambda b: b.text("#readiness .big") == "ready", what="a worker heartbeat")
    browser.wait_for(
        lambda b: "next" in b.text("#schedule") or b.open("/ops/"), what="the clock's schedule"
    )
    codes = browser.text("#chart-codes")
    assert f"20500 {len(jobs)}" in codes, codes
    assert "failed" in browser.text("#chart-outcomes") and "added" in browser.text(
        "#chart-outcomes"
    )
    clean(browser.source)
    browser.screenshot("overview")

    # -- the failed jobs, filtered --------------------------------------------------------------
    browser.follow("nav a[href='/ops/failed']")
    assert sorted(listed(browser)) == sorted(jobs)
    row = browser.text(f"tr[data-job-id='{jobs[0]}']")
    assert "Twilio 20500" in row and "+1555*" in row  # the error inline, the number masked
    browser.type("#filters input[name=conversation]", outage)
    browser.type("#filters input[name=code]", "20500")
    browser.follow("#apply-filters")
    assert sorted(listed(browser)) == sorted(jobs[:-1])
    clean(browser.source)
    browser.screenshot("failed-jobs")

    # A replay without its CSRF token, signed in: refused, nothing replayed.
    filtered = browser.path
    browser.click(f"input[name=job_id][value='{jobs[0]}']")
    browser.driver.execute_script(
        "document.querySelector('#replay-selected-form input[name=csrf_token]').remove()"
    )
    browser.follow("#replay-selected")
    assert "Missing or wrong CSRF token" in browser.text("h1")
    assert failed_ids(stack) == set(jobs)
    browser.open(filtered)

    # -- replay all matching: the dry run, the confirmation, the progress ------------------------
    browser.follow("#replay-all")
    assert browser.text("#dry-run-count") == str(len(jobs) - 1)
    assert failed_ids(stack) == set(jobs)  # a dry run replays nothing
    clean(browser.source)
    browser.screenshot("replay-confirm")
    browser.follow("#confirm-replay-button")
    assert browser.path.startswith("/ops/replays/")
    seen = []

    def settled(b) -> bool:
        seen.append((b.text("#replay-state"), b.find("#replay-bar").get_attribute("value")))
        return b.find("#replay-settled").is_displayed()

    browser.wait_for(settled, timeout=90, every=0.1, what="the replay to settle")
    assert browser.text("#replay-done") == browser.text("#replay-total") == str(len(jobs) - 1)
    assert browser.find("#replay-bar").get_attribute("value") == str(len(jobs) - 1)
    assert browser.text("#replay-outcomes") == f"added {OUTAGE_CUSTOMERS}, already_present 1"
    states = [state for state, _ in seen]
    assert states[-1] == "done" and [int(v) for _, v in seen] == sorted(int(v) for _, v in seen)
    clean(browser.source)
    browser.screenshot("replay-progress")
    assert failed_ids(stack) == {jobs[-1]}  # the other conversation's failure is left alone

    # -- the conversation: its participants arrived in Twilio -----------------------------------
    browser.follow("#replay-conversation")
    browser.wait_for(
        lambda b: "agree" in b.text("#differences") or b.follow("#ask-again"),
        what="the ledger and Twilio to agree",
    )
    in_twilio = [
        row.text
        for row in browser.find_all("#participants tr[data-kind]")
        if " yes yes " in f" {row.text} "
    ]
    assert len(in_twilio) == OUTAGE_CUSTOMERS + 1, in_twilio
    assert any("agent-1" in row for row in in_twilio)
    assert re.search(r"\+1555\*+\d\d \| \+1555\*+\d\d", " ".join(in_twilio))
    clean(browser.source)
    browser.screenshot("conversation")
    participants = conversations(outage).participants.list()
    assert len(participants) == OUTAGE_CUSTOMERS + 1
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0

    # -- sign out ------------------------------------------------------------------------------
    browser.follow("#sign-out")
    assert browser.path == "/ops/login?signed_out=1" and "Signed out" in browser.source
    browser.open("/ops/failed")
    assert browser.path.startswith("/ops/login")
    print(f"\nconsole browser test: {time.monotonic() - started:.1f} s, {len(seen)} progress reads")


def run_bindery(stack, *args: str, terminal: bool) -> tuple[str, str]:
    """(stdout, stderr) of a `bindery` command, its stderr a pipe or a pseudo-terminal."""
    if not terminal:
        result = subprocess.run(
            [BINDERY, *args], env=stack.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout, result.stderr
    controller, device = pty.openpty()
    try:
        result = subprocess.run(
            [BINDERY, *args], env=stack.env, stdout=subprocess.PIPE, stderr=device, timeout=120
        )
        os.close(device)
        device = -1
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert result.returncode == 0
        return result.stdout.decode(), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(controller)
        if device >= 0:
            os.close(device)


def test_long_cli_operations_show_progress_on_a_terminal_and_nothing_when_piped(stack, twilio):
    for _ in range(3):
        twilio.conversations.v1.conversations.create()
    sid = twilio.conversations.v1.conversations.create().sid
    stack.emulator_post("faults", {"error_rate_500": 1.0, "writes_only": True})
    stack.wait([stack.add(sid, identity=f"agent-{i}") for i in range(3)], timeout=60)
    stack.emulator_post("faults", {})

    for args in (
        ["reconcile", "--dry-run"],
        ["cleanup", "--dry-run"],
        ["jobs", "replay", "--all", "--conversation", sid],
    ):
        out, err = run_bindery(stack, *args, terminal=False)
        assert err == "", (args, err)
        assert out.strip()  # the report itself still goes to stdout

    out, err = run_bindery(stack, "reconcile", "--dry-run", terminal=True)
    assert re.search(r"\r\x1b\[2Kconversations checked: [1-9][0-9]*  [0-9.]+/s", err), err
    stack.wait_idle()
    stack.emulator_post("faults", {"error_rate_500": 1.0, "writes_only": True})
    failed = stack.wait([stack.add(sid, identity=f"agent-{i}") for i in range(3, 5)], timeout=60)
    assert {f["status"] for f in failed} == {"failed"}
    stack.emulator_post("faults", {})
    out, err = run_bindery(stack, "jobs", "replay", "--all", "--conversation", sid, terminal=True)
    assert "replaying [##############################] 2/2 100%" in err, err
    assert "replayed 2 job(s): 2 requeued" in out


def test_the_dev_stack_prints_the_console_and_its_token(tmp_path):
    web, emulator = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BINDERY_OPS_TOKENS")}
    dev = Process(
        "dev",
        [BINDERY, "dev", "--port", str(web), "--emulator-port", str(emulator), "--embedded-redis"],
        {**env, "PWD": str(tmp_path)},
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while "console:" not in dev.output():
            assert dev.alive() and time.monotonic() < deadline, dev.output()[-3000:]
            time.sleep(0.2)
        line = re.search(
            r"console:  (\S+)  \(sign in with the operator token (\S+)\)", dev.output()
        )
        url, token = line.groups()
        assert url == f"http://127.0.0.1:{web}/ops/"
        session = requests.Session()
        form = session.get(url, timeout=10)
        assert form.url.startswith(f"http://127.0.0.1:{web}/ops/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        signed_in = session.post(
            f"http://127.0.0.1:{web}/ops/login",
            data={"token": token, "csrf_token": csrf},
            timeout=10,
        )
        assert signed_in.status_code == 200 and "Overview" in signed_in.text
    finally:
        dev.stop(timeout=30)
