"""``python -m pgviz`` and the ``pgviz`` command: the process's entry.

Ctrl-C and SIGTERM are taken first (:func:`pgviz.train.signals.own_process`), before torch
or anything heavy is imported, so that an interrupt at any moment of start-up or shut-down
gives one line and exit 130 (143 for SIGTERM), with nothing running on after it.
"""
import sys

from .train.signals import command_done, own_process


def run() -> int:
    """The process's entry: :func:`pgviz.cli.main` with the process's signals taken first."""
    own_process()
    from .cli import main

    status = main()
    command_done(status)  # a signal from here on (atexit callbacks, ...) ends the process with it
    return status


if __name__ == "__main__":
    sys.exit(run())
