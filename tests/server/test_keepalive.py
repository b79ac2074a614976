"""Connection timers on a clock the test moves by hand (no sleeping): ``ConnectionDeadline``,
the HTTP/1.1 head and keep-alive deadline, and ``Keepalive``, the WebSocket ping timer."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from wsgi2asgi.server.keepalive import ConnectionDeadline, Keepalive, Phase


class Handle:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """The event-loop methods the timers use, on a clock that only ``advance`` moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, Handle]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        return self.call_at(self.now + delay, callback)

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        handle = Handle(when, callback)
        heapq.heappush(self._timers, (handle.when, next(self._order), handle))
        return handle

    def advance(self, seconds: float) -> None:
        """Move the clock, running each timer that falls due, at its own time."""
        end = self.now + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, handle = heapq.heappop(self._timers)
            self.now = when
            if not handle.cancelled:
                handle.callback()
        self.now = end

    def pending(self) -> int:
        return sum(not handle.cancelled for _, _, handle in self._timers)


def watch(
    interval: float, timeout: float | None, behind: list[bool] | None = None
) -> tuple[ManualLoop, Keepalive, list[str]]:
    loop = ManualLoop()
    events: list[str] = []

    def ping() -> None:
        events.append(f"ping at {loop.now:g}")

    def timed_out() -> None:
        events.append(f"timeout at {loop.now:g}")

    keepalive = Keepalive(
        loop,  # type: ignore[arg-type]
        interval,
        timeout,
        ping=ping,
        on_timeout=timed_out,
        app_behind=lambda: bool(behind and behind[0]),
    )
    keepalive.start()
    return loop, keepalive, events


def talk(loop: ManualLoop, keepalive: Keepalive, every: float, until: float) -> None:
    while loop.now + every <= until:
        loop.advance(every)
        keepalive.seen()


def test_keepalive_never_pings_a_client_that_keeps_talking() -> None:
    loop, keepalive, events = watch(20, 20)
    talk(loop, keepalive, every=5, until=300)
    assert events == []
    assert loop.pending() == 1  # one timer, re-armed, never one per frame


def test_keepalive_pings_a_silent_client_and_gives_up_on_it() -> None:
    loop, _, events = watch(20, 10)
    loop.advance(100)
    assert events == ["ping at 20", "timeout at 30"]


def test_keepalive_counts_silence_from_the_last_frame() -> None:
    loop, keepalive, events = watch(20, 10)
    loop.advance(15)
    keepalive.seen()  # silent from 15 on: the ping is due at 35, not 20
    loop.advance(25)
    assert events == ["ping at 35"]


def test_keepalive_an_answer_after_the_ping_keeps_the_connection() -> None:
    loop, keepalive, events = watch(20, 10)
    loop.advance(25)
    keepalive.seen()  # the pong, 5 s after the ping
    loop.advance(100)
    # Silent again from 25: pinged at 45, and this time never answered.
    assert events == ["ping at 20", "ping at 45", "timeout at 55"]


def test_keepalive_without_a_timeout_pings_but_never_gives_up() -> None:
    loop, _, events = watch(20, None)
    loop.advance(70)
    assert events == ["ping at 20", "ping at 40", "ping at 60"]


def test_keepalive_timeout_waits_while_the_app_is_behind() -> None:
    behind = [True]  # the server stopped reading: the pong may be unread in the socket
    loop, _, events = watch(20, 10, behind)
    loop.advance(200)
    assert events == ["ping at 20"]
    behind[0] = False  # the app caught up, reading resumed, and still nothing came
    loop.advance(10)
    assert events == ["ping at 20", "timeout at 210"]


def test_keepalive_stop_cancels_the_timer() -> None:
    loop, keepalive, events = watch(20, 10)
    keepalive.stop()
    loop.advance(100)
    assert events == [] and loop.pending() == 0


def test__manual_loop_runs_timers_in_order() -> None:
    loop = ManualLoop()
    seen: list[str] = []
    loop.call_later(2, lambda: seen.append("b"))
    loop.call_later(1, lambda: seen.append("a"))
    loop.call_later(3, lambda: seen.append("c")).cancel()
    loop.advance(5)
    assert seen == ["a", "b"] and loop.now == 5


