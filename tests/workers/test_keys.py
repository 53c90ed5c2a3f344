"""Each key family's literal form, pinned: a builder that drifts breaks this test, not production."""

from rq import Queue

from workers import keys


def test_every_key_is_pinned():
    pair = keys.pair_id("+15551230001", "+15550001111")
    assert pair == "+15551230001|+15550001111"
    sid = "CH" + "0" * 32
    assert keys.conversation(sid) == f"bindery:conv:{sid}"
    assert keys.conversation_members(sid) == f"bindery:conv:{sid}:members"
    assert keys.pair(pair) == "bindery:pair:+15551230001|+15550001111"
    assert keys.conversation_lock(sid) == f"bindery:lock:conv:{sid}"
    assert keys.pair_lock(pair) == "bindery:lock:pair:+15551230001|+15550001111"
    assert keys.lock_line(keys.conversation_lock(sid)) == f"bindery:line:conv:{sid}"
    assert keys.lock_line(keys.pair_lock(pair)) == "bindery:line:pair:+15551230001|+15550001111"
    assert keys.counters() == "bindery:counters"
    assert keys.webhook_counters() == "bindery:webhooks"
    assert keys.conflicts() == "bindery:conflicts"
    assert keys.schedule() == "bindery:schedule"
    assert keys.clock_heartbeat() == "bindery:clock"
    assert keys.conversation_pattern() == "bindery:conv:*"
    assert keys.pair_pattern() == "bindery:pair:*"
    assert keys.twilio_clock() == "bindery:twilio-clock"
    assert keys.ended() == "bindery:ended"
    assert keys.reconciled() == "bindery:reconciled"
    assert keys.outcome_counts(1764633600) == "bindery:outcomes:1764633600"
    assert keys.dedup("event-0a") == "bindery:dedup:event-0a"
    assert keys.job_seen("event-0a") == "bindery:seen:RXS4l9_h1y4rJ0mX"
    assert len(keys.job_seen("add-" + "f" * 32)) == 29  # Redis's smallest allocation for a key


def test_pair_ids_are_exact():
    """Two different pairs never share an id, whatever their addresses hold."""
    assert keys.pair_id("a|b", "c") != keys.pair_id("a", "b|c")
    assert keys.pair_id("a%7Cb", "c") != keys.pair_id("a|b", "c")
    assert " " not in keys.pair_id(
        "a b", "c d"
    )  # a conversation's `pairs` field joins ids by spaces
    cases = [("a|b", "c"), ("a%7Cb", "c|%"), ("messenger:123", "messenger:9"), ("a b%20", "c")]
    for address, proxy in cases:
        assert keys.split_pair_id(keys.pair_id(address, proxy)) == (address, proxy)


def test_queue_name_is_bindery(fake_redis):
    assert Queue(keys.QUEUE_NAME, connection=fake_redis).key == "rq:queue:bindery"


def test_console_keys_are_pinned():
    assert keys.replay_batch("0123456789abcdef") == "bindery:replay:0123456789abcdef"
    assert keys.replay_batch_jobs("0123456789abcdef") == "bindery:replay:0123456789abcdef:jobs"
    assert keys.replay_batches() == "bindery:replays"


def test_out_of_session_keys_are_pinned():
    assert keys.out_of_session_lock("rides", "+15551230001") == (
        "bindery:lock:oos:rides|+15551230001"
    )
    assert keys.out_of_session_delivered("out-of-session-ab") == (
        "bindery:oos:delivered:out-of-session-ab"
    )


def test_pool_and_session_keys_are_pinned():
    pair = keys.pair_id("+15551230001", "+15550001111")
    session = "BS" + "0" * 32
    sid = "CH" + "0" * 32
    assert keys.pools() == "bindery:pools"
    assert keys.pool("default") == "bindery:pool:default"
    assert keys.number_pools() == "bindery:number-pool"
    assert keys.number_usage("+15550001111") == "bindery:number-usage:+15550001111"
    assert keys.number_usage("whatsapp:+15550001111") == (
        "bindery:number-usage:whatsapp:+15550001111"
    )
    assert keys.reservation(pair) == "bindery:reservation:+15551230001|+15550001111"
    assert keys.session(session) == f"bindery:session:{session}"
    assert keys.session_lock(session) == f"bindery:lock:session:{session}"
    assert keys.conversation_session(sid) == f"bindery:conv-session:{sid}"
    assert keys.customer_latest("default", "+15551230001") == (
        "bindery:pool:default:latest:+15551230001"
    )
    assert keys.customer_sticky("default", "+15551230001") == (
        "bindery:pool:default:sticky:+15551230001"
    )
