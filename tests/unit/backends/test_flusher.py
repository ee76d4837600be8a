"""The router's metric flusher: applied when traffic goes idle, bounded while it flows.

Deadlines here are generous and only bound how long a failing test waits: nothing
asserts on elapsed time.
"""

from __future__ import annotations

import threading
import time

from tritonab.backends._flusher import Flusher


def _until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_pending_items_are_applied_as_soon_as_traffic_goes_idle():
    applied: list[int] = []
    # A period far beyond the deadline: only the idle rule can apply the items in time.
    flusher = Flusher(applied.extend, period=60.0, idle=0.005)
    try:
        for i in range(5):
            flusher.add(i)
        assert _until(lambda: len(applied) == 5), applied
        flusher.add(5)  # the thread went back to sleep and wakes for the next item
        assert _until(lambda: len(applied) == 6), applied
    finally:
        flusher.close(timeout=1.0)
    assert applied == list(range(6))


def test_continuous_traffic_is_applied_within_the_period_not_only_at_the_end():
    feeding = threading.Event()
    feeding.set()
    seen_while_feeding: list[bool] = []

    def apply(items: list[int]) -> None:
        seen_while_feeding.append(feeding.is_set())

    # The idle gap is never reached (an item every millisecond): only the period applies.
    flusher = Flusher(apply, period=0.05, idle=60.0)

    def feed() -> None:
        deadline = time.monotonic() + 10.0
        while not seen_while_feeding and time.monotonic() < deadline:
            flusher.add(1)
            time.sleep(0.001)
        feeding.clear()

    feeder = threading.Thread(target=feed)
    feeder.start()
    feeder.join()
    flusher.close(timeout=1.0)
    assert seen_while_feeding and seen_while_feeding[0] is True


def test_flush_applies_everything_pending_in_the_callers_thread():
    applied: list[tuple[str, list[int]]] = []
    flusher = Flusher(
        lambda items: applied.append((threading.current_thread().name, list(items))),
        period=60.0,
        idle=60.0,
    )
    try:
        flusher.add(1)
        flusher.add(2)
        assert flusher.flush() == 2
        assert applied == [(threading.current_thread().name, [1, 2])]
        assert flusher.flush() == 0
    finally:
        flusher.close(timeout=1.0)


def test_close_applies_what_is_pending_and_stops_the_thread():
    applied: list[int] = []
    flusher = Flusher(applied.extend, period=60.0, idle=60.0)
    flusher.add(7)
    flusher.close(timeout=2.0)
    assert applied == [7]
    assert not flusher._thread.is_alive()


def test_a_failing_apply_is_reported_and_later_items_still_applied():
    applied: list[int] = []
    errors: list[str] = []

    def apply(items: list[int]) -> None:
        if 0 in items:
            raise RuntimeError("metric IPC failed")
        applied.extend(items)

    flusher = Flusher(apply, period=0.05, idle=0.005, on_error=lambda exc: errors.append(str(exc)))
    try:
        flusher.add(0)
        assert _until(lambda: errors == ["metric IPC failed"]), errors
        flusher.add(1)
        assert _until(lambda: applied == [1]), applied
    finally:
        flusher.close(timeout=1.0)


def test_every_item_is_applied_exactly_once_under_concurrent_adds_and_flushes():
    applied: list[int] = []
    flusher = Flusher(applied.extend, period=0.01, idle=0.001)
    per_thread = 2000

    def add(start: int) -> None:
        for i in range(start, start + per_thread):
            flusher.add(i)
            if i % 500 == 0:
                flusher.flush()

    threads = [threading.Thread(target=add, args=(k * per_thread,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flusher.close(timeout=2.0)
    assert sorted(applied) == list(range(4 * per_thread))
