"""One user's activities sync: a ``Section`` run by the shared shell (``core.runs``).

gather   Google: the Calendar sync token's changes (single instances); a full
         listing of [syncFrom, now + 180 days] when there is no token, it expired
         (410), or syncFrom changed. The window is filtered locally on incremental
         runs. CRM: activities modified past the cursor (``crm_window``), those the
         changed events point at, the links they touch, and who is who (``Directory``:
         only the emails and users in play, through the email index, never a scan
         of the CRM's contacts, users or accounts).
         Linked events Google stopped showing: instances of a series seen cancelled
         (its master, or some instances: Google lists about six months of them) are
         checked against the master; on a full listing, linked events of the window
         that it lacks are read one by one (a get), and those not found are gone.
plan     core.activities_plan.plan (pure)
execute  core.activities_exec
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from core import activity_mapping as am
from core import email_index, pairs
from core.activities_exec import ActivitiesExecutor, Gathered
from core.activities_plan import ActivitySnapshot, CalEvent, CrmActivity, EventLink, plan
from core.errors import SettingsError, SyncTokenExpired, UnknownUser
from core.gather import Preloaded, crm_changes, read_once
from core.model import (
    ACTIVITIES,
    CONTACTS,
    GOOGLE_ACCOUNTS,
    LINKS,
    SYNC_SETTINGS,
    USERS,
    Activity,
    User,
    link_id,
    load,
    load_each,
    parse_timestamp,
    section_settings,
    stamp,
    sync_from_problem,
)
from core.pairs import links_from, repair_links
from core.ports import CalendarPort, Clock, DocumentStore, Filter, Progress, no_progress
from core.runs import DEFAULT_OPTIONS, Options, Report, RunLog, run_section

HORIZON = dt.timedelta(days=180)
PROBE = 50  # gets that decide whether a full listing lacking every link is another calendar


class Directory:
    """Who is who among the emails and users a run meets: CRM contacts and users by
    email, users' CRM emails, and who has a working Google connection. It is filled on
    demand, for what is in play only: emails (the events' organizers and attendees,
    the links' organizers) through the email index (``core.email_index.lookup``:
    entries, checked one by one), and users named by id (the changed activities'
    organizers and participants) by reading their ``users`` and ``googleAccounts``
    documents. A user's connected Google address counts as that user's, after the CRM
    address of any user."""

    def __init__(self, store: DocumentStore, user_id: str, user: dict[str, Any],
                 account: dict[str, Any] | None,
                 entries: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.store = store
        self.contacts: dict[str, str] = {}  # email -> contact id
        self.users: dict[str, str] = {}  # email -> user id
        self.user_emails: dict[str, str] = {}  # user id -> email
        self.connected: set[str] = set()  # emails of users with a working Google connection
        self.connected_ids: set[str] = set()
        self.known: set[str] = set()  # emails of CRM contacts and users
        self.stale: dict[str, dict[str, list[str]]] = {}  # index ids that no longer match
        self._asked: set[str] = set()
        self._read: set[str] = set()  # users whose documents are in
        self._by_crm: dict[str, str] = {}
        self._by_google: dict[str, str] = {}
        self._tail = email_index.Tail()  # the lookups' tail, scanned once a run
        self._have: dict[str, dict[str, Any]] = {
            USERS: {user_id: user}, GOOGLE_ACCOUNTS: {user_id: account},
            email_index.EMAIL_INDEX: dict(entries or {}),
        }  # fmt: skip
        self._user(user_id, user, account)

    def add(self, emails: Iterable[str]) -> None:
        """Resolve these emails (lower-cased as events carry them), once each."""
        new = {e.lower() for e in emails if e} - self._asked
        if not new:
            return
        self._asked |= new
        found = email_index.lookup(self.store, new, have=self._have, tail=self._tail)
        for k, ids in found.stale.items():
            mine = self.stale.setdefault(k, {"contacts": [], "users": []})
            for kind in ("contacts", "users"):
                mine[kind] = sorted({*mine[kind], *ids[kind]})
        for uid, doc in sorted(found.user_docs.items()):
            self._user(uid, doc, found.account_docs.get(uid))
        for email in sorted(new):
            holders = found.contacts.get(email_index.norm(email))
            if holders:
                self.contacts.setdefault(email, holders[0])
                self.known.add(email)

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Resolve the organizers and attendees of these Calendar events."""
        self.add(email for event in events for email in event_emails(event))

    def add_users(self, user_ids: Iterable[str]) -> None:
        """Read these users (their CRM email, their Google connection), once each."""
        new = sorted({u for u in user_ids if u} - self._read)
        if not new:
            return
        users = self.store.get_many(USERS, new)
        accounts = self.store.get_many(GOOGLE_ACCOUNTS, sorted(users)) if users else {}
        self._read |= set(new)
        for uid, doc in sorted(users.items()):
            self._user(uid, doc, accounts.get(uid))

    def _user(self, uid: str, doc: dict[str, Any], account: dict[str, Any] | None) -> None:
        if uid in self.user_emails:
            return
        self._read.add(uid)
        email = (doc.get("email") or "").lower()
        self.user_emails[uid] = email
        live = account is not None and account.get("status") == "connected"
        google = (account.get("accountEmail") or "").lower() if live and account else ""
        if email:  # of two users with one CRM email, the last by id (as a scan by email)
            self._by_crm[email] = max(uid, self._by_crm.get(email, uid))
        if google:
            self._by_google[google] = min(uid, self._by_google.get(google, uid))
        for address in {email, google} - {""}:
            self.users[address] = self._by_crm.get(address) or self._by_google[address]
            self.known.add(address)
        if live:
            self.connected_ids.add(uid)
            self.connected |= {email, google} - {""}


