"""Twilio's paging: `PageSize`, `Page` and an opaque `PageToken`, answered with `meta`.

Page URLs are absolute on conversations.twilio.com (the official client follows `next_page_url`
verbatim). A token remembers the position of the last (or first) item of the page it came from,
not an offset, so deleting items between two page calls neither skips nor repeats any.

A page is picked from a `Listing`: items kept in position order, which a token's position is found
in by bisection, so a page costs its own items and a bisection, not the length of the list
(`select`, with the caller's lock held); `meta` then renders the page's links.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from emulator.defaults import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PUBLIC_BASE_URL
from emulator.errors import InvalidParameter

T = TypeVar("T")
U = TypeVar("U")

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


@dataclass(frozen=True)
class Listing(Generic[T]):
    """What a list request lists: `items[lo:hi]` (None: to the end), kept in ascending `position`
    (every item's ever-increasing sequence number), those `keep` accepts (None: all), in list
    order: ascending, or from high to low positions when `descending`.

    Without `keep` a page is slices of `items` found by bisection; with it, a page walks from
    there past the items `keep` refuses."""

    items: Sequence[T]
    position: Callable[[T], int]
    descending: bool = False
    lo: int = 0
    hi: int | None = None
    keep: Callable[[T], bool] | None = None

    @classmethod
    def of(
        cls, items: Sequence[T], position: Callable[[T], int], *, descending: bool = False
    ) -> Listing[T]:
        """A whole list given in list order (for short lists that are built for each request)."""
        return cls(items[::-1] if descending else items, position, descending)

    def after(self, mark: int | None, count: int) -> list[T]:
        """Up to `count` items that come after position `mark` in list order (None: from the
        first), in list order."""
        hi = self._hi()
        if self.descending:
            end = hi if mark is None else self._bisect_left(mark)
            return self._walk(end - 1, -1, count)
        begin = self.lo if mark is None else self._bisect_right(mark)
        return self._walk(begin, 1, count)

    def before(self, mark: int, count: int) -> list[T]:
        """The last (up to) `count` items that come before position `mark` in list order, in list
        order."""
        if self.descending:
            found = self._walk(self._bisect_right(mark), 1, count)
        else:
            found = self._walk(self._bisect_left(mark) - 1, -1, count)
        found.reverse()
        return found

    def at(self, offset: int, count: int) -> list[T]:
        """Up to `count` items from the `offset`-th in list order on."""
        if self.keep is None:
            hi = self._hi()
            if self.descending:
                end = max(hi - offset, self.lo)
                return list(reversed(self.items[max(end - count, self.lo) : end]))
            begin = min(self.lo + offset, hi)
            return list(self.items[begin : min(begin + count, hi)])
        return self.after(None, offset + count)[offset:]

    def nudged(self, mark: int, steps: int) -> int:
        """The position `steps` further along in list order than `mark`."""
        return mark - steps if self.descending else mark + steps

    def _hi(self) -> int:
        return len(self.items) if self.hi is None else self.hi

    def _bisect_left(self, mark: int) -> int:
        return bisect_left(self.items, mark, self.lo, self._hi(), key=self.position)

    def _bisect_right(self, mark: int) -> int:
        return bisect_right(self.items, mark, self.lo, self._hi(), key=self.position)

    def _walk(self, index: int, step: int, count: int) -> list[T]:
        """Up to `count` kept items from `index` on, one `step` at a time, in the walk's order."""
        lo, hi, keep, items = self.lo, self._hi(), self.keep, self.items
        if keep is None:
            if step > 0:
                return list(items[index : min(index + count, hi)])
            begin = max(index + 1 - count, lo)
            return list(reversed(items[begin : index + 1]))
        found: list[T] = []
        while lo <= index < hi and len(found) < count:
            item = items[index]
            if keep(item):
                found.append(item)
            index += step
        return found


@dataclass(frozen=True)
class Page(Generic[T]):
    """The items of one page, in list order, and whether the list goes on before and after them."""

    items: list[T]
    more_before: bool
    more_after: bool

    def mapped(self, render: Callable[[T], U]) -> Page[U]:
        """The same page of `render(item)`s (such as snapshots of live records)."""
        return Page([render(item) for item in self.items], self.more_before, self.more_after)


def select(listing: Listing[T], request: PageRequest) -> Page[T]:
    """The page of `listing` that `request` asks for: after (or before) its token's position, or
    at `Page` x `PageSize` without a token."""
    size = request.page_size
    if request.token:
        kind, mark = _read_token(request.token)
        if kind == _AFTER:
            rest = listing.after(mark, size + 1)
            # Anything at or before the mark is before this page.
            more_before = bool(listing.before(listing.nudged(mark, 1), 1))
            return Page(rest[:size], more_before, len(rest) > size)
        earlier = listing.before(mark, size + 1)
        # Anything at or after the mark is after this page.
        more_after = bool(listing.after(listing.nudged(mark, -1), 1))
        return Page(earlier[-size:], len(earlier) > size, more_after)
    start = request.page * size
    chunk = listing.at(start, size + 1)
    more_before = start > 0 and bool(listing.after(None, 1))
    return Page(chunk[:size], more_before, len(chunk) > size)


def meta(
    page: Page[T],
    request: PageRequest,
    *,
    path: str,
    key: str,
    position: Callable[[T], int],
    filters: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Twilio's `meta` of a page: its URL, the first page's, and the previous and next pages'
    (None at the list's ends)."""
    chunk = page.items

    def url(number: int, token: str | None) -> str:
        query = [*filters, ("PageSize", str(request.page_size)), ("Page", str(number))]
        if token:
            query.append(("PageToken", token))
        return f"{PUBLIC_BASE_URL}{path}?{urlencode(query)}"

    next_url = (
        url(request.page + 1, _token(_AFTER, position(chunk[-1])))
        if page.more_after and chunk
        else None
    )
    previous_url = (
        url(max(request.page - 1, 0), _token(_BEFORE, position(chunk[0])))
        if page.more_before and chunk
        else None
    )
    return {
        "page": request.page,
        "page_size": request.page_size,
        "first_page_url": url(0, None),
        "previous_page_url": previous_url,
        "url": url(request.page, request.token),
        "next_page_url": next_url,
        "key": key,
    }


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
    """One page of a whole list `items` (already in list order, as `Listing.of` takes it) and its
    `meta`."""
    page = select(Listing.of(items, position, descending=descending), request)
    return page.items, meta(page, request, path=path, key=key, position=position, filters=filters)
