"""The `octo` command line, run as a user runs it: a subprocess of the venv's
entry point. Good paths check the JSON schemas of docs/JSON.md; bad inputs must
give one `octo: error: ...` line on stderr, a non-zero exit code and no traceback."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from host_tools.board.boards import BOARDS, get_board
from host_tools.board.client import BoardClient
from host_tools.board.pio import build_firmware, elf_memory_use
from host_tools.board.qemu import QEMU, free_port
from host_tools.cli import board_cmds as commands
from host_tools.cli import build_parser
from host_tools.cli import main as octo_main
from host_tools.errors import LinkError, OctoError
from host_tools.paths import firmware_dir, pio_core_dir

VENV_BIN = Path(sys.executable).parent
OCTO = VENV_BIN / "octo"
HEAVY_MODULES = ("tensorflow", "serial", "platformio")


def _subcommands() -> list[str]:
    parser = build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(subs[0].choices)


COMMANDS = _subcommands()
TELEMETRY_FIELDS = {"time", "seq", "uptime_ms", "ticks", "rx_bytes", "rx_frames", "rx_errors", "rx_crc_errors",
                    "tx_frames", "duplicates", "executed"}


def octo(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OCTO), *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"octo failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess[str], exit_code: int, *needles: str) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode == exit_code, out
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("octo: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- help and start-up cost ---------------------------------------------------------
def test_help_exits_zero_and_stays_light() -> None:
    proc = ok(octo("--help"))
    assert proc.stdout.startswith("usage: octo")
    for cmd in COMMANDS:
        assert cmd in proc.stdout
    # The top-level help and every command's help, in one process: nothing heavy gets imported.
    probe = (
        "import sys\n"
        "from host_tools.cli import main\n"
        f"for argv in [['--help'], *[[cmd, '--help'] for cmd in {COMMANDS!r}]]:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        f"print([m for m in sys.modules if m.startswith({HEAVY_MODULES!r})], file=sys.stderr)\n"
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_subcommand_help(cmd: str) -> None:
    proc = ok(octo(cmd, "--help"))
    assert proc.stdout.startswith(f"usage: octo {cmd}")


# -- boards and build ---------------------------------------------------------------
def test_boards_json_lists_every_board() -> None:
    proc = ok(octo("boards", "--json", "-"))
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "octo.boards/1"
    assert doc["boards"] == [b.as_dict() for b in BOARDS.values()]
    for name in BOARDS:
        assert name in proc.stderr  # the table goes to stderr when JSON is on stdout


@pytest.mark.qemu
def test_build_json(tmp_path: Path, firmware_elf: Callable[[str], Path]) -> None:
    firmware_elf("virtual-m4")  # the session's build first, so this one is a quick no-op rebuild
    report = tmp_path / "out" / "build.json"
    proc = ok(octo("build", "--board", "virtual-m4", "--json", str(report)))
    doc = json.loads(report.read_text())
    board = get_board("virtual-m4")
    assert doc["schema"] == "octo.build/1"
    assert doc["board"] == "virtual-m4"
    assert (doc["ram_budget"], doc["flash_budget"]) == (board.sram_bytes, board.flash_bytes)
    assert (doc["flash_used"], doc["ram_used"]) == elf_memory_use(Path(doc["elf"]))
    assert 0 < doc["ram_used"] < doc["ram_budget"] and 0 < doc["flash_used"] < doc["flash_budget"]
    assert doc["seconds"] > 0
    assert f"RAM   {doc['ram_used']:>8} B of {board.sram_bytes:>8} B" in proc.stdout


# -- a virtual board driven through the CLI ---------------------------------------------
@pytest.fixture(scope="module")
def cli_board(firmware_elf: Callable[[str], Path],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`octo flash` virtual-m4 once for this module; `octo stop` afterwards. Yields the octo.flash/1 doc."""
    firmware_elf("virtual-m4")
    report = tmp_path_factory.mktemp("flash") / "flash.json"
    ok(octo("flash", "--board", "virtual-m4", "--json", str(report)))
    yield json.loads(report.read_text())
    ok(octo("stop", "--board", "virtual-m4"))


