"""Key files and HMAC signatures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remote_monitor.service.command_signing import (
    KeyFileError,
    build_command,
    canonical_bytes,
    generate_key_file,
    load_key,
    sign,
    verify_signature,
)


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "k" / "monitor.key")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert len(load_key(path)) == 32
    with pytest.raises(KeyFileError, match="exists already"):
        generate_key_file(path)


@pytest.mark.parametrize(("content", "mode", "message"), [
    (None, 0o600, "cannot read"), ("", 0o600, "not a key file"), ("zz" * 32, 0o600, "not a key file"),
    ("ab" * 32, 0o644, "group/others"),
])
def test_key_file_errors(tmp_path: Path, content: str | None, mode: int, message: str) -> None:
    path = tmp_path / "monitor.key"
    if content is not None:
        path.write_text(content)
        os.chmod(path, mode)
    with pytest.raises(KeyFileError, match=message):
        load_key(path)


def test_signature_covers_every_field() -> None:
    key = b"k" * 32
    cmd = sign(build_command("flag", "EA0001", "261125_101500", reason="no SPE peak", issuer="alice",
                             points=["theta10_phi90"]), key)
    assert verify_signature(cmd, key)
    assert not verify_signature(cmd, b"x" * 32)
    for field, value in [("reason", "other"), ("points", None), ("expires_at", "2099-01-01T00:00:00+00:00")]:
        assert not verify_signature({**cmd, field: value}, key)
    assert b'"signature"' not in canonical_bytes(cmd)
    assert len(cmd["nonce"]) == 32 and cmd["nonce"] != build_command("flag", "a", "b", reason="", issuer="")["nonce"]
