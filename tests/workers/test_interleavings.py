"""Interleavings of everything that acts on conversations, run against the real decision code in
one process, with the invariants checked after every step.

A hypothesis state machine (`Interleavings`) plays the jobs Bindery runs (participant-adds, state
changes, post-events delivered in any order, twice or never, timers, the cleanup and its closes,
reconcile) as tasks that pause at every call they make to Twilio or Redis (see `world.py`), and
between any two of their steps lets the world act: customers text in (autocreating conversations),
SDK clients add participants (through Bindery's pre-event), other apps add, remove and close
behind Bindery's back, time passes and Twilio's own timers fire, leases run out. After every step:

1. **No duplicate binding attempted** (50416, 50437, 50433 answered to Bindery) beyond one per
   change Bindery could not know of: an add made behind its back with no webhook, or a job whose
   lease ran out while it held a lock.
2. **No accepted operation lost**: a job that ends `added`/`already_present` left the participant
   in Twilio, one that ends `conflict` names Twilio's real holder, a `changed` state is Twilio's
   state; a job fails only with a retryable error (retried) or because the conversation is closed
   at Twilio.
3. **No automatic close of a conversation that was not idle by Twilio's own facts**, as read by
   that job when it decided (a message that lands between the job's last read and its close is a
   race Twilio's API cannot exclude: counted, not failed).
4. **Closed is final, and true**: the ledger never calls a conversation closed that Twilio has
   open, and never re-opens one.

At the end every job is finished, every webhook still in flight delivered, a reconcile run, and
**the ledger must agree with Twilio** (states, pairs, members).

`make test` runs 1,500 examples (derandomized, so every run explores the same ones and a failure
replays); `BINDERY_INTERLEAVINGS=<n>` runs n with fresh randomness (`make soak`: 20,000). Its
figures are written to the file `BINDERY_INTERLEAVINGS_REPORT` names.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from emulator.errors import TwilioError as EmulatorError
from emulator.store import Origin, ParticipantSpec
from tests.workers.world import SERVICE_SID, Task, World, current_task
from workers import cleanup, errors, jobs, keys, reconcile, states, timers, waiters
from workers.participants import add_participant

CUSTOMERS = ("+15551230001", "+15551230002")
PROXIES = ("+15550001111", "+15550002222")
PAIRS = (
    (CUSTOMERS[0], PROXIES[0]),
    (CUSTOMERS[1], PROXIES[0]),
    (CUSTOMERS[0], PROXIES[1]),
)
IDENTITIES = ("agent-1", "agent-2")
WHO = tuple(("pair", *pair) for pair in PAIRS) + tuple(("identity", i, "") for i in IDENTITIES)
STALE_AFTER = 3600.0
CLOSE_INACTIVE_AFTER = 600.0
DUPLICATE_CODES = (
    errors.PAIR_HELD_ELSEWHERE,
    errors.PAIR_ALREADY_HERE,
    errors.IDENTITY_ALREADY_HERE,
)
AUTOMATIC = {"close-inactive": CLOSE_INACTIVE_AFTER, "close-stale": STALE_AFTER, "add": STALE_AFTER}

pytestmark = pytest.mark.interleavings

EXAMPLES = int(os.environ.get("BINDERY_INTERLEAVINGS", "0") or 0)
HEAD_START = st.integers(0, 12)
"""Steps a job takes as soon as it starts."""
FIGURES: Counter[str] = Counter()


@dataclass
class Job:
    """A Bindery job in the machine: what it was asked, and the task running it."""

    kind: str
    args: dict
    run: object
    started_tick: int
    task: Task = field(init=False)
    checked: bool = False


class Interleavings(RuleBasedStateMachine):
    LEDGER_MODE = "verify"
    """`trust` (a subclass): every change reaches Bindery, as that mode requires, so the world
    makes none behind its back and loses no webhook (late, twice and out of order still)."""

    def __init__(self):
        super().__init__()
        self.world = World(
            settings_overrides={
                "stale_after": STALE_AFTER,
                "close_inactive_after": CLOSE_INACTIVE_AFTER,
                "conflict_policy": "close-stale",
                "ledger_mode": self.LEDGER_MODE,
            }
        )
        self.store = self.world.store
        self.tick = 0
        self.jobs: list[Job] = []
        self.allowance = 0  # duplicate attempts Bindery could not have avoided
        self.touched: dict[str, int] = {}  # conversation SID or pair id -> last tick changed
        self.reads: dict[tuple[int, str], tuple[int, dict]] = {}  # (task, conversation) -> facts
        self.violations: list[str] = []
        self.ever_final: set[str] = set()
        self.slow_leavers: set[str] = (
            set()
        )  # jobs whose leaving their worker RQ takes its time over
        self.calls: dict[str, tuple[str, Callable[[], object], dict]] = {}
        """job id -> (kind, what it runs, its args) of each job a worker runs: what a wake reruns."""
        self.world.twilio.before_call = self._before_twilio_call
        FIGURES["examples"] += 1

    # -- set-up -----------------------------------------------------------------------------

    @initialize()
    def conversations(self):
        self.other_service = self.world.service()
        self.sids = [
            self.store.create_conversation(
                SERVICE_SID,
                origin=Origin.api(webhook_enabled=True),
                state="active",
                timer_inactive="PT10M" if n == 0 else None,
            ).sid
            for n in range(3)
        ]
        self.sids.append(
            self.store.create_conversation(
                self.other_service, origin=Origin.api(webhook_enabled=True)
            ).sid
        )
        for params in self.world.raw_webhooks:
            self.world.run_post_event(params)
        self.world.raw_webhooks.clear()
        if self.LEDGER_MODE == "trust":
            reconcile.run(self.world.rt)  # the full reconcile the trusting mode waits for

    @property
    def hidden(self) -> bool:
        """Whether the world may change Twilio behind Bindery's back."""
        return self.LEDGER_MODE == "verify"

    # -- Bindery's jobs -----------------------------------------------------------------------

    def _start(
        self, kind: str, run, head_start: int = 0, accepted_at: int | None = None, **args
    ) -> None:
        """A job (`accepted_at`: the tick its operation was accepted, for a retry)."""
        job = Job(kind, args, run, self.tick if accepted_at is None else accepted_at)
        job.task = self.world.start(f"{kind}-{len(self.jobs)}", run)
        self.jobs.append(job)
        FIGURES["jobs"] += 1
        # A few steps at once: a job is often well under way when the next thing happens.
        self._advance(job, head_start)

    def _advance(self, job: Job, steps: int) -> None:
        """Run a job `steps` steps; a job that ends is checked at once, before anything else
        (another job included) changes what its answer was about."""
        for _ in range(steps):
            if job.task.advance() == "done":
                self._check_finished()
                return
            FIGURES["steps"] += 1

    def _conversation(self, index: int) -> str:
        return self.sids[index % len(self.sids)]

    @rule(
        conversation=st.integers(0, 7),
        who=st.sampled_from(WHO),
        policy=st.sampled_from(["", "reject", "move", "close-stale", "reuse"]),
        head_start=HEAD_START,
        leaves_slowly=st.booleans(),
    )
    def app_adds(self, conversation, who, policy, head_start, leaves_slowly):
        sid = self._conversation(conversation)
        kind, first, second = who
        request = (
            {"identity": first}
            if kind == "identity"
            else {"address": first, "proxy_address": second}
        )
        args = {"conversation_sid": sid, "policy": policy, **request}
        job_id = f"add-{len(self.jobs)}"
        if leaves_slowly:
            self.slow_leavers.add(job_id)
        rt = self.world.rt
        self._start_in_worker("add", job_id, lambda: add_participant(rt, **args), args, head_start)

    def _start_in_worker(
        self,
        kind: str,
        job_id: str,
        call: Callable[[], object],
        args: dict,
        head_start: int = 0,
        accepted_at: int | None = None,
        waited_before: bool = False,
    ) -> None:
        """A job as a worker runs it (an add, a post-event, a state change, a queued timer): it
        may wait in a busy lock's line; then RQ schedules it (as it leaves the worker, or, for a
        slow leaver, whenever the machine says), and a holder wakes it or its fallback runs it."""
        self.calls[job_id] = (kind, call, args)
        self.world.waiting.started(job_id, args)
        run = self._in_worker(job_id, call, waited_before)
        self._start(kind, run, head_start, accepted_at=accepted_at, job_id=job_id, **args)

    def _in_worker(self, job_id: str, call: Callable[[], object], waited_before: bool):
        waiting = self.world.waiting
        schedule = job_id not in self.slow_leavers

        def run():
            with waiters.waiting_as(job_id, waited_before):
                try:
                    outcome = call()
                except waiters.Parked:
                    waiting.ended(job_id, waited=True, schedule=schedule)
                    raise
                waiting.ended(job_id, waited=False)
                return outcome

        return run

    @rule(
        conversation=st.integers(0, 7),
        state=st.sampled_from(states.STATES),
        late=st.booleans(),
        head_start=HEAD_START,
    )
    def app_changes_state(self, conversation, state, late, head_start):
        sid = self._conversation(conversation)
        at = self.world.clock.epoch() - (120 if late else 0)
        rt = self.world.rt
        args = {"conversation_sid": sid, "state": state}
        call = lambda: states.change_state(rt, sid, state, at)  # noqa: E731
        self._start_in_worker("state", f"state-{len(self.jobs)}", call, args, head_start)

    @rule(head_start=HEAD_START)
    def clock_runs_cleanup(self, head_start):
        rt = self.world.rt
        self._start("cleanup-scan", lambda: cleanup.run(rt), head_start)

    @rule(head_start=HEAD_START)
    def clock_runs_reconcile(self, head_start):
        rt = self.world.rt
        self._start("reconcile", lambda: reconcile.run(rt), head_start)

    @precondition(lambda self: self.world.queue.jobs)
    @rule(index=st.integers(0, 50), head_start=HEAD_START)
    def a_queued_job_runs(self, index, head_start):
        queued = self.world.queue.jobs.pop(index % len(self.world.queue.jobs))
        handler = jobs.handler(queued.function)
        kind = {
            timers.close_if_inactive: "close-inactive",
            cleanup.close_if_stale: "close-stale",
        }.get(handler, "add")
        rt, job_id = self.world.rt, f"{kind}-{len(self.jobs)}"
        call = lambda: handler(rt, **queued.kwargs)  # noqa: E731
        self._start_in_worker(kind, job_id, call, dict(queued.kwargs), head_start)

    @precondition(lambda self: self.world.raw_webhooks)
    @rule(index=st.integers(0, 50), twice=st.booleans(), head_start=HEAD_START)
    def a_webhook_arrives(self, index, twice, head_start):
        """Delivered in any order (the index), and sometimes twice."""
        hooks = self.world.raw_webhooks
        params = hooks[index % len(hooks)] if twice else hooks.pop(index % len(hooks))
        job = self.world.post_event_job(params)
        if job is None:
            return
        function, kwargs = job
        handler, rt = jobs.handler(function), self.world.rt
        job_id = f"post-event-{len(self.jobs)}"
        call = lambda: handler(rt, **kwargs)  # noqa: E731
        self._start_in_worker("post-event", job_id, call, kwargs, head_start)

    @precondition(lambda self: self.world.raw_webhooks and self.hidden)
    @rule(index=st.integers(0, 50))
    def a_webhook_is_lost(self, index):
        hooks = self.world.raw_webhooks
        hooks.pop(index % len(hooks))
        FIGURES["webhooks_lost"] += 1

    @precondition(lambda self: any(not j.task.done for j in self.jobs))
    @rule(index=st.integers(0, 50), steps=st.integers(1, 8))
    def a_job_steps(self, index, steps):
        live = [j for j in self.jobs if not j.task.done]
        self._advance(live[index % len(live)], steps)

    @precondition(lambda self: any(not j.task.done for j in self.jobs))
    @rule(index=st.integers(0, 50))
    def a_job_runs_to_its_end(self, index):
        """A holder lets go while others wait: what wakes the first in its line."""
        live = [j for j in self.jobs if not j.task.done]
        self._advance(live[index % len(live)], 100_000)

    @precondition(lambda self: any(not j.task.done for j in self.jobs))
    @rule(steps=st.integers(1, 3))
    def every_job_steps(self, steps):
        """Round robin: each live job a few steps, the closest interleaving of all."""
        for job in [j for j in self.jobs if not j.task.done]:
            self._advance(job, steps)

    @precondition(lambda self: any(self._retryable(j) for j in self.jobs))
    @rule(index=st.integers(0, 50))
    def rq_retries_a_job(self, index):
        failed = [j for j in self.jobs if self._retryable(j)]
        job = failed[index % len(failed)]
        job.checked = True
        self._start(job.kind, job.run, accepted_at=job.started_tick, **job.args)

    @staticmethod
    def _retryable(job: Job) -> bool:
        return job.task.done and isinstance(job.task.error, errors.Retryable) and not job.checked

    # -- jobs waiting in a busy lock's line (RQ's part: `world.WaitingJobs`) ----------------------

    @precondition(lambda self: self.world.waiting.leaving)
    @rule(index=st.integers(0, 50))
    def rq_schedules_a_job_that_left_its_worker(self, index):
        leaving = self.world.waiting.leaving
        self.world.waiting.schedule(leaving[index % len(leaving)])

    @precondition(lambda self: self.world.waiting.woken())
    @rule(head_start=HEAD_START)
    def a_worker_runs_a_woken_job(self, head_start):
        job_id = self.world.waiting.woken()[0]  # the front of the queue
        self.world.waiting.take_woken(job_id)
        self._rerun_waiting(job_id, head_start)
        FIGURES["woken_runs"] += 1

    @precondition(lambda self: self.world.waiting.scheduled())
    @rule(index=st.integers(0, 50), head_start=HEAD_START)
    def a_waiting_jobs_fallback_runs_it(self, index, head_start):
        scheduled = self.world.waiting.scheduled()
        job_id = scheduled[index % len(scheduled)]
        self.world.waiting.fallback(job_id)
        self._rerun_waiting(job_id, head_start)
        FIGURES["fallback_runs"] += 1

    def _rerun_waiting(self, job_id: str, head_start: int = 0) -> None:
        first = next(j for j in self.jobs if j.args.get("job_id") == job_id)
        kind, call, args = self.calls[job_id]
        self._start_in_worker(
            kind, job_id, call, args, head_start, accepted_at=first.started_tick, waited_before=True
        )

    @invariant()
    def a_waiting_job_is_never_lost_nor_run_twice(self):
        waiting = self.world.waiting
        live = Counter(
            j.args["job_id"] for j in self.jobs if "job_id" in j.args and not j.task.done
        )
        queued, scheduled = Counter(waiting.woken()), set(waiting.scheduled())
        assert all(n == 1 for n in live.values()), live
        assert all(n == 1 for n in queued.values()), queued
        for job in self.jobs:
            if not (job.task.done and isinstance(job.task.error, waiters.Parked)):
                continue
            job_id = job.args["job_id"]
            places = (
                (job_id in waiting.leaving) + (job_id in scheduled) + queued[job_id] + live[job_id]
            )
            rerun = any(
                j.args.get("job_id") == job_id for j in self.jobs[self.jobs.index(job) + 1 :]
            )
            assert places == 1 or (rerun and places == 0), (job_id, places)

    # -- the world ----------------------------------------------------------------------------

    def _touch(self, *names: str) -> None:
        self.tick += 1
        for name in names:
            self.touched[name] = self.tick

    @rule(pair=st.sampled_from(PAIRS), body=st.sampled_from(["hi", "still there?"]))
    def a_customer_texts(self, pair, body):
        address, proxy = pair
        result = self.world.receive(address, proxy, body)  # pre-events through Bindery's web app
        if result.created:
            self.sids.append(result.conversation_sid)
        self._touch(result.conversation_sid, keys.pair_id(address, proxy))

    @rule(conversation=st.integers(0, 7), who=st.sampled_from(WHO))
    def an_sdk_client_adds(self, conversation, who):
        sid = self._conversation(conversation)
        kind, first, second = who
        spec = (
            {"identity": first}
            if kind == "identity"
            else {"address": first, "proxy_address": second}
        )
        with contextlib.suppress(EmulatorError):  # Twilio may refuse the SDK's add: no change
            self.world.sdk_add(sid, **spec)
        self._touch(sid, keys.pair_id(first, second) if second else first)

    @precondition(lambda self: self.hidden)
    @rule(conversation=st.integers(0, 7), who=st.sampled_from(WHO))
    def another_app_adds_behind_the_back(self, conversation, who):
        sid = self._conversation(conversation)
        kind, first, second = who
        spec = (
            {"identity": first}
            if kind == "identity"
            else {"address": first, "proxy_address": second}
        )
        service = self.store.find_conversation(sid).service_sid
        try:
            self.store.add_participant(
                service, sid, ParticipantSpec(**spec), origin=Origin.api(False)
            )
        except EmulatorError:
            return
        self.allowance += 1
        self._touch(sid, keys.pair_id(first, second) if second else first)
        FIGURES["hidden_changes"] += 1

    @rule(conversation=st.integers(0, 7), which=st.integers(0, 5), webhooks=st.booleans())
    def another_app_removes(self, conversation, which, webhooks):
        webhooks = webhooks or not self.hidden
        sid = self._conversation(conversation)
        conversation_ = self.store.find_conversation(sid)
        participants = self.store.list_participants(conversation_.service_sid, sid)
        if not participants or conversation_.state == "closed":
            return
        participant = participants[which % len(participants)]
        self.store.remove_participant(
            conversation_.service_sid, sid, participant.sid, origin=Origin.api(webhooks)
        )
        pair = participant.binding.pair if participant.binding else None
        self._touch(sid, keys.pair_id(*pair) if pair else participant.identity or "")
        FIGURES["hidden_changes" if not webhooks else "announced_changes"] += 1

    @rule(conversation=st.integers(0, 7), webhooks=st.booleans())
    def another_app_closes(self, conversation, webhooks):
        webhooks = webhooks or not self.hidden
        sid = self._conversation(conversation)
        conversation_ = self.store.find_conversation(sid)
        if conversation_.state == "closed":
            return
        pairs = [
            keys.pair_id(*p.binding.pair)
            for p in self.store.list_participants(conversation_.service_sid, sid)
            if p.binding
        ]
        self.store.update_conversation(
            conversation_.service_sid, sid, state="closed", origin=Origin.api(webhooks)
        )
        self._touch(sid, *pairs)  # closing lets its pairs go

    @rule(conversation=st.integers(0, 7))
    def an_agent_writes(self, conversation):
        sid = self._conversation(conversation)
        conversation_ = self.store.find_conversation(sid)
        if conversation_.state == "closed":
            return
        self.store.add_message(
            conversation_.service_sid,
            sid,
            author="agent-1",
            body="hello",
            attributes=None,
            origin=Origin.sdk("agent-1"),
        )
        self._touch(sid)

    @rule(seconds=st.sampled_from([1, 30, 700, 4000]))
    def time_passes(self, seconds):
        self.world.advance(seconds)
        self._touch()

    @rule()
    def leases_run_out(self):
        """Every lock's lease expires (processes stalled): each job holding one may now meet a
        duplicate it could not have avoided."""
        held = self.world.redis.keys(keys.conversation_lock("*")) + self.world.redis.keys(
            keys.pair_lock("*")
        )
        if not held:
            return
        holders = sum(1 for j in self.jobs if not j.task.done and j.task.history)
        self.allowance += holders
        self.world.redis.delete(*held)
        FIGURES["lease_expiries"] += 1

    # -- what is checked ----------------------------------------------------------------------

    def _before_twilio_call(self, operation: str, args: tuple, kwargs: dict) -> None:
        task = current_task()
        if task is None:
            return
        job = next(j for j in self.jobs if j.task is task)
        if operation in ("conversation.fetch", "message.list"):
            service, sid = args[0], args[1]
            with contextlib.suppress(EmulatorError):
                self.reads[(id(task), sid)] = (self.tick, self._facts(service, sid))
        if operation == "conversation.update" and kwargs.get("state") == "closed":
            self._check_close(job, task, args[0], args[1])

    def _facts(self, service: str, sid: str) -> dict:
        conversation = self.store.get_conversation(service, sid)
        messages = self.store.list_messages(service, sid)
        last = max(
            conversation.date_updated.timestamp(),
            conversation.date_created.timestamp(),
            messages[-1].date_created.timestamp() if messages else 0.0,
        )
        return {"state": conversation.state, "last_activity": last}

    def _check_close(self, job: Job, task: Task, service: str, sid: str) -> None:
        if self._twilio_state(sid) == "closed":
            return  # closed meanwhile by someone else: this close changes nothing (a 50377)
        limit = AUTOMATIC.get(job.kind)
        if limit is None or (
            job.kind == "add" and job.args.get("policy", "") not in ("", "close-stale")
        ):
            return  # asked for by the app (a state change), or a policy that does not close
        read = self.reads.get((id(task), sid))
        if read is None:
            self.violations.append(f"{job.kind} closed {sid} without reading Twilio's facts")
            return
        read_tick, facts = read
        idle = self.world.clock.epoch() - facts["last_activity"]
        if idle < limit:
            self.violations.append(f"{job.kind} closed {sid}, idle {idle:.0f}s < {limit:.0f}s")
        if job.kind == "close-inactive" and facts["state"] != "inactive":
            self.violations.append(f"the inactive timer closed {sid}, which was {facts['state']}")
        if self.touched.get(sid, -1) > read_tick:
            FIGURES["closes_racing_activity"] += 1

    def _check_finished(self) -> None:
        for job in self.jobs:
            if job.task.done and not job.checked and not self._retryable(job):
                job.checked = True
                self._check_outcome(job)

    def _check_outcome(self, job: Job) -> None:
        error, outcome = job.task.error, job.task.result
        sid = job.args.get("conversation_sid", "")
        if isinstance(error, waiters.Parked):
            FIGURES["waits_in_line"] += 1
            return  # in the line; RQ runs it again (woken, or at its fallback)
        if error is not None:
            if isinstance(error, errors.ConversationClosed):
                if self._twilio_state(sid) not in ("closed", None):
                    self.violations.append(f"{job.kind} said {sid} is closed; Twilio has it open")
            elif not isinstance(error, errors.Retryable):
                self.violations.append(f"{job.kind} failed: {error!r}")
            return
        FIGURES[f"outcome:{outcome.get('outcome') if isinstance(outcome, dict) else 'done'}"] += 1
        if job.kind != "add" or not isinstance(outcome, dict):
            return
        names = [sid, self._subject(job)]
        if any(self.touched.get(name, -1) >= job.started_tick for name in names):
            return  # the world changed it meanwhile: the answer was true when given
        if self.LEDGER_MODE == "trust" and self._in_flight(sid):
            return  # trusting: the ledger is as good as the post-events delivered so far
        result = outcome["outcome"]
        present = self._present(sid, job.args)
        if result in ("added", "already_present") and not present:
            self.violations.append(f"{job.kind} answered {result}; Twilio lacks it: {job.args}")
        if result == "conflict":
            holder = self._holder(job.args)
            if holder != outcome["holder"]:
                self.violations.append(
                    f"conflict with {outcome['holder']}; Twilio's holder {holder}"
                )

    def _in_flight(self, sid: str) -> bool:
        """A post-event of the conversation not yet applied (undelivered, or its job running)."""
        if any(params.get("ConversationSid") == sid for params in self.world.raw_webhooks):
            return True
        return any(
            j.kind == "post-event" and not j.task.done and j.args.get("conversation_sid") == sid
            for j in self.jobs
        )

    def _subject(self, job: Job) -> str:
        if job.args.get("identity"):
            return job.args["identity"]
        return keys.pair_id(job.args.get("address", ""), job.args.get("proxy_address", ""))

    def _twilio_state(self, sid: str) -> str | None:
        try:
            return self.store.find_conversation(sid).state
        except EmulatorError:
            return None

    def _present(self, sid: str, args: dict) -> bool:
        conversation = self.store.find_conversation(sid)
        for p in self.store.list_participants(conversation.service_sid, sid):
            if args.get("identity") and p.identity == args["identity"]:
                return True
            if p.binding and p.binding.pair == (args.get("address"), args.get("proxy_address")):
                return True
        return False

    def _holder(self, args: dict) -> str | None:
        held = self.store.holder_of(args["address"], args["proxy_address"])
        return held[0].sid if held else None

    @invariant()
    def no_avoidable_duplicate_attempt(self):
        attempts = sum(self.world.twilio.errors[code] for code in DUPLICATE_CODES)
        assert attempts <= self.allowance, (
            f"{attempts} duplicate attempts, {self.allowance} unavoidable"
        )

    @invariant()
    def nothing_lost_and_nothing_closed_busy(self):
        self._check_finished()
        assert not self.violations, self.violations

    @invariant()
    def closed_is_final_and_true(self):
        for sid in self.sids:
            record = self.world.rt.ledger.conversation(sid)
            if record.final:
                self.ever_final.add(sid)
                assert self._twilio_state(sid) in ("closed", None), (
                    f"ledger closed {sid}, Twilio open"
                )
            else:
                assert sid not in self.ever_final, f"ledger re-opened {sid}"

    # -- the end ------------------------------------------------------------------------------

    def teardown(self):
        try:
            if not self.violations:
                self._settle()
                self._agree()
        finally:
            self.world.close()

    def _settle(self) -> None:
        for _ in range(20):
            for job in list(self.jobs):
                self._advance(job, 100_000)
            retry = [j for j in self.jobs if self._retryable(j)]
            for job in retry:
                job.checked = True
                self._start(job.kind, job.run, accepted_at=job.started_tick, **job.args)
            waiting = self.world.waiting
            for job_id in list(waiting.leaving):
                waiting.schedule(job_id)
            for job_id in waiting.woken():
                waiting.take_woken(job_id)
                self._rerun_waiting(job_id)
                FIGURES["woken_runs_at_the_end"] += 1
            for job_id in waiting.scheduled():
                waiting.fallback(job_id)
                self._rerun_waiting(job_id)
                FIGURES["fallback_runs_at_the_end"] += 1
            if not retry and all(j.task.done for j in self.jobs):
                break
        assert not self.violations, self.violations
        while self.world.raw_webhooks:
            job = self.world.post_event_job(self.world.raw_webhooks.pop(0))
            if job is not None:
                function, kwargs = job
                jobs.handler(function)(self.world.rt, **kwargs)
        for _ in range(5):
            try:
                reconcile.run(self.world.rt)
                break
            except errors.Retryable:
                continue
        FIGURES["reconciles_at_the_end"] += 1

    def _agree(self) -> None:
        """After a reconcile, the ledger is Twilio's state."""
        ledger = self.world.rt.ledger
        for service in (SERVICE_SID, self.other_service):
            for conversation in self.store.list_conversations(service):
                sid = conversation.sid
                record = ledger.conversation(sid)
                if conversation.state == "closed":
                    assert record.final or not record.known, (sid, record.state)
                    assert not ledger.pairs_of(sid), sid
                    continue
                assert record.state == conversation.state, (sid, record.state, conversation.state)
                participants = self.store.list_participants(service, sid)
                pairs = {keys.pair_id(*p.binding.pair) for p in participants if p.binding}
                assert ledger.pairs_of(sid) == pairs, sid
                for pair in pairs:
                    assert ledger.pair(pair).holder == sid, pair
                identities = {p.identity for p in participants if p.identity}
                assert ledger.identities_of(sid) == identities, sid
        FIGURES["agreements_checked"] += 1


Interleavings.TestCase.settings = settings(
    max_examples=EXAMPLES or 1500,
    stateful_step_count=40,
    deadline=None,
    derandomize=not EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class TrustingInterleavings(Interleavings):
    LEDGER_MODE = "trust"


TrustingInterleavings.TestCase.settings = settings(
    Interleavings.TestCase.settings, max_examples=EXAMPLES or 500
)


class TestTrustingInterleavings(TrustingInterleavings.TestCase):
    pass


class TestInterleavings(Interleavings.TestCase):
    @classmethod
    def tearDownClass(cls):
        report = os.environ.get("BINDERY_INTERLEAVINGS_REPORT")
        if report:
            FIGURES["written_at"] = int(time.time())
            with open(report, "w") as out:
                json.dump(dict(sorted(FIGURES.items())), out, indent=2)
        super().tearDownClass()