@pytest.mark.qemu
def test_flash_json(cli_board: dict[str, Any]) -> None:
    assert cli_board["schema"] == "octo.flash/1"
    assert cli_board["board"] == "virtual-m4"
    assert cli_board["port"].startswith("socket://127.0.0.1:")
    assert Path(cli_board["elf"]).name == "firmware.elf"
    os.kill(cli_board["pid"], 0)  # QEMU is running


@pytest.mark.qemu
def test_info_json(cli_board: dict[str, Any]) -> None:
    doc = json.loads(ok(octo("info", "--json", "-")).stdout)
    board = get_board("virtual-m4")
    assert doc["schema"] == "octo.info/1"
    assert doc["port"] == cli_board["port"]
    assert (doc["board"], doc["cpu"]) == (board.name, board.cpu)
    assert (doc["sram_bytes"], doc["flash_bytes"]) == (board.sram_bytes, board.flash_bytes)
    assert doc["max_payload"] == 4096
    assert doc["messages"] == ["HELLO", "PING", "TELEMETRY_CTRL"]
    assert 0 < doc["hello_seconds"] < 5


@pytest.mark.qemu
def test_ping_json(cli_board: dict[str, Any]) -> None:
    doc = json.loads(ok(octo("ping", "-n", "3", "--json", "-")).stdout)
    assert doc["schema"] == "octo.ping/1"
    assert (doc["board"], doc["port"]) == ("virtual-m4", cli_board["port"])
    assert [r["payload_bytes"] for r in doc["results"]] == [0, 4096]  # default sizes: 0 and max
    for r in doc["results"]:
        assert r["count"] == 3
        assert 0 < r["rtt_min_s"] <= r["rtt_median_s"] <= r["rtt_max_s"]
    assert doc["link"]["requests"] == 1 + 2 * 3  # HELLO, then 3 PINGs per size
    assert doc["link"]["retries"] == 0 and doc["link"]["corrupt_frames"] == 0


@pytest.mark.qemu
def test_ping_size_beyond_max_payload_is_an_error(cli_board: dict[str, Any]) -> None:
    proc = octo("ping", "-n", "1", "--size", "10", "--size", "4097")
    assert_one_line_error(proc, 2, "--size 4097 is outside 0..4096")


@pytest.mark.qemu
def test_monitor_writes_json_lines(cli_board: dict, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "telemetry.jsonl"
    proc = ok(octo("monitor", "--duration", "1", "--period-ms", "100", "--log", str(log)))
    assert f"telemetry every 100 ms from {cli_board['port']}" in proc.stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert 5 <= len(records) <= 13, records
    assert all(set(r) == TELEMETRY_FIELDS for r in records)
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(records)))
    uptimes = [r["uptime_ms"] for r in records]
    assert all(100 <= b - a <= 110 for a, b in itertools.pairwise(uptimes)), uptimes


@pytest.mark.qemu
def test_stop(firmware_elf: Callable[[str], Path], tmp_path: Path) -> None:
    firmware_elf("virtual-m3")
    env = {"OCTO_STATE_DIR": str(tmp_path / "state")}
    ok(octo("flash", "--board", "virtual-m3", env=env))
    assert ok(octo("info", "--board", "virtual-m3", env=env)).stdout.startswith("board      virtual-m3")
    assert ok(octo("stop", "--board", "virtual-m3", env=env)).stdout.strip() == "virtual-m3 stopped"
    assert ok(octo("stop", "--board", "virtual-m3", env=env)).stdout.strip() == "virtual-m3 was not running"
    assert_one_line_error(octo("info", "--board", "virtual-m3", env=env), 2, "virtual-m3 is not running")


# -- bad input: one line, no traceback ----------------------------------------------------
@dataclass(frozen=True)
class BadInput:
    argv: list[str]
    exit_code: int
    needles: list[str]
    env: dict[str, str] = field(default_factory=dict)


