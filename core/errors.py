"""Domain errors. Adapters translate transport errors into these; the core and the
entry points handle only these.

    CrmsyncError
    ├── ConfigError                 bad or missing configuration
    ├── StoreError                  the document store failed
    │   ├── AlreadyExists           a create() found the id taken
    │   └── TransactionConflict     optimistic transaction lost every attempt
    ├── MalformedDocument           a stored document fails validation (names doc + field)
    ├── UnknownUser                 no users/{id}
    ├── NotConnected                the user has no usable Google connection
    │   └── ReauthRequired          the stored connection is marked reauth_required
    │       └── DelegationSuspended one the administrator made (domain-wide delegation)
    ├── LeaseHeld                   another run holds this user's section
    ├── ConnectedByAdministrator    the user may not end the administrator's connection
    ├── SideEmpty                   one side suddenly dropped every link (guard; --force)
    ├── AccountChanged              a dry run found the Google account switched
    ├── UndoRefused                 a run that cannot be undone (unknown, another user's...)
    └── GoogleError                 the Google side refused or failed
        ├── AuthRevoked             refresh token revoked or expired (invalid_grant)
        │   └── DelegationRevoked   Google refuses the administrator's delegation for
        │                           the user (unauthorized_client, invalid_grant)
        ├── QuotaExceeded           429 / rate-limit 403, after bounded retries
        ├── Unavailable             5xx, after bounded retries
        ├── SyncTokenExpired        People 400 EXPIRED_SYNC_TOKEN or Calendar 410
        ├── EtagMismatch            People stale etag / Calendar 412
        └── NotFound                404 (or 410 on a deleted event)
"""

from __future__ import annotations


class CrmsyncError(Exception):
    """Base of every error crmsync raises on purpose."""


class ConfigError(CrmsyncError):
    pass


class SettingsError(ConfigError):
    """The user's sync settings cannot be used (the user's to fix, in the settings);
    any other ``ConfigError`` is the deployment's (its administrator's to fix)."""


class NoTag(SettingsError):
    """Contacts sync without a private tag chosen: nothing to sync yet."""


class StoreError(CrmsyncError):
    pass


class BadStoreRequest(StoreError):
    """The store refused a request as malformed (an id, a document over its size, a
    query, a batch over its limit): a fault of the caller, which no wait cures."""


class AlreadyExists(StoreError):
    def __init__(self, collection: str, doc_id: str):
        super().__init__(f"{collection}/{doc_id} already exists")
        self.collection = collection
        self.doc_id = doc_id


class TransactionConflict(StoreError):
    pass


class MalformedDocument(CrmsyncError):
    """A stored document that does not validate. Names the document and the field."""

    def __init__(self, collection: str, doc_id: str, field: str, problem: str):
        super().__init__(f"{collection}/{doc_id}: field '{field}': {problem}")
        self.collection = collection
        self.doc_id = doc_id
        self.field = field
        self.problem = problem


class UnknownUser(CrmsyncError):
    def __init__(self, user_id: str):
        super().__init__(f"unknown user '{user_id}' (no users/{user_id} document)")
        self.user_id = user_id


class NotConnected(CrmsyncError):
    pass


class ReauthRequired(NotConnected):
    """The connection is marked ``reauth_required``: Google refused its token before."""


class TokenUnreadable(ReauthRequired):
    """The stored refresh token cannot be decrypted (the token key changed, or its data
    key is gone): the user's connection must be made again."""


class DelegationSuspended(ReauthRequired):
    """A connection the administrator made (domain-wide delegation) is marked
    ``reauth_required``: Google refused the delegation before; only the administrator
    can restore it."""


class ConnectedByAdministrator(CrmsyncError):
    """The Google connection is the Workspace administrator's (domain-wide delegation):
    the user cannot disconnect it."""


class LeaseHeld(CrmsyncError):
    """Another run of the same user and section is under way: this one does nothing."""

    def __init__(self, state_id: str, holder: str, expires_at: str):
        super().__init__(f"{state_id} is being synced by run {holder} (lease until {expires_at})")
        self.state_id = state_id
        self.holder = holder
        self.expires_at = expires_at


class LeaseLost(LeaseHeld):
    """This run's lease lapsed and another run took the pair: this one stops where it is
    (what it changed stays changed; the other run carries on)."""


class SideEmpty(CrmsyncError):
    """One side lists none of the linked records: refuse rather than unlink them all."""

    def __init__(self, side: str, links: int, items: str = "contacts"):
        hint = (
            "if another Google account is connected, reconnect it from the settings page "
            "(a new account starts clean); if they were removed on purpose, run once "
            "with --force, which unlinks them all"
            if side == "Google"
            else "check the CRM data; if they were removed on purpose, run once with "
            "--force, which takes them all out of Google's group or calendar"
        )
        super().__init__(
            f"the {side} side no longer lists any of the {links} linked {items}; "
            f"refusing to unlink them all: {hint}"
        )
        self.side = side
        self.links = links
        self.items = items


class AccountChanged(CrmsyncError):
    """The connected Google account is not the one the sync state belongs to."""

    def __init__(self, old: str, new: str):
        super().__init__(
            f"the connected Google account changed from {old} to {new}; a sync (not a "
            "dry run) starts clean on the new account, keeping every CRM record as it is"
        )
        self.old = old
        self.new = new


class UndoRefused(CrmsyncError):
    """A run that cannot be taken back; the message says why."""


class GoogleError(CrmsyncError):
    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class AuthRevoked(GoogleError):
    pass


class DelegationRevoked(AuthRevoked):
    """The JWT-bearer grant for a user of a delegated domain was refused: the Workspace
    administrator revoked crmsync's domain-wide delegation, or took scopes from it."""


class QuotaExceeded(GoogleError):
    pass


class Unavailable(GoogleError):
    pass


class SyncTokenExpired(GoogleError):
    pass


class EtagMismatch(GoogleError):
    pass


class NotFound(GoogleError):
    pass
