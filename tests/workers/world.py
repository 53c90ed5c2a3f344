"""An in-process world for the decision code: Twilio (the emulator's own Store behind the gateway's
interface), Redis (fakeredis), a manual clock, captured webhooks, and a scheduler that pauses a job
at every call it makes to Twilio or Redis, so a test can act between any two steps.

Nothing here patches the code under test: the gateway, the Redis connection, the clock and the
queue are the seams `Runtime` takes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import fakeredis
from redis.client import Pipeline
from rq import Queue
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from emulator import sids
from emulator.errors import TwilioError as EmulatorError
from emulator.store import Origin, ParticipantSpec, Store
from emulator.webhooks import PreOutcome
from webhooks import payloads
from workers import gateway, jobs, keys, waiters
from workers.errors import classify
from workers.runtime import Runtime
from workers.settings import Settings

ACCOUNT_SID = "AC" + "0" * 32
SERVICE_SID = "IS" + "1" * 32
MESSAGING_SERVICE_SID = "MG" + "2" * 32
EPOCH = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)

# -- pausing ------------------------------------------------------------------------------------

_current = threading.local()


class Aborted(BaseException):
    """Raised inside a job the test abandons (a BaseException, so the job's handlers let it by)."""


def current_task() -> Task | None:
    """The job whose thread this is (None for the test itself)."""
    return getattr(_current, "task", None)


def step(label: str) -> None:
    """A seam call is about to happen: a job run by the scheduler pauses here; anything else
    (the test itself) goes straight on."""
    task = getattr(_current, "task", None)
    if task is not None:
        task.pause(label)


class Task:
    """One job, run in its own thread but only while the test lets it: `advance()` runs it to its
    next seam call (or to its end)."""

    def __init__(self, name: str, fn: Callable[[], object]):
        self.name = name
        self.fn = fn
        self.at = "start"
        self.done = False
        self.result: object = None
        self.error: BaseException | None = None
        self.history: list[str] = []
        self._go = threading.Semaphore(0)
        self._back = threading.Semaphore(0)
        self._aborted = False
        self._thread = threading.Thread(target=self._run, name=f"task-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _current.task = self
        self._go.acquire()
        try:
            if not self._aborted:
                self.result = self.fn()
        except Aborted:
            pass
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            self.error = error
        finally:
            self.done = True
            self.at = "done"
            self._back.release()

    def pause(self, label: str) -> None:
        if self._aborted:
            return
        self.at = label
        self.history.append(label)
        self._back.release()
        self._go.acquire()
        if self._aborted:
            raise Aborted()

    def advance(self) -> str:
        """Run to the next pause; returns where it stopped (`done` at the end)."""
        if self.done:
            return "done"
        self._go.release()
        self._back.acquire()
        return self.at

    def run_until(self, *labels: str, occurrence: int = 1, limit: int = 10_000) -> None:
        """Advance until the job is about to make one of the calls `labels` (such as
        `twilio:participant.create` or `redis:HSET`) for the `occurrence`-th time; AssertionError
        if it ends first."""
        for _ in range(limit):
            if self.at in labels and self.history.count(self.at) >= occurrence:
                return
            if self.advance() == "done":
                raise AssertionError(
                    f"{self.name} ended without reaching {labels}: {self.outcome()}"
                )
        raise AssertionError(f"{self.name} did not reach {labels}")

    def run_past(self, label: str, limit: int = 10_000) -> None:
        """Advance until the job has made the call `label` (once or several times in a row) and is
        about to make another kind of call."""
        for _ in range(limit):
            if label in self.history and self.at != label:
                return
            if self.advance() == "done":
                return
        raise AssertionError(f"{self.name} did not get past {label}")

    def finish(self, limit: int = 100_000) -> object:
        for _ in range(limit):
            if self.advance() == "done":
                return self.outcome()
        raise AssertionError(f"{self.name} did not finish")

    def outcome(self) -> object:
        if self.error is not None:
            return self.error
        return self.result

    def abort(self) -> None:
        if self.done:
            return
        self._aborted = True
        self._go.release()
        self._thread.join(10)


class SteppingRedis(fakeredis.FakeRedis):
    """fakeredis whose every command (and every pipeline) is a step."""

    def execute_command(self, *args, **options):
        step(f"redis:{args[0]}")
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):
        return SteppingPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class SteppingPipeline(Pipeline):
    def execute(self, raise_on_error: bool = True):
        step("redis:pipeline")
        return super().execute(raise_on_error)


# -- Twilio --------------------------------------------------------------------------------------


class ManualClock:
    """Twilio's clock in the world: moves only when the test says (whole seconds, as Twilio's dates)."""

    def __init__(self, start: datetime = EPOCH):
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)

    def epoch(self) -> float:
        return self.moment.timestamp()


