"""Commands side by side on one board name: private instances, named instances, "board busy".

Two trainings on virtual-m4 at once each boot their own private QEMU and end in the same state; a command
that boots a board for its own work never touches the user's `octo flash` instance; a second command on a
board in use answers at once with who holds it; a lock dies with its process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from host_tools.board import lock

ROOT = Path(__file__).resolve().parents[2]
OCTO = [sys.executable, "-m", "host_tools.cli"]


def octo(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OCTO, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*OCTO, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def named_board(firmware_elf: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[dict[str, Any]]:
    """The user's board: `octo flash --board virtual-m4` (named instance), stopped afterwards."""
    firmware_elf("virtual-m4")
    doc = tmp_path_factory.mktemp("named") / "flash.json"
    r = octo("flash", "--board", "virtual-m4", "--json", str(doc))
    assert r.returncode == 0, r.stderr
    yield json.loads(doc.read_text())
    octo("stop", "--board", "virtual-m4")


def _stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C, then (on a machine too busy to answer in time) SIGKILL: no monitor may outlive its test."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def _wait_for_holder(key: str, timeout_s: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        who = lock.holder(key)
        if who is not None:
            return who
        time.sleep(0.05)
    raise AssertionError(f"nobody took {key} within {timeout_s} s")


@pytest.mark.qemu
def test_a_second_command_on_a_board_in_use_is_told_who_holds_it(named_board: dict[str, Any]) -> None:
    mon = start("monitor", "--board", "virtual-m4", "--duration", "60", "--log", os.devnull)
    try:
        who = _wait_for_holder(lock.board_key("virtual-m4"))
        assert who["command"] == "octo monitor" and who["pid"] == mon.pid
        r = octo("ping", "--board", "virtual-m4", "--count", "2")
        assert r.returncode == 2 and "Traceback" not in r.stderr   # refused, not a link timeout on a shared port
        first = r.stderr.splitlines()[0]
        want = f"octo: error: board virtual-m4 busy: used by octo monitor (pid {mon.pid}) (wait "
        assert first.startswith(want), first
        r = octo("flash", "--board", "virtual-m4")   # nor may anyone restart it under the monitor
        assert r.returncode == 2 and "busy: used by octo monitor" in r.stderr
        assert mon.poll() is None                    # the monitor still runs
    finally:
        _stop(mon)
    assert lock.holder(lock.board_key("virtual-m4")) is None   # released when the monitor ended
    r = octo("ping", "--board", "virtual-m4", "--count", "2")
    assert r.returncode == 0, r.stderr


@pytest.mark.qemu
def test_a_lock_dies_with_its_process(named_board: dict[str, Any]) -> None:
    mon = start("monitor", "--board", "virtual-m4", "--duration", "60", "--log", os.devnull)
    try:
        who = _wait_for_holder(lock.board_key("virtual-m4"))
        assert who["pid"] == mon.pid
    finally:
        mon.kill()                                    # no clean-up code runs
        mon.wait(timeout=30)
    assert lock.holder(lock.board_key("virtual-m4")) is None


@pytest.mark.qemu
def test_commands_that_boot_a_board_leave_the_users_board_alone(named_board: dict[str, Any], digits_dir: Path,
                                                                tmp_path: Path) -> None:
    with np.load(digits_dir / "eval.npz") as d:
        np.savez(tmp_path / "x.npz", x=d["x"][:4])
    r = octo("infer", str(digits_dir), "--input", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npy"),
             "--board", "virtual-m4")
    assert r.returncode == 0, r.stderr[-2000:]
    os.kill(named_board["pid"], 0)                    # the user's QEMU still runs: infer used a private one
    r = octo("info", "--board", "virtual-m4", "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["port"] == named_board["port"]


@pytest.mark.qemu
@pytest.mark.slow
def test_two_trainings_on_virtual_m4_at_once_end_in_the_same_state(digits_dir: Path, tmp_path: Path,
                                                                    firmware_elf: Callable[[str], Path]) -> None:
    from host_tools.train.run import read_checkpoint

    with np.load(digits_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:96], y=d["y"][:96])
    common = ["--board", "virtual-m4", "--epochs", "1", "--update", "last:2", "--data", str(tmp_path / "small.npz")]
    # build the training firmware once first, so both runs start their boards at about the same time
    warm = octo("train", str(digits_dir), *common, "--run-dir", str(tmp_path / "warm"))
    assert warm.returncode == 0, warm.stderr[-2000:]
    runs = [start("train", str(digits_dir), *common, "--run-dir", str(tmp_path / f"run{i}"), "--json", "-")
            for i in range(2)]
    outs = [p.communicate(timeout=600) for p in runs]
    for p, (_out, err) in zip(runs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert "recover" not in err                   # nobody restarted anybody's board
    docs = [json.loads(out) for out, _err in outs]
    assert docs[0]["final"] == docs[1]["final"]
    blobs = [read_checkpoint(tmp_path / f"run{i}").blob for i in range(2)]
    assert blobs[0] == blobs[1] == read_checkpoint(tmp_path / "warm").blob


def test_one_run_folder_is_one_training_at_a_time(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code = ("import sys; from pathlib import Path; from host_tools.board import lock\n"
            "try:\n"
            f"    with lock.hold(lock.run_dir_key(Path({str(run_dir)!r})), 'run folder'): pass\n"
            "except lock.BoardBusy as exc:\n"
            "    sys.exit(str(exc))\n")
    with lock.hold(lock.run_dir_key(run_dir), "run folder"):
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert other.returncode == 1
    assert other.stderr.startswith(f"run folder busy: used by octo (pid {os.getpid()})")
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert again.returncode == 0, again.stderr                 # free once released
