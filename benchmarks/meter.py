"""CPU time and resident memory of a process and all its descendants.

Venus may run worker processes (``--workers``), so a process is always metered with its children:
CPU is user+system time of the live tree plus the time of children already reaped by the root,
and RSS is summed over the tree. Peak RSS is sampled by a thread, since the kernel's own
high-water mark (VmHWM) is per process and cannot be reset between runs.
"""

from __future__ import annotations

import threading

import psutil


class ProcessTree:
    """A root process and whatever descendants it has at the moment of each reading."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._root = psutil.Process(pid)

    def _members(self) -> list[psutil.Process]:
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        """User+system CPU seconds of the tree so far (reaped children included, via the root)."""
        total = 0.0
        for index, proc in enumerate(self._members()):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
            if index == 0:
                total += times.children_user + times.children_system
        return total

    def rss_bytes(self) -> int:
        """Resident memory summed over the tree (shared pages of forked workers count once per process)."""
        return sum(self.rss_each())

    def rss_each(self) -> list[int]:
        """Resident memory of each process of the tree."""
        sizes = []
        for proc in self._members():
            try:
                sizes.append(proc.memory_info().rss)
            except psutil.Error:
                continue
        return sizes


class Machine:
    """The whole machine, to tell how much CPU processes outside the benchmark took in the window.

    A benchmark on a shared machine is only as good as its quiet: "others" in the report is this
    minus everything the benchmark meters.
    """

    def cpu_seconds(self) -> float:
        """CPU seconds all processes have used since boot (idle, iowait and steal excluded)."""
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)
                     - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0))

    def rss_bytes(self) -> int:
        """Not metered (kept for symmetry with :class:`ProcessTree`)."""
        return 0

    def rss_each(self) -> list[int]:
        """Not metered (kept for symmetry with :class:`ProcessTree`)."""
        return []


class PeakRss:
    """Samples several trees' RSS every ``interval_s`` in a daemon thread; reports peaks since :meth:`reset`.

    Two peaks per tree: of the sum over its processes, and of its largest single process (a worker).
    """

    def __init__(self, trees: dict[str, ProcessTree | Machine], *, interval_s: float = 0.05) -> None:
        self._trees = trees
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._peaks = dict.fromkeys(trees, 0)
        self._largest = dict.fromkeys(trees, 0)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)

    def start(self) -> None:
        """Begin sampling."""
        self._thread.start()

    def reset(self) -> None:
        """Forget peaks so far (call when the measured window opens)."""
        with self._lock:
            self._peaks = dict.fromkeys(self._trees, 0)
            self._largest = dict.fromkeys(self._trees, 0)
        self._sample()

    def peaks(self) -> dict[str, int]:
        """Peak RSS in bytes per tree since the last reset, including one fresh sample."""
        self._sample()
        with self._lock:
            return dict(self._peaks)

    def largest(self) -> dict[str, int]:
        """Peak RSS in bytes of the largest single process per tree since the last reset."""
        with self._lock:
            return dict(self._largest)

    def stop(self) -> None:
        """Stop sampling; bounded."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _sample(self) -> None:
        readings = {name: tree.rss_each() for name, tree in self._trees.items()}
        with self._lock:
            for name, sizes in readings.items():
                self._peaks[name] = max(self._peaks[name], sum(sizes))
                self._largest[name] = max(self._largest[name], max(sizes, default=0))

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self._sample()
