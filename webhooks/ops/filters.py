"""The failed-jobs filter as the pages take it: conversation, Twilio code, kind, and how far back."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from workers.addresses import is_sid
from workers.replay_batch import Filters
from workers.settings import SettingsError, parse_duration

MAX_KIND = 80


@dataclass(frozen=True)
class FilterForm:
    """What the operator typed (to show it back and to carry it into links) and what it means."""

    conversation: str = ""
    code: str = ""
    kind: str = ""
    since: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def filters(self, now: float | None = None) -> Filters:
        """The filters the form means; fields in error match everything, and pages say so."""
        now = time.time() if now is None else now
        since = 0.0
        if self.since and "since" not in self.errors:
            since = now - parse_duration(self.since, "since")
        return Filters(
            conversation=self.conversation if "conversation" not in self.errors else "",
            code=int(self.code) if self.code and "code" not in self.errors else 0,
            kind=self.kind if "kind" not in self.errors else "",
            since=since,
        )

    def query(self) -> dict[str, str]:
        """The non-empty fields, for a link or a hidden field that keeps the filter."""
        fields = {
            "conversation": self.conversation,
            "code": self.code,
            "kind": self.kind,
            "since": self.since,
        }
        return {name: value for name, value in fields.items() if value}

    @property
    def active(self) -> bool:
        return bool(self.query())


def read(source: Mapping[str, str]) -> FilterForm:
    conversation = (source.get("conversation") or "").strip()
    code = (source.get("code") or "").strip()
    kind = (source.get("kind") or "").strip()
    since = (source.get("since") or "").strip()
    errors = {}
    if conversation and not is_sid(conversation, "CH"):
        errors["conversation"] = "is not a conversation SID (CH followed by 32 hex digits)"
    if code and not (code.isdigit() and len(code) <= 6):
        errors["code"] = "is not a Twilio error code (a number such as 20429)"
    if len(kind) > MAX_KIND:
        errors["kind"] = f"is longer than {MAX_KIND} characters"
    if since:
        try:
            parse_duration(since, "since")
        except SettingsError:
            errors["since"] = "is not a duration like 90s, 15m, 1h or 2d"
    return FilterForm(conversation, code, kind, since, errors)
