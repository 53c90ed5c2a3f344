"""Post-events are stored before they are answered; bad ones are refused by name; pre-events are
answered from the ledger."""

import json

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, make_settings
from tests.webhooks.signing import sign
from webhooks import create_app
from workers.keys import pair_id
from workers.ledger import Ledger

BASE = "http://localhost/twilio/conversations"
CH = "CH" + "c" * 32
OTHER = "CH" + "d" * 32
CUSTOMER, PROXY = "+15551230001", "+15550001111"


def post(client, path, form, headers=None):
    url = f"{BASE}/{path}"
    headers = {"X-Twilio-Signature": sign(url, form, AUTH_TOKEN), **(headers or {})}
    return client.post(url, data=form, headers=headers)


def participant_added(**extra):
    form = {
        "AccountSid": ACCOUNT_SID,
        "EventType": "onParticipantAdded",
        "Source": "API",
        "ConversationSid": CH,
        "ParticipantSid": "MB" + "1" * 32,
        "MessagingBinding.Address": CUSTOMER,
        "MessagingBinding.ProxyAddress": PROXY,
        "MessagingBinding.Type": "SMS",
        "DateCreated": "2026-11-26T20:00:00Z",
    }
    form.update(extra)
    return {k: v for k, v in form.items() if v is not None}


def queued_jobs(connection):
    queue = Queue("bindery", connection=connection, serializer=JSONSerializer)
    return [queue.fetch_job(job_id) for job_id in queue.job_ids]


def test_post_event_enqueues_its_job(client, fake_redis):
    response = post(client, "post", participant_added())
    assert response.status_code == 200
    [job] = queued_jobs(fake_redis)
    assert job.func_name == "workers.jobs.on_participant_added"
    assert job.kwargs == {
        "conversation_sid": CH,
        "at": 1795723200.0,
        "participant_sid": "MB" + "1" * 32,
        "identity": "",
        "address": CUSTOMER,
        "proxy_address": PROXY,
        "service_sid": "",
    }
    assert response.json == {"status": "accepted", "job_id": job.id, "duplicate": False}


def test_redelivery_enqueues_nothing_new(client, fake_redis):
    first = post(client, "post", participant_added())
    again = post(client, "post", participant_added())
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert again.json["job_id"] == first.json["job_id"]
    assert len(queued_jobs(fake_redis)) == 1


def test_idempotency_token_identifies_a_delivery(client, fake_redis):
    token = {"I-Twilio-Idempotency-Token": "tok-1"}
    post(client, "post", participant_added(), token)
    # Same token, even with a different body: the same delivery.
    assert post(client, "post", participant_added(DateCreated="2026-11-26T21:00:00Z"), token).json[
        "duplicate"
    ]
    # Another token: another delivery, another job.
    assert not post(
        client, "post", participant_added(), {"I-Twilio-Idempotency-Token": "tok-2"}
    ).json["duplicate"]
    assert len(queued_jobs(fake_redis)) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ConversationSid": None}, "ConversationSid"),
        ({"ConversationSid": "CH123"}, "ConversationSid"),
        ({"AccountSid": None}, "AccountSid"),
        ({"ParticipantSid": "nope"}, "ParticipantSid"),
        ({"MessagingBinding.Address": None}, "MessagingBinding.Address"),
        ({"MessagingBinding.Address": "+1" + "5" * 300}, "MessagingBinding.Address"),
        ({"ChatServiceSid": "IS123"}, "ChatServiceSid"),
        (
            {"MessagingBinding.Address": None, "MessagingBinding.ProxyAddress": None},
            "MessagingBinding.Address",
        ),
        ({"DateCreated": "yesterday"}, "DateCreated"),
        ({"EventType": None}, "EventType"),
        ({"Identity": "x" * 300}, "Identity"),
    ],
)
def test_malformed_events_are_refused_by_name(client, fake_redis, change, field):
    post(client, "post", participant_added())  # accepted before: must survive
    response = post(client, "post", participant_added(**change))
    assert response.status_code == 400
    assert response.json["field"] == field
    assert field in response.json["error"]
    assert len(queued_jobs(fake_redis)) == 1


def test_state_event_needs_a_known_state(client, fake_redis):
    form = {
        "AccountSid": ACCOUNT_SID,
        "EventType": "onConversationStateUpdated",
        "ConversationSid": CH,
        "StateFrom": "active",
        "StateTo": "sleeping",
    }
    response = post(client, "post", form)
    assert response.status_code == 400 and response.json["field"] == "StateTo"


def test_unhandled_event_types_are_counted_not_enqueued(client, fake_redis):
    form = {"AccountSid": ACCOUNT_SID, "EventType": "onDeliveryUpdated", "ConversationSid": CH}
    response = post(client, "post", form)
    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert queued_jobs(fake_redis) == []
    assert fake_redis.hget("bindery:webhooks", "ignored:onDeliveryUpdated") == b"1"


