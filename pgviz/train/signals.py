"""Ctrl-C and SIGTERM, the one place that handles them (no torch here: the command line
installs its handlers before it imports torch).

Inside the training loop (:class:`StopRequest`) the first Ctrl-C or SIGTERM asks the loop
to stop at the next batch boundary, where the run is saved; a second one acts at once.
Outside it (:func:`sigterm_raises`) SIGTERM becomes :class:`Terminated`, a kind of
``KeyboardInterrupt``, so that start-up and clean-up stop as after Ctrl-C.

When pgviz *is* the process (``python -m pgviz``, the ``pgviz`` command:
:func:`own_process`, first thing, before torch), an exception is not raised where it would
be lost or turned into another error: inside an import (importlib's lock clean-up swallows
it, an extension module being initialised re-raises it as a different error), and outside
the command (before it, and after it has returned: atexit callbacks only print it).  There
the process ends at once (:func:`_end_now`): one line on stderr and exit 130 (Ctrl-C) or 143
(SIGTERM), or, once the command has returned, its own exit status.  Nothing runs on after
it, and a checkpoint on disk is never half written (every write is atomic).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

__all__ = ["EXIT_STATUS", "STOP_SIGNALS", "StopRequest", "Terminated", "command_done", "own_process",
           "sigterm_raises"]

#: The signals that stop a run, and the status a run stopped by each reports.
STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
#: The exit status of a command stopped by each.
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


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


# The process's state (only :func:`own_process` and :func:`command_done` set it):
_owner = False  # pgviz is the process: it may end it at once
_raising = False  # inside the command (sigterm_raises): a signal may raise there
_done = None  # the exit status once the command has returned


def own_process() -> None:
    """For the process entry, before anything heavy is imported: Ctrl-C and SIGTERM are
    handled by pgviz from now on (see the module's docstring)."""
    global _owner
    _owner = True
    if _main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, _interrupt)


def command_done(status: int) -> None:
    """The command returned ``status``: a signal from now on ends the process with it."""
    global _done
    _done = status


def _in_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _end_now(signum) -> None:
    """End the process at once: one line and the signal's exit status (once the command has
    returned: quietly, with the command's own status)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # (a write it interrupted may refuse: reentrant)
            stream.flush()
    if _done is None:
        with contextlib.suppress(OSError):
            os.write(2, f"pgviz: {STOP_SIGNALS[signum]}\n".encode())
    os._exit(EXIT_STATUS[signum] if _done is None else _done)


def _interrupt(signum, frame):
    """Ctrl-C or SIGTERM outside the training loop: ``KeyboardInterrupt`` or :class:`Terminated`,
    or, when pgviz is the process and an exception could be lost there, the end of it."""
    if _owner and (not _raising or _in_import(frame)):
        _end_now(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


@contextlib.contextmanager
def sigterm_raises():
    """While inside, SIGTERM raises :class:`Terminated` (and Ctrl-C ``KeyboardInterrupt``, as
    Python's own handler does); the caller's handler is put back after."""
    global _raising
    old = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    _raising = True
    try:
        yield
    finally:
        _raising = False
        if old is not None:
            signal.signal(signal.SIGTERM, old)
