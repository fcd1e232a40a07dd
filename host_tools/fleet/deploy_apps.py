"""The ClientApp and ServerApp of deployment mode (`octo fleet run`, `octo fleet supernode`), loaded by Flower's own
processes (flwr-serverapp, flwr-clientapp) from the Flower App that `host_tools.fleet.deploy` writes: its module
is one line, ``from host_tools.fleet.deploy_apps import clientapp, serverapp``.

What a run needs travels in Flower's configs:
- run config ``octo-run``: JSON of the FleetSpec (``spec``), the strategy, rounds, fraction, the eval set, the number
  of SuperNodes to wait for, and the folder where the ServerApp writes its results;
- node config (per SuperNode): ``partition-id``, ``board`` and ``port``: the serial port (or ``socket://`` URL) of the
  board this SuperNode drives, opened for every round; ``model-dir``: where the model folder is on that machine."""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from host_tools.fleet.apps import Tally, client_train, run_strategy
from host_tools.fleet.local import FleetSpec

NODES_WAIT_S = 120.0  # how long the ServerApp waits for all SuperNodes to connect before round 1


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
            target.open()
            _mark_started(context, pid, msg)
            return client_train(spec, pid, msg, target)
        finally:
            target.close()


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


@serverapp.main()
def main(grid: Grid, context: Context) -> None:
    """Flower's strategy over the SuperNodes that connected; results (JSON + final.npz) into the run's folder."""
    from host_tools.fleet.sim import Evaluator  # noqa: PLC0415

    cfg = run_settings(context)
    spec = FleetSpec(**cfg["spec"])
    out_dir = Path(cfg["out"])
    deadline = time.monotonic() + NODES_WAIT_S
    while len(list(grid.get_node_ids())) < int(cfg["nodes"]) and time.monotonic() < deadline:
        time.sleep(0.5)

    def on_round(rnd: int) -> None:
        (out_dir / "progress.json").write_text(json.dumps({"round": rnd, "time": time.time()}))

    ev = Evaluator(SimpleNamespace(plan=spec.plan()), spec, Path(cfg["eval"]))
    # Flower may end this process without unwinding (its parent gone): octo stops it and its children then
    me = {"pid": os.getpid(), "cmdline": Path("/proc/self/cmdline").read_bytes().decode(errors="replace")}
    (out_dir / "serverapp-children.json").write_text(json.dumps([*child_processes(os.getpid()), me]))
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
    (out_dir / "result.json").write_text(json.dumps(doc, default=float))