BAD_INPUTS = [
    pytest.param(BadInput(["info", "--board", "virtual-m9"], 2,
                          ["unknown board 'virtual-m9'", "known boards: virtual-m4, virtual-m7"]),
                 id="info-unknown-board"),
    pytest.param(BadInput(["build", "--board", "esp32"], 2, ["unknown board 'esp32'"]), id="build-unknown-board"),
    pytest.param(BadInput(["info", "--port", "/dev/ttyNOPE"], 3,
                          ["cannot open serial port /dev/ttyNOPE", "/dev/ttyACM"]), id="missing-device"),
    pytest.param(BadInput(["info", "--port", "socket://127.0.0.1:{closed_port}"], 3,
                          ["cannot open serial port socket://127.0.0.1:{closed_port}", "nothing is listening"]),
                 id="closed-socket"),
    pytest.param(BadInput(["info"], 2, ["virtual-m4 is not running", "octo flash --board virtual-m4"],
                          env={"OCTO_STATE_DIR": "{fresh_state}"}), id="board-not-running"),
    pytest.param(BadInput(["ping", "--board", "virtual-m7"], 2, ["virtual-m7 is not running"],
                          env={"OCTO_STATE_DIR": "{fresh_state}"}), id="ping-board-not-running"),
    pytest.param(BadInput(["flash", "--board", "nucleo-f746zg"], 2, ["nucleo-f746zg is a real board"]),
                 id="flash-real-board"),
    pytest.param(BadInput(["stop", "--board", "nucleo-f746zg"], 2, ["nothing to stop"]), id="stop-real-board"),
    pytest.param(BadInput(["build", "--board", "nucleo-f746zg"], 2, ["must be downloaded", "network"]),
                 id="build-needs-network"),
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_error(case: BadInput, tmp_path: Path) -> None:
    values = {"closed_port": str(free_port()), "fresh_state": str(tmp_path / "state")}
    argv = [a.format(**values) for a in case.argv]
    env = {k: v.format(**values) for k, v in case.env.items()}
    assert_one_line_error(octo(*argv, env=env, timeout=30), case.exit_code,
                          *(n.format(**values) for n in case.needles))


# -- tools missing from PATH ------------------------------------------------------------
@pytest.mark.parametrize(("missing", "argv"), [
    pytest.param(QEMU, ["flash", "--board", "virtual-m4"], id="no-qemu"),
    pytest.param("arm-none-eabi-gcc", ["build", "--board", "virtual-m4"], id="no-arm-gcc"),
])
def test_missing_tool_is_named(missing: str, argv: list[str], tmp_path: Path,
                               firmware_elf: Callable[[str], Path]) -> None:
    firmware_elf("virtual-m4")  # `octo flash` finds the ELF and gets as far as starting QEMU
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in (QEMU, "arm-none-eabi-gcc"):
        found = shutil.which(tool)
        assert found, f"{tool} must be installed for this test"
        if tool != missing:
            (tools / tool).symlink_to(found)
    path = os.pathsep.join([str(VENV_BIN), str(tools)])
    assert shutil.which(missing, path=path) is None
    proc = octo(*argv, env={"PATH": path, "OCTO_STATE_DIR": str(tmp_path / "state")}, timeout=60)
    assert_one_line_error(proc, 2, f"{missing} not found", "make setup")


# -- a board that never answers (library level: the CLI has no timeout option) -----------
class FakeBoard:
    """A TCP server that accepts and either stays silent or answers every write with a damaged frame."""

    GARBAGE = b"\x00\x03ab\x00"  # COBS-valid, but 2 bytes are shorter than any frame

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.srv.getsockname()[1])
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.srv.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.05)
                while not self._stop.is_set():
                    try:
                        data = conn.recv(4096)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    self.received += len(data)
                    if self.mode == "garbage":
                        conn.sendall(self.GARBAGE)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.srv.close()


@pytest.fixture
def fake_board(request: pytest.FixtureRequest) -> Iterator[FakeBoard]:
    fb = FakeBoard(request.param)
    yield fb
    fb.close()


@pytest.mark.parametrize(("fake_board", "retries", "what"), [
    pytest.param("silent", 0, "no reply", id="silent-no-retry"),
    pytest.param("silent", 2, "no reply", id="silent-2-retries"),
    pytest.param("garbage", 2, "only corrupt replies", id="garbage-2-retries"),
], indirect=["fake_board"])
def test_board_that_never_answers(fake_board: FakeBoard, retries: int, what: str) -> None:
    url = f"socket://127.0.0.1:{fake_board.port}"
    client = BoardClient(url, timeout_s=0.1, retries=retries)
    t0 = time.monotonic()
    with client, pytest.raises(LinkError) as ei:
        client.hello()
    elapsed = time.monotonic() - t0
    msg = str(ei.value)
    assert f"HELLO request to {url} failed after {retries + 1} attempts: {what}" in msg
    assert "\n" not in msg
    assert ei.value.exit_code == 3
    assert client.counters.retries == retries
    assert fake_board.received > 0
    assert 0.1 * (retries + 1) <= elapsed < 0.1 * (retries + 1) + 2.0


