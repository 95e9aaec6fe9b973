"""Workspace domain-wide delegation on the sandbox: a domain user is connected by the
administrator's service account with no OAuth of their own, syncs contacts and
activities through the JWT-bearer grant, cannot disconnect, and meets a clear
``reauth_required`` when the administrator revokes the delegation. The sandbox checks
the assertion as Google does: signature, audience, lifetime, scopes, domain of ``sub``.

Keys are generated here, at test time; none is stored in the repository."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from adapters.delegation import ADMINISTRATOR, DelegationRefused, check, credentials
from adapters.google_api import SCOPES
from adapters.stores import open_store
from core import outcome
from core.errors import (
    ConnectedByAdministrator,
    DelegationRevoked,
    DelegationSuspended,
    NotConnected,
)
from core.model import GOOGLE_ACCOUNTS, USERS
from core.runs import Options
from functions import bootstrap, delegation, seed
from functions.accounts import connect, disconnect
from functions.manual_logic import status
from functions.sync import forget_credentials, google_credentials, run_activities, run_contacts

DOMAIN = "example.com"
CLIENT = "crmsync-dwd@crmsync-test.iam.gserviceaccount.com"
UNAUTHORIZED = (
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested."
)


def service_key(client_email: str = CLIENT, key_id: str = "k1") -> tuple[dict[str, Any], str]:
    """A service account JSON key (as the Cloud console hands it out) and its public PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = {
        "type": "service_account",
        "project_id": "crmsync-test",
        "private_key_id": key_id,
        "private_key": private,
        "client_email": client_email,
        "client_id": "100000000000000000042",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return info, public.decode()


@pytest.fixture(scope="module")
def key() -> tuple[dict[str, Any], str]:
    return service_key()


def delegate(sandbox: Any, public: str, scopes: Any = SCOPES, domain: str = DOMAIN) -> dict:
    body = {
        "clientEmail": CLIENT,
        "publicKey": public,
        "keyId": "k1",
        "domain": domain,
        "scopes": list(scopes),
    }
    return sandbox.control("POST", "/_sandbox/delegations", body)


@pytest.fixture
def crm(tmp_path, sandbox, make_account, key):
    """The sample CRM, the administrator's delegation of ``example.com`` in the sandbox
    and in crmsync's configuration, Alice's Google account; no OAuth connection."""
    forget_credentials()
    info, public = key
    delegate(sandbox, public)
    make_account("alice@example.com", "Europe/Berlin")
    key_file = tmp_path / "delegation-key.json"
    key_file.write_text(json.dumps(info))
    config = bootstrap.Config(
        store_url=f"sqlite:///{tmp_path / 'crm.db'}",
        google_endpoint=sandbox.url,
        state_dir=tmp_path / ".crmsync",
        delegation_key=str(key_file),
        delegation_domains=(DOMAIN,),
    )
    store = open_store(config.store_url)
    seed.seed(store, datetime.now(UTC))
    yield config, store
    store.close()
    bootstrap.use_clock(None)


def grant(sandbox: Any, claims: dict[str, Any], private_pem: str, kid: str = "k1"):
    """POST a hand-made assertion to the sandbox's token endpoint: (status, body)."""
    signer = crypt.RSASigner.from_string(private_pem, key_id=kid)
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": jwt.encode(signer, claims).decode(),
    }
    request = urllib.request.Request(
        sandbox.url + "/token", data=urllib.parse.urlencode(form).encode()
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": CLIENT,
        "scope": " ".join(SCOPES),
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 3600,
        "sub": "alice@example.com",
        **changes,
    }


# --- connect, sync, revoke ----------------------------------------------------------------


def test_a_domain_user_is_connected_by_the_administrator_with_no_oauth(crm, sandbox):
    config, store = crm
    account = delegation.ensure(config, store, seed.ALICE)
    # no OAuth grant at all: the only refresh token is the control API's own
    assert {g.client_id for g in sandbox.state.tokens.refresh.values()} == {"sandbox-control"}
    assert account is not None and account["status"] == "connected"
    assert account["connectedBy"] == ADMINISTRATOR and account["delegatedBy"] == CLIENT
    assert account["accountEmail"] == "alice@example.com"
    assert "refreshTokenCiphertext" not in account
    shown = status(store, seed.ALICE)
    assert shown["account"]["connectedBy"] == "administrator"
    assert shown["account"]["status"] == "connected"
    assert delegation.ensure(config, store, seed.ALICE) == account  # once is enough


