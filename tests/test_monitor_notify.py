"""The real monitor (a subprocess) with notifications and a publish folder: a hung mail server does not stop
processing, the chat hook hears of the error point and the finished scan with stable URLs, and the mail is
delivered once a working server answers on the same port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remote_monitor.report.verdict import pmt_verdict
from remote_monitor.service import command_signing
from remote_monitor.service.store import atomic_write_json
from remote_monitor.simulation.stand import SimulationConfig, parse_fault, simulate_scan
from remote_monitor.stand.layout import SCAN_POINTS

from .monitor_helpers import FAST_CONFIG, point_results, start_monitor, stop, wait_for
from .share_helpers import Inbox, SilentServer, WebhookReceiver, free_port, smtp_server

SERIAL, SCAN = "NOTE01", "261126_080000"
BASE = "https://www.example.org/~pmt/"
pytestmark = pytest.mark.slow


def _config(tmp_path: Path, smtp_port: int, webhook: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(FAST_CONFIG.format(quiet=0.3, poll=0.0, workers=2) + f"""
[mail]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "monitor@example.org"
timeout_seconds = 1.5
[notify]
mail_to = ["shift@example.org"]
webhook_url = "{webhook}"
gather_seconds = 0.3
min_interval_seconds = 0.0
retry_seconds = 0.5
retry_max_seconds = 1.0
[publish]
base_url = "{BASE}"
""")
    return path


def _outbox(out: Path) -> list[dict]:
    """The queued notifications; one the monitor delivers (and removes) between the listing and its reading is
    no longer queued (a CI run read a listed mail file that had just been sent: FileNotFoundError)."""
    entries = []
    for path in sorted((out / "state" / "outbox").glob("*.json")):
        try:
            entries.append(json.loads(path.read_text()))
        except FileNotFoundError:
            continue
    return entries


def test_hung_mail_server_does_not_stop_processing_and_mail_arrives_later(tmp_path: Path) -> None:
    data, out, public = tmp_path / "data", tmp_path / "out", tmp_path / "public_html"
    data.mkdir()  # the monitor never creates --data
    silent = SilentServer()
    hook = WebhookReceiver()
    proc = start_monitor(data, out, _config(tmp_path, silent.port, hook.url), "--publish", str(public))
    try:
        wait_for((out / "reports" / "index.html").exists, 120, "the monitor to start", proc)
        sim = SimulationConfig(n_events=1500, record_length=400, seed=5,
                               faults=[parse_fault("garbage:theta0_phi0")])
        simulate_scan(data, SERIAL, scan_id=SCAN, cfg=sim)

        # the error point reaches the chat hook with its stable URL; the mail server hangs
        first = wait_for(lambda: hook.posts, 180, "the error message on the webhook", proc)
        assert "theta0_phi0: error" in first[0]["text"] and f"{BASE}{SERIAL}_{SCAN}.html" in first[0]["text"]
        wait_for(lambda: silent.accepted, 30, "a connection to the hung mail server", proc)
        done_when_hung = len(point_results(out, SERIAL, SCAN))
        # processing goes on while every delivery attempt times out
        wait_for(lambda: len(point_results(out, SERIAL, SCAN)) > done_when_hung, 180,
                 "a point processed while the mail server hangs", proc)
        wait_for(lambda: any(e["channel"] == "mail" and e["attempts"] >= 2 for e in _outbox(out)), 60,
                 "a retried mail in the outbox", proc)
        assert len(silent.accepted) >= 2

        # the whole scan is processed; the hook hears the verdict with the PMT's stable URL
        complete = wait_for(lambda: [p for p in hook.posts if "complete" in p["text"]], 600,
                            "the scan-complete message", proc)
        results = point_results(out, SERIAL, SCAN)
        assert len(results) == len(SCAN_POINTS) + 5
        verdict = pmt_verdict(json.loads((out / "results" / SERIAL / SCAN / "scan.json").read_text()), results)
        assert verdict.verdict != "pass"  # theta0_phi0 is an error
        said = f"PMT {SERIAL} scan {SCAN} complete: {verdict.verdict.upper()}"
        assert said in complete[0]["text"] and all(r in complete[0]["text"] for r in verdict.reasons)
        assert f"{BASE}{SERIAL}.html" in complete[0]["text"]
        poor = sorted(p for p, r in results.items() if r["status"] == "poor")
        assert all(any(f"{p}: poor" in post["text"] for post in hook.posts) for p in poor), (poor, hook.posts)
        assert len([p for p in hook.posts if "theta0_phi0: error" in p["text"]]) == 1  # told once
        for name in (f"{SERIAL}.html", f"{SERIAL}_{SCAN}.html", "index.html"):
            assert (public / name).read_bytes() == (out / "reports" / name).read_bytes()

        # the mail server comes back on the same port: the waiting messages are delivered
        assert any(e["channel"] == "mail" for e in _outbox(out))
        silent.close()
        inbox = Inbox()
        with smtp_server(inbox, port=silent.port):
            wait_for(lambda: not _outbox(out), 60, "the outbox to empty", proc)
        texts = "\n".join(msg.get_content() for _, msg in inbox.messages)
        assert "theta0_phi0: error" in texts and said in texts
        assert {r for rcpts, _ in inbox.messages for r in rcpts} == {"shift@example.org"}
    finally:
        code, output = stop(proc)
        silent.close()
        hook.close()
    assert code == 0, output
    assert "notification by mail failed" in output and "timed out" in output


def test_forged_commands_and_a_restart_loop_are_told_as_trouble(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()  # the monitor never creates --data
    hook = WebhookReceiver()
    config = _config(tmp_path, free_port(), hook.url)
    config.write_text(config.read_text().replace('mail_to = ["shift@example.org"]', "mail_to = []"))
    try:
        proc = start_monitor(data, out, config)
        wait_for((out / "reports" / "index.html").exists, 120, "the monitor to start", proc)
        for n in range(3):  # three commands signed with a wrong key
            forged = command_signing.sign(command_signing.build_command(
                "flag", SERIAL, SCAN, reason=f"attempt {n}", issuer="mallory"), b"\x00" * 32)
            atomic_write_json(out / "commands" / "inbox" / f"{forged['nonce']}.json", forged)
        wait_for(lambda: hook.posts, 60, "the trouble message", proc)
        code, output = stop(proc)
        assert code == 0, output
        assert len(hook.posts) == 1 and "3 rejected commands within an hour" in hook.posts[0]["text"]
        assert "signature" in hook.posts[0]["text"]

        # the monitor is started again and again (a crash loop under Slurm or systemd): said on the third start
        for _ in range(2):
            once = start_monitor(data, out, config, "--once")
            output = once.communicate(timeout=120)[0]
            assert once.returncode == 0, output
        assert len(hook.posts) == 2 and "started 3 times within an hour" in hook.posts[1]["text"]
    finally:
        hook.close()
