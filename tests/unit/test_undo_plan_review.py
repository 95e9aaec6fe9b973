"""Found by the independent review of the undo planner (issue 13)."""

from core.undo import plan_undo
from tests.unit.test_undo_plan import entry, f, now


def test_an_entry_whose_values_were_omitted_is_not_called_unchanged():
    e = entry("updatedInGoogle", "google")
    e["fieldsOmitted"] = ["notes"]
    undo = plan_undo([e], now(f(notes="x" * 200_000), f(notes="x" * 200_000)))
    assert not undo.actions and "kept no values for: notes" in undo.conflicts[0].reason


def test_a_malformed_entry_does_not_crash_the_planner():
    bad = [{"change": "updatedInCrm", "crmId": "c1", "fields": {"jobTitle": "x"}},
           "not an entry", {"change": "pushed", "crmId": 7}]  # fmt: skip
    undo = plan_undo(bad, now())
    assert undo.actions == [] and undo.conflicts == [] and undo.unchanged == ["c1"]
