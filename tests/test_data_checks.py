"""--data/--out checks: a missing data directory is a one-line error and is never created; an empty one
logs the layout the monitor expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from remote_monitor.cli import main


def test_missing_data_directory_is_an_error_and_not_created(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    typo = tmp_path / "stand" / "dta"
    assert main(["run", "--data", str(typo), "--out", str(tmp_path / "out"), "--once"]) == 2
    err = capsys.readouterr().err
    assert f"--data {typo}: no such directory" in err and "Traceback" not in err
    assert not typo.exists() and not typo.parent.exists()
    assert not (tmp_path / "out" / "monitor.key").exists()  # nothing set up for a monitor that cannot run


def test_empty_data_directory_logs_the_expected_layout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "wavedump_out_261129_100000").mkdir()  # a near miss of the layout
    assert main(["run", "--data", str(data), "--out", str(tmp_path / "out"), "--once"]) == 0
    log = (tmp_path / "out" / "monitor.log").read_text()
    assert f"no scans in {data} yet; expecting wavedump_output_<YYMMDD_HHMMSS>/<SN>/wavesave_theta<T>_phi<P>/" \
           "wave<CH>save_theta<T>_phi<P>.txt" in log
    assert sorted(p.name for p in data.iterdir()) == ["wavedump_out_261129_100000"]
