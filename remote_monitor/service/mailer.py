"""Build and send e-mail: SMTP (STARTTLS, SSL or plain; login with a password read from a file) or the
local `sendmail`. The report summary (verdict, points, gain, HV) goes in the body; the page as attachment."""

from __future__ import annotations

import getpass
import html
import logging
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from remote_monitor.report.pages import summarize_scan
from remote_monitor.report.verdict import pmt_verdict
from remote_monitor.service.publish import page_name
from remote_monitor.service.store import ResultsStore
from remote_monitor.stand.config import Config, MailSettings

log = logging.getLogger("remote_monitor.mail")

DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


class MailError(RuntimeError):
    """The message could not be handed over (server refused, unreachable, timed out, no sendmail)."""


def sender_of(settings: MailSettings) -> str:
    return settings.sender or f"{settings.user or getpass.getuser()}@{socket.getfqdn()}"


def build_message(settings: MailSettings, to: list[str], subject: str, text: str, html_body: str | None = None,
                  attachments: Sequence[tuple[str, bytes, str]] = ()) -> EmailMessage:
    """A multipart message: plain text (+ HTML alternative) and (file name, bytes, mime type) attachments."""
    msg = EmailMessage()
    msg["From"] = sender_of(settings)
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=socket.getfqdn())
    msg.set_content(text)
    if html_body is not None:
        msg.add_alternative(html_body, subtype="html")
    for name, data, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        params = {"charset": "utf-8"} if maintype == "text" else {}  # byte for byte, base64
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name, params=params)
    return msg


def _password(settings: MailSettings) -> str:
    path = Path(settings.password_file)
    try:
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users: chmod 600 it", path)
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise MailError(f"[mail] password_file {path}: cannot read it ({exc.strerror})") from None


def _tls_context(settings: MailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.cafile:
        context.load_verify_locations(cafile=settings.cafile)
    return context


def send_message(settings: MailSettings, msg: EmailMessage) -> None:
    """Hand one message to the SMTP server (or sendmail); MailError with a readable reason if it fails."""
    if not settings.host:
        _sendmail(settings, msg)
        return
    port = settings.port or DEFAULT_PORTS[settings.security]
    where = f"{settings.host}:{port}"
    try:
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(settings.host, port, timeout=settings.timeout_seconds,
                                    context=_tls_context(settings))
        else:
            smtp = smtplib.SMTP(settings.host, port, timeout=settings.timeout_seconds)
        with smtp:
            if settings.security == "starttls":
                smtp.starttls(context=_tls_context(settings))
            if settings.user:
                smtp.login(settings.user, _password(settings))
            refused = smtp.send_message(msg)
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP {where}: {exc}") from None
    except (OSError, ssl.SSLError) as exc:  # refused, unreachable, timeout, certificate
        raise MailError(f"SMTP {where}: {type(exc).__name__}: {exc}") from None
    if refused:
        log.warning("SMTP %s refused some recipients: %s", where, sorted(refused))


def _sendmail(settings: MailSettings, msg: EmailMessage) -> None:
    try:
        done = subprocess.run([settings.sendmail, "-t", "-oi"], input=msg.as_bytes(), capture_output=True,
                              timeout=settings.timeout_seconds, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MailError(f"{settings.sendmail}: {exc}") from None
    if done.returncode != 0:
        raise MailError(f"{settings.sendmail} exited {done.returncode}: {done.stderr.decode(errors='replace')}")


# ---- the report summary -------------------------------------------------------------------------------
def _gain_text(gain: float | None) -> str:
    return "–" if gain is None else f"{gain / 1e7:.4f}e7"


def scan_summary(scan: dict[str, Any], points: dict[str, dict[str, Any]], cfg: Config) -> dict[str, Any]:
    """Verdict, counts, mean gain, HV at target and the poor/error points with their reasons."""
    summary = summarize_scan(scan, points, healthy_band=cfg.gain.healthy_band, target_gain=cfg.gain.target)
    verdict = pmt_verdict(scan, points)
    problems = [(name, str(p.get("status")), str(p.get("reason") or "")) for name, p in sorted(points.items())
                if p.get("status") in ("poor", "error")]
    return {**summary, "verdict": verdict.verdict, "reasons": verdict.reasons, "problems": problems}


def summary_lines(s: dict[str, Any]) -> list[str]:
    hv = "–" if s["hv_at_target"] is None else f"{s['hv_at_target']:.1f} V"
    if s["hv_at_target"] is not None and s.get("hv_at_target_err") is not None:
        hv = f"{s['hv_at_target']:.1f} ± {s['hv_at_target_err']:.1f} V"
    lines = [
        f"PMT {s['serial']}, scan {s['scan_id']} ({s['state']}): {s['verdict'].upper()}",
        *(f"  - {reason}" for reason in s["reasons"]),
        f"Points done: {s['points_done']} of {s['points_total']} scan points, {s['hv_done']} HV points",
        f"Healthy {s['n_healthy']}, poor {s['n_poor']}, error {s['n_error']}",
        f"Mean gain: {_gain_text(s['mean_gain'])}",
        f"HV at gain {s['target_gain']:.3g}: {hv}",
    ]
    if s["problems"]:
        lines.append("Poor and error points:")
        lines += [f"  {name}: {status}: {reason}" for name, status, reason in s["problems"]]
    return lines


def summary_html(lines: list[str], url: str | None) -> str:
    items = "".join(f"<li>{html.escape(line.strip())}</li>" if line.startswith("  ") else
                    f"<p>{html.escape(line)}</p>" for line in lines)
    link = f'<p><a href="{html.escape(url)}">{html.escape(url)}</a></p>' if url else ""
    return f"<html><body>{items}{link}</body></html>"


def share_message(store: ResultsStore, cfg: Config, serial: str, scan_id: str | None, to: list[str],
                  url: str | None = None) -> EmailMessage:
    """The message of `remote-monitor share`: one PMT scan's summary, its report page attached."""
    scan_ids = [s for sn, s in store.scans() if sn == serial]
    if not scan_ids:
        raise ValueError(f"no results for PMT {serial} in {store.results_dir}")
    scan_id = scan_id or scan_ids[0]
    if scan_id not in scan_ids:
        raise ValueError(f"PMT {serial} has no scan {scan_id}; scans: {', '.join(scan_ids)}")
    report = store.reports_dir / page_name(serial, scan_id)
    if not report.exists():
        raise ValueError(f"{report}: report page not written yet (run the monitor first)")
    scan = store.read_scan(serial, scan_id) or {"serial": serial, "scan_id": scan_id, "state": "live"}
    summary = scan_summary(scan, store.points(serial, scan_id), cfg)
    lines = summary_lines(summary)
    text = "\n".join([*lines, "", f"Report: {url}" if url else "The full report is attached (open it in a browser)."])
    subject = f"PMT {serial} scan {scan_id}: {summary['verdict']}"
    return build_message(cfg.mail, to, subject, text + "\n", summary_html(lines, url),
                         [(report.name, report.read_bytes(), "text/html")])
