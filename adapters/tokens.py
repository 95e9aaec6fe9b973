"""Encryption of stored Google refresh tokens.

Locally the key is a Fernet key from ``CRMSYNC_TOKEN_KEY``, or one generated once into
``.crmsync/token.key`` with mode 0600. Plaintext tokens are held only in memory:
never written to disk, never logged (``redact`` helps keep them out of messages).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.errors import ConfigError

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

    def decrypt_with_ttl(self, ciphertext: str, seconds: int) -> str:
        """Decrypt what was encrypted at most ``seconds`` ago (InvalidToken otherwise)."""
        return self._fernet.decrypt(ciphertext.encode(), ttl=seconds).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "a stored refresh token cannot be decrypted with the configured "
                "CRMSYNC_TOKEN_KEY (was the key changed?); reconnect the account"
            ) from None


def local_key(configured: str | None, state_dir: Path) -> bytes:
    """The configured key, or the one in ``state_dir/token.key`` (created 0600 if absent)."""
    if configured:
        return configured.encode()
    path = state_dir / KEY_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
        return path.read_bytes().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
