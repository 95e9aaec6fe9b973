"""Envelope encryption of refresh tokens (adapters.tokens.EnvelopeCipher) on a real
SQLite store. Cloud KMS has no local emulator, so the data key is wrapped here by a
Fernet cipher standing in for the KMS key; what is checked is how often the wrapper is
called: once per data key per instance, never per token."""

from __future__ import annotations

import threading

import pytest
from cryptography.fernet import Fernet

from adapters.stores import open_store
from adapters.tokens import TOKEN_KEYS, EnvelopeCipher, FernetCipher
from core.errors import TokenUnreadable


class CountedKey(FernetCipher):
    def __init__(self) -> None:
        super().__init__(Fernet.generate_key())
        self.calls: list[str] = []

    def encrypt(self, plaintext: str) -> str:
        self.calls.append("encrypt")
        return super().encrypt(plaintext)

    def decrypt(self, ciphertext: str) -> str:
        self.calls.append("decrypt")
        return super().decrypt(ciphertext)


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path / 'keys.db'}")
    yield opened
    opened.close()


def test_tokens_round_trip_and_the_key_is_unwrapped_once_per_instance(store):
    kms = CountedKey()
    writer = EnvelopeCipher(kms, store)
    texts = [writer.encrypt(f"1//token-{i}") for i in range(20)]
    assert kms.calls == ["encrypt"]  # one data key made, none per token
    assert all(t.startswith("env1:") and "1//token" not in t for t in texts)
    reader = EnvelopeCipher(kms, store)  # another instance: one unwrap for all tokens
    assert [reader.decrypt(t) for t in texts * 3] == [f"1//token-{i}" for i in range(20)] * 3
    assert kms.calls == ["encrypt", "decrypt"]
    (wrapped,) = [d for d in store.query(TOKEN_KEYS) if d.id != "current"]
    assert kms.decrypt(wrapped.data["wrapped"])  # the stored data key is wrapped, not plain


def test_older_kms_ciphertexts_still_decrypt_through_the_key(store):
    kms = CountedKey()
    legacy = kms.encrypt("1//legacy")
    assert EnvelopeCipher(kms, store).decrypt(legacy) == "1//legacy"


def test_first_connections_at_once_agree_on_one_data_key(store):
    kms = CountedKey()
    ciphers = [EnvelopeCipher(kms, store) for _ in range(6)]
    barrier = threading.Barrier(len(ciphers))
    out: list[str] = []

    def connect(cipher):
        barrier.wait()
        out.append(cipher.encrypt("1//same"))

    threads = [threading.Thread(target=connect, args=(c,)) for c in ciphers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({text.split(":")[1] for text in out}) == 1
    assert all(EnvelopeCipher(kms, store).decrypt(t) == "1//same" for t in out)


def test_a_missing_or_wrong_data_key_is_a_clear_error(store):
    kms = CountedKey()
    text = EnvelopeCipher(kms, store).encrypt("1//x")
    key_id = text.split(":")[1]
    # the user's connection to make again (409 "reconnect"), not the deployment's
    with pytest.raises(TokenUnreadable, match="reconnect"):
        EnvelopeCipher(kms, store).decrypt(text.replace(key_id, "nope"))
    with pytest.raises(TokenUnreadable, match="reconnect"):
        EnvelopeCipher(kms, store).decrypt(text[:-4] + "AAAA")
