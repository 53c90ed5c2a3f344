"""The only module that calls Twilio: a thin layer over the official SDK, through the adapter.

It turns SDK objects into small records, and every failure into `TwilioUnavailable` (retry later)
or `TwilioRefused` (permanent), each with Twilio's code (or the HTTP status when Twilio gave none)
and the operation, as `workers.errors.classify` decides. Every call is counted in the metrics by
operation and answer.

Bindery works in one Conversation Service (`TWILIO_CONVERSATIONS_SERVICE_SID`, or the account's
default), but the binding rule is account-wide: `holdings` asks every service of the account, and
the calls that act on an existing conversation take the service it lives in.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

from workers import metrics
from workers.errors import GONE, TwilioError, TwilioRefused, classify
from workers.settings import Settings
from workers.twilio_clock import TwilioClock
from workers.twilio_http import make_client

log = logging.getLogger(__name__)

HOLDER_SID = re.compile(r"CH[0-9a-fA-F]{32}")
SERVICES_CACHED_FOR = 60.0
"""Seconds the account's list of Conversation Services is reused before it is asked again."""


@dataclass(frozen=True)
class Participant:
    sid: str
    conversation_sid: str
    identity: str
    address: str
    proxy_address: str
    projected_address: str = ""
    date_created: float = 0.0


@dataclass(frozen=True)
class Conversation:
    sid: str
    state: str
    date_created: float
    date_updated: float
    service_sid: str = ""


@dataclass(frozen=True)
class Holding:
    """One open conversation a pair is in, as ParticipantConversations reports it."""

    conversation_sid: str
    state: str
    participant_sid: str
    address: str
    proxy_address: str
    date_updated: float
    service_sid: str = ""


def holder_from_message(message: str) -> str:
    """The holder's SID from a 50416 message (the SDK prefixes it, so search, don't anchor)."""
    match = HOLDER_SID.search(message or "")
    return match.group(0) if match else ""


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def translate(exc: Exception, operation: str) -> TwilioError:
    """Any failure of an SDK call as Bindery's error, with the best code there is."""
    if isinstance(exc, TwilioRestException):
        status = int(exc.status or 0)
        code = int(exc.code or 0)
        # The SDK gives the HTTP status as the code when the body had none (a proxy's 502 page).
        return classify(0 if code == status else code, status, str(exc.msg), operation)
    if isinstance(exc, TwilioServiceException):  # an RFC 9457 problem answer
        message = str(exc.detail or exc.title or "")
        return classify(int(exc.code or 0), int(exc.status or 0), message, operation)
    if isinstance(exc, TwilioException):
        # A page fetch answered with an error: the SDK raises ("Unable to fetch page", response).
        response = exc.args[1] if len(exc.args) > 1 else None
        status = int(getattr(response, "status_code", 0) or 0)
        code, message = 0, str(exc.args[0]) if exc.args else type(exc).__name__
        try:
            body = json.loads(getattr(response, "text", "") or "{}")
            code, message = int(body.get("code") or 0), str(body.get("message") or message)
        except (TypeError, ValueError, AttributeError):
            pass
        return classify(code, status, message, operation)
    return classify(0, 0, f"{type(exc).__name__}: {exc}", operation)


