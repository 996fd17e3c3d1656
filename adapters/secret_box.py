"""Secrets the log must keep but never show (webhook signing secrets): encrypted with the
secrets key (Fernet: AES-128-CBC with an HMAC-SHA256, from the `cryptography` package),
so the log, its exports and its backups hold only ciphertext."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken

from commands.ports import SecretUnreadable


@dataclass(frozen=True)
class SecretBox:
    key: bytes = field(repr=False)

    def seal(self, secret: str) -> str:
        return Fernet(self.key).encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return Fernet(self.key).decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a secret in the log cannot be read with this MODELLEDGER_SECRETS_KEY"
            ) from None
