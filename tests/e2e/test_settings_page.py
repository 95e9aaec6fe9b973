"""The settings page in a real browser (headless Chromium through Playwright): sign in,
settings, a sync by hand, history, preview, reconnecting, and privacy between users.
Each scenario leaves a screenshot in tests/e2e/artifacts/."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from core.model import SYNC_RUNS
from functions import seed
from tests.e2e.conftest import ARTIFACTS


def sign_in(page, site, email="alice@example.com"):
    page.goto(f"{site}/manual_sync/")
    page.get_by_label("Your Google email").fill(email)
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.locator("#who")).to_be_visible()


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sign_in(page, site):
    sign_in(page, site)
    expect(page.locator("#who")).to_have_text("Alice")
    expect(page.locator("#account-status")).to_contain_text("Connected")
    cookie = next(c for c in page.context.cookies() if c["name"] == "crmsync_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    shot(page, "01-signed-in")


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


def test_an_invalid_interval_is_shown_beside_its_field(page, site):
    sign_in(page, site)
    page.locator("#contacts-interval").fill("1")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[id='err-contacts.intervalMinutes']")).to_contain_text("greater than")
    expect(page.locator("#saved")).to_contain_text("Not saved")
    shot(page, "03-invalid-interval")


def test_start_a_contacts_sync_and_see_it_in_the_history(page, site):
    sign_in(page, site)
    page.locator("[data-sync=contacts]").click()
    expect(page.locator("#progress")).to_contain_text("pushed 4")
    row = page.locator("#history tr").first
    expect(row).to_contain_text("contacts")
    expect(row).to_contain_text("manual")
    row.get_by_role("button", name=re.compile("Details")).click()
    expect(page.locator("#detail")).to_contain_text("pushed 4")
    shot(page, "04-sync-and-history")


def test_preview_shows_the_plan_and_changes_nothing(page, site, cloud_env, account):
    sign_in(page, site)
    page.locator("[data-preview=contacts]").click()
    expect(page.locator("#preview-list li")).to_have_count(4)
    expect(page.locator("#preview")).to_contain_text("Nothing was changed")
    assert list(cloud_env.query(SYNC_RUNS)) == []
    listed = (
        account.people.people()
        .connections()
        .list(resourceName="people/me", personFields="names")
        .execute()
    )
    assert "connections" not in listed
    shot(page, "05-preview")


def test_a_revoked_token_shows_reconnect_needed_and_reconnecting_clears_it(
    page, site, sandbox, account
):
    sandbox.state.tokens.revoke(account.refresh_token)
    sign_in(page, site)
    page.locator("[data-sync=contacts]").click()
    expect(page.locator("#account-status")).to_contain_text("Reconnect needed")
    shot(page, "06a-reconnect-needed")
    page.get_by_role("button", name="Reconnect").click()
    expect(page.locator("#account-status")).to_contain_text("Connected")
    shot(page, "06b-reconnected")


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
    shot(other, "07-second-user")
    other.context.close()
