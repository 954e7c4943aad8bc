"""A log bounded by item count and bytes that drops only its oldest items, and counts them.

Items arrive in batches (one journal entry, or all the recipients of one request); a batch is kept
as one object and trimmed from the front, so a 5000-recipient request costs one append, not 5000.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)
MMAP_THRESHOLD = 128 << 10  # glibc's own starting value, kept fixed


@functools.cache
def give_back_big_blocks() -> bool:
    """Fix glibc's mmap threshold at its starting value, once per process (forked workers inherit
    it); False where there is no glibc `mallopt`.

    glibc raises the threshold to the size of each big block freed (up to 32 MiB): once a 1.5 MiB
    body is freed, every later one is carved from the heap instead of mapped, and freed heap is
    seldom given back. The process then keeps its peak forever, whatever the bounds hold (issue 9:
    409 MiB after 80 5000-recipient requests, 193 with the threshold fixed)."""
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def share_of_bytes(nbytes: int, items: int, kept: int) -> int:
    """What `kept` of a batch's `items` cost: bytes are apportioned evenly across a batch's
    items, exact enough to bound memory."""
    return nbytes * kept // max(items, 1)


def oldest_to_drop(over: tuple[int, int], items: int, nbytes: int, kept: int) -> int:
    """How many of the oldest batch's `kept` items go when the log is `over` its bounds by (items,
    bytes): enough for both (its bytes apportioned), at least one, at most all it keeps. The
    outbox drops by this rule too (outbox.MemoryOutbox; redis_scripts' `trim` in Lua)."""
    per_item = nbytes / max(items, 1)
    for_bytes = math.ceil(over[1] / per_item) if over[1] > 0 and per_item else 0
    return min(max(over[0], for_bytes, 1), kept)


@dataclass
class _Batch(Generic[T]):
    first_id: int
    items: Sequence[T]
    nbytes: int
    start: int = 0  # items before this index were dropped

    @property
    def kept(self) -> int:
        return len(self.items) - self.start

    @property
    def kept_bytes(self) -> int:
        return share_of_bytes(self.nbytes, len(self.items), self.kept)


class BoundedLog(Generic[T]):
    """Items with consecutive integer ids from 1; at most `max_items` items and `max_bytes`."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._batches: deque[_Batch[T]] = deque()
        self._next_id = 1
        self.count = 0
        self.nbytes = 0
        self.dropped = 0

    def append(self, items: Sequence[T], nbytes: int) -> int:
        """Keep `items`, dropping the oldest as needed; return the id of the first one."""
        first_id = self._next_id
        self._next_id += len(items)
        if items:
            self._batches.append(_Batch(first_id, items, nbytes))
            self.count += len(items)
            self.nbytes += nbytes
            self._trim()
        return first_id

    def resize(self, first_id: int, nbytes: int) -> None:
        """Charge the batch appended as `first_id` `nbytes` in all (a journal entry's size is known
        only when its request ends); trim the oldest if the bound is now exceeded."""
        batch = self._batch_at(first_id)
        if batch is None:
            return  # already dropped: nothing of it is held any more
        before = batch.kept_bytes
        batch.nbytes = nbytes
        self.nbytes += batch.kept_bytes - before
        self._trim()

    def _batch_at(self, first_id: int) -> _Batch[T] | None:
        # Newest first: the batches still being resized are the requests in flight, near the end.
        for batch in reversed(self._batches):
            if batch.first_id == first_id:
                return batch
            if batch.first_id < first_id:
                return None
        return None

    def reserve_id(self) -> int:
        """The id the next single item will get (so a request can name its journal entry early)."""
        return self._next_id

    def clear(self) -> None:
        self._batches.clear()
        self.count = self.nbytes = self.dropped = 0

    def items_since(
        self, since: int = 0, keep: Callable[[T], bool] | None = None
    ) -> Iterator[tuple[int, T]]:
        """(id, item) pairs with id > since, oldest first, optionally filtered."""
        for first_id, offset, items in self.batches_since(since):
            for index in range(offset, len(items)):
                item = items[index]
                if keep is None or keep(item):
                    yield first_id + index, item

    def batches_since(self, since: int = 0) -> Iterator[tuple[int, int, Sequence[T]]]:
        """(first id, index of the first item with id > since, items) of each batch holding such
        an item, oldest first: a reader can open a batch once for all its items."""
        for batch in self._batches:
            last_id = batch.first_id + len(batch.items) - 1
            if last_id > since:
                yield batch.first_id, max(batch.start, since - batch.first_id + 1), batch.items

    def _trim(self) -> None:
        while self._batches and (self.count > self.max_items or self.nbytes > self.max_bytes):
            oldest = self._batches[0]
            over = (self.count - self.max_items, self.nbytes - self.max_bytes)
            self._drop_front(
                oldest, oldest_to_drop(over, len(oldest.items), oldest.nbytes, oldest.kept)
            )

    def _drop_front(self, batch: _Batch[T], n: int) -> None:
        before = batch.kept_bytes
        batch.start += n
        self.count -= n
        self.dropped += n
        self.nbytes -= before - batch.kept_bytes
        if batch.kept == 0:
            self._batches.popleft()
