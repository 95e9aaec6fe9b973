"""Connecting a Google account to a CRM user: what ``connect`` and the OAuth callback share.

The refresh token is checked with Google first, then stored encrypted in
``googleAccounts/{userId}``; a reconnect clears ``reauth_required``, and a reconnect
with another Google account starts that account clean. Nothing is written when the
user is unknown or Google refuses the token.
"""

from __future__ import annotations

from adapters.clock import rfc3339
from adapters.google_auth import TokenInfo, check_refresh_token
from core import email_index, schedule
from core.account_switch import switch_all
from core.errors import UnknownUser
from core.model import GOOGLE_ACCOUNTS, USERS
from core.ports import DocumentStore
from functions import bootstrap


def connect(
    config: bootstrap.Config, user_id: str, refresh_token: str, *, verify: bool = True
) -> TokenInfo:
    store = bootstrap.store(config)
    try:
        if store.get(USERS, user_id) is None:
            raise UnknownUser(user_id)
        info = TokenInfo(None, ())
        if verify:
            info = check_refresh_token(
                refresh_token,
                config.google_endpoint,
                config.oauth_client_id,
                config.oauth_client_secret,
            )
        save_connection(config, store, user_id, refresh_token, info)
        return info
    finally:
        store.close()


def save_connection(
    config: bootstrap.Config,
    store: DocumentStore,
    user_id: str,
    refresh_token: str,
    info: TokenInfo,
) -> None:
    """Store the token encrypted; a (re)connection is ``connected`` again. A different
    Google account than before starts clean (``core.account_switch``): its cursors,
    group and links are reset, the old account's links archived; the CRM keeps all."""
    previous = (store.get(GOOGLE_ACCOUNTS, user_id) or {}).get("accountEmail")
    if info.account_email:
        now = bootstrap.clock().now()
        switch_all(store, user_id, info.account_email, previous, now)
    user_email = (store.get(USERS, user_id) or {}).get("email") or ""
    with store.batch() as batch:  # the account and its email index entries together
        batch.put(
            GOOGLE_ACCOUNTS,
            user_id,
            {
                "accountEmail": info.account_email,
                "scopes": list(info.scopes),
                "refreshTokenCiphertext": bootstrap.cipher(config).encrypt(refresh_token),
                "status": "connected",
                "connectedAt": rfc3339(bootstrap.clock().now()),
            },
        )
        email_index.index_user(batch, user_id, [user_email, info.account_email or ""], store)
    # connected again: its pairs are back on the schedule, and due at once
    schedule.reschedule(store, user_id, bootstrap.clock().now(), due_now=True)
