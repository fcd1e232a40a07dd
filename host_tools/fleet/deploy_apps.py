"""The ClientApp and ServerApp of deployment mode (`octo fleet run`, `octo fleet supernode`), loaded by Flower's own
processes (flwr-serverapp, flwr-clientapp) from the Flower App that `host_tools.fleet.deploy` writes: its module
is one line, ``from host_tools.fleet.deploy_apps import clientapp, serverapp``.

What a run needs travels in Flower's configs:
- run config ``octo-run``: ``mode`` ``fed`` (federated learning: JSON of the FleetSpec (``spec``), the strategy, rounds,
  fraction, the eval set) or ``split`` (split learning: ``split``, what `octo collab` would run; its data in the run's
  folder), the number of SuperNodes to wait for, and the folder where the ServerApp writes its results;
- node config (per SuperNode): ``partition-id``, ``board`` and ``port``: the serial port (or ``socket://`` URL) of the
  board this SuperNode drives, opened for every round (every message in split learning); ``model-dir``: where the
  model folder is on that machine.

The one ClientApp serves both modes: Flower's default ``train`` message is a federation round, the ``collab_*``
messages are split learning's (host_tools/fleet/split.py)."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from host_tools.errors import OctoError
from host_tools.fleet import split
from host_tools.fleet.apps import Tally, client_train, run_strategy
from host_tools.fleet.local import FleetSpec

NODES_WAIT_S = 120.0  # how long the ServerApp waits for all SuperNodes to connect before round 1
REOPEN_S = 30.0       # a board on a port whose link died: how long its ClientApp tries to open it again
REOPEN_POLL_S = 1.0


def run_settings(context: Context) -> dict[str, Any]:
    return dict(json.loads(str(context.run_config["octo-run"])))


def node_spec(context: Context) -> FleetSpec:
    """The run's FleetSpec as seen from this SuperNode: its board, port and (if set) its own model folder."""
    spec = dict(run_settings(context)["spec"])
    nc = context.node_config
    if "board" in nc:
        spec["board"] = str(nc["board"])
    spec["port"] = str(nc.get("port", ""))
    if "model-dir" in nc:
        md = Path(str(nc["model-dir"]))
        spec["model_dir"] = str(md)
        spec["train_dir"] = str(md / "train" / spec["config_id"])
        spec["data"] = str(md / "train.npz")
    names = {f.name for f in fields(FleetSpec)}
    return FleetSpec(**{k: v for k, v in spec.items() if k in names})


clientapp = ClientApp()
split.register_handlers(clientapp, split.node_link)


@clientapp.train()
def train(msg: Message, context: Context) -> Message:
    """One round on this SuperNode's board: the port in the node config, opened (and locked) for the round."""
    from host_tools.board.target import open_port  # noqa: PLC0415

    spec = node_spec(context)
    pid = int(context.node_config.get("partition-id", 0))
    if not spec.port:
        return client_train(spec, pid, msg)
    board: Any = None
    if spec.board != "host":
        from host_tools.board.boards import get_board  # noqa: PLC0415

        board = get_board(spec.board)
    target, guard = open_port(board, spec.port, timeout_s=60.0)
    with guard:
        try:
            open_board(target, context, pid, int(msg.content["config"].get("server-round", 0)))
            _mark_started(context, pid, msg)
            return client_train(spec, pid, msg, target)
        finally:
            target.close()


def open_board(target: Any, context: Context, pid: int, rnd: int) -> None:
    """Connects target (HELLO). A board whose link is dead (it was killed, lost power) is brought back: on the run's
    own machine (`octo fleet run`, which started the boards) by asking the run to start it again as it started it
    (the `revive-PID-ROUND` marker; the run answers `revived-PID-ROUND`), elsewhere (a real board next to `octo
    fleet supernode`) by opening its port again for REOPEN_S seconds (the board powered up, the port came back)."""
    from host_tools.fleet.deploy import REVIVE_WAIT_S  # noqa: PLC0415

    try:
        target.open()
        return
    except OctoError as exc:
        target.close_client()
        dead = exc
    settings = run_settings(context)
    out = Path(str(settings.get("out", "")))
    if settings.get("revive") and out.is_dir():
        (out / f"revive-{pid}-{rnd}").touch()
        t_end = time.monotonic() + REVIVE_WAIT_S
        while not (out / f"revived-{pid}-{rnd}").exists():
            if time.monotonic() > t_end:
                raise OctoError(f"board {pid} is dead ({dead}) and was not started again within "
                                f"{REVIVE_WAIT_S:.0f} s")
            time.sleep(0.05)
        target.open()
        return
    t_end = time.monotonic() + REOPEN_S
    while time.monotonic() < t_end:
        time.sleep(REOPEN_POLL_S)
        try:
            target.open()
            return
        except OctoError:
            target.close_client()
    raise OctoError(f"board {pid} did not come back within {REOPEN_S:.0f} s: {dead}")


def _mark_started(context: Context, pid: int, msg: Message) -> None:
    """On the run's own machine (`octo fleet run`): a file saying this board's round has started, for faults. A board
    with a fault planned for this round (`--fault`, a test aid) waits here until the fault has fired."""
    from host_tools.fleet.deploy import FAULT_WAIT_S  # noqa: PLC0415

    out = Path(str(run_settings(context).get("out", "")))
    if out.is_dir():
        rnd = int(msg.content["config"].get("server-round", 0))
        (out / f"started-{pid}-{rnd}").touch()
        if (out / f"expect-fault-{pid}-{rnd}").exists():
            t_end = time.monotonic() + FAULT_WAIT_S
            while not (out / f"fault-{pid}-{rnd}").exists() and time.monotonic() < t_end:
                time.sleep(0.05)