def _epoch(moment: datetime | None) -> float:
    return moment.timestamp() if moment else 0.0


class RuntimeClock:
    """The world's clock as the runtime reads it: epoch seconds on Twilio's clock."""

    def __init__(self, clock: ManualClock):
        self.clock = clock

    def now(self) -> float:
        return self.clock.epoch()

    def from_host(self, host_time: float) -> float:
        return host_time + (self.clock.epoch() - time.time())

    def publish(self, connection, force: bool = False) -> None:
        pass  # one process: nothing to share


def _conversation(c) -> gateway.Conversation:
    return gateway.Conversation(
        c.sid, c.state, _epoch(c.date_created), _epoch(c.date_updated), c.service_sid
    )


class TwilioStandIn:
    """The emulator's Store behind the gateway's interface, working in one service. Every call is
    a step, is counted by operation and by error code, and fails as the real gateway fails (the
    same `workers.errors.classify` of Twilio's codes)."""

    def __init__(self, store: Store, service_sid: str):
        self.store = store
        self.service_sid = service_sid
        self.calls: Counter[str] = Counter()
        self.errors: Counter[int] = Counter()
        self.origin = Origin.api(webhook_enabled=False)
        self.before_call: Callable[[str, tuple, dict], None] | None = None
        """Called (by the test) before each call reaches the Store: (operation, args, kwargs)."""

    def _call(self, operation: str, fn, *args, **kwargs):
        step(f"twilio:{operation}")
        self.calls[operation] += 1
        if self.before_call is not None:
            self.before_call(operation, args, kwargs)
        try:
            return fn(*args, **kwargs)
        except EmulatorError as error:
            self.errors[error.code] += 1
            raise classify(error.code, error.status, error.message, operation) from None

    def _scope(self, service_sid: str) -> str:
        return service_sid or self.service_sid

    def services(self, fresh: bool = False) -> list[str]:
        return [s.sid for s in self._call("service.list", self.store.list_services)]

    def fetch_conversation(self, sid: str, service_sid: str = "") -> gateway.Conversation:
        return _conversation(
            self._call(
                "conversation.fetch", self.store.get_conversation, self._scope(service_sid), sid
            )
        )

    def create_conversation(
        self,
        unique_name: str = "",
        friendly_name: str = "",
        timers_closed: str = "",
        attributes: str = "",
        service_sid: str = "",
    ) -> gateway.Conversation:
        c = self._call(
            "conversation.create",
            self.store.create_conversation,
            self._scope(service_sid),
            unique_name=unique_name or None,
            friendly_name=friendly_name or None,
            attributes=attributes or None,
            state="active",
            timer_closed=timers_closed or None,
            origin=self.origin,
        )
        return _conversation(c)

    def set_state(self, sid: str, state: str, service_sid: str = "") -> gateway.Conversation:
        c = self._call(
            "conversation.update",
            self.store.update_conversation,
            self._scope(service_sid),
            sid,
            state=state,
            origin=self.origin,
        )
        return _conversation(c)

    def conversations(self, state: str, service_sid: str = "", page_size: int = 100):
        found = self._call(
            "conversation.list",
            self.store.list_conversations,
            self._scope(service_sid),
            state=state,
        )
        for start in range(0, len(found), page_size):
            if start:
                step("twilio:conversation.list")  # the next page is another call
            for c in found[start : start + page_size]:
                yield _conversation(c)

    def last_message_at(self, sid: str, service_sid: str = "") -> float:
        messages = self._call(
            "message.list", self.store.list_messages, self._scope(service_sid), sid
        )
        return _epoch(messages[-1].date_created) if messages else 0.0

    def send_message(
        self, sid: str, author: str, body: str, attributes: str = "", service_sid: str = ""
    ) -> str:
        message = self._call(
            "message.create",
            self.store.add_message,
            self._scope(service_sid),
            sid,
            author=author,
            body=body,
            attributes=attributes or None,
            origin=Origin.api(True),
        )
        return message.sid

    def participants(
        self, conversation_sid: str, service_sid: str = ""
    ) -> list[gateway.Participant]:
        items = self._call(
            "participant.list",
            self.store.list_participants,
            self._scope(service_sid),
            conversation_sid,
        )
        return [self._participant(p) for p in items]

    def add_chat_participant(
        self,
        conversation_sid: str,
        identity: str,
        service_sid: str = "",
        projected_address: str = "",
    ) -> gateway.Participant:
        spec = ParticipantSpec(identity=identity, projected_address=projected_address or None)
        return self._add(conversation_sid, spec, service_sid)

    def add_sms_participant(
        self, conversation_sid: str, address: str, proxy_address: str, service_sid: str = ""
    ) -> gateway.Participant:
        spec = ParticipantSpec(address=address, proxy_address=proxy_address or None)
        return self._add(conversation_sid, spec, service_sid)

    def _add(self, conversation_sid: str, spec: ParticipantSpec, service_sid: str):
        p = self._call(
            "participant.create",
            self.store.add_participant,
            self._scope(service_sid),
            conversation_sid,
            spec,
            origin=self.origin,
        )
        return self._participant(p)

    def remove_participant(
        self, conversation_sid: str, participant_sid: str, service_sid: str = ""
    ) -> None:
        self._call(
            "participant.delete",
            self.store.remove_participant,
            self._scope(service_sid),
            conversation_sid,
            participant_sid,
            origin=self.origin,
        )

    def holdings(
        self, address: str, proxy_address: str, fresh: bool = False
    ) -> list[gateway.Holding]:
        found = []
        for service in self.services(fresh):
            items = self._call(
                "participant_conversation.list",
                self.store.participant_conversations,
                service,
                address=address,
            )
            for participant, conversation in items:
                binding = participant.binding
                if binding is None or binding.proxy_address != proxy_address:
                    continue
                if conversation.state == "closed":
                    continue
                found.append(
                    gateway.Holding(
                        conversation_sid=conversation.sid,
                        state=conversation.state,
                        participant_sid=participant.sid,
                        address=binding.address,
                        proxy_address=binding.proxy_address,
                        date_updated=_epoch(conversation.date_updated),
                        service_sid=conversation.service_sid,
                    )
                )
        return found

    @staticmethod
    def _participant(p) -> gateway.Participant:
        binding = p.binding
        return gateway.Participant(
            sid=p.sid,
            conversation_sid=p.conversation_sid,
            identity=p.identity or "",
            address=binding.address if binding else "",
            proxy_address=binding.proxy_address if binding else "",
            projected_address=(binding.projected_address if binding else p.projected_address) or "",
            date_created=_epoch(p.date_created),
        )


