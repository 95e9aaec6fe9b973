"""Crash injection for sync runs: wrappers that "kill the process" right after the N-th
external write (a Google write call or a store commit), and a clock for the rerun."""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.clock import SystemClock


class Crash(BaseException):
    """Not an Exception: like a killed process, nothing gets to clean up after it."""


class Fuse:
    def __init__(self, at: int) -> None:
        self.at, self.count = at, 0

    def tick(self) -> None:
        self.count += 1
        if self.count == self.at:
            raise Crash(f"crash after external write #{self.at}")


class CrashingPort:
    """A Google port whose write methods (``writes``) crash after the fuse's count."""

    def __init__(self, port, fuse: Fuse, writes: set[str]) -> None:
        self.port, self.fuse, self.writes = port, fuse, writes

    def __getattr__(self, name):
        method = getattr(self.port, name)
        if name not in self.writes:
            return method

        def write(*args, **kwargs):
            result = method(*args, **kwargs)
            self.fuse.tick()
            return result

        return write


class CrashingBatch:
    def __init__(self, batch, fuse: Fuse) -> None:
        self.batch, self.fuse = batch, fuse

    def __enter__(self):
        self.batch.__enter__()
        return self

    def __exit__(self, *exc):
        self.batch.__exit__(*exc)
        if exc[0] is None:
            self.fuse.tick()

    def __getattr__(self, name):
        return getattr(self.batch, name)


class CrashingStore:
    def __init__(self, store, fuse: Fuse) -> None:
        self.store, self.fuse = store, fuse

    def put(self, *args):
        self.store.put(*args)
        self.fuse.tick()

    def delete(self, *args):
        self.store.delete(*args)
        self.fuse.tick()

    def batch(self):
        return CrashingBatch(self.store.batch(), self.fuse)

    def transaction(self, fn, **kwargs):
        result = self.store.transaction(fn, **kwargs)
        self.fuse.tick()
        return result

    def __getattr__(self, name):
        return getattr(self.store, name)


class LaterClock:
    """Real time, moved past the lease a crashed run left behind."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return SystemClock().now() + self.offset
