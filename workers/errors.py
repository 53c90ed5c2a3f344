"""What can go wrong, in one place: Twilio's error codes, which failures are worth retrying, and the
domain's own refusals.

A job that raises `Retryable` is tried again later (RQ's retries, with backoff); one that raises
`Permanent` fails at once, because trying again cannot change the answer. Twilio's answers are
sorted into the two by `classify`, the only place that decision is made.
"""

from __future__ import annotations

# Twilio's codes Bindery acts on (twilio.com/docs/api/errors/<code>).
AUTHENTICATION_FAILED = 20003
NOT_FOUND = 20404
TOO_MANY_REQUESTS = 20429
INTERNAL_ERROR = 20500
CONVERSATION_NOT_FOUND = 50350
UNIQUE_NAME_TAKEN = 50353
CONVERSATION_CLOSED = 50377
CONCURRENT_UPDATE = 50391
PAIR_HELD_ELSEWHERE = 50416
PAIR_ALREADY_HERE = 50437
IDENTITY_ALREADY_HERE = 50433

GONE = (NOT_FOUND, CONVERSATION_NOT_FOUND)
"""The resource does not exist (any more)."""
RETRYABLE_CODES = (TOO_MANY_REQUESTS, CONCURRENT_UPDATE)
"""Not processed: safe to send again after backing off."""


class Retryable(Exception):
    """Try again later: nothing was decided (a busy lock, Twilio overloaded or unreachable)."""

    code = 0


class Permanent(Exception):
    """Trying again cannot change the answer; the job fails at once with this code."""

    code = 0


class TwilioError(Exception):
    """An answer of Twilio's that was not a success, or no answer at all."""

    def __init__(self, code: int, status: int, message: str, operation: str = ""):
        label = f"Twilio {code}" if code else f"Twilio HTTP {status}" if status else "Twilio"
        super().__init__(f"{label}: {message}" + (f" ({operation})" if operation else ""))
        self.code = code
        self.status = status
        self.message = message
        self.operation = operation

    @property
    def reported_code(self) -> int:
        """The code an operator filters on: Twilio's, else the HTTP status, else 0 (no answer)."""
        return self.code or self.status


class TwilioUnavailable(TwilioError, Retryable):
    """429, 5xx, 50391, a timeout or a refused connection: not processed, or not known to be."""


class TwilioRefused(TwilioError, Permanent):
    """Any other 4xx: Twilio looked at the request and said no."""


def classify(code: int, status: int, message: str, operation: str = "") -> TwilioError:
    """The one decision between retrying and giving up on an answer from Twilio. `status` 0
    means no answer came (a timeout, a refused connection)."""
    if status == 0 or status == 429 or status >= 500 or code in RETRYABLE_CODES:
        return TwilioUnavailable(code, status, message, operation)
    return TwilioRefused(code, status, message, operation)


class ConversationClosed(Permanent):
    """The conversation is closed (final): nothing can be added to it or changed in it."""

    code = CONVERSATION_CLOSED

    def __init__(self, conversation_sid: str):
        super().__init__(f"conversation {conversation_sid} is closed ({CONVERSATION_CLOSED})")
        self.conversation_sid = conversation_sid


class LockBusy(Retryable):
    """Another job holds a lock this job needs; retry later."""


class LockLost(Retryable):
    """A lock's lease expired before the job finished with it; retry from the start (the job's
    last write was recorded as pending, so the retry asks Twilio first)."""