def event_emails(event: dict[str, Any]) -> set[str]:
    """The emails of an event's organizer and attendees, lower-cased."""
    organizer = (event.get("organizer") or {}).get("email")
    attendees = [a.get("email") for a in event.get("attendees") or []]
    return {e.lower() for e in [organizer, *attendees] if isinstance(e, str) and e}


@dataclass(frozen=True)
class ActivitiesSettings:
    """The user's activities sync settings, checked, with the user's documents."""

    user: User
    user_doc: dict[str, Any]
    account: dict[str, Any] | None  # the user's Google connection
    interval: dt.timedelta
    sync_from: str  # the first day of the window (an ISO date)
    time_zone: ZoneInfo


@dataclass
class ActivitiesGathered(Gathered):
    """What a gather read: the executor's inputs, and the cursors to keep."""

    google_cursor: str = ""
    crm_cursor: str | None = None
    crm_read_at: str = ""
    full_pass: bool = False


class ActivitiesEngine:
    """settings -> gather -> plan -> execute; what flows between them is returned."""

    name = "activities"

    def __init__(self, store: DocumentStore, calendar: CalendarPort, clock: Clock, *,
                 new_id: Callable[[], str], progress: Progress = no_progress,
                 preloaded: Preloaded | None = None) -> None:  # fmt: skip
        self.store, self.calendar, self.clock = store, calendar, clock
        self.new_id, self.progress = new_id, progress
        self.preloaded = preloaded or {}  # the user's documents read by the caller

    def run(self, user_id: str, options: Options = DEFAULT_OPTIONS) -> Report:
        return run_section(self.store, self.clock, self.new_id, self, user_id, options)

    def settings(self, user_id: str) -> ActivitiesSettings:
        raw = read_once(self.store, self.preloaded, USERS, user_id)
        if raw is None:
            raise UnknownUser(user_id)
        user = load(User, USERS, user_id, raw)
        account = read_once(self.store, self.preloaded, GOOGLE_ACCOUNTS, user_id)
        stored = read_once(self.store, self.preloaded, SYNC_SETTINGS, user_id)
        settings = section_settings(user_id, stored or {}, "activities")
        tz = ZoneInfo(user.timeZone)
        today = self.clock.now().astimezone(tz).date()
        sync_from = settings.activities.syncFrom or today.isoformat()
        problem = sync_from_problem(sync_from, today)
        if problem:
            raise SettingsError(
                f'user {user_id}\'s "sync activities from" date {sync_from} {problem}; '
                "choose another date in the sync settings"
            )
        every = dt.timedelta(minutes=settings.activities.intervalMinutes)
        return ActivitiesSettings(user, raw, account, every, sync_from, tz)

    def sync(self, settings: ActivitiesSettings, state: dict[str, Any], options: Options,
             log: RunLog, report: Report) -> dict[str, Any]:  # fmt: skip
        gathered = self.gather(settings, state, options, log, report.account_confirmed)
        report.full_pass = gathered.full_pass
        report.plan = self.plan(gathered.snap, options)
        if not options.dry_run:
            self.execute(settings, gathered, report.plan, options, log)
        if not options.dry_run and repair_links(self.store, log):  # a full pass links again
            return {"googleCursor": None, "crmCursor": None, "syncFrom": settings.sync_from,
                    "retryCrm": sorted(log.retry_crm)}  # fmt: skip
        return {"googleCursor": gathered.google_cursor, "crmCursor": gathered.crm_cursor,
                "crmReadAt": gathered.crm_read_at, "syncFrom": settings.sync_from,
                "retryCrm": sorted(log.retry_crm)}  # fmt: skip

    def plan(self, snap: ActivitySnapshot, options: Options) -> list[Any]:
        actions = plan(snap, options.policy, options.force)
        self.progress(f"planned {len(actions)} actions")
        return actions

    def execute(self, settings: ActivitiesSettings, gathered: ActivitiesGathered,
                actions: list[Any], options: Options, log: RunLog) -> None:  # fmt: skip
        executor = ActivitiesExecutor(self.store, self.calendar, self.clock, user=settings.user,
                                      policy=options.policy, log=log,
                                      progress=self.progress)  # fmt: skip
        executor.run(actions, gathered)
        if gathered.directory.stale:
            email_index.prune(self.store, gathered.directory.stale)

    # --- gather -----------------------------------------------------------------------

    def gather(self, settings: ActivitiesSettings, state: dict[str, Any], options: Options,
               log: RunLog, account_confirmed: bool = False) -> ActivitiesGathered:  # fmt: skip
        user_id = settings.user.id
        now = self.clock.now()
        window = sync_window(settings, now)
        full = options.full or state.get("syncFrom") != settings.sync_from
        changes = self._listing(None if full else state.get("googleCursor"), window)
        directory = self._directory(settings, options)
        directory.add_events(changes.events)
        raw = {e["id"]: e for e in changes.events}
        events = {eid: to_cal_event(e, directory, {}, window) for eid, e in raw.items()}
        # a full CRM read when asked (deletes piled up past what the state keeps: the
        # webhook's ``crmFullPassAt``)
        full = options.full or state.get("crmFullPassAt") is not None
        crm_cursor = None if full else state.get("crmCursor")
        activities, next_cursor = self._activities(settings, crm_cursor, state, events,
                                                   directory, log)  # fmt: skip
        links = self._links(user_id, activities, events, changes.complete or crm_cursor is None,
                            log)  # fmt: skip
        if crm_cursor is None:  # linked activities the listing missed are read by id
            self._read_more(settings, _unlisted(links, activities, log), activities,
                            directory, log)  # fmt: skip
        if not changes.complete:
            links |= self._series_links(user_id, raw, links, log)
        for bad in log.skipped_ids:  # a malformed activity (or a corrupt link) is skipped,
            links.pop(bad, None)  # never taken as deleted, nor pushed as unlinked
            activities.pop(bad, None)
        raw |= self._copies_to_link(user_id, activities, events, links)
        gone = self._gone(raw, links, window, changes.complete, options.force)
        directory.add_events(raw.values())  # events read since (copies, gets)
        directory.add(link.organizer_email for link in links.values())
        pair = pair_known(links, activities, events)
        to_event = functools.partial(to_cal_event, directory=directory, pair=pair, window=window)
        events = {eid: to_event(e) for eid, e in raw.items()}
        shared = self._shared(user_id, events, links)
        imported = self._imported(settings, events, links, activities, directory, log)
        skipped = set(log.skipped_ids)  # malformed activities: their events wait, unplanned
        events = {eid: e for eid, e in events.items() if e.activity_id not in skipped}
        snap = ActivitySnapshot(activities, events, links, crm_cursor is None, changes.complete,
                                shared, frozenset(directory.connected), gone,
                                account_confirmed, imported)  # fmt: skip
        return ActivitiesGathered(snap, directory, raw, to_event, changes.next_sync_token,
                                  next_cursor, stamp(now), changes.complete)  # fmt: skip

    def _listing(self, token: str | None, window: tuple[dt.datetime, dt.datetime]) -> Any:
        try:
            return self.calendar.changes(token, _z(window[0]), _z(window[1]))
        except SyncTokenExpired:
            self.progress("Calendar sync token no longer valid: listing the window again")
            return self.calendar.changes(None, _z(window[0]), _z(window[1]))

    def _directory(self, settings: ActivitiesSettings, options: Options) -> Directory:
        """The run's directory, knowing its own user; a real run makes sure the user's
        emails list it in the email index (a read; a write only when one lacks it)."""
        user_id = settings.user.id
        emails = [settings.user.email, (settings.account or {}).get("accountEmail") or ""]
        entries = None if options.dry_run else email_index.ensure_user(self.store, user_id, emails)
        return Directory(self.store, user_id, settings.user_doc, settings.account, entries)

    def _activities(self, settings: ActivitiesSettings, cursor: str | None,
                    state: dict[str, Any], events: dict[str, CalEvent], directory: Directory,
                    log: RunLog) -> tuple[dict[str, CrmActivity], str | None]:  # fmt: skip
        """The activities changed past the cursor, those the events point at and those
        to retry, as the planner sees them (the user's own and those U takes part in)."""
        user_id = settings.user.id
        retry = set(state.get("retryCrm", []))
        pointed = {e.activity_id for e in events.values() if e.activity_id} | retry
        good: list[Activity] = []
        read = crm_changes(self.store, ACTIVITIES, Activity, cursor=cursor,
                           read_at=state.get("crmReadAt"), also=pointed, log=log,
                           take=good.append)  # fmt: skip
        directory.add_users(users_in_play(good, user_id))
        mine = {a.id: self._crm(a, settings, directory) for a in good}
        found = {k: v for k, v in mine.items() if v is not None}
        now = self.clock.now()
        for gone in read.hard_deleted & retry:  # hard-deleted
            found[gone] = CrmActivity(gone, am.normalize({}), False, True, True, now)
        return found, read.cursor

    def _imported(self, settings: ActivitiesSettings, events: dict[str, CalEvent],
                  links: dict[str, EventLink],
                  activities: dict[str, CrmActivity], directory: Directory,
                  log: RunLog) -> dict[str, str]:  # fmt: skip
        """Unlinked events an earlier run imported: the activity an import would write
        exists (an account switch archived its link; the user's other account attends
        the same meeting). They are linked again; an import would overwrite the CRM's
        edits and push a second event. An activity deleted or taken out of the calendar
        since maps to "": the user took it out of the CRM, the event is left alone. Read
        only for unlinked events: one batched read."""
        linked = {link.event_id for link in links.values()}
        wanted = {eid: am.import_id(settings.user.id, eid) for eid, event in events.items()
                  if eid not in linked and not event.cancelled and event.in_window}  # fmt: skip
        missing = sorted(set(wanted.values()) - set(activities))
        # malformed ones are linked, never written over: the run reports them
        malformed = self._read_more(settings, missing, activities, directory, log)
        live = {aid for aid, a in activities.items() if not a.gone} | malformed
        return {eid: (aid if aid in live else "") for eid, aid in wanted.items()
                if aid in activities or aid in live}  # fmt: skip

    def _read_more(self, settings: ActivitiesSettings, ids: list[str],
                   activities: dict[str, CrmActivity], directory: Directory,
                   log: RunLog) -> set[str]:  # fmt: skip
        """Read these activities into ``activities``; returns the malformed ones' ids
        (each reported)."""
        if not ids:
            return set()
        good, bad = load_each(
            Activity, ACTIVITIES, list(self.store.get_many(ACTIVITIES, ids).items())
        )
        for problem in bad:
            log.skip(problem.doc_id, str(problem))
        directory.add_users(users_in_play(good, settings.user.id))
        for activity in good:
            found = self._crm(activity, settings, directory)
            if found is not None:
                activities[activity.id] = found
        return {problem.doc_id for problem in bad}

    def _crm(self, activity: Activity, settings: ActivitiesSettings,
             directory: Directory) -> CrmActivity | None:  # fmt: skip
        user_id = settings.user.id
        takes_part = any(p.userId == user_id for p in activity.participants)
        if activity.organizerId != user_id and not takes_part:
            return None
        owned = activity.organizerId == user_id or (
            activity.organizerId not in directory.connected_ids
        )
        emails = {("user", p.userId): directory.user_emails[p.userId]
                  for p in activity.participants if p.userId in directory.user_emails}  # fmt: skip
        emails |= self._participant_emails(activity)
        gone = activity.deletedAt is not None or not activity.showInCalendar
        start = activity.start[:10]
        return CrmActivity(
            id=activity.id,
            fields=am.from_activity(activity, emails, settings.user.timeZone),
            in_scope=not gone and start >= settings.sync_from,
            gone=gone,
            owned=owned,
            modified_at=parse_timestamp(activity.modifiedAt),
            organizer_id=activity.organizerId,
        )

    def _participant_emails(self, activity: Activity) -> dict[tuple[str, str], str]:
        ids = [p.contactId for p in activity.participants if p.contactId and not p.email]
        found = self.store.get_many(CONTACTS, ids) if ids else {}
        return {("contact", cid): ((doc.get("emails") or [{}])[0].get("value") or "")
                for cid, doc in found.items() if doc.get("emails")}  # fmt: skip

    def _links(self, user_id: str, activities: dict[str, CrmActivity],
               events: dict[str, CalEvent], everything: bool,
               log: RunLog) -> dict[str, EventLink]:  # fmt: skip
        if everything:
            where = [Filter("userId", "==", user_id), Filter("section", "==", "activities")]
            docs = [(d.id, d.data) for d in self.store.scan(LINKS, where, order_by="crmId")]
        else:
            ids = set(activities) | {e.activity_id for e in events.values() if e.activity_id}
            keys = [link_id(user_id, "activities", i) for i in sorted(ids)]
            docs = list(self.store.get_many(LINKS, keys).items())
            known = {d.get("googleId") for _, d in docs}
            for event_id in sorted(set(events) - known):
                where = [Filter("userId", "==", user_id), Filter("googleId", "==", event_id)]
                docs += [(d.id, d.data) for d in self.store.query(LINKS, where)
                         if d.data.get("section") == "activities"]  # fmt: skip
        return links_from(docs, link_from_doc, log)

    def _copies_to_link(self, user_id: str, activities: dict[str, CrmActivity],
                        events: dict[str, CalEvent],
                        links: dict[str, EventLink]) -> dict[str, dict[str, Any]]:  # fmt: skip
        """Meetings U takes part in that their organizer's sync has linked but U has not:
        U's calendar copy shares the organizer's event id, so read it, whatever the order
        in which the two users synced."""
        waiting = [a for a in activities.values() if not a.owned and a.id not in links]
        keys = [link_id(a.organizer_id, "activities", a.id) for a in waiting]
        found = self.store.get_many(LINKS, keys) if keys else {}
        wanted = [d["googleId"] for d in found.values() if d["googleId"] not in events]
        wanted += _imports_to_link(user_id, activities, events, links)
        return self.calendar.get(wanted) if wanted else {}

    def _series_links(self, user_id: str, raw: dict[str, dict[str, Any]],
                      links: dict[str, EventLink],
                      log: RunLog) -> dict[str, EventLink]:  # fmt: skip
        """Links to instances of each series a delta shows cancelled parts of (the
        master, or instances), which the delta may not list: instance ids start with
        ``{masterId}_``. Any unlinked cancelled event may be a master."""
        linked = {link.event_id for link in links.values()}
        series = set()
        for event_id, event in raw.items():
            if event.get("status") != "cancelled":
                continue
            master = event.get("recurringEventId") or am.series_of(event_id)
            if master or event_id not in linked:
                series.add(master or event_id)
        docs = []
        for master in sorted(series):  # "`" is the character after "_"
            where = [Filter("userId", "==", user_id), Filter("googleId", ">=", f"{master}_"),
                     Filter("googleId", "<", f"{master}`")]  # fmt: skip
            docs += [(d.id, d.data) for d in self.store.query(LINKS, where)
                     if d.data.get("section") == "activities"
                     and d.data.get("crmId") not in links]  # fmt: skip
        return links_from(docs, link_from_doc, log)

    def _gone(self, raw: dict[str, dict[str, Any]], links: dict[str, EventLink],
              window: tuple[dt.datetime, dt.datetime], complete: bool,
              force: bool) -> frozenset[str]:  # fmt: skip
        """Linked events Google has stopped listing, though not as cancelled ones:
        instances of a deleted series, and (full listings) events a get cannot find.
        Events the gets find are added to ``raw``."""
        live = [link for link in links.values() if not link.dead]
        gone = self._deleted_series(raw, live)
        if complete:
            gone |= self._not_found(raw, live, gone, window, force)
        return frozenset(gone)

    def _deleted_series(self, raw: dict[str, dict[str, Any]], live: list[EventLink]) -> set[str]:
        """Linked instances the listing lacks, of a series it shows cancelled (the
        master, or some instances: then a get of the master decides)."""
        unlisted = _unlisted_instances(raw, live)
        cancelled = {eid for eid, e in raw.items() if e.get("status") == "cancelled"}
        touched = {raw[eid].get("recurringEventId") or am.series_of(eid) for eid in cancelled}
        ask = sorted(m for m in unlisted if m not in cancelled and m in touched)
        masters = self.calendar.get(ask) if ask else {}
        deleted = {m for m in ask if _deleted(masters.get(m))}
        return {i for m, instances in unlisted.items() if m in cancelled | deleted
                for i in instances}  # fmt: skip

    def _not_found(self, raw: dict[str, dict[str, Any]], live: list[EventLink], gone: set[str],
                   window: tuple[dt.datetime, dt.datetime], force: bool) -> set[str]:  # fmt: skip
        """A full listing lacks these linked events of its window: read each (moved out
        of the window, or cancelled and left out). Those not found are gone. When the
        listing holds none of the linked events at all, one batch of gets decides:
        finding none of them either, it is another calendar (the guard's case)."""
        missing = [link.event_id for link in live if link.event_id not in raw
                   and link.event_id not in gone and _in_window(link.fields, window)]  # fmt: skip
        if not missing:
            return set()
        listed = any(link.event_id in raw for link in live)
        probe = missing if listed or force else missing[:PROBE]
        found = self.calendar.get(probe)
        if not found and not listed:
            return set(missing)
        if len(probe) < len(missing):
            found |= self.calendar.get(missing[len(probe) :])
        raw |= found
        self.progress(f"read {len(missing)} linked events the listing lacked")
        return {event_id for event_id in missing if event_id not in found}

    def _shared(self, user_id: str, events: dict[str, CalEvent],
                links: dict[str, EventLink]) -> dict[str, str]:  # fmt: skip
        """iCalUID -> activity id, for unlinked events some user already linked."""
        linked = {link.event_id for link in links.values()}
        out: dict[str, str] = {}
        for event in events.values():
            if event.id in linked or event.cancelled or not event.ical_uid:
                continue
            for doc in self.store.query(LINKS, [Filter("icalUid", "==", event.ical_uid)]):
                if doc.data.get("section") == "activities" and doc.data.get("userId") != user_id:
                    out[event.ical_uid] = doc.data["crmId"]
                    break
        return out


