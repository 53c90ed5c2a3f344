"""Redis restarted (SIGTERM, then started again on its port and directory, AOF on) in the middle of a
storm of signed post-event webhooks.

While Redis is down every webhook is answered 503 (so Twilio may send it again); none is answered
200 and then lost: every job id answered 200 is in Redis after the restart and completes, and once
Redis is back the ledger converges to what the events said.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from emulator.defaults import DEFAULT_ACCOUNT_SID
from tests.integration.conftest import new_number
from tests.reliability.harness import Trickle, signed_post
from workers import keys
from workers.ledger import Ledger

pytestmark = pytest.mark.integration

STACK = {
    "workers": 2,
    "redis_args": ("--appendonly", "yes", "--appendfsync", "everysec"),
    # A worker that was mid-job when Redis went away dies, and its job is requeued once its
    # heartbeat (job timeout + 60 s) expires: the record jobs here take milliseconds.
    "BINDERY_JOB_TIMEOUT": "2s",
}
RATE = 40
DOWN_AFTER = 3.0
DOWN_FOR = 3.0


def when(offset: float) -> str:
    return datetime.fromtimestamp(1_790_000_000 + offset, UTC).isoformat().replace("+00:00", "Z")


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def conversation_events(sid: str, customer: str, proxy: str, t: float) -> list[dict]:
    common = {"AccountSid": DEFAULT_ACCOUNT_SID, "ConversationSid": sid, "Source": "API"}
    return [
        {**common, "EventType": "onConversationAdded", "State": "active", "DateCreated": when(t)},
        {
            **common,
            "EventType": "onParticipantAdded",
            "ParticipantSid": "MB" + uuid.uuid4().hex,
            "MessagingBinding.Address": customer,
            "MessagingBinding.ProxyAddress": proxy,
            "DateCreated": when(t + 1),
        },
        {
            **common,
            "EventType": "onMessageAdded",
            "MessageSid": "IM" + uuid.uuid4().hex,
            "Body": "hello",
            "DateCreated": when(t + 2),
        },
    ]


class Webhooks:
    """Sends events from a thread pool and keeps every answer."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[int, int, str]] = []  # (event index, status, job id)
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.local = threading.local()

    def send(self, index: int) -> int:
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        response, _ = signed_post(self.url, self.events[index], session=session)
        job_id = response.json().get("job_id", "") if response.status_code == 200 else ""
        with self.lock:
            self.answers.append((index, response.status_code, job_id))
        return response.status_code

    def add(self, events: list[dict]) -> list[int]:
        with self.lock:
            start = len(self.events)
            self.events += events
            return list(range(start, len(self.events)))

    def accepted(self) -> dict[int, str]:
        with self.lock:
            return {i: job for i, status, job in self.answers if status == 200}


def test_webhooks_across_a_redis_restart(stack):
    hooks = Webhooks(f"{stack.web_url}/twilio/conversations/post")
    proxy = new_number()
    expected: dict[str, tuple[str, float]] = {}  # conversation -> (customer, last message at)
    batch = []
    for n in range(150):
        sid, customer = "CH" + uuid.uuid4().hex, new_number()
        batch.append(conversation_events(sid, customer, proxy, n * 10))
        expected[sid] = (customer, epoch(batch[-1][-1]["DateCreated"]))
    # Interleave the conversations, each one's events in order.
    order = hooks.add([e for group in itertools.zip_longest(*batch) for e in group if e])

    outage = threading.Timer(DOWN_AFTER, stack.private_redis.down)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        outage.start()
        futures = []
        restarted = False
        for k, index in enumerate(order):
            while time.monotonic() < started + k / RATE:
                time.sleep(0.005)
            futures.append(pool.submit(hooks.send, index))
            if not restarted and time.monotonic() > started + DOWN_AFTER + DOWN_FOR:
                outage.join()
                stack.private_redis.up()
                restarted = True
        statuses = Counter(f.result() for f in futures)
    outage.join()
    if not restarted:
        stack.private_redis.up()

    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0 and statuses[200] > 0, statuses
    accepted_before = hooks.accepted()
    missing = [j for j in accepted_before.values() if not stack.redis.exists(f"rq:job:{j}")]
    assert not missing, f"{len(missing)} webhooks answered 200 lost their job: {missing[:3]}"

    # Twilio may send a refused webhook again: every one gets in now.
    refused = sorted(set(order) - set(accepted_before))
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(hooks.send, refused)) == {200}

    # Production traffic keeps flowing while it converges (RQ maintenance runs between jobs).
    more = (
        conversation_events("CH" + uuid.uuid4().hex, new_number(), proxy, 5000 + n)[0]
        for n in itertools.count()
    )
    back = time.monotonic()
    with Trickle(lambda: hooks.send(hooks.add([next(more)])[0]), interval=0.5):
        jobs = sorted(set(hooks.accepted().values()))
        results = stack.wait(jobs, timeout=180)
    converged = time.monotonic() - back
    assert {r["status"] for r in results} == {"finished"}, Counter(r["status"] for r in results)

    ledger = Ledger(stack.redis)
    for sid, (customer, last_message) in expected.items():
        record = ledger.conversation(sid)
        assert record.state == "active", sid
        assert record.last_activity == last_message, sid
        assert ledger.pair(keys.pair_id(customer, proxy)).holder == sid, sid
    print(
        f"\nredis restart: {len(order)} events, answers {dict(statuses)} during the storm, "
        f"{len(refused)} resent after the restart, {len(jobs)} jobs all finished "
        f"{converged:.0f}s after, 0 lost"
    )
