"""Metric updates off the request path: handed over by `add`, applied by one thread.

Each update of a Python-backend metric is a round trip to the server process (30-80 us),
and handing every batch to a thread pool costs about 40 us more on the request path, so
the router's `execute` only appends to a deque; one background thread applies what is
pending. It applies as soon as the traffic goes idle (no new item for `idle` seconds, a
gap that doubles while items keep coming) and,
under continuous traffic, at most `period` seconds after it woke for the first pending
item: a reader of Triton's `/metrics` sees complete counts shortly after the last
response, and never more than about `period` behind while traffic flows. With nothing
pending the thread sleeps.

Plain Python (no Triton), so the timing contract is unit-tested.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

PERIOD_S = 0.05
IDLE_S = 0.005


class Flusher(Generic[T]):
    """Collects items from any thread and applies them in batches on a background thread.

    Args:
        apply: called with every item pending since the previous pass (never empty).
        period: the longest a pending item waits while items keep arriving, seconds.
        idle: a gap without new items this long (seconds) means the traffic went idle:
            apply at once.
        on_error: called with an exception `apply` raised (the items are lost, the
            thread goes on); by default the error is ignored.
    """

    def __init__(
        self,
        apply: Callable[[list[T]], None],
        *,
        period: float = PERIOD_S,
        idle: float = IDLE_S,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._items: deque[T] = deque()
        self._apply = apply
        self._period = period
        self._idle = idle
        self._on_error = on_error
        self._pending = threading.Event()
        self._closing = threading.Event()
        self._pass = threading.Lock()  # one pass at a time: the thread, `flush`, `close`
        self._thread = threading.Thread(target=self._loop, name="tritonab-metrics", daemon=True)
        self._thread.start()

    def add(self, item: T) -> None:
        """Hand over one item (the request path: a deque append and a flag read)."""
        self._items.append(item)  # deque.append is atomic: no lock on the request path
        if not self._pending.is_set():
            self._pending.set()

    def flush(self) -> int:
        """Apply everything pending now, in the calling thread.

        Returns:
            How many items were applied.
        """
        with self._pass:
            items: list[T] = []
            while True:
                try:
                    items.append(self._items.popleft())
                except IndexError:
                    break
            if items:
                try:
                    self._apply(items)
                except Exception as exc:  # metrics must never stop the router
                    if self._on_error is not None:
                        self._on_error(exc)
            return len(items)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and apply what is still pending."""
        self._closing.set()
        self._pending.set()
        self._thread.join(timeout=timeout)
        self.flush()

    def _loop(self) -> None:
        while not self._closing.is_set():
            self._pending.wait()
            if self._closing.is_set():
                break
            self._settle()
            # Cleared before the pass: an item added from here on sets the flag again.
            self._pending.clear()
            self.flush()

    def _settle(self) -> None:
        """Wait while items keep arriving, at most `period` in all. The gap it checks
        doubles after each look that found new items (idle, 2 idle, 4 idle, ...): under
        continuous traffic the thread wakes 4 times per period instead of period/idle
        times, and each wake-up takes the GIL from `execute`."""
        deadline = time.monotonic() + self._period
        seen = len(self._items)
        gap = self._idle
        while (left := deadline - time.monotonic()) > 0:
            if self._closing.wait(min(gap, left)):
                return
            now = len(self._items)
            if now == seen:
                return  # idle: nothing new for `gap` seconds
            seen = now
            gap *= 2
