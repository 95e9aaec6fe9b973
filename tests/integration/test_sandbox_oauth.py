"""Sandbox OAuth 2.0 / OpenID Connect, driven by google-auth as production code drives it."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request
from google.oauth2 import id_token

from adapters import google_api

REDIRECT = "http://127.0.0.1:9/callback"
CLIENT = "crmsync-test-client"


def authorize(sandbox, **params):
    """GET the auth endpoint with requests (no redirects) and parse the Location."""
    query = {
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid email https://www.googleapis.com/auth/contacts",
        "state": "s-123",
        "access_type": "offline",
        **params,
    }
    response = Request().session.get(
        f"{sandbox.url}/o/oauth2/v2/auth?{urlencode(query)}", allow_redirects=False
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(sandbox, **form):
    body = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "client_id": CLIENT}
    response = Request().session.post(f"{sandbox.url}/token", data={**body, **form})
    return response.status_code, response.json()


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_refresh_grant_gives_a_bearer_token_and_id_token(account, sandbox):
    creds = google_api.credentials(account.refresh_token, sandbox.url)
    creds.refresh(Request())
    assert creds.token.startswith("ya29.")
    assert creds.expiry is not None
    claims = id_token.verify_token(
        creds.id_token,
        Request(),
        audience="crmsync-local",
        certs_url=f"{sandbox.url}/oauth2/v1/certs",
    )
    assert claims["email"] == "alice@example.com"
    assert claims["iss"] == sandbox.url  # never accounts.google.com


def test_unknown_refresh_token_is_invalid_grant(sandbox):
    creds = google_api.credentials("1//not-a-token", sandbox.url)
    with pytest.raises(auth_exceptions.RefreshError, match="invalid_grant"):
        creds.refresh(Request())


def test_revoked_refresh_token_is_invalid_grant(account, sandbox):
    response = Request().session.post(
        f"{sandbox.url}/revoke", params={"token": account.refresh_token}
    )
    assert response.status_code == 200
    creds = google_api.credentials(account.refresh_token, sandbox.url)
    with pytest.raises(auth_exceptions.RefreshError, match="Token has been expired or revoked"):
        creds.refresh(Request())
    again = Request().session.post(f"{sandbox.url}/revoke", params={"token": account.refresh_token})
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"


def test_revoking_an_access_token_cascades_to_its_refresh_token(account, sandbox):
    response = Request().session.post(f"{sandbox.url}/revoke", data={"token": account.access_token})
    assert response.status_code == 200
    creds = google_api.credentials(account.refresh_token, sandbox.url)
    with pytest.raises(auth_exceptions.RefreshError, match="invalid_grant"):
        creds.refresh(Request())


def test_access_token_expires_after_one_sandbox_hour(account, sandbox):
    session = Request().session
    headers = {"Authorization": f"Bearer {account.access_token}"}
    assert session.get(f"{sandbox.url}/oauth2/v2/userinfo", headers=headers).status_code == 200
    sandbox.advance(3599)
    assert session.get(f"{sandbox.url}/oauth2/v2/userinfo", headers=headers).status_code == 200
    sandbox.advance(2)
    expired = session.get(f"{sandbox.url}/oauth2/v2/userinfo", headers=headers)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    assert expired.json()["error"]["status"] == "UNAUTHENTICATED"


def test_expired_access_token_is_refreshed_transparently_by_the_client(account, sandbox):
    me = account.people.people().get(resourceName="people/me", personFields="emailAddresses")
    assert me.execute()["emailAddresses"][0]["value"] == "alice@example.com"
    first = account.credentials.token
    sandbox.advance(3601)
    again = account.people.people().get(resourceName="people/me", personFields="emailAddresses")
    assert again.execute()["emailAddresses"][0]["value"] == "alice@example.com"
    assert account.credentials.token != first


def test_code_flow_with_pkce_s256(account, sandbox):
    verifier, challenge = pkce_pair()
    got = authorize(
        sandbox, login_hint=account.email, code_challenge=challenge, code_challenge_method="S256"
    )
    assert got["state"] == "s-123" and got["code"]
    status, body = exchange(sandbox, code=got["code"], code_verifier=verifier)
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["refresh_token"].startswith("1//")
    assert "https://www.googleapis.com/auth/contacts" in body["scope"].split()
    claims = id_token.verify_token(
        body["id_token"], Request(), audience=CLIENT, certs_url=f"{sandbox.url}/oauth2/v3/certs"
    )
    assert claims["email"] == account.email and claims["sub"]
    creds = google_api.credentials(body["refresh_token"], sandbox.url, client_id=CLIENT)
    creds.refresh(Request())
    assert creds.valid


def test_code_is_single_use_and_bound_to_verifier_and_redirect(account, sandbox):
    verifier, challenge = pkce_pair()
    got = authorize(
        sandbox, login_hint=account.email, code_challenge=challenge, code_challenge_method="S256"
    )
    status, body = exchange(sandbox, code=got["code"], code_verifier="wrong-verifier")
    assert (status, body["error"]) == (400, "invalid_grant")
    # a refused exchange consumed the code, as Google's single-use codes are
    status, body = exchange(sandbox, code=got["code"], code_verifier=verifier)
    assert (status, body["error"]) == (400, "invalid_grant")

    got = authorize(sandbox, login_hint=account.email)
    status, body = exchange(sandbox, code=got["code"], redirect_uri="http://127.0.0.1:9/other")
    assert (status, body["error"]) == (400, "redirect_uri_mismatch")


def test_online_access_gives_no_refresh_token(account, sandbox):
    got = authorize(sandbox, login_hint=account.email, access_type="online")
    status, body = exchange(sandbox, code=got["code"])
    assert status == 200 and "refresh_token" not in body and body["access_token"]


def test_unknown_login_hint_is_access_denied(account, sandbox):
    got = authorize(sandbox, login_hint="nobody@example.com")
    assert got == {"error": "access_denied", "state": "s-123"}


def test_unsupported_grant_type(sandbox):
    response = Request().session.post(f"{sandbox.url}/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_jwks_and_pem_certs_publish_the_same_key(sandbox):
    session = Request().session
    jwks = session.get(f"{sandbox.url}/oauth2/v3/certs").json()["keys"]
    pems = session.get(f"{sandbox.url}/oauth2/v1/certs").json()
    assert [key["kid"] for key in jwks] == list(pems)
    assert jwks[0]["alg"] == "RS256" and jwks[0]["kty"] == "RSA"


def test_expired_id_token_is_rejected_by_google_auth(account, sandbox):
    minted = sandbox.control(
        "POST",
        "/_sandbox/idtoken",
        {"email": account.email, "audience": CLIENT, "ttlSeconds": -600},
    )
    with pytest.raises(ValueError, match="expired"):
        id_token.verify_token(
            minted["idToken"],
            Request(),
            audience=CLIENT,
            certs_url=f"{sandbox.url}/oauth2/v1/certs",
        )
    fresh = sandbox.control(
        "POST", "/_sandbox/idtoken", {"email": account.email, "audience": CLIENT}
    )
    header = json.loads(base64.urlsafe_b64decode(fresh["idToken"].split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["kid"]
