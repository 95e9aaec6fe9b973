"""The settings page in a real browser (headless Chromium through Playwright): sign in,
settings, a sync by hand, history, preview, every outcome (failed, skipped, not
connected, revoked, disconnected, another account, queued on Pub/Sub) and privacy
between users, each on a desktop and on a 390 px phone screen. Each scenario leaves a
screenshot in tests/e2e/artifacts/ named after it and the screen."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid

import pytest
from playwright.sync_api import expect

from core.model import CONTACTS, GOOGLE_ACCOUNTS, SYNC_RUNS, SYNC_SETTINGS
from functions import seed
from tests.e2e.conftest import ARTIFACTS

SCREENS = {"desktop": {"width": 1280, "height": 900}, "mobile": {"width": 390, "height": 844}}


@pytest.fixture(params=list(SCREENS))
def screen(request, browser):
    """A tab on each screen; on the phone, no scenario may scroll sideways."""
    context = browser.new_context(viewport=SCREENS[request.param])
    tab = context.new_page()
    tab.screen_name = request.param
    yield tab
    if request.param == "mobile" and tab.url.startswith("http"):
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone: {width} px"
    context.close()


def sign_in(page, site, email="alice@example.com"):
    page.goto(f"{site}/manual_sync/")
    page.get_by_label("Your Google email").fill(email)
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.locator("#who")).to_be_visible()


def shot(page, name):
    suffix = getattr(page, "screen_name", "desktop")
    page.screenshot(path=str(ARTIFACTS / f"{name}-{suffix}.png"), full_page=True)


def test_sign_in(page, site):
    sign_in(page, site)
    expect(page.locator("#who")).to_have_text("Alice")
    expect(page.locator("#account-status")).to_contain_text("Connected")
    cookie = next(c for c in page.context.cookies() if c["name"] == "crmsync_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    shot(page, "01-signed-in")


def test_the_page_at_its_bare_url_signs_in_and_reaches_its_api(page, site):
    """Found by review: at /manual_sync (no slash) the page's relative calls went to
    /status, which answered "no such function"."""
    page.goto(f"{site}/manual_sync")
    page.get_by_label("Your Google email").fill("alice@example.com")
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.locator("#who")).to_have_text("Alice")
    expect(page.locator("#account-status")).to_contain_text("Connected")
    expect(page.get_by_text("no such function")).to_have_count(0)


def test_a_failed_sign_in_is_said_on_the_page_not_as_json(page, site):
    page.goto(f"{site}/manual_sync/signin/callback?code=forged&state=forged")
    expect(page.locator("#signin-error")).to_contain_text("Sign-in failed")
    expect(page.get_by_label("Your Google email")).to_be_visible()
    shot(page, "01b-signin-failed")


def test_settings_are_saved_and_shown_after_a_reload(page, site, cloud_env):
    sign_in(page, site)
    page.get_by_label("Every (minutes)").first.fill("45")
    page.get_by_label("Sync activities from").fill("2026-01-15")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#saved")).to_have_text("Saved.")
    page.reload()
    expect(page.locator("#contacts-interval")).to_have_value("45")
    expect(page.locator("#activities-from")).to_have_value("2026-01-15")
    assert cloud_env.get("syncSettings", seed.ALICE)["contacts"]["intervalMinutes"] == 45
    shot(page, "02-settings-saved")


def test_bad_settings_are_marked_and_focus_moves_to_the_first(screen, site, cloud_env):
    sign_in(screen, site)
    screen.locator("#contacts-tag").select_option("")
    screen.locator("#contacts-auto").check()
    screen.locator("#contacts-interval").fill("1")
    screen.get_by_role("button", name="Save").click()
    tag = screen.locator("#contacts-tag")
    expect(screen.locator("[id='err-contacts.tagId']")).to_have_text(
        "Choose a private tag to sync contacts automatically."
    )
    expect(screen.locator("[id='err-contacts.intervalMinutes']")).to_contain_text("5 to 1440")
    expect(tag).to_have_attribute("aria-invalid", "true")
    expect(screen.locator("#contacts-interval")).to_have_attribute("aria-invalid", "true")
    expect(tag).to_be_focused()
    expect(screen.locator("#saved")).to_contain_text("Not saved")
    assert cloud_env.get(SYNC_SETTINGS, seed.ALICE)["contacts"]["tagId"] == seed.ALICE_TAG
    shot(screen, "03-bad-settings")


def test_unsaved_changes_are_asked_about_before_a_sync(page, site, cloud_env):
    sign_in(page, site)
    page.locator("#contacts-interval").fill("30")
    page.locator("[data-sync=contacts]").click()
    dialog = page.get_by_role("dialog", name="Unsaved changes")
    expect(dialog).to_be_visible()
    shot(page, "03b-unsaved-changes")
    dialog.get_by_role("button", name="Save, then sync").click()
    expect(page.locator("#progress")).to_contain_text("Done: pushed to Google 4")
    assert cloud_env.get(SYNC_SETTINGS, seed.ALICE)["contacts"]["intervalMinutes"] == 30


def test_start_a_contacts_sync_and_see_it_in_the_history(page, site):
    sign_in(page, site)
    page.locator("[data-sync=contacts]").click()
    expect(page.locator("#progress")).to_contain_text("Done: pushed to Google 4")
    row = page.locator("#history tr").first
    expect(row).to_contain_text("Contacts")
    expect(row).to_contain_text("you")
    row.get_by_role("button", name=re.compile("Details")).click()
    expect(page.locator("#detail")).to_contain_text("pushed to Google 4")
    shot(page, "04-sync-and-history")


def _edit(store, collection, doc_id, **changes):
    """A CRM edit, stamped a moment after now (past the last run's cursor)."""
    from datetime import UTC, datetime, timedelta

    from core.model import stamp

    doc = store.get(collection, doc_id)
    later = stamp(datetime.now(UTC) + timedelta(seconds=2))
    store.put(collection, doc_id, {**doc, **changes, "modifiedAt": later})


def _ada_edited_and_synced(screen, site, cloud_env, wait: float = 0):
    """Signed in, a first sync, Ada's title edited in the CRM, a second sync (after
    ``wait`` seconds: the edit is stamped 2 s ahead); the second run's details open."""
    sign_in(screen, site)
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done")
    _edit(cloud_env, CONTACTS, "c-ada", jobTitle="Countess of Lovelace")
    time.sleep(wait)
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done: updated in Google 1")
    screen.locator("#history tr").first.get_by_role("button", name=re.compile("Details")).click()


def test_the_history_names_each_change_with_its_fields(screen, site, cloud_env):
    _ada_edited_and_synced(screen, site, cloud_env)
    detail = screen.locator("#detail")
    expect(detail).to_contain_text("Ada Lovelace: updated in Google")
    expect(detail).to_contain_text("Job title: ")  # the page's words, not the field's name
    expect(detail).to_contain_text("→ Countess of Lovelace")
    expect(detail).not_to_contain_text("c-ada")
    expect(detail).not_to_contain_text("jobTitle")
    expect(detail).to_be_focused()
    screen.locator("#history tr").nth(1).get_by_role("button", name=re.compile("Details")).click()
    expect(detail).to_contain_text("Grace Hopper: pushed to Google")
    expect(screen.locator("#history-title + p")).to_contain_text(
        cloud_env.get("users", seed.ALICE).get("timeZone", "UTC")
    )
    shot(screen, "05-history-per-item")


def test_preview_shows_the_plan_by_name_and_changes_nothing(page, site, cloud_env, account):
    sign_in(page, site)
    page.locator("[data-preview=contacts]").click()
    expect(page.locator("#preview-list li")).to_have_count(4)
    expect(page.locator("#preview")).to_contain_text("add Ada Lovelace to Google")
    expect(page.locator("#preview")).to_contain_text("Nothing was changed")
    assert list(cloud_env.query(SYNC_RUNS)) == []
    listed = (
        account.people.people()
        .connections()
        .list(resourceName="people/me", personFields="names")
        .execute()
    )
    assert "connections" not in listed
    page.locator("[data-sync=contacts]").click()  # a later run clears the old preview
    expect(page.locator("#progress")).to_contain_text("Done")
    expect(page.locator("#preview")).to_be_hidden()
    shot(page, "06-preview")


def test_a_failed_run_says_so_with_the_next_step(screen, site, sandbox, quick_retries):
    sign_in(screen, site)
    sandbox.fault("people.people.connections.list", 503, count=50)
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text(
        "Failed: Google is busy or unavailable; try again in a minute."
    )
    expect(screen.locator("#progress")).not_to_contain_text("undefined")
    expect(screen.locator("#history tr").first).to_contain_text("Failed")
    shot(screen, "07-failed-run")


def test_a_skipped_run_says_what_to_do(screen, site, cloud_env):
    sign_in(screen, site)
    settings = cloud_env.get(SYNC_SETTINGS, seed.ALICE)
    # the CRM clears the tag behind the page's back: the run cannot start
    cloud_env.put(SYNC_SETTINGS, seed.ALICE, {**settings, "contacts": {"tagId": None}})
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text(
        "Not started: Choose a private tag for contacts"
    )
    expect(screen.locator("#progress")).not_to_contain_text("Done")
    expect(screen.locator("#history tr").first).to_contain_text("Not started")
    # the page now knows: Start and Preview wait for a tag, and say so
    expect(screen.locator("[data-sync=contacts]")).to_be_disabled()
    expect(screen.locator("[data-preview=contacts]")).to_be_disabled()
    expect(screen.locator("#why-contacts")).to_contain_text("Choose a private tag")
    expect(screen.locator("[data-sync=activities]")).to_be_enabled()
    shot(screen, "08-skipped-no-tag")


def test_not_connected_disables_syncs_and_offers_connect(screen, site, cloud_env):
    cloud_env.delete(GOOGLE_ACCOUNTS, seed.ALICE)
    sign_in(screen, site)
    expect(screen.locator("#account-status")).to_contain_text("Not connected")
    for button in ("[data-sync=contacts]", "[data-preview=contacts]", "[data-sync=activities]"):
        expect(screen.locator(button)).to_be_disabled()
    expect(screen.locator("#why-activities")).to_have_text("Connect a Google account first.")
    expect(screen.get_by_role("button", name="Connect", exact=True)).to_be_visible()
    expect(screen.locator("#disconnect")).to_be_hidden()
    assert list(cloud_env.query(SYNC_RUNS)) == []
    shot(screen, "09-not-connected")


def test_a_revoked_token_shows_reconnect_at_the_top_and_reconnecting_clears_it(
    screen, site, sandbox, account
):
    sandbox.state.tokens.revoke(account.refresh_token)
    sign_in(screen, site)
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text(
        "Failed: Google no longer accepts the connection"
    )
    banner = screen.get_by_role("alert").filter(has_text="Reconnect needed")
    expect(banner).to_be_visible()
    expect(screen.locator("#account-status")).to_contain_text("Reconnect needed")
    expect(screen.locator("[data-sync=contacts]")).to_be_disabled()
    shot(screen, "10a-reconnect-needed")
    banner.get_by_role("button", name="Reconnect your Google account").click()
    expect(screen.locator("#account-status")).to_contain_text("Connected")
    expect(banner).to_be_hidden()
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done: pushed to Google 4")
    shot(screen, "10b-reconnected")


def test_disconnect_revokes_google_and_keeps_the_crm(screen, site, cloud_env, sandbox, account):
    sign_in(screen, site)
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done")
    screen.once("dialog", lambda dialog: dialog.accept())
    screen.get_by_role("button", name="Disconnect").click()
    expect(screen.locator("#account-message")).to_contain_text("Disconnected")
    expect(screen.locator("#account-status")).to_contain_text("Not connected")
    expect(screen.locator("[data-sync=contacts]")).to_be_disabled()
    assert cloud_env.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "not_connected"
    assert sandbox.state.tokens.refresh[account.refresh_token].revoked
    assert seed.ALICE_TAG in cloud_env.get(CONTACTS, "c-ada")["tagIds"]  # the CRM keeps all
    shot(screen, "11-disconnected")


def test_connecting_another_account_is_said_plainly(screen, site, make_account):
    make_account("alice.work@example.com")
    sign_in(screen, site)
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done")
    screen.get_by_label("Google account to connect").fill("alice.work@example.com")
    screen.get_by_role("button", name="Reconnect", exact=True).click()
    expect(screen.locator("#account-status")).to_have_text("Connected: alice.work@example.com")
    note = screen.locator("#account-switch")
    expect(note).to_contain_text("changed from alice@example.com to alice.work@example.com")
    expect(note).to_contain_text("as a new account")
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done: pushed to Google 4")
    shot(screen, "12-another-account")
    # back to the first account: its pairs come back, and the note does not say "new"
    screen.get_by_label("Google account to connect").fill("alice@example.com")
    screen.get_by_role("button", name="Reconnect", exact=True).click()
    expect(screen.locator("#account-status")).to_have_text("Connected: alice@example.com")
    expect(note).to_contain_text("picks up where it left off with alice@example.com")
    expect(note).not_to_contain_text("as a new account")
    shot(screen, "12b-account-switched-back")


@pytest.fixture(scope="module")
def pubsub_emulator():
    from tests import emulators

    yield from emulators.session("pubsub")


@pytest.mark.emulator
def test_a_queued_run_shows_its_progress_from_pubsub(
    screen, site, sandbox, pubsub_emulator, monkeypatch
):
    """Production queues manual syncs on Pub/Sub: the page follows the run's record
    from queued to running (phase, items done of total) to done."""
    from functions_framework import create_app
    from google.cloud import pubsub_v1

    from tests.integration.test_scheduler import ROOT, cloud_event

    project = f"crmsync-e2e-{uuid.uuid4().hex[:8]}"
    topic = f"projects/{project}/topics/sync-jobs"
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    monkeypatch.setenv("CRMSYNC_QUEUE", f"pubsub:{topic}")
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    publisher.create_topic(name=topic)
    subscription = f"projects/{project}/subscriptions/sync-jobs-push"
    subscriber.create_subscription(name=subscription, topic=topic)
    worker = create_app("run_sync_job", str(ROOT / "main.py"), "cloudevent").test_client()

    from functions.jobs import RecordedProgress

    # the run holds at its first item update until the page has shown it: a run to watch
    shown, written = threading.Event(), threading.Event()
    record = RecordedProgress.__call__

    def held(self, message, done=0, total=0):
        if total and not written.is_set():
            self.last = None  # written, not throttled
            record(self, message, done, total)
            written.set()
            shown.wait(30)
            return
        record(self, message, done, total)

    monkeypatch.setattr(RecordedProgress, "__call__", held)
    sign_in(screen, site)
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Queued")
    shot(screen, "13a-queued")

    def deliver():
        answer = subscriber.pull(subscription=subscription, max_messages=10, timeout=30)
        for received in answer.received_messages:
            data = {"message": {"data": base64.b64encode(received.message.data).decode(),
                                "messageId": received.message.message_id}}  # fmt: skip
            cloud_event(worker, data)
        subscriber.acknowledge(
            subscription=subscription, ack_ids=[m.ack_id for m in answer.received_messages]
        )

    runner = threading.Thread(target=deliver)
    runner.start()
    try:
        expect(screen.locator("#progress")).to_contain_text(
            re.compile(r"Running: applying changes: \d of 4"), timeout=20_000
        )
        shot(screen, "13b-running")
        shown.set()
        expect(screen.locator("#progress")).to_contain_text(
            "Done: pushed to Google 4", timeout=30_000
        )
    finally:
        shown.set()
        runner.join(timeout=60)
    shot(screen, "13c-queued-run-done")


def test_a_second_user_cannot_see_the_first_ones_runs(page, site, browser, make_account):
    sign_in(page, site)
    page.locator("[data-sync=contacts]").click()
    expect(page.locator("#history tr")).to_have_count(1)
    make_account("bob@example.com")
    other = browser.new_context().new_page()
    sign_in(other, site, "bob@example.com")
    expect(other.locator("#who")).to_have_text("Bob")
    expect(other.locator("#history tr")).to_have_count(0)
    assert other.request.get(f"{site}/manual_sync/runs?userId={seed.ALICE}").status == 403
    shot(other, "14-second-user")
    other.context.close()


def test_a_moved_activity_says_its_times_in_the_named_zone(screen, site, cloud_env):
    """Found in the browser trial: details showed raw UTC ("2026-12-09T08:00:00Z")
    under "Times are in Europe/Berlin"."""
    from core.model import ACTIVITIES

    sign_in(screen, site)
    screen.locator("[data-sync=activities]").click()
    expect(screen.locator("#progress")).to_contain_text("Done")
    doc = cloud_env.get(ACTIVITIES, "a-kickoff")
    start = doc["start"][:11] + "11:00:00" + doc["start"][19:]
    end = doc["start"][:11] + "12:00:00" + doc["start"][19:]
    _edit(cloud_env, ACTIVITIES, "a-kickoff", start=start, end=end, title="Kick-off, later")
    screen.locator("[data-sync=activities]").click()
    expect(screen.locator("#progress")).to_contain_text("Done: updated in Google")
    screen.locator("#history tr").first.get_by_role("button", name=re.compile("Details")).click()
    detail = screen.locator("#detail")
    expect(detail).to_contain_text("Start: ")
    expect(detail).to_contain_text("11:00")
    expect(detail).not_to_contain_text(re.compile(r"\d{4}-\d\d-\d\dT"))
    shot(screen, "05b-activity-times")


def test_the_buttons_come_back_after_the_server_could_not_be_reached(screen, site):
    """Found in the browser trial: after a network failure Start and Preview stayed
    disabled until a reload."""
    sign_in(screen, site)
    screen.route(re.compile(r".*/manual_sync/(sync|status)$"), lambda route: route.abort())
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("cannot be reached")
    expect(screen.locator("[data-sync=contacts]")).to_be_enabled()
    screen.unroute(re.compile(r".*/manual_sync/(sync|status)$"))
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done")
    shot(screen, "15-server-back")


def test_a_sync_under_way_is_followed_after_a_reload(screen, site, sandbox):
    """Found in the browser trial: reloaded mid-run, the page said "Idle" and its
    history row stayed "Running" after the run ended."""
    sign_in(screen, site)
    sandbox.control("POST", "/_sandbox/faults", {"latencyMs": 400})
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Synchronizing")
    screen.reload()
    expect(screen.locator("#who")).to_be_visible()
    expect(screen.locator("#history tr").first).to_contain_text("Done", timeout=30_000)
    expect(screen.locator("[data-sync=contacts]")).to_be_enabled()
    sandbox.control("DELETE", "/_sandbox/faults", None)
    shot(screen, "12-followed-after-reload")


def test_a_connection_by_the_administrator_cannot_be_disconnected_and_its_revocation_is_said(
    screen, site, cloud_env, sandbox, tmp_path, monkeypatch
):
    from tests.integration.test_delegation import DOMAIN, delegate, service_key

    info, public = service_key()
    key_file = tmp_path / "delegation-key.json"
    key_file.write_text(json.dumps(info))
    monkeypatch.setenv("CRMSYNC_DELEGATION_KEY", str(key_file))
    monkeypatch.setenv("CRMSYNC_DELEGATION_DOMAINS", DOMAIN)
    delegate(sandbox, public)
    cloud_env.delete(GOOGLE_ACCOUNTS, seed.ALICE)  # no OAuth connection of her own
    sign_in(screen, site)
    expect(screen.locator("#account-status")).to_contain_text("Connected by your administrator")
    expect(screen.locator("#disconnect")).to_be_hidden()
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("Done: pushed to Google 4")
    shot(screen, "12a-connected-by-administrator")
    sandbox.control("DELETE", f"/_sandbox/delegations/{info['client_email']}")
    sandbox.advance(3601)  # the access token issued before lives its hour
    screen.locator("[data-sync=contacts]").click()
    expect(screen.locator("#progress")).to_contain_text("ask your administrator to restore it")
    banner = screen.get_by_role("alert").filter(has_text="delegation for crmsync was revoked")
    expect(banner).to_be_visible()
    expect(screen.get_by_role("button", name="Reconnect your Google account")).to_be_hidden()
    expect(screen.locator("[data-sync=contacts]")).to_be_disabled()
    expect(screen.locator("#why-contacts")).to_contain_text("ask your administrator")
    assert cloud_env.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "reauth_required"
    shot(screen, "12b-delegation-revoked")


def test_a_run_is_previewed_then_undone_from_its_details(screen, site, cloud_env):
    # the run must end after the edit's stamp: a contact saved after the run is left alone
    _ada_edited_and_synced(screen, site, cloud_env, wait=2.2)
    undo = screen.locator("#undo")
    undo.get_by_role("button", name="Preview taking this run back").click()
    expect(undo).to_contain_text("The undo would take 1 action(s)")
    expect(undo).to_contain_text("Ada Lovelace")
    assert cloud_env.get(CONTACTS, "c-ada")["jobTitle"] == "Countess of Lovelace"  # a preview
    shot(screen, "16a-undo-preview")
    undo.get_by_role("button", name="Take this run back").click()
    expect(undo).to_contain_text("Undone:")
    expect(screen.locator("#history tr").first).to_contain_text("Contacts")
    assert cloud_env.get(CONTACTS, "c-ada")["jobTitle"] != "Countess of Lovelace"
    shot(screen, "16b-undone")
