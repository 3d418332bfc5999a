"""Ctrl-C and SIGTERM, the one place that handles them (no torch here: the command line
installs :func:`sigterm_raises` before it imports torch).

Inside the training loop (:class:`StopRequest`) the first Ctrl-C or SIGTERM asks the loop
to stop at the next batch boundary, where the run is saved; a second one acts at once.
Outside it (:func:`sigterm_raises`) SIGTERM becomes :class:`Terminated`, a kind of
``KeyboardInterrupt``, so that start-up and clean-up stop as after Ctrl-C.
"""
from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["STOP_SIGNALS", "StopRequest", "Terminated", "sigterm_raises"]

#: The signals that stop a run, and the status a run stopped by each reports.
STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # signals can be set only here


class StopRequest:
    """Turns the first Ctrl-C (SIGINT) or SIGTERM into a request to stop at the next batch
    boundary; ``requested`` is then ``"interrupted"`` or ``"terminated"``."""

    def __init__(self):
        self.requested = None
        self._old = {}

    def __enter__(self):
        if _main_thread():
            for sig, why in STOP_SIGNALS.items():
                self._old[sig] = signal.getsignal(sig)

                def handler(signum, frame, why=why):
                    self.requested = self.requested or why
                    signal.signal(signum, self._old[signum])  # a second one acts at once
                signal.signal(sig, handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the training loop (which saves and stops at a batch boundary)."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def sigterm_raises():
    """While inside, SIGTERM raises :class:`Terminated`; the caller's handler is put back after."""
    old = signal.signal(signal.SIGTERM, _raise_terminated) if _main_thread() else None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
