"""CRM activity <-> Calendar event mapping: lossless round trips, exact all-day dates,
time zones at both ends of the globe and across DST, deterministic event ids."""

import datetime as dt
import re
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from core import activity_mapping as am

ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Europe/Berlin",
         "Asia/Kolkata", "Australia/Lord_Howe"]  # fmt: skip
text = st.none() | st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
                           min_size=1, max_size=15).filter(lambda s: s.strip() == s)  # fmt: skip
emails = st.lists(st.from_regex(r"[a-z]{1,8}@example\.com", fullmatch=True), max_size=3)
responses = st.sampled_from(am.RESPONSES)


@st.composite
def activity_fields(draw):
    all_day = draw(st.booleans())
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2035, 12, 31)))
    if all_day:
        start, end = day.isoformat(), (day + dt.timedelta(days=draw(st.integers(0, 5)))).isoformat()
    else:
        local = dt.datetime.combine(
            day, dt.time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45])))
        )
        begin = local.replace(tzinfo=am.ZoneInfo(zone))
        finish = begin + dt.timedelta(minutes=draw(st.integers(0, 600)))
        start, end = begin.isoformat(), finish.isoformat()
    people = [{"email": e, "response": draw(responses)} for e in draw(emails)]
    return am.normalize({
        "title": draw(text) or "", "description": draw(text), "location": draw(text),
        "allDay": all_day, "start": start, "end": end, "timeZone": zone,
        "canceled": draw(st.booleans()), "attendees": people,
    })  # fmt: skip


@given(activity_fields())
def test_crm_to_google_to_crm_is_lossless(fields):
    known = {a["email"] for a in fields["attendees"]}
    event = am.to_event(fields, "a1")
    assert am.from_event(event, known) == fields
    assert am.private_activity_id(event) == "a1"


@given(activity_fields())
def test_crm_keys_round_trip(fields):
    crm = am.to_activity(fields, "UTC")
    again = am.normalize({**crm, "canceled": fields["canceled"], "attendees": fields["attendees"]})
    assert again == fields


def test_all_day_dates_never_shift_at_utc_plus_14_or_minus_12():
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        activity = SimpleNamespace(title="Offsite", description=None, location=None, allDay=True,
                                   start="2026-03-08", end="2026-03-09", timeZone=zone,
                                   status="planned", participants=[])  # fmt: skip
        fields = am.from_activity(activity, {}, zone)
        event = am.to_event(fields, "a1")
        assert event["start"] == {"date": "2026-03-08"} and event["end"] == {"date": "2026-03-10"}
        back = am.from_event(event, set())
        assert (back["start"], back["end"]) == ("2026-03-08", "2026-03-09")


def test_timed_event_keeps_its_instant_and_wall_clock_across_dst():
    # 2026-03-08 02:00 is when New York springs forward
    ny = "America/New_York"
    fields = am.normalize({"title": "Call", "allDay": False, "timeZone": ny,
                           "start": "2026-03-08T01:30:00-05:00",
                           "end": "2026-03-08T03:30:00-04:00"})  # fmt: skip
    assert (fields["start"], fields["end"]) == ("2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z")
    event = am.to_event(fields, "a1")
    assert event["start"]["dateTime"] == "2026-03-08T01:30:00-05:00"
    assert event["end"]["dateTime"] == "2026-03-08T03:30:00-04:00"
    google_answer = {**event, "start": {"dateTime": "2026-03-08T06:30:00Z", "timeZone": ny},
                     "end": {"dateTime": "2026-03-08T07:30:00Z", "timeZone": ny}}  # fmt: skip
    assert am.from_event(google_answer, set()) == fields
    assert am.to_activity(fields, "UTC")["end"] == "2026-03-08T03:30:00-04:00"


def test_unknown_attendees_are_not_content_and_are_kept():
    event = {"summary": "x", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"},
             "attendees": [{"email": "Known@Example.com", "responseStatus": "accepted"},
                           {"email": "stranger@else.org", "responseStatus": "declined"},
                           {"email": "me@example.com", "organizer": True}]}  # fmt: skip
    fields = am.from_event(event, {"known@example.com"})
    assert fields["attendees"] == [{"email": "known@example.com", "response": "accepted"}]
    others = am.unknown_attendees(event, {"known@example.com"})
    assert [o["email"] for o in others] == ["stranger@else.org"]
    body = am.to_event(fields, "a1", others)
    assert [a["email"] for a in body["attendees"]] == ["known@example.com", "stranger@else.org"]


@given(st.text(min_size=1, max_size=60))
def test_event_ids_are_deterministic_base32hex_and_reversible(activity_id):
    ident = am.event_id(activity_id)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", ident) and ident == am.event_id(activity_id)
    if len(activity_id.encode()) >= 4:
        assert am.activity_id_of(ident) == activity_id


def test_an_instance_id_names_its_series_and_other_ids_none():
    master = "6egnphrsf9aqj588m7t6bpd3ol"
    assert am.series_of(f"{master}_20261204T090000Z") == master
    assert am.series_of("abc_def_20261204") == "abc_def"  # all-day instance
    for other in ("6egnphrsf9aqj588m7t6bpd3ol", "_6opk4gi18", "abc_2026", "_20261204"):
        assert am.series_of(other) is None