# -- ConnectionDeadline (#13.2-4) ------------------------------------------------------------------

HEAD, IDLE = 10.0, 20.0


def deadline() -> tuple[ManualLoop, ConnectionDeadline, list[str]]:
    loop = ManualLoop()
    expired: list[str] = []
    clock = ConnectionDeadline(
        loop,  # type: ignore[arg-type]
        HEAD,
        IDLE,
        lambda: expired.append(f"closed at {loop.now:g}"),
    )
    return loop, clock, expired


def test_deadline_a_new_connection_waits_for_a_head_from_accept() -> None:
    # #13.2: nothing sent yet is a head not begun: the header deadline, not keep-alive's.
    loop, clock, expired = deadline()
    clock.watch(busy=False, in_head=False)  # connection_made
    loop.advance(4)
    clock.watch(busy=False, in_head=False)  # #13.3: a blank line: nothing changes
    loop.advance(4)
    clock.watch(busy=False, in_head=True)  # the head begins: still the clock from accept
    loop.advance(100)
    assert clock.phase is Phase.HEAD and expired == ["closed at 10"]


def test_deadline_a_trickling_head_does_not_push_its_deadline_back() -> None:
    loop, clock, expired = deadline()
    clock.watch(busy=False, in_head=True)
    for _ in range(30):
        loop.advance(1)
        clock.watch(busy=False, in_head=True)  # one more byte of it
    assert expired == ["closed at 10"]


def test_deadline_idle_after_a_response_and_blank_lines_change_nothing() -> None:
    loop, clock, expired = deadline()
    clock.watch(busy=False, in_head=False)
    clock.watch(busy=True, in_head=False)  # a request runs: no deadline
    loop.advance(50)
    assert expired == [] and loop.pending() == 0
    clock.watch(busy=False, in_head=False)  # its response is complete: idle from 50
    loop.advance(15)
    clock.watch(busy=False, in_head=False)  # #13.3: "\r\n" on the idle connection
    loop.advance(100)
    assert expired == ["closed at 70"]


def test_deadline_a_head_begun_on_an_idle_connection_gets_the_header_deadline() -> None:
    loop, clock, expired = deadline()
    clock.watch(busy=True, in_head=False)
    clock.watch(busy=False, in_head=False)  # idle from 0
    loop.advance(15)
    clock.watch(busy=False, in_head=True)  # a head's first byte at 15
    loop.advance(100)
    assert expired == ["closed at 25"]


def test_deadline_a_head_behind_a_slow_response_runs_from_its_end() -> None:
    # #13.4: the head pipelined behind a slow request is unfinished. No deadline while the
    # request runs (its response is never cut for it); from the response's end, the header one.
    loop, clock, expired = deadline()
    clock.watch(busy=True, in_head=False)
    clock.watch(busy=True, in_head=True)  # the unfinished head arrives behind it
    loop.advance(60)  # a response six header deadlines long
    assert expired == []
    clock.watch(busy=False, in_head=True)  # the response is complete at 60
    loop.advance(5)
    clock.watch(busy=False, in_head=True)  # the client trickles on
    loop.advance(100)
    assert expired == ["closed at 70"]


def test_deadline_one_timer_for_a_busy_kept_alive_connection() -> None:
    # Requests one after another: the timer is neither cancelled nor armed for each; the one
    # pending wakes, sees the connection busy or the idle wait not over, and acts on that.
    loop, clock, expired = deadline()
    clock.watch(busy=False, in_head=False)
    for _ in range(1000):
        clock.watch(busy=True, in_head=False)
        loop.advance(0.5)
        clock.watch(busy=False, in_head=False)
        loop.advance(0.5)
        assert loop.pending() <= 1
    assert expired == []
    loop.advance(IDLE - 0.5 - 0.01)
    assert expired == []  # idle since 1000 - 0.5
    loop.advance(0.02)
    assert expired == [f"closed at {1000 - 0.5 + IDLE:g}"]


def test_deadline_stop_cancels_it() -> None:
    loop, clock, expired = deadline()
    clock.watch(busy=False, in_head=False)
    clock.stop()
    loop.advance(100)
    assert expired == [] and loop.pending() == 0
