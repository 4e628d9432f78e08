"""E-mail against a real SMTP server (aiosmtpd) in the test: `remote-monitor share`, STARTTLS with login,
SSL, sendmail, and a refusing server whose message is retried until it is delivered."""

from __future__ import annotations

import logging
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from remote_monitor.cli import main
from remote_monitor.report.verdict import pmt_verdict
from remote_monitor.service import mailer
from remote_monitor.service.notify import Notifier
from remote_monitor.stand.config import Config, MailSettings, NotifySettings
from remote_monitor.stand.layout import SCAN_POINTS

from .report_fixtures import SCAN_ID, SERIAL
from .share_helpers import (
    Inbox,
    free_port,
    self_signed_cert,
    server_tls,
    smtp_server,
    stored_scan_with_report,
    wait_until,
)


def _config_file(tmp_path: Path, mail: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f"[mail]\n{mail}\n[publish]\nbase_url = \"https://www.example.org/~pmt/\"\n")
    return path


def _text_and_html(msg) -> tuple[str, str]:
    return (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content())


def test_share_sends_the_report_with_a_summary_to_the_recipients(tmp_path: Path) -> None:
    out = tmp_path / "out"
    scan, points = stored_scan_with_report(out, Config())
    inbox = Inbox()
    with smtp_server(inbox) as server:
        config = _config_file(tmp_path, f'host = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
                                        'sender = "pmt-monitor@example.org"')
        code = main(["share", SERIAL, "--to", "alice@example.org", "bob@example.net", "--out", str(out),
                     "--config", str(config)])
    assert code == 0
    assert len(inbox.messages) == 1
    recipients, msg = inbox.messages[0]
    assert sorted(recipients) == ["alice@example.org", "bob@example.net"]
    assert msg["From"] == "pmt-monitor@example.org"

    # the attachment is the report page, byte for byte
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == [f"{SERIAL}_{SCAN_ID}.html"]
    assert attachments[0].get_content_type() == "text/html"
    assert attachments[0].get_payload(decode=True) == (out / "reports" / f"{SERIAL}_{SCAN_ID}.html").read_bytes()
    assert attachments[0].get_content_charset() == "utf-8"

    # the summary, checked against the fixture's own numbers
    verdict = pmt_verdict(scan, points)
    assert verdict.verdict in msg["Subject"] and SERIAL in msg["Subject"]
    text, html = _text_and_html(msg)
    gains = [p["fit"]["gain"] for n, p in points.items() if n in SCAN_POINTS and p["status"] in ("healthy", "poor")]
    scan_points = [n for n in points if n in SCAN_POINTS]
    for body in (text, html):
        assert verdict.verdict.upper() in body
        assert f"{sum(gains) / len(gains) / 1e7:.4f}e7" in body
        assert f"{len(scan_points)} of {len(SCAN_POINTS)} scan points" in body
        assert f"{scan['hv_fit']['hv_at_target']:.1f}" in body
        for name, p in points.items():
            if p["status"] in ("poor", "error"):
                assert f"{name}: {p['status']}: {p['reason']}" in body
        for reason in verdict.reasons:
            assert reason in body
    assert f"https://www.example.org/~pmt/{SERIAL}.html" in text


def test_starttls_with_login_trusts_only_the_configured_certificate(tmp_path: Path, caplog) -> None:
    out = tmp_path / "out"
    stored_scan_with_report(out, Config())
    cert, key = self_signed_cert(tmp_path)
    password = "s3cret-pa55word"
    password_file = tmp_path / "smtp.password"
    password_file.write_text(password + "\n")
    password_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    inbox = Inbox()
    caplog.set_level(logging.DEBUG)
    with smtp_server(inbox, tls=server_tls(cert, key), logins={"pmt": password}) as server:
        settings = MailSettings(host="127.0.0.1", port=server.port, security="starttls", user="pmt",
                                password_file=str(password_file), cafile=str(cert), timeout_seconds=10)
        cfg = replace(Config(), mail=settings)
        msg = mailer.share_message(mailer.ResultsStore(out), cfg, SERIAL, SCAN_ID, ["carol@example.org"])
        mailer.send_message(settings, msg)
        assert len(inbox.messages) == 1 and inbox.messages[0][0] == ["carol@example.org"]

        # without the certificate the client refuses the server; a wrong password is refused by the server
        with pytest.raises(mailer.MailError, match="CERTIFICATE_VERIFY_FAILED"):
            mailer.send_message(replace(settings, cafile=""), msg)
        password_file.write_text("wrong\n")
        with pytest.raises(mailer.MailError, match="535"):
            mailer.send_message(settings, msg)
        # the server requires STARTTLS: plain SMTP gets nowhere
        with pytest.raises(mailer.MailError, match="STARTTLS"):
            mailer.send_message(replace(settings, security="none", user=""), msg)
    assert len(inbox.messages) == 1
    assert password not in caplog.text