def child_processes(ppid: int) -> list[dict[str, Any]]:
    """The live children of ppid (Linux /proc): pid and command line."""
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                found.append({"pid": int(d.name), "cmdline": (d / "cmdline").read_bytes().decode(errors="replace")})
        except (OSError, ValueError, IndexError):
            continue
    return found


serverapp = ServerApp()


def _record_processes(out_dir: Path) -> None:
    """Flower may end this process without unwinding (its parent gone): octo stops it and its children then."""
    me = {"pid": os.getpid(), "cmdline": Path("/proc/self/cmdline").read_bytes().decode(errors="replace")}
    (out_dir / "serverapp-children.json").write_text(json.dumps([*child_processes(os.getpid()), me]))


@serverapp.main()
def main(grid: Grid, context: Context) -> None:
    """Flower's strategy over the SuperNodes that connected, or split learning (mode ``split``); results into the
    run's folder."""
    from host_tools.fleet.sim import Evaluator  # noqa: PLC0415

    cfg = run_settings(context)
    if cfg.get("mode") == "split":
        split_main(grid, cfg)
        return
    spec = FleetSpec(**cfg["spec"])
    out_dir = Path(cfg["out"])
    deadline = time.monotonic() + NODES_WAIT_S
    while len(list(grid.get_node_ids())) < int(cfg["nodes"]) and time.monotonic() < deadline:
        time.sleep(0.5)

    def on_round(rnd: int) -> None:
        (out_dir / "progress.json").write_text(json.dumps({"round": rnd, "time": time.time()}))

    ev = Evaluator(SimpleNamespace(plan=spec.plan()), spec, Path(cfg["eval"]))
    _record_processes(out_dir)
    out: dict[str, Any] = {}
    try:
        initial = ev.initial()
        run_strategy(grid, spec, strategy=cfg["strategy"], rounds=int(cfg["rounds"]), initial=initial, evaluate=ev,
                     fraction=float(cfg["fraction"]), min_nodes=2, round_timeout_s=float(cfg["round_timeout_s"]),
                     out=out, tally=Tally(on_round=on_round))
    finally:
        ev.close()
    tally = out["tally"]
    doc = {"evals": {str(r): list(v) for r, v in out["evals"].items()},
           "train_metrics": {str(r): m for r, m in out["train_metrics"].items()},
           "tally": {str(r): t for r, t in tally.rounds.items()}}
    np.savez(out_dir / "final.npz", **out["final"])
    write_result(out_dir, doc)


def write_result(out_dir: Path, doc: dict[str, Any]) -> None:
    """result.json, written whole (octo ends the run as soon as it exists)."""
    tmp = out_dir / "result.json.tmp"
    tmp.write_text(json.dumps(doc, default=float))
    tmp.replace(out_dir / "result.json")


def split_main(grid: Grid, cfg: dict[str, Any]) -> None:
    """Split learning: `octo collab`'s loop (host_tools/collab/run.py) with the cloud half here and a RemoteSession
    per SuperNode's board; the octo.collab/1 metrics into the run's result.json, its progress lines into say.log."""
    from converter.train_plan import TrainBuild, TrainConfig  # noqa: PLC0415
    from host_tools.board.target import Target  # noqa: PLC0415
    from host_tools.collab.run import CollabOptions, run_collab  # noqa: PLC0415
    from host_tools.services.collab import CodecSpec  # noqa: PLC0415

    s = cfg["split"]
    out_dir = Path(cfg["out"])
    _record_processes(out_dir)
    # the cloud's TensorFlow (seconds to import) loads while the SuperNodes answer their first messages
    threading.Thread(target=importlib.import_module, args=("tensorflow",), daemon=True).start()
    train_dir = Path(s["train_dir"])
    tb = TrainBuild(train_dir, json.loads((train_dir / "train_plan.json").read_text()),
                    TrainConfig(**s["train_config"]))
    spec = CodecSpec(**{**s["codec"], "stripe": tuple(s["codec"]["stripe"])})
    opts = CollabOptions(**{**s["options"], "telemetry": Path(s["options"]["telemetry"])
                            if s["options"]["telemetry"] else None})
    with np.load(out_dir / "split-data.npz") as z:
        train_xy = (z["x"], z["y"])
        eval_xy = (z["ex"], z["ey"]) if "ex" in z.files else None
    board = str(s["board"])
    virtual = board != "host" and split.board_is_virtual(board)

    def say(line: str) -> None:
        with (out_dir / "say.log").open("a") as fh:
            fh.write(line + "\n")

    def run(sessions: Any) -> dict[str, Any]:
        targets = []
        for sess in sessions:  # what the metrics need of a target: its kind and timer (from its HELLO)
            t = Target(board, lambda: "", lambda: None, virtual)
            t.timer_hz, t.cpu_hz = int(sess.hello_reply["timer_hz"]), int(sess.hello_reply["cpu_hz"])
            targets.append(t)
        return run_collab(targets, tb, train_xy, eval_xy, spec, opts, say, Path(s["run_dir"]), sessions)

    try:
        metrics = split.serve(grid, int(cfg["nodes"]), run, opts.measure, float(cfg["round_timeout_s"]))
    except OctoError as e:  # octo prints say.log: the reason reaches the user, not only Flower's log
        say(f"split learning failed: {e}")
        raise
    write_result(out_dir, metrics)
