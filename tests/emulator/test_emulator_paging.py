"""Paging that costs the page, not the list: `paging.select` over a `Listing` picks the same pages
as filtering the whole list did (a reference model of that below), the Store's conversations,
messages and ParticipantConversations pages keep Twilio's token semantics through deletions,
state changes and filters, and a page snapshots only its own items."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from emulator.paging import Listing, Page, PageRequest, meta, select
from emulator.records import Conversation
from emulator.store import Origin, ParticipantSpec, Store

SERVICE = "IS" + "2" * 32
API = Origin.api(True)
BASE = "https://conversations.twilio.com"


# -- select against the whole-list reference ------------------------------------------------------


@dataclass(frozen=True)
class Item:
    seq: int
    colour: str


def _position(item: Item) -> int:
    return item.seq


def reference(items: list[Item], request: PageRequest, descending: bool) -> Page[Item]:
    """What the emulator's paging answered before it was indexed: `items` is the whole filtered
    list in list order, and every page filters all of it."""

    def after(item: Item, mark: int) -> bool:
        return item.seq < mark if descending else item.seq > mark

    size = request.page_size
    if request.token:
        kind, mark = request.token
        if kind == "after":
            rest = [item for item in items if after(item, mark)]
            return Page(rest[:size], len(rest) < len(items), len(rest) > size)
        earlier = [item for item in items if not after(item, mark) and item.seq != mark]
        return Page(earlier[-size:], len(earlier) > size, len(earlier) < len(items))
    start = request.page * size
    return Page(items[start : start + size], start > 0 and bool(items), len(items) > start + size)


def _token_request(size: int, page: int, token: tuple[str, int] | None) -> PageRequest:
    """A PageRequest carrying a real token (built by `meta`, as clients receive it)."""
    if token is None:
        return PageRequest(size, page, None)
    kind, mark = token
    probe = Page([Item(mark, "")], more_before=True, more_after=True)
    links = meta(probe, PageRequest(size, page, None), path="/v1/X", key="x", position=_position)
    url = links["next_page_url"] if kind == "after" else links["previous_page_url"]
    return PageRequest(size, page, parse_qs(urlsplit(url).query)["PageToken"][0])


@pytest.mark.parametrize("seed", range(40))
def test_select_picks_the_pages_filtering_the_whole_list_picked(seed):
    rng = random.Random(seed)
    count = rng.randrange(0, 60)
    # Sparse positions, as after deletions; colours stand for states and date filters.
    positions = sorted(rng.sample(range(1, 400), count))
    items = [Item(seq, rng.choice("rgb")) for seq in positions]
    colour = rng.choice([None, "r", "g"])
    wanted = [item for item in items if colour is None or item.colour == colour]
    descending = rng.random() < 0.4
    in_list_order = wanted[::-1] if descending else wanted

    # Bounds stand for date filters on dates in creation order.
    lo, hi = 0, None
    if colour is None and count > 1 and rng.random() < 0.5:
        lo, hi = sorted(rng.sample(range(count + 1), 2))
        in_list_order = items[lo:hi][::-1] if descending else items[lo:hi]
    keep = None if colour is None else (lambda item, c=colour: item.colour == c)
    listing = Listing(items, _position, descending=descending, lo=lo, hi=hi, keep=keep)

    for _ in range(30):
        size = rng.randrange(1, 8)
        page = rng.randrange(0, 6)
        token = (
            None
            if rng.random() < 0.25
            else (rng.choice(["after", "before"]), rng.randrange(0, 402))
        )
        request = _token_request(size, page, token)
        model = PageRequest(size, page, token) if token else request
        assert select(listing, request) == reference(in_list_order, model, descending), (
            size,
            page,
            token,
        )


def test_a_whole_list_given_in_list_order_pages_as_before():
    items = [Item(seq, "r") for seq in (2, 5, 9, 11, 40)]
    for descending in (False, True):
        in_list_order = items[::-1] if descending else items
        listing = Listing.of(in_list_order, _position, descending=descending)
        for mark in range(0, 42):
            for kind in ("after", "before"):
                request = _token_request(2, 1, (kind, mark))
                expected = reference(in_list_order, PageRequest(2, 1, (kind, mark)), descending)
                assert select(listing, request) == expected


# -- the Store's pages ----------------------------------------------------------------------------


class SteppingClock:
    """Each `now()` a second after the last, unless a test sets it back."""

    def __init__(self) -> None:
        self.moment = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def store(clock) -> Store:
    store = Store(clock, "AC" + "0" * 32, SERVICE, "MG" + "0" * 32)
    return store


def _every_page(fetch, size: int, between=lambda page: None) -> list[list[str]]:
    """The SIDs of every page, following next_page_url's token as a client does."""
    request, pages = PageRequest(size, 0, None), []
    while True:
        page = fetch(request)
        pages.append([item.sid for item in page.items])
        between(page)
        links = meta(page, request, path="/v1/Conversations", key="x", position=lambda c: c.seq)
        if not links["next_page_url"]:
            return pages
        query = parse_qs(urlsplit(links["next_page_url"]).query)
        request = PageRequest(size, int(query["Page"][0]), query["PageToken"][0])