def test_contacts_and_activities_sync_through_the_delegated_grant(crm, sandbox):
    config, store = crm
    contacts = run_contacts(config, store, seed.ALICE, Options())  # connects on the way
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["connectedBy"] == ADMINISTRATOR
    assert contacts.outcome == {**contacts.outcome, "outcome": "done", "reason": "changes"}
    assert not contacts.errors
    activities = run_activities(config, store, seed.ALICE, Options())
    assert activities.outcome["outcome"] == "done" and not activities.errors
    stats = sandbox.stats()["byMethod"]
    assert (
        stats.get("people.people.createContact", 0)
        + stats.get("people.people.batchCreateContacts", 0)
        >= 1
    )
    assert stats.get("calendar.events.insert", 0) >= 1
    again = run_contacts(config, store, seed.ALICE, Options())
    assert again.outcome["reason"] == "no_changes"


def test_the_delegated_contacts_are_alices_in_google(crm, sandbox, make_account):
    config, store = crm
    run_contacts(config, store, seed.ALICE, Options())
    creds = credentials(bootstrap.delegation_key(config), "alice@example.com", sandbox.url)
    from adapters.google_api import people_service

    people = people_service(creds, sandbox.url)
    listed = (
        people.people()
        .connections()
        .list(resourceName="people/me", personFields="names,emailAddresses")
        .execute()
    )
    emails = {
        e["value"] for p in listed.get("connections", []) for e in p.get("emailAddresses", [])
    }
    assert "ada@analytical.example" in emails


def test_a_user_cannot_disconnect_the_administrators_connection(crm):
    config, store = crm
    delegation.ensure(config, store, seed.ALICE)
    with pytest.raises(ConnectedByAdministrator):
        disconnect(config, store, seed.ALICE)
    found = outcome.of_error(ConnectedByAdministrator("x"))
    assert (found.status, found.reason) == (409, "connected_by_administrator")
    assert "administrator" in (found.hint or "")
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "connected"


def test_revoking_the_delegation_leads_to_reauth_required_with_a_clear_message(crm, sandbox):
    config, store = crm
    run_contacts(config, store, seed.ALICE, Options())
    sandbox.control("DELETE", f"/_sandbox/delegations/{CLIENT}")
    sandbox.advance(3601)  # the access tokens issued before live their hour, then go
    with pytest.raises(DelegationRevoked, match="administrator"):
        run_contacts(config, store, seed.ALICE, Options())
    account = store.get(GOOGLE_ACCOUNTS, seed.ALICE)
    assert account["status"] == "reauth_required" and account["connectedBy"] == ADMINISTRATOR
    ready = status(store, seed.ALICE)["sections"]["contacts"]["ready"]
    assert ready["reason"] == "reauth_required"
    assert ready["hint"] == outcome.DELEGATION
    assert "ask your administrator to restore it" in outcome.DELEGATION
    with pytest.raises(DelegationSuspended):
        run_activities(config, store, seed.ALICE, Options())
    suspended = outcome.of_error(DelegationSuspended())
    assert (suspended.reason, suspended.hint) == ("reauth_required", outcome.DELEGATION)


def test_a_restored_delegation_connects_again(crm, sandbox, key):
    config, store = crm
    bootstrap.use_clock(sandbox.state.clock)
    run_contacts(config, store, seed.ALICE, Options())
    sandbox.control("DELETE", f"/_sandbox/delegations/{CLIENT}")
    sandbox.advance(3601)
    with pytest.raises(DelegationRevoked):
        run_contacts(config, store, seed.ALICE, Options())
    assert delegation.ensure(config, store, seed.ALICE)["status"] == "reauth_required"
    delegate(sandbox, key[1])  # the administrator restores it
    assert delegation.ensure(config, store, seed.ALICE)["status"] == "reauth_required"
    sandbox.advance(61)
    assert delegation.ensure(config, store, seed.ALICE)["status"] == "connected"
    forget_credentials()
    assert run_contacts(config, store, seed.ALICE, Options()).outcome["outcome"] == "done"


def test_users_outside_the_domain_still_use_oauth(crm, sandbox, make_account):
    config, store = crm
    bob = {**store.get(USERS, seed.BOB), "email": "bob@elsewhere.example"}
    store.put(USERS, seed.BOB, bob)
    make_account("bob@elsewhere.example")
    assert delegation.ensure(config, store, seed.BOB) is None
    with pytest.raises(NotConnected):
        run_contacts(config, store, seed.BOB, Options())
    assert store.get(GOOGLE_ACCOUNTS, seed.BOB) is None
    # the delegation does not serve a subject outside its domain either
    creds = credentials(bootstrap.delegation_key(config), "bob@elsewhere.example", sandbox.url)
    with pytest.raises(DelegationRevoked, match="unauthorized_client"):
        check(creds)


