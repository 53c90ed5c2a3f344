"""The emulator's configuration: one frozen object, built once by the CLI or a test."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator import defaults
from emulator.sids import derived_sid


@dataclass(frozen=True)
class EmulatorConfig:
    """Credentials, limits and timings of one emulator instance.

    `writes_per_second_per_conversation`, `max_concurrency`, `latency_ms` and
    `omit_idempotency_token` are the baseline faults: `POST /_emulator/faults` overrides them and
    `POST /_emulator/reset` restores them.
    """

    account_sid: str = defaults.DEFAULT_ACCOUNT_SID
    auth_token: str = field(default=defaults.DEFAULT_AUTH_TOKEN, repr=False)
    default_service_sid: str = ""
    """Empty: derived from the account SID, so it survives resets and restarts."""
    writes_per_second_per_conversation: int | None = None
    max_concurrency: int | None = None
    latency_ms: int = 0
    webhook_timeout: float = defaults.WEBHOOK_TIMEOUT
    """Seconds to wait for a webhook receiver."""
    webhook_threads: int = defaults.WEBHOOK_SENDER_THREADS
    timer_tick: float = defaults.TIMER_TICK
    """Seconds between real-time timer checks; 0 turns the background ticker off."""
    date_updated_on: tuple[str, ...] = defaults.DATE_UPDATED_ON
    """What bumps a conversation's date_updated, from `conversations.DATE_UPDATED_CAUSES`:
    `update`, `state`, `message`, `participant`. Twilio says only "the date that this resource
    was last updated"."""
    omit_idempotency_token: bool = False
    """Send webhooks without `I-Twilio-Idempotency-Token` (a baseline fault, like the limits)."""

    @property
    def service_sid(self) -> str:
        """The default Conversation Service's SID."""
        return self.default_service_sid or derived_sid("IS", self.account_sid)

    @property
    def messaging_service_sid(self) -> str:
        """The messaging service new conversations get when the request names none."""
        return derived_sid("MG", self.account_sid)
