"""Every tunable of the emulator and its default, each with its unit."""

from __future__ import annotations

from emulator.sids import derived_sid

DEFAULT_ACCOUNT_SID = "ACdeadbeefdeadbeefdeadbeefdeadbeef"
"""Account SID the emulator accepts unless told otherwise (not a real account)."""

DEFAULT_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 (public on purpose)
"""Auth token the emulator accepts and signs webhooks with unless told otherwise (not a secret)."""

DEFAULT_SERVICE_SID = derived_sid("IS", DEFAULT_ACCOUNT_SID)
"""The default Conversation Service of DEFAULT_ACCOUNT_SID; stable across resets and restarts."""

DEFAULT_HOST = "127.0.0.1"
"""Interface the CLI binds: loopback only unless told otherwise."""

DEFAULT_PORT = 8090
"""TCP port of `bindery emulator`."""

PUBLIC_BASE_URL = "https://conversations.twilio.com"
"""Host written into `url`, `links` and paging URLs, as Twilio does; the client adapter rewrites it."""

DEFAULT_PAGE_SIZE = 50
"""Items per page when a list call gives no PageSize."""

MAX_PAGE_SIZE = 100
"""Largest PageSize a list call may ask for."""

MAX_PARTICIPANT_CONVERSATIONS_PAGE_SIZE = 50
"""Largest PageSize of ParticipantConversations."""

MAX_ADDRESS_CONFIGURATIONS_PAGE_SIZE = 50
"""Largest PageSize of Address Configurations."""

WEBHOOK_TIMEOUT = 5.0
"""Seconds the emulator waits for a webhook answer ("a maximum timeout of 5 seconds")."""

WEBHOOK_SENDER_THREADS = 4
"""Threads delivering post-events; one conversation always maps to the same thread (keeps order)."""

TIMER_TICK = 1.0
"""Seconds between two checks for conversation timers that fell due in real time."""

MIN_TIMER_INACTIVE = 60
"""Seconds: the smallest Timers.Inactive Twilio accepts (1 minute)."""

MIN_TIMER_CLOSED = 600
"""Seconds: the smallest Timers.Closed Twilio accepts (10 minutes)."""

DATE_UPDATED_ON = ("update", "state", "message")
"""What bumps a conversation's date_updated (see `conversations.DATE_UPDATED_CAUSES`): a REST
update, a state change, a message; not participant changes. Twilio says only "the date that this
resource was last updated"."""
