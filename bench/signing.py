"""Twilio webhooks built and signed in advance, as raw HTTP/1.1 requests.

Each request is signed with twilio's `RequestValidator` for the URL the web process will rebuild
(`http://<Host header><path>`), with the auth token the web process checks against. Every event is
distinct (its own SIDs, time and `I-Twilio-Idempotency-Token`), so de-duplication never turns the
load into no-ops.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_SERVICE_SID

PROXIES = [f"+1800555{n:04d}" for n in range(10)]
"""The contact centre's Twilio numbers: every customer pair uses one of them."""


def sid(prefix: str, run: str, n: int) -> str:
    """A well-formed SID, unique per (run, n): 2 letters and 32 hex digits."""
    return f"{prefix}{run}{n:024x}"


def customer(run_number: int, n: int) -> str:
    """A customer's E.164 number, unique per (run_number, n) for n below 10**6."""
    return f"+1{200 + run_number % 700:03d}{n % 10**7:07d}"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Signer:
    """Builds requests for one web process: `host` is its `host:port`, as the Host header says."""

    def __init__(self, host: str, auth_token: str):
        self.host = host
        self.validator = RequestValidator(auth_token)
        self.run = f"{random.getrandbits(32):08x}"
        self.run_number = random.randrange(10**6)

    def request(self, path: str, params: dict[str, str], token: str = "") -> bytes:
        signature = self.validator.compute_signature(f"http://{self.host}{path}", params)
        body = urlencode(params).encode()
        head = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: {self.host}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {signature}\r\n"
        )
        if token:
            head += f"I-Twilio-Idempotency-Token: {token}\r\n"
        return head.encode() + b"\r\n" + body

    def _common(self, event_type: str, conversation: str) -> dict[str, str]:
        return {
            "AccountSid": DEFAULT_ACCOUNT_SID,
            "ChatServiceSid": DEFAULT_SERVICE_SID,
            "ConversationSid": conversation,
            "EventType": event_type,
            "RetryCount": "0",
            "Source": "API",
            "WebhookType": "webhook",
            "WebhookSid": sid("WH", self.run, 1),
        }

    def post_events(self, count: int, offset: int = 0) -> list[bytes]:
        """Distinct post-events: three `onMessageAdded` for each `onParticipantAdded`."""
        now = time.time()
        out = []
        for n in range(offset, offset + count):
            conversation = sid("CH", self.run, n // 4)
            at = iso(now + n / 1000)
            params = self._common(
                "onParticipantAdded" if n % 4 == 0 else "onMessageAdded", conversation
            )
            if n % 4 == 0:
                params.update(
                    {
                        "ParticipantSid": sid("MB", self.run, n),
                        "MessagingBinding.Address": customer(self.run_number, n),
                        "MessagingBinding.ProxyAddress": PROXIES[n % len(PROXIES)],
                        "MessagingBinding.Type": "sms",
                        "DateCreated": at,
                        "Attributes": "{}",
                    }
                )
            else:
                params.update(
                    {
                        "MessageSid": sid("IM", self.run, n),
                        "Index": str(n % 4),
                        "Author": customer(self.run_number, n - n % 4),
                        "Body": f"Hello, this is message {n}",
                        "Attributes": "{}",
                        "DateCreated": at,
                        "ParticipantSid": sid("MB", self.run, n - n % 4),
                        "Media": "",
                    }
                )
            token = f"{self.run}-post-{n}"
            out.append(self.request("/twilio/conversations/post", params, token))
        return out

    def participant_add(
        self, n: int, conversation: str, identity: str = "", address: str = "", proxy: str = ""
    ) -> bytes:
        """One `onParticipantAdd` pre-event: an identity, or an address and proxy pair."""
        params = self._common("onParticipantAdd", conversation)
        params.update({"Attributes": "{}", "RoleSid": sid("RL", self.run, 1)})
        if identity:
            params["Identity"] = identity
        else:
            params["MessagingBinding.Address"] = address
            params["MessagingBinding.ProxyAddress"] = proxy
        return self.request("/twilio/conversations/pre", params, f"{self.run}-pre-{n}")
