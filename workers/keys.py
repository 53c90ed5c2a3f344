"""Every Redis key Bindery owns, one builder per family, all under the `bindery:` prefix.

RQ keeps its own keys under `rq:`; nothing of Bindery's lives there. `tests/test_keys.py` pins each
literal key, so a builder cannot drift unnoticed.
"""

from __future__ import annotations

PREFIX = "bindery:"


def pair_id(address: str, proxy_address: str) -> str:
    """The binding pair as one string; `|` cannot occur in an E.164 or `whatsapp:` address."""
    return f"{address}|{proxy_address}"


def conversation(sid: str) -> str:
    """Hash: state, state_at, last_activity, created_at of one conversation."""
    return f"{PREFIX}conv:{sid}"


def conversation_pairs(sid: str) -> str:
    """Set of pair ids the conversation holds."""
    return f"{PREFIX}conv:{sid}:pairs"


def conversation_identities(sid: str) -> str:
    """Set of chat identities present in the conversation."""
    return f"{PREFIX}conv:{sid}:identities"


def conversation_pending_identities(sid: str) -> str:
    """Set of chat identities whose create was sent but whose answer is not recorded yet."""
    return f"{PREFIX}conv:{sid}:pending-identities"


def pair(pair_id_: str) -> str:
    """Hash: holder, participant_sid, bound_at, released_by, released_at of one binding pair."""
    return f"{PREFIX}pair:{pair_id_}"


def conversation_lock(sid: str) -> str:
    return f"{PREFIX}lock:conv:{sid}"


def pair_lock(pair_id_: str) -> str:
    return f"{PREFIX}lock:pair:{pair_id_}"


def counters() -> str:
    """Hash of the counters that matter (duplicate attempts avoided, 50416 reconciled, ...)."""
    return f"{PREFIX}counters"


def webhook_counters() -> str:
    """Hash of webhooks refused or ignored, by reason (accepted ones are counted by Prometheus
    alone, to keep the hot path at one Redis round trip less)."""
    return f"{PREFIX}webhooks"


def conflicts() -> str:
    """Sorted set of conflict outcomes (JSON), scored by time: business answers, not failures."""
    return f"{PREFIX}conflicts"


def schedule() -> str:
    """Hash: each periodic job's name -> JSON of its interval and last enqueue, kept by the clock."""
    return f"{PREFIX}schedule"


def clock_heartbeat() -> str:
    """String with a TTL: the running clock's name, refreshed each tick."""
    return f"{PREFIX}clock"


def conversation_pattern() -> str:
    """SCAN pattern matching every conversation hash (and, to be filtered out, its sets)."""
    return f"{PREFIX}conv:*"


def replay_batch(batch_id: str) -> str:
    """Hash: one background "replay all matching" run: its filters, state, total, done, and the
    count of each replay result (`result:requeued`, ...)."""
    return f"{PREFIX}replay:{batch_id}"


def replay_batch_jobs(batch_id: str) -> str:
    """List of the job ids a replay batch requeued."""
    return f"{PREFIX}replay:{batch_id}:jobs"


def replay_batches() -> str:
    """Sorted set of replay batch ids, scored by when an operator asked for them."""
    return f"{PREFIX}replays"


QUEUE_NAME = "bindery"
"""The RQ queue; RQ stores it as `rq:queue:bindery`."""
