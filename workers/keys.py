"""Every Redis key Bindery owns, one builder per family, all under the `bindery:` prefix.

RQ keeps its own keys under `rq:`; nothing of Bindery's lives there. `tests/workers/test_keys.py`
pins each literal key, so a builder cannot drift unnoticed.
"""

from __future__ import annotations

import base64
import hashlib

PREFIX = "bindery:"


def _escape(address: str) -> str:
    # `%` first, so an escaped `|` cannot be read back as a literal one.
    return address.replace("%", "%25").replace("|", "%7C").replace(" ", "%20")


def pair_id(address: str, proxy_address: str) -> str:
    """The binding pair as one string, exactly: `|` separates the two, and a `|`, `%` or space
    inside an address is percent-escaped, so two different pairs never share an id (and a space can
    join ids: a conversation's `pairs` field). E.164 and `whatsapp:` addresses contain none of them,
    so their ids read as `+1555...|+1555...`."""
    return f"{_escape(address)}|{_escape(proxy_address)}"


def split_pair_id(pair: str) -> tuple[str, str]:
    address, _, proxy = pair.partition("|")
    return _unescape(address), _unescape(proxy)


def _unescape(text: str) -> str:
    return text.replace("%20", " ").replace("%7C", "|").replace("%25", "%")


def conversation(sid: str) -> str:
    """Hash: state, state_at, last_activity, created_at, service_sid of one conversation, and
    `pairs`: the ids of the pairs it holds, joined by spaces (absent when none)."""
    return f"{PREFIX}conv:{sid}"


def conversation_members(sid: str) -> str:
    """Hash: chat identity -> `present|MB...|at`, `removed|MB...|at` or `pending||at`."""
    return f"{PREFIX}conv:{sid}:members"


def pair(pair_id_: str) -> str:
    """Hash: holder, participant_sid, bound_at, released_from, released_at, released_participant,
    pending, pending_at, checked_at of one binding pair."""
    return f"{PREFIX}pair:{pair_id_}"


def conversation_lock(sid: str) -> str:
    return f"{PREFIX}lock:conv:{sid}"


def pair_lock(pair_id_: str) -> str:
    return f"{PREFIX}lock:pair:{pair_id_}"


def lock_line(lock_key: str) -> str:
    """List: the ids of the jobs waiting for the lock `lock_key` (a `conversation_lock` or a
    `pair_lock`), first come first; the lock's holder wakes the first as it lets go
    (`workers/waiters.py`). `bindery:lock:conv:CH...` waits in `bindery:line:conv:CH...`."""
    return f"{PREFIX}line:{lock_key.removeprefix(PREFIX + 'lock:')}"


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
    """JSON with a TTL (host, pid, since: epoch seconds): the running clock, refreshed each tick."""
    return f"{PREFIX}clock"


def twilio_clock() -> str:
    """String: seconds Twilio's clock is ahead of the workers' hosts (see `twilio_clock.py`)."""
    return f"{PREFIX}twilio-clock"


def ended() -> str:
    """Sorted set: `conv:<sid>` and `pair:<pair id>` of conversations that closed and pairs that
    were let go, scored by when: what pruning deletes once old enough."""
    return f"{PREFIX}ended"


def outcome_counts(minute: int) -> str:
    """Hash, kept a day: outcome ("added", "already_present", ...) -> how many jobs finished with
    it in the minute starting at `minute` (epoch seconds): the console's chart, which RQ's short-lived
    results cannot give."""
    return f"{PREFIX}outcomes:{minute}"


def reconciled() -> str:
    """String: when the last full reconcile finished (epoch seconds); the trusting ledger mode
    trusts the ledger only once one has."""
    return f"{PREFIX}reconciled"


def conversation_pattern() -> str:
    """SCAN pattern matching every conversation hash (and, to be filtered out, its sets)."""
    return f"{PREFIX}conv:*"


def pair_pattern() -> str:
    """SCAN pattern matching every pair hash."""
    return f"{PREFIX}pair:*"


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


def dedup(job_id: str) -> str:
    """String with a TTL: a unique job id was enqueued within the de-duplication window, as
    releases before `job_seen` wrote it; still read (`workers/ingest.py`) until those have
    expired, a window after an upgrade."""
    return f"{PREFIX}dedup:{job_id}"


# -- pools and sessions (workers/pools.py, allocation.py, sessions.py) ---------------------------


def pools() -> str:
    """Set of pool names."""
    return f"{PREFIX}pools"


def pool(name: str) -> str:
    """Hash: proxy number -> `country|area_code` (its labels, either may be empty)."""
    return f"{PREFIX}pool:{name}"


def number_pools() -> str:
    """Hash: proxy number -> the pool it belongs to (a number is in one pool at most)."""
    return f"{PREFIX}number-pool"


def number_usage(number: str) -> str:
    """Sorted set: `<session id>|<customer address>` of every session using the proxy number,
    scored by when the use lapses (epoch ms: a pending session's reservation) or `inf` (open)."""
    return f"{PREFIX}number-usage:{_escape(number)}"


def reservation(pair_id_: str) -> str:
    """String with a TTL: the session id that reserved the pair while it is being created."""
    return f"{PREFIX}reservation:{pair_id_}"


def session(session_id: str) -> str:
    """Hash: one session's request, status, conversation, participants (JSON) and error."""
    return f"{PREFIX}session:{session_id}"


def session_lock(session_id: str) -> str:
    return f"{PREFIX}lock:session:{session_id}"


def conversation_session(sid: str) -> str:
    """String: the session whose conversation this is."""
    return f"{PREFIX}conv-session:{sid}"


def customer_latest(pool_name: str, address: str) -> str:
    """String: the id of the newest session in the pool that included the customer."""
    return f"{PREFIX}pool:{pool_name}:latest:{_escape(address)}"


def customer_sticky(pool_name: str, address: str) -> str:
    """String: the proxy number the customer was last given in the pool."""
    return f"{PREFIX}pool:{pool_name}:sticky:{_escape(address)}"


QUEUE_NAME = "bindery"
"""The RQ queue; RQ stores it as `rq:queue:bindery`."""


def out_of_session_lock(pool: str, address: str) -> str:
    """Lock of one customer in one pool while an out-of-session message is handled."""
    return f"{PREFIX}lock:oos:{pool}|{_escape(address)}"


def out_of_session_delivered(origin: str) -> str:
    """String with a TTL: the message an out-of-session job carried was posted (its SID)."""
    return f"{PREFIX}oos:delivered:{origin}"


def job_seen(job_id: str) -> str:
    """String with a TTL: a unique job id was enqueued within the de-duplication window
    (`workers/ingest.py`). The id is a 96-bit digest, so the key (29 bytes) fits Redis's smallest
    allocation for a key: about 72 bytes per job (`MEMORY USAGE`) instead of 104 with the id."""
    digest = hashlib.blake2b(job_id.encode(), digest_size=12).digest()
    return f"{PREFIX}seen:{base64.urlsafe_b64encode(digest).decode()}"
