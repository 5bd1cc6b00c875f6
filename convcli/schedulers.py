"""Where a chunked run's tasks run: Dask's threads, its processes, one thread (synchronous),
or a running `distributed` scheduler named by its address (tcp://HOST:PORT). Connected and
checked before the work starts; the tasks' results come back in order, with a progress
callback over the tasks named as the countable ones (the chunks written)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError

LOCAL = ("threads", "processes", "synchronous")
Progress = Callable[[int, int], None]


@dataclass
class Scheduler:
    """A parsed --scheduler: `name` as given, `client` a distributed Client for an address."""

    name: str
    client: Any = None

    @property
    def distributed(self) -> bool:
        return self.client is not None

    def compute(self, tasks: Sequence[Any], progress: Progress | None = None, *,
                counted: int | None = None) -> list[Any]:
        """Run the Dask collections together, sharing what they share; progress(done, total)
        after each of the first `counted` (default: all, each a Delayed) finishes."""
        total = len(tasks) if counted is None else counted
        if self.client is not None:
            from distributed import as_completed

            futures = self.client.compute(list(tasks))
            with self.client.as_current():
                for done, _ in enumerate(as_completed(futures[:total]), start=1):
                    if progress is not None:
                        progress(done, total)
            return list(self.client.gather(futures))
        import dask
        from dask.callbacks import Callback

        names = {str(task.key) for task in tasks[:total]}
        counter = {"done": 0}

        def finished(key: Any, *_: Any) -> None:
            if progress is not None and str(key) in names:
                counter["done"] += 1
                progress(counter["done"], total)

        with Callback(posttask=finished):
            return list(dask.compute(*tasks, scheduler=self.name))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def _probe(address: str) -> None:
    """A plain TCP connection to a tcp:// address first: nothing listening is refused at once
    (a distributed Client would wait out its timeout)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme != "tcp" or parts.hostname is None:
        return
    try:
        with socket.create_connection((parts.hostname, parts.port or 8786), timeout=3):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(f"cannot reach a Dask scheduler at {address} ({reason}): start one (`dask scheduler` and `dask worker ADDRESS`) or "
                         "check the address") from None


def connect(name: str) -> Scheduler:
    """threads, processes, synchronous, or the address of a running distributed scheduler
    (refused at once if nothing answers there)."""
    if name in LOCAL:
        return Scheduler(name)
    if "://" not in name:
        raise InputError(f"--scheduler must be threads, processes, synchronous or the address "
                         f"of a distributed scheduler (tcp://HOST:PORT), got {name!r}")
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler ADDRESS needs distributed: pip install "
                         "'convcli[distributed]'") from None
    _probe(name)
    try:
        client = Client(name, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(f"cannot reach a Dask scheduler at {name} ({error}): start one "
                         "(`dask scheduler` and `dask worker ADDRESS`) or check the address"
                         ) from None
    return Scheduler(name, client)