def link_from_doc(doc: dict[str, Any]) -> EventLink:
    others = doc.get("googleOnlyAttendees")
    return EventLink(*pairs.link_basics(doc, am.normalize),
                     bool(doc.get("tombstone")), doc.get("notPropagated"),
                     bool(doc.get("readOnly")), doc.get("organizerEmail") or "",
                     tuple(others) if others is not None else None)  # fmt: skip


def pair_known(links: dict[str, EventLink], activities: dict[str, CrmActivity],
               events: dict[str, CalEvent]) -> dict[str, set[str]]:  # fmt: skip
    """Event id -> attendee emails its pair knows: the link's synced attendees and the
    CRM activity's (for linked events, and for events carrying one of our ids)."""
    out: dict[str, set[str]] = {}
    for link in links.values():
        activity = activities.get(link.activity_id)
        crm = am.attendee_emails(activity.fields) if activity else set()
        out[link.event_id] = am.attendee_emails(link.fields) | crm
    for event in events.values():
        activity = activities.get(event.activity_id or "")
        if activity is not None:
            out.setdefault(event.id, set()).update(am.attendee_emails(activity.fields))
    return out


def _unlisted(links: dict[str, EventLink], activities: dict[str, CrmActivity],
              log: RunLog) -> list[str]:  # fmt: skip
    """The linked activities a complete listing did not list (one without
    ``modifiedAt`` is not listed: read by id, it is reported, never taken as deleted)."""
    return sorted(i for i in links if i not in activities and i not in log.skipped_ids)