def test_deleting_and_closing_between_pages_neither_skips_nor_repeats(store):
    sids = [store.create_conversation(SERVICE, origin=API).sid for _ in range(30)]
    deleted, ahead = set(), set()

    def meddle(page):
        # Delete this page's first item (seen) and one ahead; close one ahead (it leaves `active`).
        if not page.items:
            return
        last = sids.index(page.items[-1].sid)
        store.delete_conversation(SERVICE, page.items[0].sid, origin=API)
        deleted.add(page.items[0].sid)
        for sid in sids[last + 5 : last + 6]:
            if sid not in ahead:
                store.delete_conversation(SERVICE, sid, origin=API)
                deleted.add(sid)
                ahead.add(sid)
        for sid in sids[last + 2 : last + 3]:
            if sid not in ahead:
                store.update_conversation(SERVICE, sid, state="closed", origin=API)
                ahead.add(sid)

    pages = _every_page(
        lambda request: store.conversations_page(SERVICE, request, state="active"), 4, meddle
    )
    seen = [sid for page in pages for sid in page]
    assert ahead and len(deleted) > len(pages)
    assert seen == [sid for sid in sids if sid not in ahead]


def test_state_filters_page_through_moves_between_states(store):
    sids = [store.create_conversation(SERVICE, origin=API).sid for _ in range(12)]
    for sid in sids[::3]:
        store.update_conversation(SERVICE, sid, state="inactive", origin=API)
    for sid in sids[1::3]:
        store.update_conversation(SERVICE, sid, state="closed", origin=API)
    # A message turns an inactive conversation active again: back into `active`'s order.
    store.add_message(SERVICE, sids[0], author="x", body="hi", attributes=None, origin=API)
    for state in ("active", "inactive", "closed"):
        pages = _every_page(
            lambda request, s=state: store.conversations_page(SERVICE, request, state=s), 2
        )
        listed = [c.sid for c in store.list_conversations(SERVICE, state=state)]
        assert [sid for page in pages for sid in page] == listed
        assert listed == [
            sid for sid in sids if store.get_conversation(SERVICE, sid).state == state
        ]
    assert [c.sid for c in store.list_conversations(SERVICE, state="active")][0] == sids[0]


@pytest.mark.parametrize("clock_goes_back", [False, True])
def test_date_filters_with_paging(store, clock, clock_goes_back):
    made = []
    for n in range(20):
        if clock_goes_back and n == 10:
            clock.moment -= timedelta(hours=1)  # a test's clock may: dates no longer in order
        made.append(store.create_conversation(SERVICE, origin=API))
    store.update_conversation(SERVICE, made[4].sid, state="closed", origin=API)
    moments = sorted(c.date_created for c in made)
    for start, end, state in [
        (moments[3], moments[15], None),
        (moments[3], None, "active"),
        (None, moments[8], None),
        (moments[12], moments[2], None),
        (moments[0], moments[19] + timedelta(1), "closed"),
    ]:
        expected = [
            c.sid for c in store.list_conversations(SERVICE, state=state, start=start, end=end)
        ]
        assert expected == [
            c.sid
            for c in made
            if (not start or c.date_created >= start)
            and (not end or c.date_created < end)
            and (not state or store.get_conversation(SERVICE, c.sid).state == state)
        ]
        pages = _every_page(
            lambda r, a=start, b=end, s=state: store.conversations_page(
                SERVICE, r, state=s, start=a, end=b
            ),
            3,
        )
        assert [sid for page in pages for sid in page] == expected
        # Page numbers without a token are offsets into the filtered list.
        third = store.conversations_page(
            SERVICE, PageRequest(3, 2, None), state=state, start=start, end=end
        )
        assert [c.sid for c in third.items] == expected[6:9]


