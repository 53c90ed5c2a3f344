"""Twilio numbers' own incoming-message webhook (Programmable Messaging's `SmsUrl`, or the
inbound request URL of the number's Messaging Service), set through `POST /_emulator/numbers`.

Twilio sends an inbound message there when no conversation takes it: no open conversation holds
the pair and the number's Address Configuration does not autocreate ("Conversations ... does not
send incoming SMS webhooks like Programmable Messaging does. Those webhooks fire independently",
twilio.com/docs/conversations/inbound-autocreation). The request is Programmable Messaging's: a
signed form POST (or GET) with `MessageSid`, `From`, `To`, `Body`, ..., and no `EventType`. The
emulator sends it off the request path, like a post-event, and ignores the TwiML answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from emulator.sids import new_sid
from emulator.webhook_events import Event, Origin

METHODS = ("GET", "POST")


@dataclass(frozen=True)
class IncomingWebhook:
    number: str
    url: str
    method: str = "POST"

    def as_dict(self) -> dict[str, str]:
        return {"number": self.number, "sms_url": self.url, "sms_method": self.method}


class PhoneNumbers:
    """The numbers that have an incoming-message webhook (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._webhooks: dict[str, IncomingWebhook] = {}

    def set(self, number: str, url: str | None, method: str = "POST") -> IncomingWebhook | None:
        """Set (or, with no URL, remove) the number's webhook."""
        if method.upper() not in METHODS:
            raise ValueError("sms_method must be GET or POST")
        with self._lock:
            if not url:
                self._webhooks.pop(number, None)
                return None
            webhook = IncomingWebhook(number, url, method.upper())
            self._webhooks[number] = webhook
            return webhook

    def get(self, number: str) -> IncomingWebhook | None:
        with self._lock:
            return self._webhooks.get(number)

    def all(self) -> list[IncomingWebhook]:
        with self._lock:
            return sorted(self._webhooks.values(), key=lambda w: w.number)

    def reset(self) -> None:
        with self._lock:
            self._webhooks.clear()


def incoming_message(account_sid: str, sender: str, to: str, body: str | None) -> Event:
    """The Programmable Messaging request for one inbound message."""
    sid = new_sid("SM")
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "From": sender,
        "To": to,
        "Body": body or "",
        "NumMedia": "0",
        "NumSegments": "1",
    }
    return Event("incomingMessage", "", None, params, Origin.sms())
