"""Stable URLs: keep a copy of the index and every report page in a web-served folder.

Names are stable (`index.html`, `<SN>.html` for a PMT's newest scan, `<SN>_<scan>.html` per scan), so one
bookmark per PMT stays valid; every copy is written atomically, so a web server never serves half a page.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from remote_monitor.service.store import atomic_write_bytes, remove_stale_temp_files
from remote_monitor.stand.config import Config

log = logging.getLogger("remote_monitor.publish")


class PublishMirror:
    """Copies changed pages of <out>/reports/ to the publish folder; knows their public URLs."""

    def __init__(self, reports_dir: Path, publish_dir: Path, base_url: str = "") -> None:
        self.reports_dir = Path(reports_dir)
        self.publish_dir = Path(publish_dir).absolute()
        self.base_url = base_url
        self._copied: dict[str, str] = {}
        self.publish_dir.mkdir(parents=True, exist_ok=True)
        for path in remove_stale_temp_files(self.publish_dir):
            log.info("removed %s, left by an interrupted write", path)

    @classmethod
    def from_config(cls, cfg: Config, reports_dir: Path) -> PublishMirror | None:
        return cls(reports_dir, Path(cfg.publish.dir), cfg.publish.base_url) if cfg.publish.dir else None

    def url(self, name: str) -> str:
        """The public address of a published page (a file: URL when no base_url is configured)."""
        return self.base_url + name if self.base_url else (self.publish_dir / name).as_uri()

    def sync(self) -> list[str]:
        """Copy every page (and version.json, for live reload) that differs from its published copy."""
        copied = []
        for source in sorted([*self.reports_dir.glob("*.html"), self.reports_dir / "version.json"]):
            try:
                data = source.read_bytes()
            except FileNotFoundError:
                continue
            digest = hashlib.sha256(data).hexdigest()
            target = self.publish_dir / source.name
            if source.name not in self._copied and target.exists():  # after a restart: what is there
                self._copied[source.name] = hashlib.sha256(target.read_bytes()).hexdigest()
            if self._copied.get(source.name) != digest or not target.exists():
                atomic_write_bytes(target, data)
                self._copied[source.name] = digest
                copied.append(source.name)
        return copied
