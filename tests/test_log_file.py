"""<out>/monitor.log on a full disk: said once on stderr, not a traceback per record; said again when it works."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import pytest

from remote_monitor.service.log_file import LogFile


def _record(n: int) -> logging.LogRecord:
    return logging.LogRecord("remote_monitor", logging.INFO, __file__, 1, "record %d", (n,), None)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (every write: ENOSPC)")
def test_a_full_disk_is_said_once_and_its_end_once(capsys: pytest.CaptureFixture[str]) -> None:
    handler = LogFile(Path("/dev/full"))
    try:
        for n in range(50):
            handler.emit(_record(n))
        err = capsys.readouterr().err
        assert err.count("cannot write") == 1 and "No space left on device" in err, err
        assert "Traceback" not in err, err
        full = handler.setStream(io.StringIO())  # space is back
        assert full is not None
        with contextlib.suppress(OSError):
            full.close()
        handler.emit(_record(50))
        handler.emit(_record(51))
        err = capsys.readouterr().err
        assert err.count("written again") == 1, err
        assert "record 51" in handler.stream.getvalue()
    finally:
        handler.close()


def test_a_log_file_that_works_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler = LogFile(tmp_path / "monitor.log")
    handler.setFormatter(logging.Formatter("%(message)s"))
    for n in range(3):
        handler.emit(_record(n))
    handler.close()
    assert (tmp_path / "monitor.log").read_text().splitlines() == ["record 0", "record 1", "record 2"]
    assert capsys.readouterr().err == ""
