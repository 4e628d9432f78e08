"""Stable URLs: the publish folder mirrors the reports under stable names and never holds half a page."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from pathlib import Path

from remote_monitor.service.publish import Publisher
from remote_monitor.service.store import ResultsStore
from remote_monitor.stand.config import Config, PublishSettings
from remote_monitor.stand.layout import PointKey

from .report_fixtures import SCAN_ID, SERIAL
from .share_helpers import stored_scan_with_report

BASE = "https://www.example.org/~pmt/"


def test_stable_names_and_urls(tmp_path: Path) -> None:
    public = tmp_path / "public_html"
    cfg = replace(Config(), publish=PublishSettings(dir=str(public), base_url=BASE))
    stored_scan_with_report(tmp_path / "out", cfg)
    names = sorted(p.name for p in public.glob("*.html"))
    assert names == sorted([f"{SERIAL}.html", f"{SERIAL}_{SCAN_ID}.html", "index.html"])
    for name in names:
        assert (public / name).read_bytes() == (tmp_path / "out" / "reports" / name).read_bytes()
    assert (public / "version.json").exists()  # live reload works from the published copy too
    publisher = Publisher(ResultsStore(tmp_path / "out"), cfg)
    assert publisher.mirror is not None and publisher.mirror.url(f"{SERIAL}.html") == BASE + f"{SERIAL}.html"
    assert publisher.mirror.sync() == []  # nothing changed: nothing rewritten


def test_a_reader_polling_the_folder_never_sees_half_a_page(tmp_path: Path) -> None:
    public, out = tmp_path / "public_html", tmp_path / "out"
    cfg = replace(Config(), publish=PublishSettings(dir=str(public), base_url=BASE))
    _, points = stored_scan_with_report(out, cfg)
    store = ResultsStore(out)
    publisher = Publisher(store, cfg)
    stop = threading.Event()
    reads, bad, versions = [0], [], set()

    def reader() -> None:
        while not stop.is_set():
            for path in public.glob("*.html"):
                try:
                    data = path.read_bytes()
                except FileNotFoundError:  # cannot happen with rename-into-place; counted as a failure
                    bad.append((path.name, "missing"))
                    continue
                reads[0] += 1
                if not (data.startswith(b"<!DOCTYPE html>") and data.rstrip().endswith(b"</html>")):
                    bad.append((path.name, len(data)))
                if path.name == f"{SERIAL}.html":
                    versions.add(hashlib.sha256(data).hexdigest())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        point = "theta10_phi0"
        for n in range(30):  # each round changes a gain, so every page is rewritten
            result = points[point]
            result["fit"] = {**result["fit"], "gain": 1.0e7 + 1e4 * n}
            store.write_point(PointKey(SERIAL, SCAN_ID, point), result)
            publisher.publish(SERIAL)
    finally:
        stop.set()
        thread.join()
    assert not bad, bad[:5]
    assert len(versions) >= 10 and reads[0] >= 100, (len(versions), reads[0])
    assert not list(public.glob(".*.tmp"))
