"""Twilio's paging: `PageSize`, `Page` and an opaque `PageToken`, answered with `meta`.

Page URLs are absolute on conversations.twilio.com (the official client follows `next_page_url`
verbatim). A token remembers the position of the last (or first) item of the page it came from,
not an offset, so deleting items between two page calls neither skips nor repeats any.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from emulator.defaults import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PUBLIC_BASE_URL
from emulator.errors import InvalidParameter

T = TypeVar("T")

_AFTER, _BEFORE = "PA", "PB"


@dataclass(frozen=True)
class PageRequest:
    page_size: int
    page: int
    token: str | None

    @classmethod
    def parse(cls, args: Mapping[str, str], max_size: int = MAX_PAGE_SIZE) -> PageRequest:
        page_size = _number(args.get("PageSize"), "PageSize", DEFAULT_PAGE_SIZE)
        if not 1 <= page_size <= max_size:
            raise InvalidParameter(f"PageSize must be from 1 to {max_size}")
        page = _number(args.get("Page"), "Page", 0)
        if page < 0:
            raise InvalidParameter("Page must not be negative")
        return cls(page_size, page, args.get("PageToken") or None)


def _number(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidParameter(f"{name}: {text!r} is not a whole number") from None


def _token(kind: str, position: int) -> str:
    return kind + base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def _read_token(token: str) -> tuple[str, int]:
    try:
        kind, raw = token[:2], token[2:]
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        prefix, position = decoded.split(":")
        if prefix != kind or kind not in (_AFTER, _BEFORE):
            raise ValueError(kind)
        return kind, int(position)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidParameter(f"PageToken: {token!r} is not a valid page token") from None


def paginate(
    items: Sequence[T],
    request: PageRequest,
    *,
    path: str,
    key: str,
    position: Callable[[T], int],
    filters: Sequence[tuple[str, str]] = (),
    descending: bool = False,
) -> tuple[list[T], dict[str, Any]]:
    """One page of `items` (already in list order) and its `meta`.

    `position` gives each item's ever-increasing sequence number; `descending` says the list runs
    from high to low positions.
    """

    def after(item: T, mark: int) -> bool:
        return position(item) < mark if descending else position(item) > mark

    if request.token:
        kind, mark = _read_token(request.token)
        if kind == _AFTER:
            rest = [item for item in items if after(item, mark)]
            chunk, more_before = rest[: request.page_size], len(rest) < len(items)
            more_after = len(rest) > request.page_size
        else:
            earlier = [item for item in items if not after(item, mark) and position(item) != mark]
            chunk = earlier[-request.page_size :]
            more_before = len(earlier) > request.page_size
            more_after = len(earlier) < len(items)
    else:
        start = request.page * request.page_size
        chunk = list(items[start : start + request.page_size])
        more_before = start > 0 and bool(items)
        more_after = len(items) > start + request.page_size

    def url(page: int, token: str | None) -> str:
        query = [*filters, ("PageSize", str(request.page_size)), ("Page", str(page))]
        if token:
            query.append(("PageToken", token))
        return f"{PUBLIC_BASE_URL}{path}?{urlencode(query)}"

    next_url = (
        url(request.page + 1, _token(_AFTER, position(chunk[-1]))) if more_after and chunk else None
    )
    previous_url = (
        url(max(request.page - 1, 0), _token(_BEFORE, position(chunk[0])))
        if more_before and chunk
        else None
    )
    meta = {
        "page": request.page,
        "page_size": request.page_size,
        "first_page_url": url(0, None),
        "previous_page_url": previous_url,
        "url": url(request.page, request.token),
        "next_page_url": next_url,
        "key": key,
    }
    return chunk, meta
