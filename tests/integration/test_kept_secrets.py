"""The secrets a process keeps beside its data (the session secret, the secrets key): a
setting gives them, else they are generated once, owner-only, and read again after."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from adapters.secret_box import SecretBox
from commands.ports import SecretUnreadable
from modelledger.kept_secrets import secrets_key, session_secret
from modelledger.settings import Settings


def settings_in(folder: Path, **given: Any) -> Settings:
    return Settings.model_validate({"data_dir": folder, **given})


@pytest.mark.parametrize(
    "kept, name", [(session_secret, "session.key"), (secrets_key, "secrets.key")]
)
def test_a_secret_is_made_once_owner_only_and_kept(
    kept: Callable[[Settings], bytes], name: str, tmp_path: Path
) -> None:
    settings = settings_in(tmp_path / "data")
    first = kept(settings)
    path = tmp_path / "data" / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert kept(settings) == first  # (read again, not made again)
    path.chmod(0o644)  # an earlier run's looser rights are tightened
    kept(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short\n")  # a truncated file is refused, not used
    with pytest.raises(ValueError, match="no usable secret"):
        kept(settings)


def test_the_settings_secrets_key_wins_and_must_be_a_fernet_key(tmp_path: Path) -> None:
    given = Fernet.generate_key().decode()
    assert secrets_key(settings_in(tmp_path, secrets_key=given)) == given.encode()
    assert not (tmp_path / "secrets.key").exists()
    with pytest.raises(ValueError):
        secrets_key(settings_in(tmp_path, secrets_key="not a fernet key at all, 32+ chars"))


def test_a_sealed_secret_holds_no_trace_of_it_and_opens_with_its_key_only(
    tmp_path: Path,
) -> None:
    box = SecretBox(secrets_key(settings_in(tmp_path)))
    sealed = box.seal("whsec_c2VjcmV0")
    assert "whsec" not in sealed and "c2VjcmV0" not in sealed
    assert box.open(sealed) == "whsec_c2VjcmV0"
    with pytest.raises(SecretUnreadable, match="MODELLEDGER_SECRETS_KEY"):
        SecretBox(Fernet.generate_key()).open(sealed)
