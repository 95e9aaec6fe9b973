"""A store outage, for the fault tests: the world's SQLite store behind a switch, and a
clock whose waits pass in sandbox time and may end the outage."""

from __future__ import annotations

from core.errors import StoreError
from tests.integration.contacts_world import World


class Outage:
    """Fails every call of the store from the ``start``-th call named in ``starts``
    (all calls: the store is down, reads too) until ``back_after`` waits have passed
    (None: it never comes back)."""

    def __init__(self, starts: tuple[str, ...], start: int = 1, back_after: int | None = 2):
        self.starts, self.start, self.back_after = starts, start, back_after
        self.seen, self.down, self.over, self.failures = 0, False, False, 0

    def check(self, name: str) -> None:
        if not self.down and not self.over and name in self.starts:
            self.seen += 1
            self.down = self.seen >= self.start
        if self.down:
            self.failures += 1
            raise StoreError(f"firestore commit: 503 The service is unavailable (#{self.failures})")

    def waited(self, waits: int) -> None:
        if self.back_after is not None and waits >= self.back_after:
            self.down, self.over = False, True


class OutageStore:
    def __init__(self, store, outage: Outage) -> None:
        self.store, self.outage = store, outage

    def __getattr__(self, name):
        method = getattr(self.store, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            self.outage.check(name)
            return method(*args, **kwargs)

        return call


class WaitingClock:
    """The world's clock, whose waits pass in sandbox time and may end the outage."""

    def __init__(self, world: World, outage: Outage) -> None:
        self.world, self.outage, self.waits = world, outage, []

    def now(self):
        return self.world.clock.now()

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.world.sandbox.advance(seconds)
        self.outage.waited(len(self.waits))


def before_execute(engine, action) -> None:
    """Run ``action()`` between the engine's read and its writes: a change made on
    either side after the run planned (the race a run must not lose data to)."""
    execute = engine.execute

    def meanwhile(*args, **kwargs):
        action()
        return execute(*args, **kwargs)

    engine.execute = meanwhile
