"""``wsgi2asgi.server.supervisor``: what ``--workers`` and ``--reload`` share."""

from __future__ import annotations

import signal

from wsgi2asgi.server.supervisor import StopSignals


def test_stop_signals_are_noted_and_the_old_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals(signal.SIGTERM, signal.SIGINT) as stop:
        assert not stop.requested
        signal.raise_signal(signal.SIGTERM)  # handled at once: this is the main thread
        assert stop.requested
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_signals_restore_the_handlers_after_an_error() -> None:
    before = signal.getsignal(signal.SIGINT)
    try:
        with StopSignals(signal.SIGINT):
            raise LookupError("in the supervised loop")
    except LookupError:
        pass
    assert signal.getsignal(signal.SIGINT) is before
