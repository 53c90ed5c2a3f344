"""The console's pages over real RQ registries (a burst worker on a fake Redis): failed jobs,
replaying a selection and everything matching, the job page, conflicts, lookups, the overview."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import make_settings
from tests.webhooks.ops.conftest import CH, CUSTOMER, OTHER, PROXY, fail
from webhooks import create_app
from workers import failures, job_catalog, keys, replay_batch
from workers.ledger import Ledger

FULL_NUMBER = re.compile(r"\+[0-9]{8,15}")


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    text = response.get_data(as_text=True)
    assert not FULL_NUMBER.search(text), FULL_NUMBER.search(text).group(0)
    return text


def rows(text: str, table: str) -> list[str]:
    body = text.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'data-job-id="([^"]+)"', body)


@pytest.fixture
def failed_jobs(rt, work):
    ids = {
        "a-500": fail(rt, CH, 20500),
        "a-429": fail(rt, CH, 20429, kind="state-change"),
        "b-500": fail(rt, OTHER, 20500, address="+15559998888"),
    }
    work()
    return ids


def test_failed_jobs_are_listed_with_their_error_inline_and_numbers_masked(operator, failed_jobs):
    text = page(operator, "/ops/failed")
    assert sorted(rows(text, "failed-jobs")) == sorted(failed_jobs.values())
    assert "Twilio 20500: injected failure for +1555*****01" in text
    assert "+1555*****01" in text and "Replay all 3 matching" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"conversation={CH}", ["a-500", "a-429"]),
        ("code=20429", ["a-429"]),
        ("kind=participant-add", ["a-500", "b-500"]),
        (f"conversation={CH}&code=20500&kind=participant-add&since=1h", ["a-500"]),
        ("conversation=CHnope", ["a-500", "a-429", "b-500"]),  # in error: said, and ignored
    ],
)
def test_filters(operator, failed_jobs, query, expected):
    text = page(operator, f"/ops/failed?{query}")
    assert sorted(rows(text, "failed-jobs")) == sorted(failed_jobs[name] for name in expected)
    if "CHnope" in query:
        assert "is not a conversation SID" in text


def test_an_old_enough_since_filters_everything_out(operator, failed_jobs, rt, fake_redis):
    for job_id in failed_jobs.values():  # failed two hours ago
        job = rt.queue.fetch(job_id)
        fake_redis.hset(job.key, "ended_at", "2020-01-01T00:00:00.000000Z")
    assert 'id="no-failures"' in page(operator, "/ops/failed?since=1h")


def test_replaying_a_selection(operator, failed_jobs, rt, fake_redis):
    chosen = [failed_jobs["a-500"], failed_jobs["b-500"]]
    response = operator.post(
        "/ops/failed/replay",
        data={"job_id": chosen, "csrf_token": operator.csrf, "code": "20500"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/ops/failed?code=20500"
    assert "Replayed 2 job(s): 2 requeued" in page(operator, "/ops/failed")
    queued = {j.decode() for j in fake_redis.lrange("rq:queue:bindery", 0, -1)}
    assert queued == set(chosen)
    assert rt.queue.fetch(chosen[0]).meta["replays"] == 1


def test_replay_all_counts_first_then_replays_in_the_background(operator, failed_jobs, rt, work):
    dry = page(operator, f"/ops/failed/replay-all?conversation={CH}")
    assert re.search(r'id="dry-run-count">2<', dry)
    assert rt.queue.rq.count == 0  # the dry run replays nothing
    response = operator.post(
        "/ops/failed/replay-all",
        data={"csrf_token": operator.csrf, "conversation": CH, "expected": "2"},
    )
    assert response.status_code == 303
    batch_id = response.headers["Location"].rsplit("/", 1)[1]
    [job_id] = rt.queue.rq.job_ids
    job = rt.queue.fetch(job_id)
    assert job.func_name == "workers.jobs.replay_failed"
    assert job.kwargs == {
        "batch_id": batch_id,
        "conversation": CH,
        "code": 0,
        "kind": "",
        "since": 0.0,
    }
    assert "queued" in page(operator, f"/ops/replays/{batch_id}")

    work()  # the batch, then the two jobs it requeued (which fail again: same injected error)
    progress = operator.get(f"/ops/replays/{batch_id}/progress").json
    assert progress["state"] == "done" and progress["total"] == progress["done"] == 2
    assert progress["results"] == {"requeued": 2} and progress["expected"] == 2
    assert progress["replayed"] == {"failed": 2} and progress["settled"]
    assert {item.id for item in failures.failed(rt)} == set(failed_jobs.values())
    assert f"/ops/replays/{batch_id}" in page(operator, "/ops/failed")  # recent replays


def test_replay_all_refuses_a_filter_in_error(operator, failed_jobs, rt):
    response = operator.post(
        "/ops/failed/replay-all",
        data={"csrf_token": operator.csrf, "conversation": "CH-typo", "expected": "3"},
    )
    assert response.status_code == 303
    assert rt.queue.rq.count == 0
    assert "nothing was replayed" in page(operator, response.headers["Location"])


def test_an_unknown_replay_is_404(operator):
    assert operator.get("/ops/replays/0123456789abcdef").status_code == 404
    assert operator.get("/ops/replays/nope/progress").status_code == 404


def test_job_page(operator, failed_jobs):
    text = page(operator, f"/ops/jobs/{failed_jobs['a-500']}")
    assert 'id="replay-job"' in text and "20500" in text
    assert re.search(r"<td>address</td><td><code>\+1555\*\*\*\*\*01</code>", text)
    response = operator.post(
        f"/ops/jobs/{failed_jobs['a-500']}/replay", data={"csrf_token": operator.csrf}
    )
    assert response.status_code == 303
    assert "Requeued" in page(operator, f"/ops/jobs/{failed_jobs['a-500']}")
    assert operator.get("/ops/jobs/no-such-job").status_code == 404
    found = operator.get(f"/ops/jobs?id={failed_jobs['b-500']}")
    assert found.headers["Location"] == f"/ops/jobs/{failed_jobs['b-500']}"


def test_conflicts_can_be_asked_again_with_another_policy(operator, rt):
    job, _ = rt.queue.enqueue(
        "workers.jobs.participant_add",
        {
            "conversation_sid": CH,
            "address": CUSTOMER,
            "proxy_address": PROXY,
            "identity": "",
            "policy": "reject",
        },
        kind="participant-add",
    )
    outcome = {"outcome": "conflict", "conversation_sid": CH, "holder": OTHER, "policy": "reject"}
    failures.record_conflict(rt, job.id, outcome)
    listing = page(operator, "/ops/conflicts")
    assert OTHER in listing and f"/ops/conflicts/{job.id}" in listing
    choice = page(operator, f"/ops/conflicts/{job.id}")
    assert 'value="move"' in choice and 'value="reject"' not in choice

    response = operator.post(
        f"/ops/conflicts/{job.id}/replay", data={"csrf_token": operator.csrf, "policy": "move"}
    )
    assert response.status_code == 303
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    new = rt.queue.fetch(new_id)
    assert new.kwargs == {**job.kwargs, "policy": "move"} and new.meta["retry_of"] == job.id
    again = operator.post(
        f"/ops/conflicts/{job.id}/replay", data={"csrf_token": operator.csrf, "policy": "move"}
    )
    assert again.headers["Location"].endswith(new_id)  # a second click: the same job
    bad = operator.post(
        f"/ops/conflicts/{job.id}/replay", data={"csrf_token": operator.csrf, "policy": "nuke"}
    )
    assert bad.status_code == 303 and rt.queue.rq.count == 2


def test_a_conflict_whose_job_is_gone_is_asked_again_from_its_record(operator, rt):
    arguments = {"conversation_sid": CH, "address": CUSTOMER, "proxy_address": PROXY}
    outcome = {"outcome": "conflict", "conversation_sid": CH, "holder": OTHER, "policy": "reject"}
    failures.record_conflict(
        rt, "add-gone", outcome, function=job_catalog.PARTICIPANT_ADD, arguments=arguments
    )
    choice = page(operator, "/ops/conflicts/add-gone")  # RQ has no job of that id
    assert 'id="policy-form"' in choice and "+1555*****01" in choice and CUSTOMER not in choice
    response = operator.post(
        "/ops/conflicts/add-gone/replay", data={"csrf_token": operator.csrf, "policy": "move"}
    )
    new = rt.queue.fetch(response.headers["Location"].rsplit("/", 1)[1])
    assert new.kwargs == {**arguments, "policy": "move"} and new.meta["retry_of"] == "add-gone"


def test_an_old_conflict_whose_job_is_gone_says_why_it_cannot_be_asked_again(operator, rt):
    outcome = {"outcome": "conflict", "conversation_sid": CH, "holder": OTHER, "policy": "reject"}
    failures.record_conflict(rt, "add-old", outcome)  # as older releases recorded it
    choice = page(operator, "/ops/conflicts/add-old")
    assert 'id="conflict-expired"' in choice and 'id="policy-form"' not in choice
    response = operator.post(
        "/ops/conflicts/add-old/replay", data={"csrf_token": operator.csrf, "policy": "move"}
    )
    assert response.headers["Location"].endswith("/ops/conflicts/add-old")
    assert "older release" in page(operator, "/ops/conflicts/add-old")
    assert rt.queue.rq.count == 0


def test_a_pair_lookup_takes_full_numbers_and_shows_them_masked(operator, fake_redis):
    ledger = Ledger(fake_redis)
    ledger.record_conversation(OTHER, "active", at=1)
    ledger.bind(keys.pair_id(CUSTOMER, PROXY), OTHER, "MB" + "1" * 32, at=1)
    response = operator.post(
        "/ops/pairs",
        data={"csrf_token": operator.csrf, "address": CUSTOMER, "proxy_address": PROXY},
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and OTHER in text and "+1555*****01" in text
    assert CUSTOMER not in text and PROXY not in text
    unknown = operator.post(
        "/ops/pairs",
        data={"csrf_token": operator.csrf, "address": "+15557770000", "proxy_address": PROXY},
    )
    assert b'id="pair-unknown"' in unknown.data
    bad = operator.post(
        "/ops/pairs", data={"csrf_token": operator.csrf, "address": "123", "proxy_address": PROXY}
    )
    assert bad.status_code == 400


def test_a_conversation_as_the_ledger_has_it(operator, fake_redis):
    ledger = Ledger(fake_redis)
    ledger.record_conversation(CH, "active", at=1)
    ledger.bind(keys.pair_id(CUSTOMER, PROXY), CH, "MB" + "1" * 32, at=1)
    ledger.member_added(CH, "agent-7", "MB" + "7" * 32, at=1)
    text = page(operator, f"/ops/conversations/{CH}")
    assert "+1555*****01 | +1555*****11" in text and "agent-7" in text
    assert 'id="ask-twilio"' in text
    assert operator.get("/ops/lookup?conversation=" + CH).headers["Location"].endswith(CH)


def test_twilio_s_view_is_compared_with_the_ledger(fake_redis):
    from emulator import EmulatorConfig, start_in_thread
    from tests.webhooks.ops.conftest import OPS_TOKEN, sign_in
    from workers.twilio_http import make_client

    emulator = start_in_thread(EmulatorConfig(timer_tick=0))
    try:
        settings = make_settings(
            ops_tokens=(OPS_TOKEN,),
            twilio_account_sid=emulator.account_sid,
            twilio_auth_token=emulator.auth_token,
            twilio_api_base_url=emulator.url,
        )
        client = create_app(settings, connection=fake_redis).test_client()
        sign_in(client)
        twilio = make_client(emulator.account_sid, emulator.auth_token, base_url=emulator.url)
        sid = twilio.conversations.v1.conversations.create().sid
        conversation = twilio.conversations.v1.conversations(sid)
        conversation.participants.create(identity="agent-1")
        conversation.participants.create(
            messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=PROXY
        )
        ledger = Ledger(fake_redis)
        ledger.record_conversation(sid, "inactive", at=1)
        ledger.member_added(sid, "agent-1", "", at=1)
        ledger.member_added(sid, "agent-gone", "", at=1)
        text = page(client, f"/ops/conversations/{sid}?twilio=1")
        assert "3 differences between the ledger and Twilio" in text  # state, a pair, an identity
        differing = re.findall(r'<tr class="differs"[^>]*>\s*<td>(.*?)</td>', text, re.S)
        assert differing == ["state", "+1555*****01 | +1555*****11", "identity <b>agent-gone</b>"]
        missing = page(client, "/ops/conversations/CH" + "0" * 32 + "?twilio=1")
        assert 'id="twilio-error"' in missing and "50350" in missing  # not found
    finally:
        emulator.shutdown()


def test_the_overview(operator, failed_jobs, rt, work):
    # A real job, counted as every finished job is (its result itself is kept only briefly).
    rt.queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {"conversation_sid": CH, "at": 1.0}, kind="e")
    work()
    rt.ledger.count("duplicate_attempts_avoided", 4)
    text = page(operator, "/ops/")
    assert "not ready" in text  # no worker has a heartbeat
    outcomes = text.split('id="chart-outcomes"', 1)[1].split("</figure>", 1)[0]
    assert "recorded <b>1</b>" in outcomes and "failed <b>3</b>" in outcomes
    codes = text.split('id="chart-codes"', 1)[1].split("</figure>", 1)[0]
    assert "20500 <b>2</b>" in codes and "20429 <b>1</b>" in codes
    assert outcomes.count("<rect") >= 2
    assert re.search(r"duplicate attempts avoided</dt><dd>4<", text)
    assert page(operator, "/ops/?hours=24")


def test_recent_batches_need_no_job_states(rt):
    batch_id = replay_batch.start(rt, replay_batch.Filters(code=20500), 0, "op")
    [batch] = replay_batch.recent(rt)
    assert batch["id"] == batch_id and batch["replayed_checked"] == 0
    assert json.loads(rt.connection.hget(keys.replay_batch(batch_id), "filters"))["code"] == 20500