def test_a_users_own_oauth_connection_takes_precedence(crm, make_account):
    config, store = crm
    google = make_account("alice@example.com")
    connect(config, seed.ALICE, google.refresh_token)
    account = delegation.ensure(config, store, seed.ALICE)
    assert account is not None and "connectedBy" not in account
    assert account["refreshTokenCiphertext"]
    assert run_contacts(config, store, seed.ALICE, Options()).outcome["outcome"] == "done"


def test_without_a_configured_delegation_nothing_changes(crm):
    config, store = crm
    plain = bootstrap.Config(
        store_url=config.store_url,
        google_endpoint=config.google_endpoint,
        state_dir=config.state_dir,
    )
    assert delegation.ensure(plain, store, seed.ALICE) is None
    with pytest.raises(NotConnected):
        run_contacts(plain, store, seed.ALICE, Options())


def test_the_configuration_reads_the_key_and_domains_from_the_environment(key):
    info, _ = key
    config = bootstrap.Config.from_env(
        {
            "CRMSYNC_DELEGATION_KEY": json.dumps(info),
            "CRMSYNC_DELEGATION_DOMAINS": "Example.com, @example.org",
        }
    )
    assert config.delegation_domains == ("example.com", "example.org")
    assert bootstrap.delegation_key(config)["client_email"] == CLIENT
    assert delegation.covers(config, "someone@EXAMPLE.com")
    assert not delegation.covers(config, "someone@example.net")


# --- the sandbox's JWT-bearer grant, as Google answers it ---------------------------------


def test_a_well_formed_assertion_gets_an_access_token_for_sub(crm, sandbox, key):
    answer = grant(sandbox, claims(), key[0]["private_key"])
    assert answer[0] == 200
    body = answer[1]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert "refresh_token" not in body
    assert sandbox.state.tokens.access_grant(body["access_token"]).email == "alice@example.com"


def test_a_forged_assertion_is_refused(crm, sandbox):
    other, _ = service_key()  # the same client email, another (unregistered) key
    assert grant(sandbox, claims(), other["private_key"]) == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )
    creds = credentials(other, "alice@example.com", sandbox.url)
    with pytest.raises(DelegationRevoked, match="Invalid JWT Signature"):
        check(creds)


def test_an_unknown_service_account_is_refused(crm, sandbox, key):
    status_, body = grant(
        sandbox, claims(iss="stranger@x.iam.gserviceaccount.com"), key[0]["private_key"]
    )
    assert (status_, body["error"]) == (400, "invalid_grant")


def test_scopes_not_granted_are_refused(crm, sandbox, key):
    delegate(sandbox, key[1], scopes=["https://www.googleapis.com/auth/contacts"])
    assert grant(sandbox, claims(), key[0]["private_key"]) == (
        401,
        {"error": "unauthorized_client", "error_description": UNAUTHORIZED},
    )
    just_contacts = claims(scope="https://www.googleapis.com/auth/contacts")
    assert grant(sandbox, just_contacts, key[0]["private_key"])[0] == 200
    assert grant(sandbox, claims(scope=""), key[0]["private_key"]) == (
        400,
        {"error": "invalid_scope", "error_description": "Empty or missing scope not allowed."},
    )


def test_sub_must_be_in_the_delegated_domain_and_a_known_account(crm, sandbox, key):
    private = key[0]["private_key"]
    assert grant(sandbox, claims(sub="eve@elsewhere.example"), private)[1]["error"] == (
        "unauthorized_client"
    )
    assert grant(sandbox, claims(sub="nobody@example.com"), private) == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid email or User ID"},
    )


def test_the_audience_and_lifetime_are_checked(crm, sandbox, key):
    private = key[0]["private_key"]
    wrong = grant(sandbox, claims(aud="https://example.com/token"), private)
    assert wrong[0] == 400 and wrong[1]["error"] == "invalid_grant"
    assert grant(sandbox, claims(aud=sandbox.url + "/token"), private)[0] == 200
    now = int(time.time())
    for bad in (claims(iat=now - 7200, exp=now - 3600), claims(iat=now, exp=now + 7200)):
        status_, body = grant(sandbox, bad, private)
        assert status_ == 400 and "short-lived token" in body["error_description"]


