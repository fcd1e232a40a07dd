"""octo fleet run / supernode (docs/FLEET.md, deployment mode): Flower's own processes on free ports. The command
line of a SuperNode next to a real board, a SuperNode with an unregistered key refused by the SuperLink, a
federation of virtual boards (private QEMU each) with TLS and SuperNode authentication in which one board is killed
and another reset mid-round (the federation finishes with the others, and the killed board comes back), and split
learning in deployment mode (`--mode split`) giving `octo collab`'s numbers."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_tools.errors import OctoError
from host_tools.fleet.deploy import Deployment, flower_bin, make_node_key, node_config_arg, parse_fault

ROOT = Path(__file__).resolve().parents[1]


def octo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_node_config_quotes_strings() -> None:
    assert node_config_arg({"partition-id": 3, "port": "/dev/ttyACM0", "on": True}) == \
        'partition-id=3 port="/dev/ttyACM0" on=true'


def test_flower_binaries_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OctoError, match="Flower's `flower-superlink` is not installed"):
        flower_bin("flower-superlink")


def test_parse_fault() -> None:
    assert parse_fault("kill:1@2") == ("kill", 1, 2)
    assert parse_fault("reset:0@1") == ("reset", 0, 1)
    for bad in ("kill:1", "boom:1@2", "kill:x@2", "kill:1@0"):
        with pytest.raises(Exception, match=r"expected kill\|reset\|node:BOARD@ROUND"):
            parse_fault(bad)


def test_supernode_command_line(tmp_path: Path) -> None:
    """`octo fleet supernode` builds flower-supernode with TLS root, auth key and the board's port in node config."""
    key, ca = tmp_path / "k.pem", tmp_path / "ca.pem"
    key.write_text("x")
    ca.write_text("x")
    r = octo("fleet", "supernode", "--superlink", "10.0.0.5:9093", "--port", "/dev/ttyACM0", "--auth-key", str(key),
             "--root-cert", str(ca), "--partition-id", "2", "--dry-run")
    assert r.returncode == 0, r.stderr
    argv = shlex.split(r.stdout.strip().splitlines()[-1])
    assert Path(argv[0]).name == "flower-supernode"
    opts = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert opts["--superlink"] == "10.0.0.5:9093"
    assert opts["--root-certificates"] == str(ca)
    assert opts["--auth-supernode-private-key"] == str(key)
    assert opts["--node-config"] == 'partition-id=2 board="nucleo-f746zg" port="/dev/ttyACM0"'
    assert "--insecure" not in argv
    r = octo("fleet", "supernode", "--superlink", "10.0.0.5:9093", "--port", "/dev/ttyACM0", "--insecure",
             "--dry-run")
    assert r.returncode == 0 and "--insecure" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--superlink", "10.0.0.5"], "expected HOST:PORT"),
    (["--superlink", "h:99999"], "expected HOST:PORT"),
    (["--superlink", "h:9093", "--auth-key", "/nonexistent/k.pem"], "--auth-key /nonexistent/k.pem: no such file"),
    (["--superlink", "h:9093", "--insecure", "--root-cert", __file__], "exclude each other"),
    (["--superlink", "h:9093", "--insecure", "--auth-key", __file__], "over TLS only"),
    (["--superlink", "h:9093", "--board", "no-such-board"], "no-such-board"),
])
def test_supernode_argument_errors(args: list[str], message: str) -> None:
    r = octo("fleet", "supernode", "--port", "/dev/ttyACM0", *args, "--dry-run")
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_fleet_run_argument_errors(tmp_path: Path) -> None:
    r = octo("fleet", "run", str(tmp_path), "--boards", "2", "--board", "host", "--rounds", "1")
    assert r.returncode == 2 and "holds no converted model" in r.stderr and "Traceback" not in r.stderr
    r = octo("fleet", "run", str(tmp_path), "--boards", "2", "--fault", "kill:5@1")
    assert r.returncode == 2 and "names board 5" in r.stderr
    r = octo("fleet", "run", str(tmp_path), "--fault", "oops")
    assert r.returncode == 2 and "expected kill|reset|node:BOARD@ROUND" in r.stderr
    r = octo("fleet", "run", str(tmp_path), "--root-cert", __file__)
    assert r.returncode == 2 and "--root-cert goes with --superlink" in r.stderr
    r = octo("fleet", "run", str(tmp_path), "--superlink", "nowhere")
    assert r.returncode == 2 and "expected HOST:PORT" in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "split"], "--mode split needs --split LAYER"),
    (["--split", "conv2"], "--split: split-learning option(s); add --mode split"),
    (["--codec", "fp32", "--epochs", "2"], "--codec, --epochs: split-learning option(s)"),
    (["--mode", "split", "--split", "conv2", "--rounds", "3", "--uplink", "int4"],
     "--rounds, --uplink: federated-learning option(s), not for --mode split"),
    (["--mode", "split", "--split", "conv2", "--fault", "kill:0@1"], "--fault is not available with --mode split"),
    (["--mode", "split", "--split", "conv2", "--superlink", "h:9093"], "--superlink is not available with --mode"),
    (["--mode", "split", "--split", "conv2", "--bits", "3"], "invalid choice: 3"),
    (["--mode", "split", "--split", "conv2", "--board", "nucleo-f746zg"], "runs on virtual boards or --board host"),
])
def test_fleet_run_split_argument_errors(tmp_path: Path, args: list[str], message: str) -> None:
    """--mode split takes octo collab's options (the same definitions) and refuses the federation's, and back."""
    r = octo("fleet", "run", str(tmp_path), *(["--board", "host"] if "--board" not in args else []), *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_unregistered_supernode_is_refused(tmp_path: Path) -> None:
    """TLS + SuperNode auth: the registered SuperNode (started with `octo fleet supernode`, as next to a real board)
    comes online, one with an unknown key is refused."""
    dep = Deployment(tmp_path / "run")
    try:
        dep.start_superlink(auth=True)
        assert dep.tls is not None
        good, _ = make_node_key(tmp_path / "keys", "good")
        bad, _ = make_node_key(tmp_path / "keys", "bad")
        dep.register([good.with_suffix(".pub")])
        ok = dep.spawn("good", [sys.executable, "-m", "host_tools.cli", "fleet", "supernode", "--superlink",
                                dep.address, "--port", "socket://127.0.0.1:9", "--board", "virtual-m4",
                                "--auth-key", str(good), "--root-cert", str(dep.tls.ca)])
        refused = dep.start_supernode("bad", {"partition-id": 1}, bad)
        assert refused.popen.wait(timeout=60) != 0
        assert "Failed to activate SuperNode" in refused.log.read_text()
        assert "No SuperNode found with the given public key" in (tmp_path / "run" / "superlink.log").read_text()
        assert ok.alive()
        nodes = json.loads(dep.flwr("supernode", "ls", "octo", "--format", "json").stdout)["nodes"]
        assert [n["status"] for n in nodes] == ["online"]
    finally:
        dep.close()
    assert not ok.alive()


@pytest.fixture(scope="module")
def digits(digits_dir: Path) -> Path:
    """The session's converted digits CNN (conftest), never the user's build/ folder."""
    return digits_dir


@pytest.mark.slow
def test_fleet_run_virtual_boards_kill_reset_and_lost_supernode(digits: Path, tmp_path: Path) -> None:
    """4 QEMU boards, TLS + auth; in round 2 board 2 is killed, board 1 reset and SuperNode 3 killed. Round 2
    aggregates board 0 alone; round 3 samples the 3 SuperNodes left and all 3 answer: the reset board rejoined, and
    the killed one came back (its ClientApp found the link dead and had the run start its QEMU again); the
    federation finishes."""
    out = tmp_path / "fleet.json"
    r = octo("fleet", "run", str(digits), "--boards", "4", "--board", "virtual-m4", "--rounds", "3",
             "--local-epochs", "1", "--alpha", "0", "--fault", "kill:2@2", "--fault", "reset:1@2", "--fault",
             "node:3@2", "--json", str(out), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == "octo.fleet/1" and doc["mode"] == "deployment"
    assert doc["tls"] and doc["supernode_auth"] and doc["board"] == "virtual-m4"
    assert all(f["applied"] for f in doc["faults"])
    assert [rd["clients_answered"] for rd in doc["per_round"]] == [4, 1, 3]
    assert [rd["clients_sampled"] for rd in doc["per_round"]] == [4, 4, 3]
    assert [rd["clients_failed"] for rd in doc["per_round"]] == [0, 3, 0]
    assert "board 2 is back in round 3" in r.stderr  # the killed board, started again for its ClientApp
    for rd in doc["per_round"]:
        assert rd["accuracy"] is not None and 0 < rd["bytes_up"] < rd["bytes_down"]
    assert doc["final"]["eval_accuracy"] > doc["initial"]["accuracy"]


@pytest.mark.slow
def test_fleet_run_split_equals_octo_collab(digits: Path, tmp_path: Path) -> None:
    """`octo fleet run --mode split` (a SuperLink with TLS and SuperNode authentication, a SuperNode per native
    trainer, the cloud half in the ServerApp that `flwr run` submits) gives the numbers of `octo collab` for the same
    seed and settings: the same steps and bytes, losses and accuracies equal to rounding level (as the simulation
    engine, tests/test_fleet.py). Small data: one step per board and one evaluation batch (Flower's deployment polls:
    ~5 s per message); both commands run at once."""
    with np.load(digits / "train.npz") as d:
        np.savez(tmp_path / "train.npz", x=d["x"][:32], y=d["y"][:32])
    with np.load(digits / "eval.npz") as d:
        np.savez(tmp_path / "eval.npz", x=d["x"][:16], y=d["y"][:16])
    common = ["--split", "conv2", "--codec", "sgq", "--bits", "4", "--boards", "2", "--epochs", "1", "--seed", "3",
              "--data", str(tmp_path / "train.npz"), "--eval", str(tmp_path / "eval.npz")]
    commands = {"direct": ["collab", str(digits), "--target", "host"],
                "deployment": ["fleet", "run", str(digits), "--mode", "split", "--board", "host"]}
    procs = {k: subprocess.Popen([sys.executable, "-m", "host_tools.cli", *cmd, *common, "--run-dir",
                                  str(tmp_path / k), "--json", str(tmp_path / f"{k}.json")], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, cmd in commands.items()}
    for k, p in procs.items():
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"{k}: {err[-3000:]}"
    a, b = (json.loads((tmp_path / f"{k}.json").read_text()) for k in commands)
    assert a["schema"] == b["schema"] == "octo.collab/1"
    assert (a["engine"], b["engine"], b["mode"]) == ("direct", "flower", "deployment")
    assert b["deployment"]["tls"] and b["deployment"]["supernode_auth"]
    assert a["steps"] == b["steps"] == 2 and b["samples"] == a["samples"]
    assert a["bytes_per_sample"] == b["bytes_per_sample"]  # fixed-length codes: exact
    assert a["eval_wire_bytes"] == b["eval_wire_bytes"]
    for ea, eb in zip(a["epochs"], b["epochs"], strict=True):
        diff = {k: (ea[k], eb.get(k)) for k in ea if k != "seconds" and ea[k] != eb.get(k)}
        for k in ("train_loss", "eval_loss"):
            assert abs(ea[k] - eb[k]) <= 0.02 * abs(ea[k]) + 1e-6, f"direct vs deployment {diff}"
        for k in ("train_accuracy", "eval_accuracy"):
            assert abs(ea[k] - eb[k]) <= 1 / 16 + 1e-9, f"direct vs deployment {diff}"
        assert (ea["steps"], ea["samples"]) == (eb["steps"], eb["samples"])
    assert b["final"]["eval_accuracy"] is not None


@pytest.mark.slow
def test_fleet_run_on_an_existing_superlink_with_octo_supernodes(digits: Path, tmp_path: Path) -> None:
    """The multi-machine flow on one machine: a SuperLink (TLS + auth), two `octo fleet supernode` processes each
    next to its 'board' (a native trainer on a socket), and `octo fleet run --superlink` submitting the run."""
    from host_tools.board.target import build_host_trainer
    from host_tools.fleet.deploy import BoardProc
    from host_tools.fleet.sim import SimOptions, prepare

    tb, _ = prepare(SimOptions(digits), "host")
    boards = [BoardProc("host", i, tmp_path, build_host_trainer(tb.dir)) for i in range(2)]
    dep = Deployment(tmp_path / "link")
    try:
        dep.start_superlink(auth=True)
        assert dep.tls is not None
        keys = [make_node_key(tmp_path / "keys", f"k{i}")[0] for i in range(2)]
        dep.register([k.with_suffix(".pub") for k in keys])
        for i, b in enumerate(boards):
            dep.spawn(f"node{i}", [sys.executable, "-m", "host_tools.cli", "fleet", "supernode", "--superlink",
                                   dep.address, "--port", b.start(), "--board", "host", "--partition-id", str(i),
                                   "--auth-key", str(keys[i]), "--root-cert", str(dep.tls.ca)])
        out = tmp_path / "fleet.json"
        r = octo("fleet", "run", str(digits), "--boards", "2", "--board", "host", "--rounds", "1", "--local-epochs",
                 "1", "--superlink", dep.address, "--root-cert", str(dep.tls.ca), "--json", str(out), timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    finally:
        dep.close()
        for b in boards:
            b.stop()
    doc = json.loads(out.read_text())
    assert doc["mode"] == "deployment" and doc["superlink"] == dep.address
    assert [rd["clients_answered"] for rd in doc["per_round"]] == [2]
    assert doc["final"]["eval_accuracy"] is not None
