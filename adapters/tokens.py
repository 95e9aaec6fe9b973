"""Encryption of stored Google refresh tokens.

Locally the key is a Fernet key from ``CRMSYNC_TOKEN_KEY``, or one generated once into
``.crmsync/token.key`` with mode 0600. In production ``CRMSYNC_TOKEN_KEY`` names a Cloud
KMS key, used for envelope encryption (``EnvelopeCipher``): each token is encrypted
locally with a Fernet data key, and only the data key goes through KMS, so a warm
instance makes one KMS call per data key, not one per run. Plaintext tokens and data
keys are held only in memory: never written to disk, never logged (``redact`` helps
keep them out of messages).
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken

from core.errors import ConfigError, TokenUnreadable

KEY_FILE = "token.key"


class FernetCipher:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                "CRMSYNC_TOKEN_KEY is not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenUnreadable(
                "a stored refresh token cannot be decrypted with the configured "
                "CRMSYNC_TOKEN_KEY (was the key changed?); reconnect the account"
            ) from None


class KmsCipher:
    """Refresh tokens encrypted by a Cloud KMS key (``projects/.../cryptoKeys/K``), through
    the KMS API with the function's own identity (Application Default Credentials)."""

    def __init__(self, key_name: str, service: object | None = None) -> None:
        self.key_name = key_name
        self._service = service

    def _keys(self):  # built lazily: nothing to reach until a token is stored or read
        if self._service is None:
            import google.auth
            from googleapiclient.discovery import build

            credentials, _ = google.auth.default()
            self._service = build(
                "cloudkms",
                "v1",
                credentials=credentials,
                static_discovery=True,
                cache_discovery=False,
            )
        return self._service.projects().locations().keyRings().cryptoKeys()

    def encrypt(self, plaintext: str) -> str:
        body = {"plaintext": base64.b64encode(plaintext.encode()).decode()}
        answer = self._keys().encrypt(name=self.key_name, body=body).execute()
        return "kms:" + answer["ciphertext"]

    def decrypt(self, ciphertext: str) -> str:
        body = {"ciphertext": ciphertext.removeprefix("kms:")}
        answer = self._keys().decrypt(name=self.key_name, body=body).execute()
        return base64.b64decode(answer["plaintext"]).decode()


class Wrapper(Protocol):
    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, ciphertext: str) -> str: ...


TOKEN_KEYS = "tokenKeys"  # tokenKeys/{keyId}: {"wrapped"}; tokenKeys/current: {"keyId"}
ENVELOPE = "env1:"


class EnvelopeCipher:
    """Tokens as ``env1:{keyId}:{Fernet token}``. The Fernet data key of ``keyId`` is kept
    in ``tokenKeys/{keyId}``, encrypted by ``wrapper`` (Cloud KMS in production), and is
    unwrapped once per instance; the first ``encrypt`` of a deployment makes the key.
    Older ``kms:`` ciphertexts (one KMS call each) still decrypt through ``wrapper``."""

    def __init__(self, wrapper: Wrapper, store: Any) -> None:
        self.wrapper, self.store = wrapper, store
        self._keys: dict[str, Fernet] = {}
        self._lock = threading.Lock()

    def encrypt(self, plaintext: str) -> str:
        key_id = self._current()
        return f"{ENVELOPE}{key_id}:{self._key(key_id).encrypt(plaintext.encode()).decode()}"

    def decrypt(self, ciphertext: str) -> str:
        if not ciphertext.startswith(ENVELOPE):
            return self.wrapper.decrypt(ciphertext)
        key_id, _, token = ciphertext.removeprefix(ENVELOPE).partition(":")
        try:
            return self._key(key_id).decrypt(token.encode()).decode()
        except InvalidToken:
            raise TokenUnreadable(
                f"a stored refresh token does not decrypt with its data key {key_id}; "
                "reconnect the account"
            ) from None

    def _key(self, key_id: str) -> Fernet:
        with self._lock:
            if key_id in self._keys:
                return self._keys[key_id]
            doc = self.store.get(TOKEN_KEYS, key_id) if key_id else None
            if not doc or not doc.get("wrapped"):
                raise TokenUnreadable(
                    f"the data key {key_id or '(none)'} of a stored refresh token is missing "
                    f"from {TOKEN_KEYS}; reconnect the account"
                )
            self._keys[key_id] = Fernet(self.wrapper.decrypt(doc["wrapped"]).encode())
            return self._keys[key_id]

    def _current(self) -> str:
        found = (self.store.get(TOKEN_KEYS, "current") or {}).get("keyId")
        if found:
            return found
        key_id, key = uuid.uuid4().hex, Fernet.generate_key()
        wrapped = self.wrapper.encrypt(key.decode())

        def make(tx: Any) -> str:  # two first connections at once agree on one key
            current = (tx.get(TOKEN_KEYS, "current") or {}).get("keyId")
            if current:
                return current
            tx.put(TOKEN_KEYS, key_id, {"wrapped": wrapped})
            tx.put(TOKEN_KEYS, "current", {"keyId": key_id})
            return key_id

        chosen = self.store.transaction(make)
        if chosen == key_id:
            with self._lock:
                self._keys[key_id] = Fernet(key)
        return chosen


KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")


def cipher_for(configured: str | None, state_dir: Path) -> FernetCipher | KmsCipher:
    """KMS when ``CRMSYNC_TOKEN_KEY`` names a Cloud KMS key, Fernet otherwise (the
    composition root wraps a KMS key in an ``EnvelopeCipher``)."""
    if configured and KMS_KEY.match(configured):
        return KmsCipher(configured)
    return FernetCipher(local_key(configured, state_dir))


def local_key(configured: str | None, state_dir: Path, name: str = KEY_FILE) -> bytes:
    """The configured key, or the one in ``state_dir/name`` (created 0600 if absent)."""
    if configured:
        return configured.encode()
    path = state_dir / name
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
        return path.read_bytes().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # written whole under a private name, then linked into place: a process or thread
    # that loses the race reads the winner's complete key, never a half-written file
    fd, temp = tempfile.mkstemp(dir=state_dir, prefix=f".{name}.")  # 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        try:
            os.link(temp, path)
        except FileExistsError:  # another made it first
            return path.read_bytes().strip()
    finally:
        os.unlink(temp)
    return key


def redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