def test_a_revoked_delegation_refuses_new_grants_at_once(crm, sandbox, key):
    sandbox.control("DELETE", "/_sandbox/delegations/" + CLIENT)
    listed = sandbox.control("GET", "/_sandbox/delegations")["delegations"]
    assert listed[0]["domain"] is None
    assert grant(sandbox, claims(), key[0]["private_key"])[0] == 401
    creds = credentials(key[0], "alice@example.com", sandbox.url)
    with pytest.raises(DelegationRevoked) as refused:
        check(creds)
    assert refused.value.reason == "unauthorized_client"


def test_delegated_refusals_are_marked_as_such(crm, sandbox, key):
    sandbox.control("DELETE", "/_sandbox/delegations/" + CLIENT)
    creds = credentials(key[0], "alice@example.com", sandbox.url)
    from google.auth.transport.requests import Request

    with pytest.raises(DelegationRefused):
        creds.refresh(Request())


def test_a_scheduled_look_finds_the_delegated_connection_with_no_token(crm):
    from adapters.delegation import DelegatedCredentials
    from core.schedule import Job, Probe
    from functions.sync import _credentials_for, _probe_ciphertext

    config, store = crm
    delegation.ensure(config, store, seed.ALICE)
    read: dict[str, Any] = {}
    job = Job(seed.ALICE, "contacts", "scheduled", probe=Probe("g", "c"))
    key = _probe_ciphertext(store, job, read)
    assert key == "delegated:alice@example.com"
    creds = _credentials_for(config, seed.ALICE, key)
    assert isinstance(creds, DelegatedCredentials)
    check(creds)  # Google grants it
    import dataclasses

    narrowed = dataclasses.replace(config, delegation_domains=("other.example",))
    with pytest.raises(NotConnected):  # a domain taken out: the look acts as no one
        _credentials_for(narrowed, seed.ALICE, key)


# --- found by the independent review (issue 13) ----------------------------------------


def test_a_mailbox_another_crm_user_claims_is_never_delegated_to_a_second_user(crm):
    """The grant's subject is a mailbox: a second CRM user given the same email (a CRM
    edit) must not sync the first user's contacts and calendar."""
    config, store = crm
    delegation.ensure(config, store, seed.ALICE)
    store.put(USERS, seed.BOB, {**store.get(USERS, seed.BOB), "email": "alice@example.com"})
    account = delegation.ensure(config, store, seed.BOB)
    assert account is None or account.get("status") != "connected"


def test_a_changed_crm_email_moves_the_delegated_connection_to_the_new_mailbox(crm, make_account):
    config, store = crm
    delegation.ensure(config, store, seed.ALICE)
    make_account("carol@example.com")
    store.put(USERS, seed.ALICE, {**store.get(USERS, seed.ALICE), "email": "carol@example.com"})
    with pytest.raises(NotConnected):  # never the old mailbox any more
        google_credentials(config, store, seed.ALICE)
    account = delegation.ensure(config, store, seed.ALICE)
    assert account["accountEmail"] == "carol@example.com" and account["status"] == "connected"


def test_a_domain_taken_out_of_the_configuration_ends_its_delegated_connections(crm):
    import dataclasses

    config, store = crm
    delegation.ensure(config, store, seed.ALICE)
    forget_credentials()
    narrowed = dataclasses.replace(config, delegation_domains=("other.example",))
    with pytest.raises(NotConnected, match="no longer applies"):
        google_credentials(narrowed, store, seed.ALICE)


def test_a_delegated_connection_no_longer_covered_is_the_users_to_end(crm):
    import dataclasses

    from functions import manual_logic

    config, store = crm
    delegation.ensure(config, store, seed.ALICE)
    assert manual_logic.status(store, seed.ALICE, config)["account"]["connectedBy"] == (
        "administrator"
    )
    narrowed = dataclasses.replace(config, delegation_domains=("other.example",))
    shown = manual_logic.status(store, seed.ALICE, narrowed)["account"]
    assert shown["connectedBy"] is None and shown["delegationEnded"] is True
    assert shown["status"] == "reauth_required"  # its syncs stop: connect your own account
    answer = disconnect(narrowed, store, seed.ALICE)
    assert answer["outcome"] == "done" and answer["revoked"] is False  # no token of theirs
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "not_connected"
    assert delegation.ensure(narrowed, store, seed.ALICE)["status"] == "not_connected"


