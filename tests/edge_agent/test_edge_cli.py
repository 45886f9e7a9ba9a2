from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli import main, read_codes
from edge_agent.errors import ConfigError
from protocols.messages import CommissionEvent
from simulators.camera import SyntheticConveyor, demo_urls

REPO = Path(__file__).resolve().parents[2]


def printer_export(path: Path, urls: list[str]) -> Path:
    """A CSV shaped like the hub's printer export."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seq", "serial", "url", "human", "pin"])
        for seq, url in enumerate(urls, start=1):
            writer.writerow([seq, url.rsplit("/", 1)[1], url, "HUMAN", "12345678"])
    return path


def station_toml(
    tmp_path: Path, station_id: str, broker_url: str, prefix: str, *, realtime: bool = False
) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        f'station_id = "{station_id}"\n'
        f'mqtt_url = "{broker_url}"\n'
        f'topic_prefix = "{prefix}"\n'
        'outbox_path = "outbox.sqlite3"\n'
        'source = "sim"\n'
        "flush_interval = 0.02\n"
        "[work_order]\n"
        'id = "WO-1"\nsku = "TEA"\nlot = "L1"\n'
        "[sim]\n"
        'codes_csv = "codes.csv"\n'
        "step = 80\n"
        f"realtime = {'true' if realtime else 'false'}\n",
        encoding="utf-8",
    )
    return path


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: yima-edge ")
    assert "run" in out and "check-config" in out


def test_run_needs_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run"])
    assert info.value.code == 2
    assert "the following arguments are required: --config" in capsys.readouterr().err


def test_a_bad_config_exits_2_with_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('station_id = "s1"\noutbox_path = "o"\nsource = 0\nbatch = 5\n')
    assert main(["run", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"yima-edge: Invalid config '{path}':\n  batch: Extra inputs are not permitted (got 5)\n"
    )


def test_a_codes_file_without_the_column_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "codes.csv").write_text("seq,serial\n1,ABC\n")
    config = station_toml(tmp_path, "s1", "mqtt://127.0.0.1:1", "p")
    assert main(["run", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"yima-edge: Codes file '{tmp_path.resolve() / 'codes.csv'}' has no column 'url': "
        "found seq, serial\n"
    )


def test_a_camera_that_cannot_open_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cam.toml"
    path.write_text(f'station_id = "s1"\noutbox_path = "o"\nsource = "{tmp_path / "none.avi"}"\n')
    assert main(["run", "--config", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"yima-edge: Cannot open camera source '{tmp_path / 'none.avi'}'\n"
    )


def test_read_codes(tmp_path: Path) -> None:
    urls = demo_urls(3)
    assert read_codes(printer_export(tmp_path / "c.csv", urls), "url") == urls
    with pytest.raises(ConfigError) as info:
        read_codes(tmp_path / "missing.csv", "url")
    assert str(info.value) == (
        f"Cannot read codes file '{tmp_path / 'missing.csv'}': No such file or directory"
    )


def test_check_config_hides_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text('station_id = "s1"\noutbox_path = "o"\nsource = 0\nmqtt_password = "pw"\n')
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"mqtt_password": "**********"' in out
    assert '"pw"' not in out


def test_run_with_the_synthetic_camera_commissions_every_code(
    tmp_path: Path,
    broker_url: str,
    topic_prefix: str,
    station_id: str,
    make_hub: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub = make_hub(auto_ack=True)
    urls = demo_urls(5)
    printer_export(tmp_path / "codes.csv", urls)
    config = station_toml(tmp_path, station_id, broker_url, topic_prefix)
    assert main(["run", "--config", str(config), "--drain-timeout", "15"]) == 0
    counters = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert (counters["commissioned"], counters["acked"], counters["pending"]) == ("5", "5", "0")
    received = {e.code for e in hub.events if isinstance(e, CommissionEvent)}
    assert received == set(urls)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_sigterm_stops_a_running_station(
    tmp_path: Path, broker_url: str, topic_prefix: str, station_id: str
) -> None:
    urls = demo_urls(50)
    printer_export(tmp_path / "codes.csv", urls)
    total = SyntheticConveyor(urls, step=80).total_frames  # ~11 s at 20 frames/s
    config = station_toml(tmp_path, station_id, broker_url, topic_prefix, realtime=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "connected to" in line:
                break
        time.sleep(0.5)  # some frames go by
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "Received SIGTERM, stopping" in err
    counters = dict(line.split() for line in out.splitlines())
    assert 0 < int(counters["frames"]) < total
