"""What the contacts and activities executors share: running a plan through a table.

An executor is a table of ``Step`` rows, one per action type, in the order the section
applies them (creates before reconciles, reconciles before removals...). ``Apply``
hands each row its actions a chunk at a time (the row's ``chunk``: what one Google call
and one store batch can take), says the progress after each chunk, and owns the
stale-etag retry: a handler returns the actions Google refused as stale (a 412, or
People's 400 FAILED_PRECONDITION); once the table has run, the executor re-reads
those items and plans them again (``reread``), and the new actions of the kinds a
retry may take (``retry_kinds``: what a stale pair can still need) run through the
same table once more, where a second refusal is a failure the handler reports. Any
other action the re-plan asks for is left to the next run (``defer``), which reads
those records again with everything a run gathers.

``Links`` saves and removes each item's link document (``links/{user}:{section}:{id}``),
and ``link_doc`` holds the fields every link carries, whatever its section.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.model import LINKS, link_id
from core.ports import MAX_BATCH_WRITES, DocumentStore, Progress, WriteBatch
from core.runs import chunked

# a handler takes a chunk of its actions, and whether a stale one may be retried; it
# returns those it leaves for the retry (None: none)
Handler = Callable[[list[Any], bool], list[Any] | None]


@dataclass(frozen=True)
class Step:
    """One row of an executor's table: the actions of type ``kind``, handed to
    ``handle`` ``chunk`` at a time (None: all at once)."""

    kind: type
    handle: Handler
    chunk: int | None = None


class Apply:
    """Runs actions through ``steps``; stale ones are re-read, re-planned (``reread``:
    the actions to take now) and those of ``retry_kinds`` run once more; the rest go
    to ``defer``."""

    def __init__(self, steps: Sequence[Step], *, reread: Callable[[list[Any]], list[Any]],
                 retry_kinds: tuple[type, ...], defer: Callable[[list[Any]], None],
                 progress: Progress) -> None:  # fmt: skip
        self.steps, self.reread, self.progress = steps, reread, progress
        self.retry_kinds, self.defer = retry_kinds, defer
        self.done = self.total = 0

    def __call__(self, actions: Sequence[Any]) -> None:
        self.done, self.total = 0, len(actions)
        stale = self._pass(actions, retry=True)
        if stale:
            again = self.reread(stale)
            self.defer([a for a in again if not isinstance(a, self.retry_kinds)])
            self._pass([a for a in again if isinstance(a, self.retry_kinds)], retry=False)

    def _pass(self, actions: Sequence[Any], retry: bool) -> list[Any]:
        by_kind: dict[type, list[Any]] = {}
        for action in actions:
            by_kind.setdefault(type(action), []).append(action)
        stale: list[Any] = []
        for step in self.steps:
            mine = by_kind.get(step.kind, [])
            for part in chunked(mine, step.chunk or len(mine) or 1):
                stale += step.handle(list(part), retry) or []
                self._advance(len(part))
        return stale

    def _advance(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        self.progress("applying changes", self.done, self.total)


class Links:
    """One user's link documents of one section."""

    def __init__(self, store: DocumentStore, user_id: str, section: str) -> None:
        self.store, self.user_id, self.section = store, user_id, section

    def key(self, crm_id: str) -> str:
        return link_id(self.user_id, self.section, crm_id)

    def put(self, batch: WriteBatch, crm_id: str, doc: dict[str, Any]) -> None:
        batch.put(LINKS, self.key(crm_id), doc)

    def delete(self, crm_ids: Sequence[str]) -> None:
        for part in chunked(list(crm_ids), MAX_BATCH_WRITES):
            with self.store.batch() as batch:
                for crm_id in part:
                    batch.delete(LINKS, self.key(crm_id))


def link_doc(links: Links, crm_id: str, google_id: str, etag: str, fields: Any, fp: str,
             synced_at: str, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """What every link holds: whose it is, the pair's ids, the Google etag and the
    synced fields (with their fingerprint) as last synced; ``extra`` is the section's."""
    return {"userId": links.user_id, "section": links.section, "crmId": crm_id,
            "googleId": google_id, "googleEtag": etag, "fingerprint": fp, "fields": fields,
            "syncedAt": synced_at, "tombstone": False, **extra}  # fmt: skip
