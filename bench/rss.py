"""Peak memory of the benchmark process: per phase (sampled in a thread) and for the
whole run."""

from __future__ import annotations

import resource
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil  # type: ignore[import-untyped]

RSS_INTERVAL_S = 0.05


class RssSampler:
    """Samples this process's RSS in a thread; ``phase()`` gives each phase's peak."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.thread.start()

    def _sample(self) -> int:
        rss = int(self.proc.memory_info().rss)
        self.peak = max(self.peak, rss)
        return rss

    def _run(self) -> None:
        while not self.stopping.wait(RSS_INTERVAL_S):
            self._sample()

    @contextmanager
    def phase(self) -> Iterator[Callable[[], float]]:
        """Yields a function that returns the phase's peak RSS in MiB (so far)."""
        self.peak = 0
        self._sample()

        def peak_mib() -> float:
            self._sample()
            return self.peak / 2**20

        yield peak_mib

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=1)


def max_rss_mib() -> float:
    """Peak RSS of the whole run (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