# -- the queue -----------------------------------------------------------------------------------


@dataclass
class Enqueued:
    function: str
    kwargs: dict
    kind: str
    job_id: str
    delay: float


@dataclass
class _JobRef:
    id: str


class RecordingQueue:
    """What jobs enqueue, kept for the test to run (unique by job id, as RQ's unique enqueue)."""

    def __init__(self):
        self.jobs: list[Enqueued] = []
        self._ids = itertools.count(1)

    def enqueue(self, function, kwargs, *, kind, job_id=None, delay=0, meta=None, timeout=None):
        job_id = job_id or f"job-{next(self._ids)}"
        if any(j.job_id == job_id for j in self.jobs):
            return _JobRef(job_id), False
        self.jobs.append(Enqueued(function, dict(kwargs), kind, job_id, delay))
        return _JobRef(job_id), True

    def take(self, kind: str = "") -> list[Enqueued]:
        taken = [j for j in self.jobs if not kind or j.kind == kind]
        self.jobs = [j for j in self.jobs if j not in taken]
        return taken


class WaitingJobs:
    """RQ's part in a job's wait for a busy lock, on the world's Redis: the job's RQ record (so
    the holder's wake, `workers.waiters.Waker`, works on it as on a worker's), its scheduling
    once it left its worker (what RQ does with the `rq.Retry` it returned), the queue a woken job
    is moved to, and its fallback. The test decides when each happens."""

    def __init__(self, connection, lock_ttl: float):
        self.redis = connection
        self.rq = Queue(keys.QUEUE_NAME, connection=connection, serializer=JSONSerializer)
        self.lock_ttl = lock_ttl
        self.leaving: list[str] = []
        """Jobs that joined a line and are leaving their worker: not scheduled yet."""
        self.known: set[str] = set()
        """The jobs run as a worker runs them (the web app's own enqueues land in RQ's queue too,
        and are not run here)."""

    def started(self, job_id: str, kwargs: dict) -> None:
        """A job runs (first, woken or at its fallback): RQ's record says so."""
        self.known.add(job_id)
        if not self.redis.exists(RQJob.key_for(job_id)):
            RQJob.create(
                "workers.jobs.participant_add",
                kwargs=kwargs,
                id=job_id,
                connection=self.redis,
                serializer=JSONSerializer,
                origin=keys.QUEUE_NAME,
            ).save()
        RQJob.fetch(job_id, self.redis, serializer=JSONSerializer).set_status(JobStatus.STARTED)

    def ended(self, job_id: str, waited: bool, schedule: bool = True) -> None:
        """A run ended; one that joined a line is scheduled by RQ as it leaves the worker (at once,
        as further steps of the same job, or, with `schedule` False, when the test says)."""
        if waited:
            self.leaving.append(job_id)
            if schedule:
                self.schedule(job_id)
        else:
            job = RQJob.fetch(job_id, self.redis, serializer=JSONSerializer)
            job.set_status(JobStatus.FINISHED)

    def schedule(self, job_id: str) -> None:
        """RQ schedules a job that left its worker, at its fallback."""
        self.leaving.remove(job_id)
        job = RQJob.fetch(job_id, self.redis, serializer=JSONSerializer)
        due = datetime.now(UTC) + timedelta(seconds=waiters.fallback_after(self.lock_ttl))
        job.set_status(JobStatus.SCHEDULED)
        self.rq.schedule_job(job, due)

    def woken(self) -> list[str]:
        """The jobs a holder moved to the queue, in the order workers would take them."""
        return [job_id for job_id in self.rq.get_job_ids() if job_id in self.known]

    def take_woken(self, job_id: str) -> None:
        self.redis.lrem(self.rq.key, 1, job_id)

    def scheduled(self) -> list[str]:
        return [j for j in self.rq.scheduled_job_registry.get_job_ids() if j in self.known]

    def fallback(self, job_id: str) -> None:
        """RQ's scheduler runs a waiting job nobody woke (early: the test's clock is not RQ's)."""
        self.rq.scheduled_job_registry.remove(job_id)

    def lines(self) -> dict[str, list[str]]:
        found = {}
        for key in self.redis.keys(keys.lock_line("*")):
            name = key.decode()
            found[name] = [j.decode() for j in self.redis.lrange(name, 0, -1)]
        return found


