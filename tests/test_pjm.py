"""Fujitsu PJM (no PJM can be installed here): the generated scripts and command lines against the syntax of
the Fugaku user guide (Job Execution: pjsub options, bulk jobs, pjstat), with recording stand-ins for
pjsub/pjstat/pjdel; the bulk job script itself is run with bash as PJM would run sub job 1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from remote_monitor.service.batch.jobs import submit_monitor, submit_reprocess
from remote_monitor.service.batch.pjm import PJM, elapse
from remote_monitor.service.batch.scheduler import JobRequest
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan
from remote_monitor.stand.config import SchedulerSettings

from .test_slurm import _calls, _tool

PJSTAT = """JOB_ID  JOB_NAME     MD  ST   USER   START_DATE      ELAPSE_LIM  NODE_REQUIRE  VNODE  CORE  V_MEM
77      pmt-monitor  NM  {st}  user1  11/17 09:01:41  0024:00:00  1             -      -     -"""
DIRECTIVE = re.compile(r'#PJM (-L "(rscgrp|elapse|node)=[^"\s]+"|-g \S+|-o \S+|-j|--name \S+|-m [be,]+|'
                       r"--mail-list \S+)")


@pytest.fixture
def fake_pjm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    _tool(bin_dir, "pjsub", log, "[INFO] PJM 0000 pjsub Job 77 submitted.")
    _tool(bin_dir, "pjstat", log, PJSTAT.format(st="QUE"))
    _tool(bin_dir, "pjdel", log, "")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_monitor_job_directives_and_command(tmp_path: Path, fake_pjm: Path) -> None:
    (tmp_path / "data").mkdir()
    settings = SchedulerSettings(kind="pjm", partition="small", account="hk-group", time="1-00:00:00",
                                 mail_user="op@example.org", setup=". /opt/venv/bin/activate")
    result = submit_monitor(tmp_path / "data", tmp_path / "out", settings, wait=2)
    assert result.state == "pending" and "77" in result.message and "QUE" in result.message
    (argv,) = _calls(fake_pjm, "pjsub")
    assert argv == [str(tmp_path / "out" / "jobs" / "monitor_job.sh")]  # every option is a directive
    assert ["77"] in _calls(fake_pjm, "pjstat")
    text = Path(argv[0]).read_text()
    directives = [line for line in text.splitlines() if line.startswith("#PJM")]
    assert all(DIRECTIVE.fullmatch(d) for d in directives), directives
    for expected in ('#PJM -L "rscgrp=small"', '#PJM -L "elapse=24:00:00"', '#PJM -L "node=1"', "#PJM -g hk-group",
                     f"#PJM -o {tmp_path}/out/jobs/pmt-monitor.log", "#PJM -j", "#PJM -m e",
                     "#PJM --mail-list op@example.org"):
        assert expected in directives
    assert text.index("#PJM") < text.index(". /opt/venv/bin/activate") < text.index(f"{sys.executable} -m")


def test_values_that_would_break_a_directive_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot quote spaces"):
        PJM().directives(JobRequest(name="pmt", log=tmp_path / "my out" / "x.log"))
    with pytest.raises(ValueError, match="only letters"):
        PJM().directives(JobRequest(name='x"\n#PJM -L "node=1000', log=tmp_path / "x.log"))
    assert elapse("7-00:00:00") == "168:00:00" and elapse("90") == "01:30:00"


def test_running_and_ended_states(tmp_path: Path, fake_pjm: Path) -> None:
    pjm = PJM()
    _tool(fake_pjm.parent / "bin", "pjstat", fake_pjm, PJSTAT.format(st="RUN"))
    assert pjm.state("77").state == "running"
    _tool(fake_pjm.parent / "bin", "pjstat", fake_pjm, PJSTAT.format(st="EXT"))
    assert pjm.state("77").state == "ended"
    _tool(fake_pjm.parent / "bin", "pjstat", fake_pjm, PJSTAT.splitlines()[0])
    assert pjm.state("77").state == "ended"


@pytest.mark.slow
def test_bulk_job_script_runs_as_sub_job(tmp_path: Path, fake_pjm: Path) -> None:
    archive = tmp_path / "ARCHIVE"
    sim = SimulationConfig(n_events=600, record_length=300, seed=4)
    truths = [simulate_scan(archive, sn, scan_id="261120_100000", cfg=sim, points=["theta0_phi0"])
              for sn in ("PJ0001", "PJ0002")]
    job, tasks, script = submit_reprocess(archive, tmp_path / "out", SchedulerSettings(kind="pjm"))
    assert (job, tasks) == ("77", 2)
    (argv,) = _calls(fake_pjm, "pjsub")
    assert argv == ["--bulk", "--sparam", "0-1", str(script)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(["bash", str(script)], env={**env, "PJM_BULKNUM": "1"}, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    point = json.loads((tmp_path / "out" / "results" / "PJ0002" / "261120_100000" / "points" /
                        "theta0_phi0.json").read_text())
    assert point["status"] in ("healthy", "poor", "uncertain")
    assert not (tmp_path / "out" / "results" / "PJ0001").exists()
    true_gain = truths[1]["points"]["theta0_phi0"]["gain"]
    assert abs(point["fit"]["gain"] / true_gain - 1) < 5 * point["fit"]["gain_err"] / true_gain
