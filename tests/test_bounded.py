"""BoundedLog: drops only the oldest items, counts them, and keeps ids and cursors stable."""

from __future__ import annotations

import platform

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.bounded import BoundedLog, give_back_big_blocks


def test_batches_are_trimmed_from_the_front():
    log: BoundedLog[str] = BoundedLog(max_items=4, max_bytes=10**9)
    assert log.append(["a", "b", "c"], 30) == 1
    assert log.append(["d", "e"], 20) == 4
    assert [item for _, item in log.items_since()] == ["b", "c", "d", "e"]
    assert (log.count, log.dropped) == (4, 1)
    assert [i for i, _ in log.items_since(since=3)] == [4, 5]


def test_a_batch_larger_than_the_bound_keeps_its_newest_items():
    log: BoundedLog[int] = BoundedLog(max_items=3, max_bytes=10**9)
    log.append(list(range(10)), 100)
    assert [item for _, item in log.items_since()] == [7, 8, 9]
    assert log.dropped == 7


def test_clear_keeps_ids_increasing():
    log: BoundedLog[str] = BoundedLog(max_items=10, max_bytes=100)
    log.append(["a"], 1)
    log.clear()
    assert log.append(["b"], 1) == 2
    assert (log.count, log.dropped) == (1, 0)


@given(
    batches=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 500)), max_size=30),
    max_items=st.integers(1, 40),
    max_bytes=st.integers(1, 2000),
)
def test_bounds_hold_and_nothing_but_the_oldest_is_lost(batches, max_items, max_bytes):
    log: BoundedLog[int] = BoundedLog(max_items, max_bytes)
    sent = 0
    for size, nbytes in batches:
        log.append(list(range(sent, sent + size)), nbytes)
        sent += size
        assert log.count <= max_items and log.nbytes <= max_bytes
    kept = [item for _, item in log.items_since()]
    assert kept == list(range(sent - len(kept), sent))  # a suffix: only the oldest dropped
    assert log.count + log.dropped == sent
    assert [i for i, _ in log.items_since()] == [item + 1 for item in kept]


def test_resize_charges_an_items_final_size_and_trims_the_oldest():
    log: BoundedLog[str] = BoundedLog(max_items=10, max_bytes=100)
    log.append(["a"], 10)
    open_id = log.append(["b"], 1)  # an entry still open: its size is known only at its end
    log.append(["c"], 10)
    log.resize(open_id, 85)
    assert (log.nbytes, log.dropped) == (95, 1)
    assert [item for _, item in log.items_since()] == ["b", "c"]


def test_resize_of_a_dropped_or_unknown_item_changes_nothing():
    log: BoundedLog[str] = BoundedLog(max_items=1, max_bytes=100)
    first = log.append(["a"], 10)
    log.append(["b"], 10)
    log.resize(first, 1000)
    log.resize(99, 1000)
    assert (log.nbytes, log.count, [item for _, item in log.items_since()]) == (10, 1, ["b"])


def test_an_item_resized_over_the_whole_bound_is_dropped_itself():
    log: BoundedLog[str] = BoundedLog(max_items=10, max_bytes=100)
    item_id = log.append(["a"], 1)
    log.resize(item_id, 101)
    assert (log.count, log.nbytes, log.dropped) == (0, 0, 1)


def test_the_allocator_gives_big_blocks_back_on_glibc():
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert give_back_big_blocks() is True
