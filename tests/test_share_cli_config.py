"""`remote-monitor share` errors and the [mail]/[notify]/[publish] configuration checks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from remote_monitor.cli import main
from remote_monitor.service import mailer
from remote_monitor.stand.config import ConfigError, MailSettings, load_config

from .report_fixtures import SERIAL
from .share_helpers import Inbox, free_port, smtp_server, stored_scan_with_report


@pytest.mark.parametrize(("text", "message"), [
    ("[mail]\nsecurity = 'tls'", r"\[mail\] security must be starttls, ssl or none"),
    ("[mail]\nport = 70000", r"\[mail\] port"),
    ("[mail]\nuser = 'pmt'", r"\[mail\] password_file is needed"),
    ("[mail]\npassword = 'x'", r"\[mail\]: unknown key\(s\) \['password'\]"),
    ("[notify]\nmail_to = 'shift@example.org'", r"\[notify\] mail_to: expected"),
    ("[notify]\nmail_to = ['shift']", r"\[notify\] mail_to: 'shift' is not an e-mail address"),
    ("[notify]\nwebhook_url = 'chat.example.org/hooks/x'", r"\[notify\] webhook_url must start with http"),
    ("[notify]\nretry_seconds = -1", r"\[notify\] retry_seconds must be >= 0"),
    ("[notify]\nscan_complete = 'yes'", r"\[notify\] scan_complete: expected"),
    ("[publish]\nbase_url = 'https://www.example.org/~pmt'", r"\[publish\] base_url must end with '/'"),
])
def test_bad_sharing_settings_name_file_section_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(err.value).startswith(str(path))


def test_good_sharing_settings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text("[notify]\nmail_to = ['a@example.org', 'b@example.org']\nmin_interval_seconds = 5\n"
                    "[mail]\nhost = 'smtp.example.org'\nuser = 'pmt'\npassword_file = '/etc/pmt/smtp'\n"
                    "[publish]\ndir = '/www/pmt'\nbase_url = 'https://www.example.org/pmt/'\n")
    cfg = load_config(path)
    assert cfg.notify.mail_to == ("a@example.org", "b@example.org") and cfg.notify.min_interval_seconds == 5.0
    assert cfg.mail.user == "pmt" and cfg.publish.dir == "/www/pmt"


def test_share_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["share", "NOPE01", "--to", "a@example.org", "--out", str(out)]) == 2
    assert "no results for PMT NOPE01" in capsys.readouterr().err
    stored_scan_with_report(out, load_config(None))
    assert main(["share", SERIAL, "--scan", "260101_000000", "--to", "a@example.org", "--out", str(out)]) == 2
    assert "has no scan 260101_000000" in capsys.readouterr().err
    assert main(["share", SERIAL, "--to", "not-an-address", "--out", str(out)]) == 2
    assert "not an e-mail address: not-an-address" in capsys.readouterr().err
    config = tmp_path / "monitor.toml"
    config.write_text(f"[mail]\nhost = '127.0.0.1'\nport = {free_port()}\nsecurity = 'none'\n")
    assert main(["share", SERIAL, "--to", "a@example.org", "--out", str(out), "--config", str(config)]) == 1
    assert "not sent" in capsys.readouterr().err  # connection refused: said, not a traceback


def test_a_password_file_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2-but-longer\n")
    secret.chmod(0o644)
    inbox = Inbox()
    with smtp_server(inbox) as server, caplog.at_level(logging.DEBUG):
        # a plain server offers no AUTH: the login fails, but only after the file was checked
        settings = MailSettings(host="127.0.0.1", port=server.port, security="none", user="pmt",
                                password_file=str(secret))
        with pytest.raises(mailer.MailError, match="AUTH"):
            mailer.send_message(settings, mailer.build_message(settings, ["a@example.org"], "s", "t"))
    assert "can be read by other users" in caplog.text and "hunter2" not in caplog.text
