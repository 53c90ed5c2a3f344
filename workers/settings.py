"""Bindery's settings, read once per process from the environment.

Web, worker, clock and CLI all build their clients from one `Settings` object. A missing secret fails
fast with the variable's name; booleans and durations are parsed strictly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONFLICT_POLICIES = ("reject", "reuse", "close-stale", "move")
LEDGER_MODES = ("verify", "trust")
OPS_TOKEN_MIN_LENGTH = 16
"""Characters an operator token needs at least: it is the console's only credential."""

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def parse_duration(text: str, name: str = "duration") -> float:
    """Seconds from `90`, `90s`, `15m`, `6h` or `2d`."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise SettingsError(f"{name}: {text!r} is not a duration like 90s, 15m, 6h or 2d")
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[unit]


@dataclass(frozen=True)
class Settings:
    """Every tunable, with its environment variable in the field's metadata."""

    twilio_account_sid: str = field(default="", metadata={"env": "TWILIO_ACCOUNT_SID"})
    twilio_auth_token: str = field(
        default="", repr=False, metadata={"env": "TWILIO_AUTH_TOKEN", "secret": True}
    )
    twilio_conversations_service_sid: str = field(
        default="", metadata={"env": "TWILIO_CONVERSATIONS_SERVICE_SID"}
    )
    twilio_api_base_url: str = field(default="", metadata={"env": "TWILIO_API_BASE_URL"})
    redis_url: str = field(default=DEFAULT_REDIS_URL, metadata={"env": "REDIS_URL"})
    public_base_url: str = field(default="", metadata={"env": "PUBLIC_BASE_URL"})
    api_token: str = field(
        default="", repr=False, metadata={"env": "BINDERY_API_TOKEN", "secret": True}
    )
    env: str = field(default="production", metadata={"env": "BINDERY_ENV"})
    auto_add_identities: tuple[str, ...] = field(
        default=(), metadata={"env": "BINDERY_AUTO_ADD_IDENTITIES"}
    )
    close_inactive_after: float = field(
        default=0.0, metadata={"env": "BINDERY_CLOSE_INACTIVE_AFTER"}
    )
    """Seconds an inactive conversation is left before Bindery closes it; 0 turns that off."""
    stale_after: float = field(default=6 * 3600.0, metadata={"env": "BINDERY_STALE_AFTER"})
    """Seconds of no activity after which a conversation counts as stale."""
    conflict_policy: str = field(default="close-stale", metadata={"env": "BINDERY_CONFLICT_POLICY"})
    ledger_mode: str = field(default="verify", metadata={"env": "BINDERY_LEDGER_MODE"})
    """`verify`: a pair the ledger has never seen is looked up in Twilio before it is added, and a
    participant the ledger believes present is checked with Twilio (one read each). `trust`: once a
    full reconcile has seeded the ledger, neither is asked (one call per add); for deployments
    where every change reaches Bindery (post-events subscribed, X-Twilio-Webhook-Enabled on other
    apps' REST calls)."""
    cleanup_interval: float = field(default=900.0, metadata={"env": "BINDERY_CLEANUP_INTERVAL"})
    """Seconds between scheduled stale-conversation cleanups; 0 turns the schedule off."""
    reconcile_interval: float = field(
        default=3600.0, metadata={"env": "BINDERY_RECONCILE_INTERVAL"}
    )
    """Seconds between scheduled ledger reconciliations; 0 turns the schedule off."""
    reconcile_concurrency: int = field(
        default=16, metadata={"env": "BINDERY_RECONCILE_CONCURRENCY"}
    )
    """Conversations a reconcile looks at at once (each under its own lock); Twilio's account-wide
    limit on concurrent requests is about 100."""
    prune_after: float = field(default=7 * 86400.0, metadata={"env": "BINDERY_PRUNE_AFTER"})
    """Seconds the ledger keeps a conversation after it closed, and a pair after it was let go;
    the clock prunes older ones hourly. 0 keeps them forever."""
    lock_ttl: float = field(default=30.0, metadata={"env": "BINDERY_LOCK_TTL"})
    """Seconds a conversation or pair lock lives unless released."""
    lock_wait: float = field(default=2.0, metadata={"env": "BINDERY_LOCK_WAIT"})
    """Seconds a job waits for a busy lock before it is retried later."""
    twilio_timeout: float = field(default=10.0, metadata={"env": "BINDERY_TWILIO_TIMEOUT"})
    """Seconds for one HTTP call to Twilio."""
    job_timeout: float = field(default=40.0, metadata={"env": "BINDERY_JOB_TIMEOUT"})
    """Seconds a job may run. RQ notices a worker that died mid-job when the job's heartbeat
    (this + 60 s) runs out, at the next maintenance pass (every 15 s): within 2 minutes at 40 s."""
    max_retries: int = field(default=8, metadata={"env": "BINDERY_MAX_RETRIES"})
    """Attempts after the first for a job that failed with a retryable error."""
    reservation_ttl: float = field(default=120.0, metadata={"env": "BINDERY_RESERVATION_TTL"})
    """Seconds a proxy number chosen for a session being opened stays reserved for it without its
    job renewing it: a job whose worker died lets go after this (RQ retries it within 2 minutes,
    and the retry reserves again)."""
    ops_tokens: tuple[str, ...] = field(
        default=(), repr=False, metadata={"env": "BINDERY_OPS_TOKENS", "secret": True}
    )
    """Tokens that sign an operator in to the console under /ops (comma-separated, each at least
    OPS_TOKEN_MIN_LENGTH characters); none: the console lets nobody in."""

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def signatures_required(self) -> bool:
        return not self.development

    def require(self, *names: str) -> None:
        """Fail fast when a setting a process needs is empty; names are the env variables."""
        by_env = {f.metadata["env"]: f.name for f in fields(self)}
        missing = [n for n in names if not getattr(self, by_env[n])]
        if missing:
            raise SettingsError("missing required setting(s): " + ", ".join(missing))

    def public_items(self) -> list[tuple[str, str]]:
        """(variable, value) pairs safe to print: secrets shown only as set or unset."""
        items = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                value = "(set)" if value else "(unset)"
            elif isinstance(value, tuple):
                value = ",".join(value)
            items.append((f.metadata["env"], str(value)))
        return items

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            raw = env[name]
            if f.type == "float":
                values[f.name] = parse_duration(raw, name)
            elif f.type == "int":
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise SettingsError(f"{name}: {raw!r} is not a whole number") from None
            elif f.type == "tuple[str, ...]":
                values[f.name] = tuple(p.strip() for p in raw.split(",") if p.strip())
            else:
                values[f.name] = raw.strip()
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.env not in ("production", "development"):
            raise SettingsError(f"BINDERY_ENV: {self.env!r} must be production or development")
        if self.ledger_mode not in LEDGER_MODES:
            raise SettingsError(
                f"BINDERY_LEDGER_MODE: {self.ledger_mode!r} must be verify or trust"
            )
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise SettingsError(
                f"BINDERY_CONFLICT_POLICY: {self.conflict_policy!r} must be one of "
                + ", ".join(CONFLICT_POLICIES)
            )
        if any(len(token) < OPS_TOKEN_MIN_LENGTH for token in self.ops_tokens):
            raise SettingsError(
                f"BINDERY_OPS_TOKENS: each token must be at least {OPS_TOKEN_MIN_LENGTH} characters"
            )
        if self.reconcile_concurrency < 1:
            raise SettingsError("BINDERY_RECONCILE_CONCURRENCY must be at least 1")
        if self.reservation_ttl < 10:
            raise SettingsError("BINDERY_RESERVATION_TTL must be at least 10 seconds")
        if self.lock_ttl < 1:
            raise SettingsError("BINDERY_LOCK_TTL must be at least 1 second")
        if self.twilio_timeout <= 0 or self.job_timeout <= 0:
            raise SettingsError("BINDERY_TWILIO_TIMEOUT and BINDERY_JOB_TIMEOUT must be positive")
        for name, url in (
            ("TWILIO_API_BASE_URL", self.twilio_api_base_url),
            ("PUBLIC_BASE_URL", self.public_base_url),
        ):
            if url and not re.match(r"^https?://[^/\s]+", url):
                raise SettingsError(f"{name}: {url!r} is not an http(s) URL")
