"""``wsgi2asgi.threads``: the brief spin before a worker parks (``Spinner``), and its hand-off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wsgi2asgi import threads
from wsgi2asgi.threads import Pool, SerialWorker, Spinner, finishing

needs_thread_clock = pytest.mark.skipif(
    not hasattr(time, "pthread_getcpuclockid"), reason="no per-thread CPU clock here"
)


def cpu_seconds(thread: threading.Thread) -> float:
    """The CPU time ``thread`` has used so far."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def run_and_wait(submit: Callable[[Callable[[], object]], object], count: int) -> None:
    """Submit ``count`` items one after the other, each waiting for the previous one."""
    for _ in range(count):
        done = threading.Event()
        submit(done.set)
        assert done.wait(5)


@pytest.fixture
def long_spin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A spin long enough that a loaded machine cannot make it time out by descheduling us.
    monkeypatch.setattr(threads, "SPIN", 1.0)
    yield


# -- Spinner --------------------------------------------------------------------------------


def test_a_spin_returns_as_soon_as_work_arrives(long_spin: None) -> None:
    arrived = threading.Event()
    threading.Timer(0.01, arrived.set).start()
    start = time.perf_counter()
    Spinner().wait(lambda: not arrived.is_set())
    assert arrived.is_set()
    assert time.perf_counter() - start < 0.9  # returned on the event, not at the 1 s limit


def test_a_spin_that_finds_nothing_backs_off_doubling_and_work_resets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Turns that never wait (no sched_yield: on a loaded machine it may give the CPU away for
    # long enough to look like a busy loop thread), and a spin far longer than a turn.
    monkeypatch.setattr(threads, "_pause", lambda: None)
    monkeypatch.setattr(threads, "SPIN", 0.05)
    spinner = Spinner()
    rests = []
    for _ in range(4):  # spin (nothing), then count the parks before the next spin
        assert not spinner.rests()
        spinner.spin(lambda: True)
        count = 0
        while spinner.rests():
            count += 1
        rests.append(count)
    assert rests == [1, 2, 4, 8]

    monkeypatch.setattr(threads, "SPIN", 1.0)
    spinner.spin(lambda: False)  # work was there: spinning paid, no back-off
    assert not spinner.rests()


def test_a_turn_that_waited_long_for_the_gil_backs_off_further(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "SPIN", 1e-3)
    # A busy loop thread holds the GIL: giving it up, a spinning worker waits for it for up to
    # the switch interval. Here one turn takes 10 ms.
    monkeypatch.setattr(threads, "_pause", lambda: time.sleep(0.01))
    spinner = Spinner()
    rests = []
    for _ in range(2):
        spinner.spin(lambda: True)
        count = 0
        while spinner.rests():
            count += 1
        rests.append(count)
    assert rests == [threads.BUSY_BACKOFF, 2 * threads.BUSY_BACKOFF]


def test_back_off_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "SPIN", 1e-4)
    spinner = Spinner()
    for _ in range(12):
        while spinner.rests():
            pass
        spinner.spin(lambda: True)
    count = 0
    while spinner.rests():
        count += 1
    assert count == threads.MAX_BACKOFF


# -- idle workers use no CPU ------------------------------------------------------------------


@needs_thread_clock
def test_an_idle_serial_worker_stops_spinning() -> None:
    worker = SerialWorker("spin-test")
    try:
        run_and_wait(worker.submit, 200)
        thread = worker.thread
        assert thread is not None
        before = cpu_seconds(thread)
        time.sleep(0.3)  # a measuring window, not synchronisation
        assert cpu_seconds(thread) - before < 0.01  # a spinning thread would use ~0.3 s
    finally:
        worker.shutdown()


@needs_thread_clock
def test_idle_pool_threads_stop_spinning() -> None:
    pool = Pool("spin-test", max_workers=4)
    try:
        barrier = threading.Barrier(4)
        for _ in range(4):  # four threads at once, so the pool has four
            pool.submit(lambda: barrier.wait(5))
        run_and_wait(pool.submit, 200)
        workers = [t for t in threading.enumerate() if t.name.startswith("spin-test-")]
        assert len(workers) == 4
        before = sum(cpu_seconds(t) for t in workers)
        time.sleep(0.3)  # a measuring window, not synchronisation
        assert sum(cpu_seconds(t) for t in workers) - before < 0.01
    finally:
        pool.shutdown()