class Gateway:
    """Conversations API calls for one account; writes go to the service Bindery works in unless
    the conversation is known to live in another."""

    def __init__(self, settings: Settings, clock: TwilioClock):
        self.clock = clock
        self.client = make_client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            base_url=settings.twilio_api_base_url,
            timeout=settings.twilio_timeout,
            clock=clock,
        )
        self._v1 = self.client.conversations.v1
        self.service_sid = settings.twilio_conversations_service_sid
        self._services: tuple[float, list[str]] = (0.0, [])
        self._services_lock = threading.Lock()

    def _scope(self, service_sid: str = ""):
        service = service_sid or self.service_sid
        return self._v1.services(service) if service else self._v1

    def _call(self, operation: str, fn, *args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except (TwilioException, requests.RequestException) as exc:
            error = translate(exc, operation)
            metrics.TWILIO_CALLS.labels(operation, str(error.reported_code or "network")).inc()
            raise error from exc
        metrics.TWILIO_CALLS.labels(operation, "ok").inc()
        return result

    # -- services ------------------------------------------------------------------------------

    def services(self, fresh: bool = False) -> list[str]:
        """Every Conversation Service of the account (cached for a minute, unless `fresh`)."""
        with self._services_lock:
            fetched_at, sids = self._services
            if not fresh and sids and time.monotonic() - fetched_at < SERVICES_CACHED_FOR:
                return sids
        items = self._call("service.list", self._v1.services.list, page_size=100)
        sids = [s.sid for s in items]
        with self._services_lock:
            self._services = (time.monotonic(), sids)
        return sids

    # -- conversations -------------------------------------------------------------------------

    def fetch_conversation(self, sid: str, service_sid: str = "") -> Conversation:
        c = self._call("conversation.fetch", self._scope(service_sid).conversations(sid).fetch)
        return self._conversation(c)

    def create_conversation(
        self,
        unique_name: str = "",
        friendly_name: str = "",
        timers_closed: str = "",
        attributes: str = "",
        service_sid: str = "",
    ) -> Conversation:
        """A new conversation in the service (active; closed by Twilio's own timer after
        `timers_closed`, an ISO 8601 duration, when given)."""
        options: dict = {"state": "active"}
        if unique_name:
            options["unique_name"] = unique_name
        if friendly_name:
            options["friendly_name"] = friendly_name
        if timers_closed:
            options["timers_closed"] = timers_closed
        if attributes:
            options["attributes"] = attributes
        c = self._call(
            "conversation.create", self._scope(service_sid).conversations.create, **options
        )
        return self._conversation(c)

    def set_state(self, sid: str, state: str, service_sid: str = "") -> Conversation:
        c = self._call(
            "conversation.update",
            self._scope(service_sid).conversations(sid).update,
            state=state,
        )
        return self._conversation(c)

    def conversations(self, state: str, service_sid: str = "") -> Iterator[Conversation]:
        """Every conversation of the service in `state`, page by page (reads are not
        write-limited)."""
        scope = self._scope(service_sid)
        page = self._call("conversation.list", scope.conversations.page, state=state, page_size=100)
        while True:  # one call a page, counted once
            for c in page:
                yield self._conversation(c)
            if not page.next_page_url:
                return
            page = self._call("conversation.list", page.next_page)

    def last_message_at(self, sid: str, service_sid: str = "") -> float:
        """When the conversation's newest message was created (0 when it has none)."""
        messages = self._call(
            "message.list",
            self._scope(service_sid).conversations(sid).messages.list,
            order="desc",
            limit=1,
        )
        return _epoch(messages[0].date_created) if messages else 0.0

    def send_message(
        self, sid: str, author: str, body: str, attributes: str = "", service_sid: str = ""
    ) -> str:
        """A message posted into the conversation (its post-event fires); the message's SID."""
        options = {"author": author, "body": body, "x_twilio_webhook_enabled": "true"}
        if attributes:
            options["attributes"] = attributes
        message = self._call(
            "message.create", self._scope(service_sid).conversations(sid).messages.create, **options
        )
        return message.sid

    @staticmethod
    def _conversation(c) -> Conversation:
        return Conversation(
            c.sid,
            c.state,
            _epoch(c.date_created),
            _epoch(c.date_updated),
            c.chat_service_sid or "",
        )

    # -- participants --------------------------------------------------------------------------

    def participants(self, conversation_sid: str, service_sid: str = "") -> list[Participant]:
        items = self._call(
            "participant.list",
            self._scope(service_sid).conversations(conversation_sid).participants.list,
        )
        return [self._participant(conversation_sid, p) for p in items]

    def add_chat_participant(
        self,
        conversation_sid: str,
        identity: str,
        service_sid: str = "",
        projected_address: str = "",
    ) -> Participant:
        options = {"identity": identity}
        if projected_address:
            options["messaging_binding_projected_address"] = projected_address
        p = self._call(
            "participant.create",
            self._scope(service_sid).conversations(conversation_sid).participants.create,
            **options,
        )
        return self._participant(conversation_sid, p)

    def add_sms_participant(
        self, conversation_sid: str, address: str, proxy_address: str, service_sid: str = ""
    ) -> Participant:
        """A non-chat participant; with no `proxy_address`, a group-MMS one (address only)."""
        options = {"messaging_binding_address": address}
        if proxy_address:
            options["messaging_binding_proxy_address"] = proxy_address
        p = self._call(
            "participant.create",
            self._scope(service_sid).conversations(conversation_sid).participants.create,
            **options,
        )
        return self._participant(conversation_sid, p)

    def remove_participant(
        self, conversation_sid: str, participant_sid: str, service_sid: str = ""
    ) -> None:
        self._call(
            "participant.delete",
            self._scope(service_sid)
            .conversations(conversation_sid)
            .participants(participant_sid)
            .delete,
        )

    def holdings(self, address: str, proxy_address: str, fresh: bool = False) -> list[Holding]:
        """Open conversations holding the pair, in every Conversation Service of the account
        (`fresh`: with the list of services asked again, not the cached one)."""
        found = []
        for service in self.services(fresh):
            try:
                items = self._call(
                    "participant_conversation.list",
                    self._v1.services(service).participant_conversations.list,
                    address=address,
                    page_size=50,
                )
            except TwilioRefused as error:
                if error.code not in GONE:
                    raise
                self._services = (0.0, [])  # a service deleted since it was listed
                continue
            for item in items:
                binding = item.participant_messaging_binding or {}
                if binding.get("proxy_address") != proxy_address:
                    continue
                if item.conversation_state == "closed":
                    continue
                found.append(
                    Holding(
                        conversation_sid=item.conversation_sid,
                        state=item.conversation_state,
                        participant_sid=item.participant_sid,
                        address=binding.get("address", ""),
                        proxy_address=binding.get("proxy_address", ""),
                        date_updated=_epoch(item.conversation_date_updated),
                        service_sid=item.chat_service_sid or service,
                    )
                )
        return found

    @staticmethod
    def _participant(conversation_sid: str, p) -> Participant:
        binding = p.messaging_binding or {}
        return Participant(
            sid=p.sid,
            conversation_sid=conversation_sid,
            identity=p.identity or "",
            address=binding.get("address", "") or "",
            proxy_address=binding.get("proxy_address", "") or "",
            projected_address=binding.get("projected_address", "") or "",
            date_created=_epoch(p.date_created),
        )
