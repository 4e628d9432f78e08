from pathlib import Path

import pytest

from remote_monitor.stand.config import Config, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_stands_values():
    cfg = load_config(None)
    assert cfg.gain.healthy_band == (0.999e7, 1.049e7) and cfg.gain.target == 1e7
    assert cfg.monitor.quiet_seconds == 2.0
    assert cfg.analysis.time_window_ns == (321.0, 330.0)
    assert cfg.channels.pmt == 2 and cfg.channels.trigger == 0


def test_values_are_read_and_converted(tmp_path: Path):
    cfg = load_config(write(tmp_path, """
[channels]
pmt = 3
reference = 4
[gain]
healthy_band = [0.98e7, 1.05e7]
[monitor]
quiet_seconds = 1
poll_seconds = 5
[areas]
flag_dir = "/data/FLAG"
[analysis]
baseline_veto_mv = inf
"""))
    assert cfg.channels.pmt == 3 and cfg.channels.reference == 4
    assert cfg.gain.healthy_band == (0.98e7, 1.05e7)
    assert cfg.monitor.quiet_seconds == 1.0 and isinstance(cfg.monitor.quiet_seconds, float)
    assert cfg.flag_root(Path("/x/data")) == Path("/data/FLAG")
    assert cfg.analysis.baseline_veto_mv == float("inf")  # every event kept
    assert cfg.archive_root(Path("/x/data")) == Path("/x/ARCHIVE")


@pytest.mark.parametrize(("text", "message"), [
    ("[gain]\nhealthy_band = [1.05e7, 0.99e7]", "healthy_band"),
    ("[gain]\nhealthy_band = [1e7]", "healthy_band"),
    ("[channels]\npmt = 5", "pmt must be 2 or 3"),
    ("[channels]\npmt = 2\nreference = 2", "different"),
    ("[monitor]\nquiet_seconds = 'two'", "quiet_seconds"),
    ("[monitor]\nquiet_secs = 2", "unknown key"),
    ("[moniter]\nquiet_seconds = 2", "unknown section"),
    ("[analysis]\nmode = 'magic'", "mode"),
    ("[analysis]\nbaseline_veto_mv = 0", "baseline_veto_mv must be > 0"),
    ("[analysis]\nbaseline_veto_mv = nan", "baseline_veto_mv must be > 0"),
    ("[fit]\nmodel = 'other'", "model"),
    ("not toml at all [", "cannot read"),
])
def test_bad_values_get_clear_errors(tmp_path: Path, text: str, message: str):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(write(tmp_path, text))
    assert "monitor.toml" in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_config_is_picklable_for_worker_processes():
    import pickle

    assert pickle.loads(pickle.dumps(Config())) == Config()


def test_shipped_example_documents_exactly_the_defaults():
    from importlib.resources import files

    example = files("remote_monitor.stand") / "monitor.example.toml"
    assert load_config(Path(str(example))) == Config()


def test_layout_names_are_configurable_and_checked(tmp_path: Path):
    good = tmp_path / "good.toml"
    good.write_text('[layout]\nscan_dir_prefix = "run_"\nfile_infix = "_"\n')
    cfg = load_config(good)
    assert (cfg.layout.scan_dir_prefix == "run_" and cfg.layout.file_infix == "_"
            and cfg.layout.hv_dir == "wavesave_HV_CHECK")
    bad = tmp_path / "bad.toml"
    bad.write_text('[layout]\nhv_dir = "../../etc"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: \[layout\]: layout hv_dir"):
        load_config(bad)

