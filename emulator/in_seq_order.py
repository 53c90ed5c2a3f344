"""Records kept in `seq` order (their ever-increasing sequence number), for lists that are paged:
a page bisects to its token's position instead of filtering the whole list (see `paging.Listing`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Generic, Protocol, TypeVar


class Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


R = TypeVar("R", bound=Sequenced)


def _seq(record: Sequenced) -> int:
    return record.seq


class InSeqOrder(Generic[R]):
    """Records by ascending `seq`. Adding the newest appends; removing one is a bisection and a
    list deletion (a memory move, no Python-level walk). Not thread-safe: its owner's lock is."""

    def __init__(self) -> None:
        self.items: list[R] = []
        """Read-only for everyone but this class."""

    def add(self, record: R) -> None:
        if self.items and record.seq < self.items[-1].seq:
            insort(self.items, record, key=_seq)
        else:
            self.items.append(record)

    def remove(self, record: R) -> None:
        """KeyError if the record is not here."""
        index = bisect_left(self.items, record.seq, key=_seq)
        if index == len(self.items) or self.items[index] is not record:
            raise KeyError(record.seq)
        del self.items[index]

    def __len__(self) -> int:
        return len(self.items)