def _imports_to_link(user_id: str, activities: dict[str, CrmActivity],
                     events: dict[str, CalEvent],
                     links: dict[str, EventLink]) -> list[str]:  # fmt: skip
    """The events of unlinked imports in scope (an import an undo took back, restored
    in the CRM since): read, so that they are linked again, never pushed as a second
    event of one meeting."""
    mine = am.import_id(user_id, "")
    return [a.id.removeprefix(mine) for a in activities.values()
            if a.id.startswith(mine) and a.in_scope and a.id not in links
            and a.id.removeprefix(mine) not in events]  # fmt: skip


def _z(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_window(fields: am.ActivityFields, window: tuple[dt.datetime, dt.datetime]) -> bool:
    """The event starts on or after the window's start and before its end."""
    start = fields["start"]
    if not start:
        return False
    if fields["allDay"]:
        day = dt.date.fromisoformat(start)
        return window[0].date() <= day < window[1].date()
    moment = parse_timestamp(start)
    return window[0] <= moment < window[1]


def to_cal_event(event: dict[str, Any], directory: Directory, pair: dict[str, set[str]],
                 window: tuple[dt.datetime, dt.datetime]) -> CalEvent:  # fmt: skip
    """An event as read, as the planner sees it. Attendees count when the CRM knows them
    (``directory``), or when the pair does (``pair``: the link's synced attendees, the
    activity's participants): a CRM participant without a contact is an attendee like
    any other once it is on the event."""
    fields = am.from_event(event, directory.known | pair.get(event["id"], set()))
    organizer = event.get("organizer") or {}
    updated = event.get("updated")
    return CalEvent(
        id=event["id"],
        etag=event.get("etag", ""),
        fields=fields,
        ical_uid=event.get("iCalUID", ""),
        organizer_self=bool(organizer.get("self")),
        organizer_email=(organizer.get("email") or "").lower(),
        cancelled=event.get("status") == "cancelled",
        in_window=_in_window(fields, window),
        updated_at=parse_timestamp(updated) if updated else None,
        activity_id=am.private_activity_id(event) or am.activity_id_of(event["id"]),
    )


def sync_window(settings: ActivitiesSettings, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[syncFrom in the user's zone, now + HORIZON), in UTC."""
    start = dt.datetime.combine(dt.date.fromisoformat(settings.sync_from), dt.time(),
                                settings.time_zone)  # fmt: skip
    return start.astimezone(dt.UTC), now + HORIZON


def _deleted(event: dict[str, Any] | None) -> bool:
    return event is None or event.get("status") == "cancelled"


def users_in_play(activities: list[Activity], user_id: str) -> set[str]:
    """The CRM users of the user's own activities and those it takes part in: their
    organizers, and participants named by user id alone."""
    ours = [a for a in activities if a.organizerId == user_id
            or any(p.userId == user_id for p in a.participants)]  # fmt: skip
    return {a.organizerId for a in ours} | {
        p.userId for a in ours for p in a.participants if p.userId and not p.email
    }


def _unlisted_instances(
    raw: dict[str, dict[str, Any]], live: list[EventLink]
) -> dict[str, list[str]]:
    """Series -> its linked instances the listing lacks."""
    unlisted: dict[str, list[str]] = {}
    for link in live:
        master = am.series_of(link.event_id)
        if master and link.event_id not in raw:
            unlisted.setdefault(master, []).append(link.event_id)
    return unlisted