@pytest.mark.parametrize("fake_board", ["silent"], indirect=True)
def test_cli_reports_silent_board_in_one_line(fake_board: FakeBoard, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`octo info` in-process, its client given short timeouts (the CLI's are 1 s x 4 attempts)."""
    def quick_client(args: object) -> BoardClient:
        return BoardClient(f"socket://127.0.0.1:{fake_board.port}", timeout_s=0.1, retries=1).open()

    monkeypatch.setattr(commands, "open_client", quick_client)
    assert octo_main(["info", "--port", "ignored"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("octo: error: HELLO request"), err
    assert "failed after 2 attempts: no reply" in err[0]


# -- firmware too big for the board --------------------------------------------------------
@pytest.fixture(scope="module")
def scratch_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of firmware/ with its own PlatformIO core dir, so oversized test builds
    never touch firmware/.pio, the ELFs the other tests (and other people) run."""
    root = tmp_path_factory.mktemp("octo-root")
    shutil.copytree(firmware_dir(), root / "firmware", ignore=shutil.ignore_patterns(".pio"))
    return root


@dataclass(frozen=True)
class TooBig:
    board: str
    flags: list[str]
    budget_text: str
    ballast: str = ""  # C declarations force-included into every source file


RAM_ARENA = "__attribute__((weak, used)) unsigned char octo_test_arena[96u * 1024u];\n"
ROM_TABLE = "__attribute__((weak, used)) const unsigned char octo_test_table[1100u * 1024u] = {1};\n"

TOO_BIG = [
    # RX + TX + payload buffers for 60,000-byte payloads are ~180 KiB: that alone fits 256 KiB,
    # not with a 96 KiB tensor arena next to it.
    pytest.param(TooBig("virtual-m4", ["-DOCTO_MAX_PAYLOAD=60000"], "RAM budget is 262144 bytes (256 KiB)",
                        RAM_ARENA), id="m4-ram-payload-and-arena"),
    pytest.param(TooBig("virtual-m3", ["-DOCTO_MAX_PAYLOAD=60000"], "RAM budget is 131072 bytes (128 KiB)"),
                 id="m3-ram-payload"),
    pytest.param(TooBig("virtual-m7", [], "FLASH budget is 1048576 bytes (1024 KiB)", ROM_TABLE),
                 id="m7-flash-table"),
]


@pytest.mark.parametrize("case", TOO_BIG)
def test_firmware_too_big_names_the_budget(case: TooBig, scratch_tree: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           firmware_elf: Callable[[str], Path]) -> None:
    board = get_board(case.board)
    normal_elf = firmware_elf(case.board)
    monkeypatch.setenv("OCTO_ROOT", str(scratch_tree))
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(scratch_tree / ".pio-core"))
    assert firmware_dir() == (scratch_tree / "firmware").resolve()
    assert pio_core_dir() == scratch_tree / ".pio-core"
    flags = list(case.flags)
    if case.ballast:
        header = tmp_path / "ballast.h"
        header.write_text(case.ballast)
        symbol = case.ballast.split("[")[0].split()[-1]
        flags += ["-include", str(header), f"-Wl,--undefined={symbol}"]
    with pytest.raises(OctoError) as ei:
        build_firmware(board, extra_flags=flags)
    msg = str(ei.value)
    assert msg.startswith(f"firmware does not fit {board.name}: {case.budget_text} and the image needs ")
    assert "\n" not in msg
    # The normal image is untouched and still fits.
    flash_used, ram_used = elf_memory_use(normal_elf)
    assert ram_used < board.sram_bytes and flash_used < board.flash_bytes


@pytest.mark.parametrize(("module", "name"), __import__("host_tools.cli", fromlist=["USER_ERRORS"]).USER_ERRORS)
def test_every_user_error_class_is_one_line_and_exit_2(module: str, name: str, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Errors of the converter, the host build, the SGQ decoder and the clip loader all reach the user as
    `octo: error: ...`, without a traceback, however deep they were raised."""
    import importlib

    cls = getattr(importlib.import_module(module), name)
    exc = cls(-33, "this input is wrong in one specific way") if name == "SgqFormatError" else \
        cls("this input is wrong in one specific way")

    def fail(_args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(commands, "cmd_boards", fail)
    assert octo_main(["boards"]) == 2
    assert capsys.readouterr().err == f"octo: error: {exc}\n"
    assert str(exc).endswith("this input is wrong in one specific way")


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(_args: argparse.Namespace) -> int:
        raise ZeroDivisionError("a real bug")

    monkeypatch.setattr(commands, "cmd_boards", bug)
    with pytest.raises(ZeroDivisionError):
        octo_main(["boards"])


@pytest.mark.parametrize("flag", ["--lac", "--prc"])
def test_train_and_collab_state_the_same_measured_defaults(flag: str) -> None:
    """The optimizer flags are defined once: both commands' help and parsed defaults follow
    host_tools/train/defaults.py (collab's help once said 'default on' while the code used off)."""
    from host_tools.train import defaults

    want = "on" if getattr(defaults, f"DEFAULT_{flag[2:].upper()}") else "off"
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    helps = {}
    for cmd in ("train", "collab"):
        act = next(a for a in sub.choices[cmd]._actions if flag in a.option_strings)
        helps[cmd] = act.help
        assert f"(default {want}" in act.help, (cmd, act.help)
    for cmd in ("train", "collab"):
        other = {a.dest: a.default for a in sub.choices[cmd]._actions}
        assert other["momentum"] == defaults.MOMENTUM and other["prc_k"] == defaults.PRC_K_DEFAULT
        assert other["lac_l2"] == defaults.LAC_L2_DEFAULT
        assert other["batch"] == (None if cmd == "train" else defaults.BATCH)  # train: BATCH, or what fits the board


ROOT = Path(__file__).resolve().parents[2]
NOISE = ("I0000", "W0000", "E0000", "absl", "cpu_feature_guard", "Saved artifact", "UserWarning", "tensorflow",
         "TensorSpec", "fully_quantize")


def test_convert_is_quiet_and_keeps_the_tools_output_in_a_log(tmp_path: Path) -> None:
    """TensorFlow's and TFLite's own lines go to <output>/octo-tools.log; the terminal shows Octo's story."""
    out = tmp_path / "digits"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    r = subprocess.run([sys.executable, "-m", "host_tools.cli", "convert", str(ROOT / "models" / "digits_cnn.py"),
                        "-o", str(out)], capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    terminal = r.stdout + r.stderr
    assert not [ln for ln in terminal.splitlines() if any(n in ln for n in NOISE)], terminal
    assert "converted" in r.stdout and "quantizing to full-integer INT8" in r.stderr
    log = (out / "octo-tools.log").read_text()
    assert "cpu_feature_guard" in log or "I0000" in log or "fully_quantize" in log, log[:2000]


@pytest.mark.parametrize(("argv", "needle"), [
    (["train", "m", "--lr", "nan"], "argument --lr: nan: use a finite number in (0, 1e+06]"),
    (["train", "m", "--lr", "-1"], "argument --lr: -1: use a finite number"),
    (["train", "m", "--lr", "2e6"], "the boards take at most 1e6"),
    (["collab", "m", "--split", "conv2", "--momentum", "1"], "argument --momentum: 1: use a finite number in [0, 1)"),
    (["collab", "m", "--split", "conv2", "--cloud-lr", "inf"], "argument --cloud-lr"),
    (["train", "m", "--weight-decay", "-0.1"], "argument --weight-decay"),
    (["train", "m", "--prc-k", "0"], "argument --prc-k"),
])
def test_optimizer_numbers_are_checked_before_anything_runs(argv: list[str], needle: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        octo_main(argv)
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_collab_groups_above_the_channel_count_are_refused(digits_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc = octo_main(["collab", str(digits_dir), "--split", "conv2", "--groups", "99", "--target", "host"])
    err = capsys.readouterr().err
    assert rc == 2 and "--groups 99: the split tensor (conv2) has 16 channels; use 1..16" in err, err
