"""Notifications to a chat webhook receiver on loopback: one message per event, a digest under a burst,
de-duplication, rules, rate limit, trouble thresholds, and an outbox that survives a restart."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from remote_monitor.service.notify import Notifier
from remote_monitor.stand.config import Config, NotifySettings

from .share_helpers import WebhookReceiver, wait_until


def _notifier(out: Path, url: str, **settings: object) -> Notifier:
    values: dict[str, object] = {"webhook_url": url, "gather_seconds": 0.3, "min_interval_seconds": 0.0,
                                 "retry_seconds": 0.2, "retry_max_seconds": 0.5, **settings}
    notifier = Notifier(replace(Config(), notify=NotifySettings(**values)), out)  # type: ignore[arg-type]
    notifier.start()
    return notifier


def _settle(receiver: WebhookReceiver, seconds: float = 1.5) -> int:
    """Wait long enough for any further message to arrive; return how many there are."""
    time.sleep(seconds)
    return len(receiver.posts)


def test_one_message_per_event_and_one_digest_for_a_burst(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    notifier = _notifier(tmp_path, receiver.url)
    try:
        for n in range(3):
            notifier.event("point_error", f"EA0042/261125_101500/theta{10 * n}_phi0", f"point {n}: error: dead",
                           url=f"https://www.example.org/~pmt/EA0042_{n}.html")
            wait_until(lambda n=n: len(receiver.posts) == n + 1, 20, f"message {n + 1}")
        assert [f"point {n}: error" in post["text"] for n, post in enumerate(receiver.posts)] == [True] * 3
        assert all(f"EA0042_{n}.html" in post["text"] for n, post in enumerate(receiver.posts))

        # the same event again is not told twice
        notifier.event("point_error", "EA0042/261125_101500/theta0_phi0", "point 0: error: dead")
        assert _settle(receiver) == 3

        # a burst of 20 poor points: one digest naming all of them
        for n in range(20):
            notifier.event("point_poor", f"EA0043/261125_101500/p{n}", f"EA0043 p{n}: poor: gain low")
        wait_until(lambda: len(receiver.posts) == 4, 20, "the digest")
        assert _settle(receiver) == 4
        digest = receiver.posts[3]["text"]
        assert "20 events: 20 point poor" in digest
        assert all(f"EA0043 p{n}: poor" in digest for n in range(20))
    finally:
        notifier.stop()
        receiver.close()


def test_rules_and_trouble_thresholds(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    notifier = _notifier(tmp_path, receiver.url, point_poor=False, repeat_count=3)
    try:
        notifier.event("point_poor", "a", "switched off")
        for n in range(2):
            notifier.event("rejected", f"nonce{n}", f"command flag EA0042/x rejected: bad signature {n}")
        assert _settle(receiver) == 0  # a poor point is off; two rejected commands are not yet trouble
        notifier.event("rejected", "nonce2", "command flag EA0042/x rejected: bad signature 2")
        wait_until(lambda: receiver.posts, 20, "the trouble message")
        assert "3 rejected commands within an hour" in receiver.posts[0]["text"]
        assert "bad signature 2" in receiver.posts[0]["text"]
        notifier.event("rejected", "nonce3", "another one")  # the same trouble is told once
        notifier.event("disk", str(tmp_path), "only 0.1 GB free")
        wait_until(lambda: len(receiver.posts) == 2, 20, "the disk message")
        assert _settle(receiver) == 2 and "only 0.1 GB free" in receiver.posts[1]["text"]
    finally:
        notifier.stop()
        receiver.close()


def test_rate_limit_turns_what_comes_meanwhile_into_one_digest(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    notifier = _notifier(tmp_path, receiver.url, min_interval_seconds=3.0, gather_seconds=0.1)
    try:
        notifier.event("point_error", "first", "first: error")
        wait_until(lambda: receiver.posts, 20, "the first message")
        sent_at = time.monotonic()
        for n in range(3):
            notifier.event("point_error", f"later{n}", f"later{n}: error")
            time.sleep(0.3)
        wait_until(lambda: len(receiver.posts) == 2, 20, "the digest after the interval")
        assert time.monotonic() - sent_at >= 2.9
        assert all(f"later{n}: error" in receiver.posts[1]["text"] for n in range(3))
    finally:
        notifier.stop()
        receiver.close()


def test_undelivered_messages_survive_a_restart(tmp_path: Path) -> None:
    receiver = WebhookReceiver(fail_first=1000)  # the chat server answers 503 for now
    notifier = _notifier(tmp_path, receiver.url)
    notifier.event("scan_complete", "EA0042/261125_101500", "PMT EA0042 scan 261125_101500 complete: PASS")
    outbox = tmp_path / "state" / "outbox"
    wait_until(lambda: '"attempts": 2' in "".join(p.read_text() for p in outbox.glob("*.json")), 20,
               "two failed attempts recorded in the outbox")
    notifier.stop()
    assert len(list(outbox.glob("*.json"))) == 1 and not receiver.posts

    receiver.fail_first = 0  # the server is back; a new monitor process delivers what was left
    notifier = _notifier(tmp_path, receiver.url)
    try:
        wait_until(lambda: receiver.posts, 20, "the message from the outbox")
        assert "complete: PASS" in receiver.posts[0]["text"]
        wait_until(lambda: not list(outbox.glob("*.json")), 10, "the outbox to empty")
        assert _settle(receiver, 0.5) == 1
    finally:
        notifier.stop()
        receiver.close()


def test_stuck_reads_and_a_full_disk_are_trouble(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    notifier = _notifier(tmp_path, receiver.url, stuck_seconds=0.5, min_free_gb=1e9)  # no disk is that big
    try:
        notifier.watch(["EA0042/261125_101500/theta10_phi0", "EA0042/261125_101500/theta10_phi90"])
        time.sleep(0.7)
        notifier.watch(["EA0042/261125_101500/theta10_phi0"])  # the other one finished in time
        def told() -> str:
            return "\n".join(post["text"] for post in receiver.posts)

        wait_until(lambda: "has been processing for" in told(), 20, "the stuck-read message")
        assert "theta10_phi0 has been processing for" in told() and "theta10_phi90" not in told()
        assert "GB free on the disk of" in told()
    finally:
        notifier.stop()
        receiver.close()
