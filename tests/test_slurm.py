"""Slurm submission runs sbatch with an argument list: user values arrive unaltered, never via a shell."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from remote_monitor.service.batch.slurm import SlurmUnavailableError, submit_monitor, submit_reprocess_array

FAKE_SBATCH = """#!/usr/bin/env python3
import json, sys
with open({log!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
print("4242;cluster")
"""


@pytest.fixture
def fake_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, log = tmp_path / "bin", tmp_path / "sbatch.log"
    bin_dir.mkdir()
    script = bin_dir / "sbatch"
    script.write_text(FAKE_SBATCH.format(log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_submit_monitor_passes_hostile_values_unaltered(tmp_path: Path, fake_sbatch: Path) -> None:
    data = tmp_path / "data; rm -rf ~ $(reboot) 'q\""
    job = submit_monitor(data, tmp_path / "out dir", config=tmp_path / "my monitor.toml", poll=5)
    assert job == "4242"
    argv = json.loads(fake_sbatch.read_text().splitlines()[-1])
    assert argv[0] == "--parsable" and "--time=7-00:00:00" in argv
    assert argv[argv.index("--data") + 1] == str(data.absolute())
    assert argv[argv.index("--out") + 1] == str((tmp_path / "out dir").absolute())
    assert argv[argv.index("--poll") + 1] == "5"
    script = Path(next(a for a in argv if a.endswith("monitor_job.sh")))
    text = script.read_text()
    assert 'exec remote-monitor run "$@"' in text and "--signal=B:TERM" in text


def test_reprocess_array_has_one_task_per_scan(tmp_path: Path, fake_sbatch: Path) -> None:
    archive = tmp_path / "ARCHIVE"
    for scan_id, serial in [("261120_100000", "EA0001"), ("261121_100000", "EA0001"), ("261121_100000", "EA0002")]:
        (archive / f"wavedump_output_{scan_id}" / serial / "wavesave_theta0_phi0").mkdir(parents=True)
    assert submit_reprocess_array(archive, tmp_path / "out") == "4242"
    argv = json.loads(fake_sbatch.read_text().splitlines()[-1])
    assert "--array=0-2" in argv
    tasks = (tmp_path / "out" / "slurm" / "reprocess_tasks.txt").read_text().splitlines()
    assert len(tasks) == 3 and tasks[0].endswith("wavedump_output_261120_100000/EA0001")
    with pytest.raises(ValueError, match="no PMT scans"):
        submit_reprocess_array(tmp_path / "empty", tmp_path / "out")


def test_without_sbatch_the_message_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SlurmUnavailableError, match="sbatch not found on PATH.*remote-monitor run"):
        submit_monitor(tmp_path, tmp_path)
