"""A worker process of the local pool: ``python -m torchcost.sweep.serve IN_FD OUT_FD``.

It reads the sweep's settings and then one task at a time from IN_FD, and writes each row to OUT_FD, until the
parent closes the pipe. Its stdout and stderr are the parent's choice (``/dev/null``): what a model prints
would break the progress bar, and every failure is in the rows.
"""

from __future__ import annotations

import signal
import sys
from multiprocessing.connection import Connection

from torchcost.sweep.worker import run_task, start_worker


def serve(tasks: Connection, rows: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops the workers
    settings = tasks.recv()
    start_worker(settings)
    rows.send(("ready", None))
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            return
        rows.send(("row", run_task(task, settings)))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