# -- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    """Twilio, Redis, the clock and the queue of one test, and the runtime a job gets."""

    settings_overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        sids.reproducible(1)  # the same SIDs every time: a run that orders by SID replays
        self.clock = ManualClock()
        self.raw_webhooks: list[dict] = []
        self.store = Store(
            self.clock, ACCOUNT_SID, SERVICE_SID, MESSAGING_SERVICE_SID, publish=self._capture
        )
        self.redis = SteppingRedis(server=fakeredis.FakeServer())
        values = dict(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token="world-token",  # noqa: S106 - a test value
            api_token="world-api-token",  # noqa: S106
            lock_ttl=3600.0,  # leases run out only when a test says so
            lock_wait=0.0,  # a busy lock fails the attempt at once (RQ retries it later)
            reconcile_concurrency=1,  # a job's steps are paused one at a time
        )
        values.update(self.settings_overrides)
        self.settings = Settings(**values)
        self.twilio = TwilioStandIn(self.store, SERVICE_SID)
        self.queue = RecordingQueue()
        self.rt = Runtime.build(
            self.settings,
            self.redis,
            twilio=self.twilio,
            queue=self.queue,
            clock=RuntimeClock(self.clock),
            renew_locks=False,
        )
        self.tasks: list[Task] = []
        self.waiting = WaitingJobs(self.redis, self.settings.lock_ttl)

    # -- what Twilio does on its own, and what people do behind Bindery's back --------------

    def _capture(self, event) -> None:
        if event.origin.post_events:
            self.raw_webhooks.append(event.params)

    def conversation(
        self, service_sid: str = SERVICE_SID, webhooks: bool = False, **options
    ) -> str:
        """A conversation created through the REST API (with `webhooks`, as with
        X-Twilio-Webhook-Enabled: true; else, as Twilio does, no webhook)."""
        return self.store.create_conversation(
            service_sid, origin=Origin.api(webhook_enabled=webhooks), **options
        ).sid

    def service(self, name: str = "second team") -> str:
        return self.store.create_service(name).sid

    def inbound(self, address: str, proxy: str, body: str = "hello") -> str:
        """An SMS from a customer: routed to the holder, or autocreating a conversation (after
        Bindery's answer to the pre-event, through its web app)."""
        return self.receive(address, proxy, body).conversation_sid

    def receive(self, address: str, proxy: str, body: str = "hello"):
        """As `inbound`, with the emulator's whole outcome (`created`, ...)."""

        def ask_bindery(event) -> PreOutcome:
            answer = self.pre_event(event.params)
            return PreOutcome(
                rejected_status=answer.status_code if answer.status_code >= 400 else None
            )

        return self.store.receive_inbound(address, proxy, body, pre_event=ask_bindery)

    def rest_add(
        self,
        conversation_sid: str,
        service_sid: str = SERVICE_SID,
        webhooks: bool = False,
        **spec,
    ) -> str:
        """A REST add by another app: without X-Twilio-Webhook-Enabled (`webhooks`), Bindery hears
        nothing of it."""
        return self.store.add_participant(
            service_sid, conversation_sid, ParticipantSpec(**spec), origin=Origin.api(webhooks)
        ).sid

    def rest_remove(self, conversation_sid: str, participant_sid: str, webhooks: bool = False):
        self.store.remove_participant(
            SERVICE_SID, conversation_sid, participant_sid, origin=Origin.api(webhooks)
        )

    def rest_set_state(self, conversation_sid: str, state: str, webhooks: bool = False) -> None:
        self.store.update_conversation(
            SERVICE_SID, conversation_sid, state=state, origin=Origin.api(webhooks)
        )

    def sdk_add(self, conversation_sid: str, client: str = "agent-1", **spec):
        """A participant added from a client SDK: Bindery's pre-event answer first (through the
        web app), then, if allowed, the add, whose post-event is captured. Returns (pre-event
        answer, participant SID or None)."""
        from emulator import webhook_events

        conversation = self.store.find_conversation(conversation_sid)
        participant_spec = ParticipantSpec(**spec)
        pre = webhook_events.participant_event(
            ACCOUNT_SID,
            "onParticipantAdd",
            conversation,
            participant_spec.provisional(conversation),
            Origin.sdk(client),
        )
        answer = self.pre_event(pre.params)
        if answer.status_code >= 400:
            return answer, None
        participant = self.store.add_participant(
            conversation.service_sid, conversation_sid, participant_spec, origin=Origin.sdk(client)
        )
        return answer, participant.sid

    def pre_event(self, params: dict):
        """Bindery's answer to a pre-event, through its web app (signed as Twilio signs)."""
        from tests.webhooks.signing import sign
        from webhooks import create_app

        if not hasattr(self, "_web"):
            self._web = create_app(
                self.settings, connection=self.redis, clock=RuntimeClock(self.clock)
            ).test_client()
        url = "http://localhost/twilio/conversations/pre"
        signature = sign(url, params, self.settings.twilio_auth_token)
        return self._web.post(url, data=params, headers={"X-Twilio-Signature": signature})

    def message(self, conversation_sid: str, author: str = "agent-1", body: str = "hi") -> None:
        """A message from an SDK client: fires onMessageAdded (captured, not yet delivered)."""
        self.store.add_message(
            SERVICE_SID,
            conversation_sid,
            author=author,
            body=body,
            attributes=None,
            origin=Origin.sdk(author),
        )

    def advance(self, seconds: float) -> None:
        """Time passes on Twilio's clock; its timers fire."""
        self.clock.advance(seconds)
        self.store.fire_due_timers()

    def participants(self, conversation_sid: str, service_sid: str = SERVICE_SID):
        return self.store.list_participants(service_sid, conversation_sid)

    def state(self, conversation_sid: str, service_sid: str = SERVICE_SID) -> str:
        return self.store.get_conversation(service_sid, conversation_sid).state

    # -- webhooks, as Bindery's web side turns them into jobs ---------------------------------

    def pending_webhooks(self) -> list[dict]:
        return list(self.raw_webhooks)

    def take_webhook(self, event_type: str) -> dict:
        """Hold back the first captured post-event of `event_type` (to deliver it late)."""
        for index, params in enumerate(self.raw_webhooks):
            if params["EventType"] == event_type:
                return self.raw_webhooks.pop(index)
        raise AssertionError(f"no {event_type} captured")

    def deliver(self, index: int = 0) -> dict:
        """Deliver one captured post-event the way the web app would: parsed by the same
        parser, run as the job it enqueues."""
        params = self.raw_webhooks.pop(index)
        return self.run_post_event(params)

    def deliver_all(self) -> list[dict]:
        answers = []
        while self.raw_webhooks:
            answers.append(self.deliver(0))
        return answers

    def drop_webhooks(self) -> int:
        lost = len(self.raw_webhooks)
        self.raw_webhooks.clear()
        return lost

    def post_event_job(self, params: dict) -> tuple[str, dict] | None:
        try:
            event = payloads.parse_post(params, received_at=time.time())
        except payloads.UnhandledEvent:
            return None
        return event.job()

    def run_post_event(self, params: dict) -> dict:
        job = self.post_event_job(params)
        if job is None:
            return {"outcome": "ignored"}
        function, kwargs = job
        return jobs.handler(function)(self.rt, **kwargs)

    # -- jobs ------------------------------------------------------------------------------------

    def start(self, name: str, fn: Callable[[], object]) -> Task:
        """A job, paused before its first step."""
        task = Task(name, fn)
        self.tasks.append(task)
        return task

    def run_enqueued(self, kind: str = "") -> list[object]:
        """Run (to the end, one after another) the jobs that jobs enqueued."""
        return [jobs.handler(job.function)(self.rt, **job.kwargs) for job in self.queue.take(kind)]

    def close(self) -> None:
        for task in self.tasks:
            task.abort()
        sids.reproducible(None)
