"""A deadline for a whole download (``$PGVIZ_DOWNLOAD_TIMEOUT``), not for each wait.

torchvision downloads CIFAR-10 with :mod:`urllib`, 32 KB per read.  A socket timeout
bounds each wait for bytes, so a server (or proxy) that sends one byte a second never
trips it, and a check of the clock between reads never runs either: one 32 KB read of
such a trickle lasts nine hours.  :class:`Deadline` therefore watches the clock from a
timer thread.  While it is active, every HTTP(S) connection that the thread which entered
it opens is registered (its connect is given at most the time left); when the time is up
each registered connection's socket is shut down, which ends the read waiting on it at
once (the download then fails, and :attr:`Deadline.expired` says why), and a connection
opened after that is refused with :class:`DownloadTimeout`.  Other threads' connections
are not touched.  (The hook is ``connect`` of :class:`http.client.HTTPConnection` and
``HTTPSConnection``, put back when the last deadline ends.)  No torch here.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time

__all__ = ["Deadline", "DownloadTimeout"]


class DownloadTimeout(TimeoutError):
    """A connection attempted after the deadline of a download."""


_lock = threading.Lock()
_active: dict = {}  # thread ident -> its Deadline
_original: dict = {}  # class -> its own connect, while the hooks are installed
_CLASSES = tuple(c for c in (http.client.HTTPConnection, getattr(http.client, "HTTPSConnection", None))
                 if c is not None)


def _hooked(original):
    """``original`` (a ``connect``) watched by the deadline of the calling thread, if any."""
    def connect(conn):
        deadline = _active.get(threading.get_ident())
        if deadline is None:
            return original(conn)
        deadline._opening(conn)
        original(conn)
        deadline._opened(conn.sock)  # HTTPS: the plain socket, then (outer hook) the TLS one
    return connect


def _shut(sock) -> None:
    if sock is not None:
        try:  # the plain socket's shutdown: an SSL socket's own would drop its state under a reader
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # closed, or detached into a TLS socket (registered too)


class Deadline:
    """``with Deadline(seconds) as d:`` bounds the HTTP(S) transfers of this thread inside
    to ``seconds`` in all; after the block, ``d.expired`` is True if the time ran out."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.expired = False
        self.connections: list = []
        self.sockets: list = []
        self.lock = threading.Lock()
        self._end = None
        self._timer = None

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def _opening(self, conn) -> None:
        left = self.remaining()
        if left <= 0 or self.expired:
            raise DownloadTimeout(f"the download's {self.seconds:g} s are up")
        wait = conn.timeout if isinstance(conn.timeout, (int, float)) else socket.getdefaulttimeout()
        conn.timeout = left if wait is None else min(wait, left)  # the connect's own wait
        with self.lock:
            if not any(c is conn for c in self.connections):
                self.connections.append(conn)  # its .sock, while it has one (a proxy tunnel's too)

    def _opened(self, sock) -> None:
        with self.lock:
            self.sockets.append(sock)  # urllib drops conn.sock once the answer's headers are read
            late = self.expired
        if late:
            _shut(sock)

    def _expire(self) -> None:
        with self.lock:
            self.expired = True
            socks = [c.sock for c in self.connections] + self.sockets
        for sock in socks:
            _shut(sock)

    def __enter__(self) -> "Deadline":
        me = threading.get_ident()
        with _lock:
            if me in _active:
                raise RuntimeError("a download deadline is already active in this thread")
            if not _active:
                for cls in _CLASSES:
                    _original[cls] = cls.__dict__["connect"]
                    cls.connect = _hooked(_original[cls])
            _active[me] = self
        self._end = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        with _lock:
            _active.pop(threading.get_ident(), None)
            if not _active:
                for cls, connect in _original.items():
                    cls.connect = connect
                _original.clear()
