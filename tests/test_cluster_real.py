"""Against a real Slurm 22.05 and a real OpenSSH server (tests/cluster/setup-local-cluster.sh starts both on
this machine as root, without systemd): the monitor as a batch job survives scancel and its time limit, a
reprocessing job array matches the truth, and the viewer mirrors and flags through an ssh tunnel on port 2222.

Skipped (with the reason) where no cluster can be started; PMT_REQUIRE_CLUSTER=1 (CI) turns the skip into a
failure."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from remote_monitor.simulation.stand import SimulationConfig, simulate_scan

from .monitor_helpers import journal, point_results, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SETUP = REPO / "tests" / "cluster" / "setup-local-cluster.sh"
CLUSTER_DIR = Path(os.environ.get("LOCALCLUSTER_DIR", "/tmp/localcluster"))
SSH_PORT = int(os.environ.get("LOCALCLUSTER_SSH_PORT", "2222"))
GRACE = 20.0
REAL = {"healthy", "poor", "uncertain"}  # a real result with a gain (the realistic stand may be undecided)
CONFIG = """
[monitor]
quiet_seconds = 0.5
tick_seconds = 0.05
incomplete_seconds = 5.0
grace_seconds = {grace}
[fit]
min_events = 200
[areas]
key_file = "{key}"
"""
SIM = {"n_events": 3000, "record_length": 300, "mu": 1.0}  # enough photoelectrons for a decided fit
POINTS = ["theta0_phi0", "theta10_phi0", "theta10_phi90", "theta10_phi180", "theta10_phi270", "theta20_phi0",
          "theta20_phi90", "theta20_phi180"]


def _cluster_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    return "is UP" in ping.stdout and (CLUSTER_DIR / "ssh" / "known_hosts").is_file()


@pytest.fixture(scope="module")
def cluster() -> Path:
    """A running local Slurm + sshd; started with the project's script when running as root."""
    if not _cluster_up():
        reason = ""
        if os.geteuid() != 0:
            reason = "needs root to start a local Slurm and sshd (tests/cluster/setup-local-cluster.sh)"
        elif shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            reason = "no apt-get to install slurm-wlm and openssh-server (Debian/Ubuntu only)"
        if reason:
            if os.environ.get("PMT_REQUIRE_CLUSTER") == "1":
                pytest.fail(f"PMT_REQUIRE_CLUSTER=1 but {reason}")
            pytest.skip(reason)
        done = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0 or not _cluster_up():
            pytest.fail(f"setup-local-cluster.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return CLUSTER_DIR


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "remote_monitor.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def _config(tmp: Path) -> Path:
    key = tmp / "monitor.key"
    if not key.exists():
        assert _cli("keygen", "--key", str(key)).returncode == 0
    path = tmp / "monitor.toml"
    path.write_text(CONFIG.format(grace=GRACE, key=key))
    return path


def _submit(data: Path, out: Path, config: Path, *extra: str) -> str:
    done = _cli("submit", "--data", str(data), "--out", str(out), "--config", str(config), "--poll", "0.5",
                "--cpus", "1", "--mem", "2G", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is running" in done.stdout, done.stdout
    return re.search(r"monitor job (\d+)", done.stdout).group(1)  # type: ignore[union-attr]


def _queued(job: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


def _cancel_and_time(job: str, timeout: float = 90) -> float:
    started = time.monotonic()
    subprocess.run(["scancel", job], check=True)
    wait_for(lambda: not _queued(job), timeout, f"job {job} to end after scancel", interval=0.2)
    return time.monotonic() - started


def _assert_matches_truth(results: dict, truth: dict) -> None:
    for point, result in results.items():
        assert result["status"] in REAL, (point, result["status"], result.get("reason"))
        gain, err = result["fit"]["gain"], result["fit"]["gain_err"]
        true_gain = truth["points"][point]["gain"]
        assert abs(gain - true_gain) < 5 * err, (point, gain, err, true_gain)


def _in_flight(out: Path, serial: str, scan: str) -> bool:
    """A point is being processed now: its "processing" line is logged and it has no result yet."""
    log = out / "monitor.log"
    if not log.exists():
        return False
    started = re.findall(rf"processing {serial}/{scan}/(\S+)", log.read_text())
    return bool(started) and started[-1] not in point_results(out, serial, scan)


def test_scancel_mid_point_then_resubmit(cluster: Path, tmp_path: Path) -> None:
    data, out, serial, scan = tmp_path / "data", tmp_path / "out", "SLURM1", "261129_130000"
    data.mkdir()
    config = _config(tmp_path)
    truth: dict = {}
    writer = threading.Thread(target=lambda: truth.update(simulate_scan(
        data, serial, scan_id=scan, cfg=SimulationConfig(**SIM, seed=11, write_delay_s=1.0), points=POINTS)))
    writer.start()  # a live scan, written while the job watches
    job = _submit(data, out, config, "--time", "30:00")
    try:
        wait_for(lambda: point_results(out, serial, scan) and _in_flight(out, serial, scan), 600,
                 "a result, then a point in flight")
        took = _cancel_and_time(job)
    finally:
        _cancel_chain(out, job)
    print(f"scancel mid-point: job {job} ended {took:.1f} s later (grace {GRACE:g} s, Slurm KillWait 30 s)")
    assert took < GRACE + 8
    log = (out / "monitor.log").read_text()
    assert "stop requested" in log and "monitor stopped" in log and "crashed" not in log
    before = point_results(out, serial, scan)
    assert all(r["status"] in REAL for r in before.values())
    writer.join()

    job = _submit(data, out, config, "--time", "30:00")
    try:
        wait_for(lambda: len(point_results(out, serial, scan)) == len(POINTS), 900, "every point after resubmission")
    finally:
        _cancel_chain(out, job)
    results = point_results(out, serial, scan)
    _assert_matches_truth(results, truth)
    counts = Counter(e["point"] for e in journal(out))
    assert sorted(counts) == sorted(POINTS) and set(counts.values()) == {1}, counts  # none done twice


def _resubmitted(out: Path) -> list[str]:
    """Ids of the jobs the monitor jobs submitted near their time limit, from their logs."""
    text = "".join(p.read_text() for p in (out / "jobs").glob("pmt-monitor-*.log"))
    return re.findall(r"submitted the next monitor job (\d+)", text)


def _cancel_chain(out: Path, first: str) -> None:
    """Cancel a self-resubmitting monitor job and every successor it submitted, until none is left."""
    for _ in range(60):
        queued = [job for job in {first, *_resubmitted(out)} if _queued(job)]
        if not queued:
            return
        subprocess.run(["scancel", *queued], check=False)
        time.sleep(2)


def test_time_limit_then_the_next_job_continues(cluster: Path, tmp_path: Path) -> None:
    data, out, serial, scan = tmp_path / "data", tmp_path / "out", "SLURM2", "261129_140000"
    points = POINTS
    data.mkdir()
    truth: dict = {}
    writer = threading.Thread(target=lambda: truth.update(simulate_scan(
        data, serial, scan_id=scan, cfg=SimulationConfig(**SIM, seed=12, write_delay_s=8.0), points=points)))
    # 2 minutes of time limit, stopping 75 s before it: the first job runs 45 s, then submits the next one;
    # the live scan takes about 60 s, so its last points arrive for the next job
    first = _submit(data, out, _config(tmp_path), "--time", "2", "--resubmit-margin", "75")
    writer.start()
    try:
        next_job = wait_for(lambda: _resubmitted(out), 300, "the job to resubmit itself")
        done_by_first = len(point_results(out, serial, scan))
        wait_for(lambda: len(point_results(out, serial, scan)) == len(points), 900, "every point in the next job(s)")
    finally:
        _cancel_chain(out, first)
        writer.join()
    print(f"time limit: job {first} did {done_by_first} of {len(points)} points, then job(s) {next_job} the rest")
    assert done_by_first < len(points)
    assert "run time limit reached" in (out / "monitor.log").read_text()
    _assert_matches_truth(point_results(out, serial, scan), truth)
    counts = Counter(e["point"] for e in journal(out))
    assert sorted(counts) == sorted(points) and set(counts.values()) == {1}, counts


def test_reprocess_array_over_an_archive_of_two_scans(cluster: Path, tmp_path: Path) -> None:
    archive, out = tmp_path / "ARCHIVE", tmp_path / "out"
    truths = [simulate_scan(archive, sn, scan_id=scan, cfg=SimulationConfig(**SIM, seed=13), points=POINTS[:3])
              for sn, scan in (("ARCH01", "261120_100000"), ("ARCH02", "261121_100000"))]
    done = _cli("reprocess", "--batch", str(archive), "--out", str(out), "--config", str(_config(tmp_path)),
                "--time", "20:00", "--mem", "2G")
    assert done.returncode == 0, done.stdout + done.stderr
    job = re.search(r"job array (\d+) \(2 task", done.stdout).group(1)  # type: ignore[union-attr]
    wait_for(lambda: not _queued(job), 900, f"array job {job} to finish", interval=1.0)
    for truth in truths:
        results = point_results(out, truth["serial"], truth["scan_id"])
        assert sorted(results) == sorted(POINTS[:3]), (out / "jobs").iterdir()
        _assert_matches_truth(results, truth)
        assert (out / "reports" / f"{truth['serial']}.html").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _viewer(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "local_viewer.cli", *args], capture_output=True, text=True,
                          timeout=180, env=env, check=False)


def test_viewer_mirrors_and_flags_through_an_ssh_tunnel(cluster: Path, tmp_path: Path) -> None:
    data, out, serial, scan = tmp_path / "data", tmp_path / "out", "SSH001", "261129_150000"
    simulate_scan(data, serial, scan_id=scan, cfg=SimulationConfig(**SIM, seed=14), points=POINTS[:2])
    config = _config(tmp_path)
    job = _submit(data, out, config, "--time", "30:00")  # the monitor on a "compute node"
    port = _free_port()
    serve = subprocess.Popen([sys.executable, "-m", "remote_monitor.cli", "serve", "--out", str(out), "--port",
                              str(port)], env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # `serve` on the "login node", over the shared <out>
    try:
        wait_for(lambda: len(point_results(out, serial, scan)) == 2, 600, "both points")
        key = cluster / "ssh" / "id_ed25519"
        ssh = ["--ssh", "root@127.0.0.1", "--ssh-port", str(SSH_PORT), "--identity", str(key),
               "--remote-port", str(port)]
        (tmp_path / "empty_known_hosts").write_text("")
        unknown = _viewer("watch", "--once", "--no-browser", "--no-bell", "--out", str(tmp_path / "m0"), *ssh,
                          "--local-port", str(_free_port()), "--ssh-option",
                          f"UserKnownHostsFile={tmp_path / 'empty_known_hosts'}")
        assert unknown.returncode != 0
        assert "host key of root@127.0.0.1 is not known" in unknown.stderr, unknown.stderr
        assert "Are you sure" not in unknown.stdout + unknown.stderr  # BatchMode: never a prompt

        known = ["--ssh-option", f"UserKnownHostsFile={cluster / 'ssh' / 'known_hosts'}"]
        mirror = tmp_path / "mirror"
        watched = _viewer("watch", "--once", "--no-browser", "--no-bell", "--out", str(mirror), *ssh, *known,
                          "--local-port", str(_free_port()))
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert (mirror / "reports" / f"{serial}.html").is_file()
        assert json.loads((mirror / "results" / serial / scan / "points" / "theta0_phi0.json").read_text())

        point_dir = data / f"wavedump_output_{scan}" / serial / "wavesave_theta0_phi0"
        assert point_dir.is_dir()
        flagged = _viewer("flag", serial, "--scan", scan, "--points", "theta0_phi0", "--reason", "no SPE peak",
                          "--key", str(tmp_path / "monitor.key"), *ssh, *known, "--local-port", str(_free_port()),
                          "--wait", "90")
        assert flagged.returncode == 0 and "accepted" in flagged.stdout, flagged.stdout + flagged.stderr
        assert not point_dir.exists()  # the job's monitor moved the data
        assert list((tmp_path / "FLAG").rglob("wave2save_theta0_phi0.*"))
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        _cancel_chain(out, job)


def test_submit_reports_a_job_that_cannot_start_or_fails(cluster: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = _config(tmp_path)
    subprocess.run(["scontrol", "create", "PartitionName=pmtshort", "Nodes=localhost", "MaxTime=1", "State=UP"],
                   check=True)
    try:
        done = _cli("submit", "--data", str(data), "--out", str(tmp_path / "out"), "--config", str(config),
                    "--partition", "pmtshort", "--time", "10:00", "--resubmit-margin", "60", "--mem", "1G")
    finally:
        subprocess.run(["scontrol", "delete", "PartitionName=pmtshort"], check=False)
    assert done.returncode == 1 and "PartitionTimeLimit" in done.stderr and "cancelled" in done.stderr, done
    assert "is running" not in done.stdout

    broken = _cli("submit", "--data", str(data), "--out", str(tmp_path / "out2"), "--config", str(config),
                  "--time", "10:00", "--resubmit-margin", "60", "--mem", "1G", "--python", "/nonexistent/python3")
    assert broken.returncode == 1, broken
    assert "ended before the monitor was running" in broken.stderr and "/nonexistent/python3" in broken.stderr
