"""The emulator's parts wired together: clock, store, webhook sender, limits and stats.

REST calls go straight to the Store. The SDK stand-in comes here, because its pre-event must be
sent (and answered) before the Store is touched, outside its lock; inbound messages go to
`Store.receive_inbound` with `Engine.pre_event` as the way to ask the receivers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from emulator import webhook_events
from emulator.clock import Clock
from emulator.config import EmulatorConfig
from emulator.errors import ConversationClosed
from emulator.limits import Faults, Limits
from emulator.phone_numbers import PhoneNumbers, incoming_message
from emulator.stats import Stats
from emulator.store import CLOSED, ParticipantSpec, Store
from emulator.webhook_events import Event, Origin
from emulator.webhooks import PreOutcome, Target, WebhookSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SdkAddOutcome:
    added: bool
    participant_sid: str | None = None
    rejected_status: int | None = None


class Engine:
    """Clock, store, webhook sender, limits and stats of one emulator instance."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.stats = Stats()
        self.limits = Limits(
            Faults(
                latency_ms=config.latency_ms,
                max_concurrency=config.max_concurrency,
                writes_per_second_per_conversation=config.writes_per_second_per_conversation,
                omit_idempotency_token=config.omit_idempotency_token,
            )
        )
        self.sender = WebhookSender(
            config.auth_token,
            self.stats,
            config.webhook_timeout,
            config.webhook_threads,
            idempotency_token=lambda: not self.limits.faults.omit_idempotency_token,
        )
        self.store = Store(
            self.clock,
            config.account_sid,
            config.service_sid,
            config.messaging_service_sid,
            publish=self.publish,
            date_updated_on=config.date_updated_on,
        )
        self.numbers = PhoneNumbers()
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start firing timers in real time (the webhook sender starts on first use)."""
        if self.config.timer_tick > 0 and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="emulator-timers", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        self.sender.stop()

    def reset(self) -> None:
        """All state, stats and faults back to a fresh start (the default service keeps its SID)."""
        with self.store.lock:
            self.sender.clear()
            self.clock.reset()
            self.store.reset()
            self.stats.reset()
            self.limits.reset()
            self.numbers.reset()

    def _tick(self) -> None:
        while not self._stopping.wait(self.config.timer_tick):
            try:
                self.store.fire_due_timers()
            except Exception:  # a bug here must not stop the timers for good
                log.exception("firing timers failed")

    def advance_clock(self, seconds: float) -> tuple[datetime, int]:
        """Move the clock forward and fire the timers that fell due; (new time, fired)."""
        now = self.clock.advance(seconds)
        return now, self.store.fire_due_timers()

    # -- webhooks -----------------------------------------------------------------------------

    def targets(self, event: Event) -> list[Target]:
        """Where an event goes: its service's configuration and then the account's, each when its
        URL for this kind of event is set and its Filters list the event (no Filters, no events).
        """
        found = []
        for config in self.store.webhook_configs_for(event.service_sid):
            url = config.pre_webhook_url if event.is_pre else config.post_webhook_url
            if url and event.event_type in config.filters:
                found.append(Target(url, config.method))
        return found

    def publish(self, event: Event) -> None:
        """Queue a post-event (called by the Store with its lock held, so in order)."""
        if not event.origin.post_events:
            return
        targets = self.targets(event)
        if targets:
            self.sender.post(event, targets)

    def incoming_sms(self, sender: str, to: str, body: str | None) -> str | None:
        """A message no conversation took goes to the number's own incoming-message webhook,
        when it has one (`phone_numbers.py`): queued like a post-event; its MessageSid."""
        webhook = self.numbers.get(to)
        if webhook is None:
            return None
        event = incoming_message(self.config.account_sid, sender, to, body)
        self.sender.post(event, [Target(webhook.url, webhook.method)])
        return event.params["MessageSid"]

    def pre_event(self, event: Event) -> PreOutcome:
        targets = self.targets(event)
        if not targets:
            return PreOutcome()
        return self.sender.pre(event, targets)

    # -- the SDK stand-in ------------------------------------------------------------

    def sdk_add_participant(
        self, conversation_sid: str, spec: ParticipantSpec, client_identity: str
    ) -> SdkAddOutcome:
        """A participant added from a client SDK: onParticipantAdd first, then the add (same
        rules and errors as REST) and onParticipantAdded."""
        conversation = self.store.find_conversation(conversation_sid)
        if conversation.state == CLOSED:
            raise ConversationClosed()
        origin = Origin.sdk(client_identity)
        pre = webhook_events.participant_event(
            self.config.account_sid,
            "onParticipantAdd",
            conversation,
            spec.provisional(conversation),
            origin,
        )
        outcome = self.pre_event(pre)
        if outcome.rejected:
            return SdkAddOutcome(added=False, rejected_status=outcome.rejected_status)
        participant = self.store.add_participant(
            conversation.service_sid, conversation.sid, spec, origin=origin
        )
        return SdkAddOutcome(added=True, participant_sid=participant.sid)