def test_oversized_body_is_413(client, fake_redis):
    response = post(client, "post", participant_added(Attributes="x" * 70_000))
    assert response.status_code == 413
    assert "error" in response.json
    assert queued_jobs(fake_redis) == []


def test_redis_down_means_503_never_200(fake_redis):
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    app = create_app(make_settings(), connection=unreachable)
    response = post(app.test_client(), "post", participant_added())
    assert response.status_code == 503
    assert "retry" in response.json["error"]


def pre_add(**extra):
    form = participant_added(EventType="onParticipantAdd", **extra)
    form.pop("ParticipantSid")
    form.pop("DateCreated")
    return form


def test_pre_event_lets_a_free_pair_through(client):
    response = post(client, "pre", pre_add())
    assert response.status_code == 200 and response.json == {}


def test_pre_event_refuses_a_pair_held_elsewhere(fake_redis):
    app = create_app(make_settings(conflict_policy="reject"), connection=fake_redis)
    Ledger(fake_redis).record_conversation(OTHER, "active", at=9e9)
    Ledger(fake_redis).touch(OTHER, 9e9)
    Ledger(fake_redis).bind(pair_id(CUSTOMER, PROXY), OTHER, "MB" + "2" * 32, at=1)
    response = post(app.test_client(), "pre", pre_add())
    assert response.status_code == 409
    assert response.json == {"reason": "pair_in_use", "holder": OTHER}
    assert queued_jobs(fake_redis) == []


def test_pre_event_hands_a_stale_holder_to_a_job(client, fake_redis):
    Ledger(fake_redis).set_state(OTHER, "inactive", at=1)
    Ledger(fake_redis).bind(pair_id(CUSTOMER, PROXY), OTHER, "MB" + "2" * 32, at=1)
    response = post(client, "pre", pre_add())
    assert response.status_code == 409
    assert response.json["resolution"] == "close-stale"
    [job] = queued_jobs(fake_redis)
    assert job.id == response.json["job_id"]
    assert job.kwargs["policy"] == "close-stale" and job.kwargs["conversation_sid"] == CH


def test_pre_event_refuses_a_pair_already_here(client, fake_redis):
    Ledger(fake_redis).bind(pair_id(CUSTOMER, PROXY), CH, "MB" + "2" * 32, at=1)
    response = post(client, "pre", pre_add())
    assert response.status_code == 409 and response.json["reason"] == "already_present"


def test_other_pre_events_pass(client):
    form = {"AccountSid": ACCOUNT_SID, "EventType": "onMessageAdd", "ConversationSid": CH}
    response = post(client, "pre", form)
    assert response.status_code == 200 and json.loads(response.data) == {}


@pytest.mark.parametrize(
    "participant",
    [
        pytest.param(
            {  # Facebook Messenger: a page-scoped user id, the Page as proxy
                "MessagingBinding.Address": "messenger:4839203948202",
                "MessagingBinding.ProxyAddress": "messenger:108234920394",
                "MessagingBinding.Type": "MESSENGER",
            },
        ),
        pytest.param(
            {  # group MMS: an SMS participant has an address and no proxy address
                "MessagingBinding.Address": CUSTOMER,
                "MessagingBinding.ProxyAddress": None,
            },
        ),
        {  # group MMS: a chat participant appears as a projected Twilio number
            "MessagingBinding.Address": None,
            "MessagingBinding.ProxyAddress": None,
            "MessagingBinding.Type": None,
            "Identity": "agent-7",
            "MessagingBinding.ProjectedAddress": PROXY,
        },
        pytest.param(
            {  # Niue: a valid four-digit subscriber number
                "MessagingBinding.Address": "+6834123",
                "MessagingBinding.ProxyAddress": PROXY,
            },
        ),
    ],
)
def test_pre_event_lets_every_valid_participant_through(client, participant):
    """Issue 10, 5: the pre-event answered 400 to participants Twilio accepts, so Twilio rejected
    the add; Twilio validates addresses, Bindery passes what it does not know."""
    response = post(client, "pre", pre_add(**participant))
    assert response.status_code == 200 and response.json == {}


def test_pre_event_fails_open_when_redis_errs():
    """Issue 10, 5: a Redis outage answered 503, which made Twilio reject every SDK add; Twilio
    still enforces its own rule, so the pre-event lets the add through, counted and logged."""
    from prometheus_client import REGISTRY

    def failed_open() -> float:
        labels = {"event": "onParticipantAdd", "status": "200-failed-open"}
        return REGISTRY.get_sample_value("bindery_webhooks_total", labels) or 0.0

    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    app = create_app(make_settings(), connection=unreachable)
    before = failed_open()
    response = post(app.test_client(), "pre", pre_add())
    assert response.status_code == 200 and response.json == {}
    assert failed_open() == before + 1