# -- the pool's hand-off to its spinning thread --------------------------------------------------


def test_a_pool_of_one_runs_items_in_submission_order(long_spin: None) -> None:
    pool = Pool("spin-fifo", max_workers=1)
    seen: list[int] = []
    done = threading.Event()
    try:
        for round_number in range(50):  # the thread spins between rounds: items reach its hand
            for i in range(5):
                pool.submit(lambda n=round_number * 5 + i: seen.append(n))
            pool.submit(done.set)
            assert done.wait(5)
            done.clear()
        assert seen == list(range(250))
    finally:
        pool.shutdown()


def test_a_pool_runs_every_item_exactly_once_under_concurrent_submits() -> None:
    pool = Pool("spin-stress", max_workers=3)
    counts = [0] * 4000
    lock = threading.Lock()
    finished = threading.Semaphore(0)

    def item(n: int) -> Callable[[], None]:
        def run() -> None:
            with lock:
                counts[n] += 1
            finished.release()

        return run

    def submitter(offset: int) -> None:
        for n in range(offset, offset + 1000):
            pool.submit(item(n))
            if n % 7 == 0:
                time.sleep(0)  # vary the timing, so some items find a spinning thread

    try:
        submitters = [threading.Thread(target=submitter, args=(k * 1000,)) for k in range(4)]
        for thread in submitters:
            thread.start()
        for thread in submitters:
            thread.join(10)
        for _ in range(4000):
            assert finished.acquire(timeout=10)
        assert counts == [1] * 4000
        assert pool.size <= 3
    finally:
        pool.shutdown()


class Reporting:
    """A work item that says it is finishing, then waits until the next item is submitted."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.finished = threading.Event()
        self.next_submitted = threading.Event()

    def __call__(self) -> None:
        self.names.append(threading.current_thread().name)
        finishing(self)
        self.finished.set()  # as a result handed to the loop: the caller submits its next call
        assert self.next_submitted.wait(5)


def test_an_item_submitted_after_finishing_comes_to_the_finishing_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the hand, the next item would go to the queue and wake the other, parked thread
    # (this one is still inside its item): every other item would run there. No spinning here,
    # so that no idle thread catches items instead.
    monkeypatch.setattr(threads, "SPIN", 0)
    pool = Pool("spin-hand", max_workers=2)
    barrier = threading.Barrier(2)
    try:
        for _ in range(2):
            pool.submit(lambda: barrier.wait(5))
        names: list[str] = []
        items = [Reporting(names) for _ in range(50)]
        pool.submit(items[0])
        for current, following in zip(items, items[1:], strict=False):
            assert current.finished.wait(5)
            pool.submit(following)
            current.next_submitted.set()
        assert items[-1].finished.wait(5)
        items[-1].next_submitted.set()
        assert len(names) == 50
        assert len(set(names)) == 1
    finally:
        pool.shutdown()


def test_finishing_elsewhere_does_nothing() -> None:
    finishing(object())  # not a pool thread: no error, no effect
    worker = SerialWorker("spin-elsewhere")
    try:
        run_and_wait(lambda item: worker.submit(lambda: (finishing(item), item())), 3)
    finally:
        worker.shutdown()


@needs_thread_clock
def test_an_item_can_ask_its_thread_not_to_spin(long_spin: None) -> None:
    # Spinning is 1 s here: a thread that spins after its item burns CPU meanwhile; one whose
    # item said finishing(spin=False) parks at once.
    worker = SerialWorker("spin-hushed")
    try:

        def cpu_after(spin: bool) -> float:
            ran = threading.Event()

            def item() -> None:
                finishing(item, spin=spin)
                ran.set()

            worker.submit(item)
            assert ran.wait(5)
            thread = worker.thread
            assert thread is not None
            before = cpu_seconds(thread)
            time.sleep(0.2)  # a measuring window, not synchronisation
            return cpu_seconds(thread) - before

        assert cpu_after(spin=False) < 0.01
        assert cpu_after(spin=True) > 0.01  # the same thread spinning, for contrast
    finally:
        worker.shutdown()