def test_ssl_and_sendmail_paths(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    inbox = Inbox()
    from aiosmtpd.controller import Controller

    from .share_helpers import free_port

    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ssl_context=server_tls(cert, key))
    controller.start()
    try:
        settings = MailSettings(host="127.0.0.1", port=controller.port, security="ssl", cafile=str(cert))
        mailer.send_message(settings, mailer.build_message(settings, ["d@example.org"], "over SSL", "hello"))
    finally:
        controller.stop()
    assert inbox.messages[0][1]["Subject"] == "over SSL"

    # a sendmail stand-in that stores what it is given (the real one is not installed here)
    spool = tmp_path / "spool.eml"
    fake = tmp_path / "sendmail"
    fake.write_text(f"#!/bin/sh\n[ \"$1 $2\" = \"-t -oi\" ] || exit 64\ncat > {spool}\n")
    fake.chmod(0o755)
    settings = MailSettings(host="", sendmail=str(fake))
    mailer.send_message(settings, mailer.build_message(settings, ["e@example.org"], "via sendmail", "hi"))
    assert "To: e@example.org" in spool.read_text() and "via sendmail" in spool.read_text()
    bad = tmp_path / "bad-sendmail"
    bad.write_text("#!/bin/sh\necho 'no route' >&2\nexit 64\n")
    bad.chmod(0o755)
    msg = mailer.build_message(settings, ["e@x.org"], "s", "t")
    with pytest.raises(mailer.MailError, match="exited 64: no route"):
        mailer.send_message(replace(settings, sendmail=str(bad)), msg)


def test_a_refusing_server_gets_the_message_retried_until_it_is_delivered(tmp_path: Path) -> None:
    inbox = Inbox(refuse="550 mailbox unavailable")
    with smtp_server(inbox) as server:
        cfg = replace(
            Config(),
            mail=MailSettings(host="127.0.0.1", port=server.port, security="none", timeout_seconds=5),
            notify=NotifySettings(mail_to=("shift@example.org",), gather_seconds=0.1, min_interval_seconds=0,
                                  retry_seconds=0.2, retry_max_seconds=0.5),
        )
        notifier = Notifier(cfg, tmp_path / "out")
        notifier.start()
        try:
            notifier.event("point_error", "EA0042/261125_101500/theta20_phi90", "theta20_phi90: error: no signal")
            wait_until(lambda: inbox.refused >= 3, 30, "three refused deliveries")
            outbox = list((tmp_path / "out" / "state" / "outbox").glob("*.json"))
            assert len(outbox) == 1 and '"attempts": ' in outbox[0].read_text()
            inbox.refuse = None
            wait_until(lambda: inbox.messages, 30, "the retried message")
        finally:
            notifier.stop()
    assert len(inbox.messages) == 1
    recipients, msg = inbox.messages[0]
    assert recipients == ["shift@example.org"] and "no signal" in msg.get_content()
    assert not list((tmp_path / "out" / "state" / "outbox").glob("*.json"))


def test_connection_refused_then_the_server_starts(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet
    cfg = replace(
        Config(),
        mail=MailSettings(host="127.0.0.1", port=port, security="none", timeout_seconds=5),
        notify=NotifySettings(mail_to=("shift@example.org",), gather_seconds=0.1, retry_seconds=0.2,
                              retry_max_seconds=0.4),
    )
    notifier = Notifier(cfg, tmp_path / "out")
    notifier.start()
    outbox = tmp_path / "out" / "state" / "outbox"
    try:
        notifier.event("scan_complete", "EA0042/261125_101500", "PMT EA0042 scan 261125_101500 complete: PASS")
        wait_until(lambda: "ConnectionRefusedError" in "".join(p.read_text() for p in outbox.glob("*.json")),
                   20, "a refused attempt recorded in the outbox")
        inbox = Inbox()
        with smtp_server(inbox, port=port):
            wait_until(lambda: inbox.messages, 20, "the message once the server listens")
    finally:
        notifier.stop()
    assert "complete: PASS" in inbox.messages[0][1].get_content()
    assert not list(outbox.glob("*.json"))