def test_messages_page_in_either_order_through_tokens(store):
    sid = store.create_conversation(SERVICE, origin=API).sid
    bodies = [f"m{n}" for n in range(11)]
    for body in bodies:
        store.add_message(SERVICE, sid, author="a", body=body, attributes=None, origin=API)
    for order, expected in (("asc", bodies), ("desc", bodies[::-1])):
        request, seen = PageRequest(4, 0, None), []
        while True:
            page = store.messages_page(SERVICE, sid, request, order=order)
            seen += [m.body for m in page.items]
            links = meta(page, request, path="/v1/x", key="messages", position=lambda m: m.seq)
            if not links["next_page_url"]:
                break
            query = parse_qs(urlsplit(links["next_page_url"]).query)
            request = PageRequest(4, int(query["Page"][0]), query["PageToken"][0])
        assert seen == expected


# -- what a page costs ----------------------------------------------------------------------------


@pytest.fixture
def snapshots(monkeypatch) -> list[str]:
    """The SID of every conversation snapshot taken (a spy that still takes the snapshot)."""
    taken: list[str] = []
    real = Conversation.snapshot

    def counted(self: Conversation) -> Conversation:
        taken.append(self.sid)
        return real(self)

    monkeypatch.setattr(Conversation, "snapshot", counted)
    return taken


def test_listing_conversations_page_by_page_snapshots_each_page_only(store, snapshots):
    count, size = 3_000, 50
    sids = [store.create_conversation(SERVICE, origin=API).sid for _ in range(count)]
    for sid in sids[::2]:
        store.update_conversation(SERVICE, sid, state="inactive", origin=API)
    snapshots.clear()
    per_page: list[int] = []

    def fetch(request, state=None):
        before = len(snapshots)
        page = store.conversations_page(SERVICE, request, state=state)
        per_page.append(len(snapshots) - before)
        return page

    pages = _every_page(fetch, size)
    assert sum(len(p) for p in pages) == count and len(pages) == count // size
    assert max(per_page) == size and sum(per_page) == count
    per_page.clear()
    pages = _every_page(lambda r: fetch(r, "inactive"), size)
    assert sum(len(p) for p in pages) == count // 2
    assert max(per_page) == size and sum(per_page) == count // 2


def test_listing_over_http_snapshots_each_page_only(emulator, conversations, snapshots):
    store, count = emulator.engine.store, 400
    service = emulator.config.service_sid
    for _ in range(count):
        store.create_conversation(service, origin=API)
    snapshots.clear()
    listed = conversations.conversations.list(page_size=20)
    assert len(listed) == count
    # Each of the 20 pages snapshots its 20 conversations, and nothing else does.
    assert len(snapshots) == count == len(set(snapshots))


def test_participant_conversations_page_through_tokens_and_snapshot_each_page_only(
    emulator, conversations, snapshots
):
    store, service = emulator.engine.store, emulator.config.service_sid
    other = store.create_service("other").sid
    agent = ParticipantSpec(identity="agent-9")
    mine = []
    for n in range(30):
        if n % 4 == 0:  # the same identity in another service: not listed here
            elsewhere = store.create_conversation(other, origin=API).sid
            store.add_participant(other, elsewhere, agent, origin=API)
        sid = store.create_conversation(service, origin=API).sid
        store.add_participant(service, sid, agent, origin=API)
        mine.append(sid)
    store.delete_conversation(service, mine.pop(5), origin=API)
    snapshots.clear()
    found = conversations.participant_conversations.list(identity="agent-9", page_size=7)
    assert [pc.conversation_sid for pc in found] == mine
    assert sorted(snapshots) == sorted(mine)