def test_the_key_is_never_repeated_in_an_error(tmp_path):
    import base64

    from adapters.delegation import key_info
    from core.errors import ConfigError

    secret = json.dumps({"client_email": "x@y", "private_key": "-----BEGIN PRIVATE KEY-----"})
    for value in (base64.b64encode(secret.encode()).decode(), "\ufeff" + secret + "}"):
        with pytest.raises(ConfigError) as caught:
            key_info(value)
        assert "PRIVATE" not in str(caught.value) and value[:12] not in str(caught.value)
    assert key_info("\ufeff" + secret)["client_email"] == "x@y"  # a BOM is no key
    assert "delegation_key" not in repr(bootstrap.Config(delegation_key=secret))


def test_a_clock_skew_refusal_is_passing_trouble_not_a_revocation():
    from google.auth import exceptions as auth_exceptions

    from adapters.delegation import refusal

    skew = auth_exceptions.RefreshError(
        "invalid_grant: Invalid JWT: Token must be a short-lived token (60 minutes) and in "
        "a reasonable timeframe.", {"error": "invalid_grant"})  # fmt: skip
    assert not isinstance(refusal(skew), DelegationRevoked)
    revoked = auth_exceptions.RefreshError(f"unauthorized_client: {UNAUTHORIZED}",
                                           {"error": "unauthorized_client"})  # fmt: skip
    assert isinstance(refusal(revoked), DelegationRevoked)


def test_the_tick_brings_users_back_once_the_administrator_restores_the_delegation(
    crm, sandbox, key
):
    """Found by review: a revoked delegation marked its users reauth_required and took
    them off the schedule, and only a visit of each user's page could bring them back."""
    from functions.jobs import dispatch

    config, store = crm
    bootstrap.use_clock(sandbox.state.clock)
    run_contacts(config, store, seed.ALICE, Options())
    sandbox.control("DELETE", f"/_sandbox/delegations/{CLIENT}")
    sandbox.advance(3601)  # the access token issued before lives out its hour
    with pytest.raises(DelegationRevoked):
        run_contacts(config, store, seed.ALICE, Options())
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "reauth_required"
    jobs: list = []
    dispatch(config, store, send=jobs.extend)  # still revoked: asked, refused, left
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "reauth_required"
    delegate(sandbox, key[1])  # the administrator restores it
    sandbox.advance(60 * 16)
    dispatch(config, store, send=jobs.extend)
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "connected"
    sandbox.advance(60)
    dispatch(config, store, send=jobs.extend)
    assert any(j.user_id == seed.ALICE for j in jobs), "no scheduled run after the restoration"


def test_a_mailbox_claimed_in_another_letter_case_is_never_delegated_twice(crm):
    config, store = crm
    delegation.ensure(config, store, seed.ALICE)
    store.put(USERS, seed.BOB, {**store.get(USERS, seed.BOB), "email": "Alice@Example.com"})
    account = delegation.ensure(config, store, seed.BOB)
    assert account is None or account.get("status") != "connected"


def test_refused_accounts_that_stay_refused_do_not_starve_the_others(crm, sandbox, key,
                                                                      monkeypatch):  # fmt: skip
    """Found by review: an account the tick could not restore (its user outside the
    domains now) was asked first at every tick, and with the per-tick limit reached,
    a restorable user never got a turn."""
    from functions.jobs import dispatch

    config, store = crm
    bootstrap.use_clock(sandbox.state.clock)
    monkeypatch.setattr(delegation, "RESTORE_PER_TICK", 1)
    run_contacts(config, store, seed.ALICE, Options())
    gone = {"email": "gone@other.example", "displayName": "Gone", "timeZone": "UTC"}
    store.put(USERS, "a-gone", gone)  # sorts before u-alice
    store.put(GOOGLE_ACCOUNTS, "a-gone", {**store.get(GOOGLE_ACCOUNTS, seed.ALICE),
                                          "accountEmail": "gone@other.example",
                                          "status": "reauth_required"})  # fmt: skip
    sandbox.control("DELETE", f"/_sandbox/delegations/{CLIENT}")
    sandbox.advance(3601)
    with pytest.raises(DelegationRevoked):
        run_contacts(config, store, seed.ALICE, Options())
    delegate(sandbox, key[1])
    sandbox.advance(60 * 16)
    for _ in range(3):  # a tick a minute
        dispatch(config, store, send=lambda jobs: None)
        sandbox.advance(60)
    assert store.get(GOOGLE_ACCOUNTS, seed.ALICE)["status"] == "connected"
