"""The only module that calls Twilio: a thin layer over the official SDK, through the adapter.

It turns SDK objects into small records and every failure into one of two exceptions: `Retryable`
(429/20429, 5xx, 50391, timeouts, refused connections: safe to try again after backing off) or
`Permanent` (any other 4xx: trying again cannot help). Both carry the Twilio code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import requests
from twilio.base.exceptions import TwilioRestException

from workers import metrics
from workers.settings import Settings
from workers.twilio_http import make_client

log = logging.getLogger(__name__)

HOLDER_SID = re.compile(r"CH[0-9a-fA-F]{32}")
RETRYABLE_CODES = {20429, 50391}


class TwilioError(Exception):
    def __init__(self, code: int, status: int, message: str):
        super().__init__(f"Twilio {code or status}: {message}")
        self.code = code
        self.status = status
        self.message = message


class Retryable(TwilioError):
    """Not processed, or unknown whether processed: back off and try again."""


class Permanent(TwilioError):
    """Twilio refused the request; trying again cannot change the answer."""


@dataclass(frozen=True)
class Participant:
    sid: str
    conversation_sid: str
    identity: str
    address: str
    proxy_address: str


@dataclass(frozen=True)
class Conversation:
    sid: str
    state: str
    date_created: float
    date_updated: float


@dataclass(frozen=True)
class Holding:
    """One conversation a pair (or identity) is in, as ParticipantConversations reports it."""

    conversation_sid: str
    state: str
    participant_sid: str
    address: str
    proxy_address: str
    date_updated: float


def holder_from_message(message: str) -> str:
    """The holder's SID from a 50416 message (the SDK prefixes it, so search, don't anchor)."""
    match = HOLDER_SID.search(message or "")
    return match.group(0) if match else ""


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def _translate(exc: Exception) -> TwilioError:
    if isinstance(exc, TwilioRestException):
        code = int(exc.code or 0)
        status = int(exc.status or 0)
        message = str(exc.msg)
        if status == 429 or status >= 500 or code in RETRYABLE_CODES:
            return Retryable(code, status, message)
        return Permanent(code, status, message)
    return Retryable(0, 0, f"{type(exc).__name__}: {exc}")


class Gateway:
    """Conversations API calls for one account and (optionally) one Conversation Service."""

    def __init__(self, settings: Settings):
        self.client = make_client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            base_url=settings.twilio_api_base_url,
            timeout=settings.twilio_timeout,
        )
        v1 = self.client.conversations.v1
        service = settings.twilio_conversations_service_sid
        self._scope = v1.services(service) if service else v1

    def now(self) -> float:
        """Twilio's clock, as the `Date` header of its last answer tells it."""
        return self.client.http_client.now()

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except (TwilioRestException, requests.RequestException) as exc:
            error = _translate(exc)
            metrics.TWILIO_CALLS.labels(what, str(error.code or error.status or "network")).inc()
            log.info("twilio %s failed: code=%s status=%s", what, error.code, error.status)
            raise error from exc
        metrics.TWILIO_CALLS.labels(what, "ok").inc()
        return result

    # -- conversations -------------------------------------------------------------------------

    def fetch_conversation(self, sid: str) -> Conversation:
        c = self._call("conversation.fetch", self._scope.conversations(sid).fetch)
        return Conversation(c.sid, c.state, _epoch(c.date_created), _epoch(c.date_updated))

    def set_state(self, sid: str, state: str) -> Conversation:
        c = self._call("conversation.update", self._scope.conversations(sid).update, state=state)
        return Conversation(c.sid, c.state, _epoch(c.date_created), _epoch(c.date_updated))

    def conversations(self, state: str, page_size: int = 100) -> Iterator[Conversation]:
        """Every conversation in `state`, page by page (reads are not write-limited)."""
        pages = self._call(
            "conversation.list", self._scope.conversations.stream, state=state, page_size=page_size
        )
        while True:
            try:
                c = self._call("conversation.list", next, pages)
            except StopIteration:
                return
            yield Conversation(c.sid, c.state, _epoch(c.date_created), _epoch(c.date_updated))

    # -- participants --------------------------------------------------------------------------

    def participants(self, conversation_sid: str) -> list[Participant]:
        items = self._call(
            "participant.list", self._scope.conversations(conversation_sid).participants.list
        )
        return [self._participant(conversation_sid, p) for p in items]

    def add_chat_participant(self, conversation_sid: str, identity: str) -> Participant:
        p = self._call(
            "participant.create",
            self._scope.conversations(conversation_sid).participants.create,
            identity=identity,
        )
        return self._participant(conversation_sid, p)

    def add_sms_participant(
        self, conversation_sid: str, address: str, proxy_address: str
    ) -> Participant:
        p = self._call(
            "participant.create",
            self._scope.conversations(conversation_sid).participants.create,
            messaging_binding_address=address,
            messaging_binding_proxy_address=proxy_address,
        )
        return self._participant(conversation_sid, p)

    def remove_participant(self, conversation_sid: str, participant_sid: str) -> None:
        self._call(
            "participant.delete",
            self._scope.conversations(conversation_sid).participants(participant_sid).delete,
        )

    def holdings(self, address: str, proxy_address: str = "") -> list[Holding]:
        """Open conversations holding `address` (with `proxy_address`, when given)."""
        items = self._call(
            "participant_conversation.list",
            self._scope.participant_conversations.list,
            address=address,
            page_size=50,
        )
        found = []
        for item in items:
            binding = item.participant_messaging_binding or {}
            if proxy_address and binding.get("proxy_address") != proxy_address:
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
        )
