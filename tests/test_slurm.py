"""Slurm submission with recording stand-ins for sbatch/squeue/scancel: argument lists arrive unaltered (no
shell), the job script runs this Python by absolute path, hopeless pending reasons are reported and the job
cancelled. (The same against a real Slurm: tests/test_cluster_real.py.)"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from remote_monitor.cli import main
from remote_monitor.service.batch.jobs import submit_monitor, submit_reprocess
from remote_monitor.service.batch.scheduler import SchedulerError, time_seconds
from remote_monitor.stand.config import SchedulerSettings

RECORDER = """#!{python}
import json, sys
with open({log!r}, "a") as fh:
    fh.write(json.dumps([{name!r}, *sys.argv[1:]]) + "\\n")
print({reply!r})
"""


def _tool(bin_dir: Path, name: str, log: Path, reply: str) -> None:
    script = bin_dir / name
    script.write_text(RECORDER.format(python=sys.executable, log=str(log), name=name, reply=reply))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    _tool(bin_dir, "sbatch", log, "4242;cluster")
    _tool(bin_dir, "squeue", log, "PENDING|PartitionTimeLimit")
    _tool(bin_dir, "scancel", log, "")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir, log


def _calls(log: Path, tool: str) -> list[list[str]]:
    return [c[1:] for c in map(json.loads, log.read_text().splitlines()) if c[0] == tool]


def test_hostile_values_arrive_unaltered_and_the_script_runs_this_python(tmp_path: Path, fake_slurm: tuple) -> None:
    data = tmp_path / "data; rm -rf ~ $(reboot) 'q\""
    data.mkdir()
    settings = SchedulerSettings(partition="long", account="hk", cpus=3, memory="6G", time="2-00:00:00",
                                 mail_user="op@example.org", setup="module load python/3.11")
    result = submit_monitor(data, tmp_path / "out dir", settings, config=tmp_path / "my monitor.toml", poll=5,
                            wait=5)
    assert result.state == "failed" and "PartitionTimeLimit" in result.message and "cancelled" in result.message
    log = fake_slurm[1]
    (argv,) = _calls(log, "sbatch")
    assert argv[0] == "--parsable"
    for option in ("--partition=long", "--account=hk", "--cpus-per-task=3", "--mem=6G", "--time=2-00:00:00",
                   "--mail-user=op@example.org", "--mail-type=FAIL"):
        assert option in argv
    assert f"--output={(tmp_path / 'out dir').absolute()}/jobs/pmt-monitor-%j.log" in argv
    assert _calls(log, "scancel") == [["4242"]]  # a job that can never start is not left pending
    text = Path(argv[-1]).read_text()
    assert text.splitlines()[3] == "module load python/3.11"
    # the script runs the submitting interpreter by absolute path, with the hostile path quoted: let bash
    # parse the very line and print the words it would run
    run_line = next(line for line in text.splitlines() if "remote_monitor.cli run" in line).rstrip("&").strip()
    words = subprocess.run(["bash", "-c", f"printf '%s\\n' {run_line}"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert words[0] == sys.executable and words[words.index("--data") + 1] == str(data.absolute())
    assert words[words.index("--stop-after") + 1] == str(2 * 86400 - 300)  # stops 300 s before the limit


def test_reprocess_array_has_one_task_per_scan(tmp_path: Path, fake_slurm: tuple) -> None:
    archive = tmp_path / "ARCHIVE"
    for scan_id, serial in [("261120_100000", "EA0001"), ("261121_100000", "EA0001"), ("261121_100000", "EA0002")]:
        (archive / f"wavedump_output_{scan_id}" / serial / "wavesave_theta0_phi0").mkdir(parents=True)
    job, tasks, script = submit_reprocess(archive, tmp_path / "out", SchedulerSettings())
    assert (job, tasks) == ("4242", 3)
    (argv,) = _calls(fake_slurm[1], "sbatch")
    assert "--array=0-2" in argv and argv[-1] == str(script)
    assert "${SLURM_ARRAY_TASK_ID:?" in script.read_text()
    lines = (tmp_path / "out" / "jobs" / "reprocess_tasks.txt").read_text().splitlines()
    assert len(lines) == 3 and lines[0].endswith("wavedump_output_261120_100000/EA0001")
    with pytest.raises(ValueError, match="no PMT scans"):
        submit_reprocess(tmp_path / "empty", tmp_path / "out", SchedulerSettings())


def test_without_sbatch_the_message_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SchedulerError, match="sbatch not found on PATH.*remote-monitor run"):
        submit_monitor(tmp_path, tmp_path / "out", SchedulerSettings())


def test_submit_cli_checks_data_and_time(tmp_path: Path, fake_slurm: tuple, capsys: pytest.CaptureFixture) -> None:
    assert main(["submit", "--data", str(tmp_path / "typo"), "--out", str(tmp_path / "out")]) == 2
    assert "no such directory" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    assert main(["submit", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--time", "04:00"]) == 2
    assert "not longer than" in capsys.readouterr().err
    assert not fake_slurm[1].exists()  # neither call reached sbatch


@pytest.mark.parametrize(("text", "seconds"), [("7-00:00:00", 604800), ("02:00:00", 7200), ("90", 5400),
                                               ("10:30", 630), ("1-12", 129600)])
def test_time_limits(text: str, seconds: int) -> None:
    assert time_seconds(text) == seconds
