"""`octo fleet sim|run|supernode`: federated INT8 training on Flower (docs/FLEET.md). flwr and Ray are imported
inside the commands (deployment mode runs Flower in its own processes), so `octo --help` stays instant."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from converter import toollog
from host_tools.errors import OctoError
from host_tools.output import Output


def add_fleet_parser(add: Any, positive_int: Any, learning_rate: Any, split_options: Any, split_training: Any) -> None:
    """`octo fleet`; split_options / split_training add `octo collab`'s split-learning options (cli/__init__.py) to
    `octo fleet run --mode split`."""
    p = add("fleet", cmd_fleet, "federated learning on Flower: one Flower client per board, each training with "
            "Octo's engine over its link (docs/FLEET.md)")
    sub = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    s = sub.add_parser("sim", help="a Flower simulation (Ray backend): N clients on the native trainer",
                       description="Flower simulation engine (Ray backend): --clients ClientApps, each training its "
                       "own non-IID partition with Octo's engine (--target host: the boards' C compiled natively), "
                       "a ServerApp with Flower's FedAvg/FedAdam; updates travel as low-bit deltas (--uplink)")
    s.set_defaults(func=cmd_fleet_sim)
    s.add_argument("model", help="a folder written by `octo convert` (with train.npz / eval.npz)")
    s.add_argument("--clients", type=positive_int, default=4, help="simulated clients (SuperNodes; default 4)")
    s.add_argument("--target", choices=["host"], default="host",
                   help="host = the training engine compiled natively (the only simulation target)")
    _common_training_args(s, positive_int, learning_rate, "client")
    s.add_argument("--ray-cpus", type=positive_int, default=2, help="CPUs Ray may use (default 2)")
    s.add_argument("--json", metavar="FILE", help="write the octo.fleet/1 metrics to FILE ('-' = stdout)")
    add_run_parser(sub, positive_int, learning_rate, split_options, split_training)
    add_supernode_parser(sub)


def _common_training_args(s: Any, positive_int: Any, learning_rate: Any, who: str = "board") -> None:
    s.add_argument("--rounds", type=positive_int, default=10, help="federation rounds (default 10)")
    s.add_argument("--precision", choices=["int8", "fp32"], default="int8",
                   help=f"int8 = Octo INT8 training on the {who}s (default); fp32 = the float baseline")
    s.add_argument("--strategy", choices=["fedavg", "fedadam"], default="fedavg",
                   help="Flower strategy (default fedavg)")
    s.add_argument("--local-epochs", type=positive_int, default=2, help=f"epochs over a {who}'s partition per "
                   "round (default 2)")
    s.add_argument("--batch", type=positive_int, default=16, help="samples per training step (default 16)")
    s.add_argument("--lr", type=learning_rate, default=None,
                   help=f"{who}s' SGD learning rate (default 0.05 from --init random, 0.01 from converted)")
    s.add_argument("--alpha", type=float, default=0.5,
                   help="Dirichlet concentration of the class split (default 0.5; 0 = IID)")
    s.add_argument("--partition", choices=list(PARTITIONS), default="dirichlet",
                   help=f"how {who}s split the data: dirichlet over classes (--alpha; default), iid, or group = one "
                   "group per {who} from the .npz's 'g' array (KWS: one synthetic voice each)".replace("{who}", who))
    s.add_argument("--fraction", type=float, default=1.0, help=f"fraction of {who}s sampled per round (default 1)")
    s.add_argument("--init", choices=["random", "converted"], default="random",
                   help="initial global model: fresh weights from --seed (default) or the converted model's")
    s.add_argument("--uplink", choices=UPLINKS, default=DEFAULT_UPLINK,
                   help=f"updates as deltas of 8, 4, 3 or 2 bits per weight with a per-tensor scale, stochastically "
                   f"rounded (default {DEFAULT_UPLINK}: 10x fewer bytes than FP32 at the FP32 federation's accuracy, "
                   "bench/results/fleet.json), or as FP32 weights")
    s.add_argument("--seed", type=int, default=0, help="seed of partitions, batch order and init (default 0)")
    s.add_argument("--data", help=f"training .npz (default MODEL/train.npz), partitioned over the {who}s")
    s.add_argument("--eval", help="evaluation .npz for the global model (default MODEL/eval.npz)")


UPLINKS = ["int8", "int4", "int3", "int2", "fp32"]
DEFAULT_UPLINK = "int3"
PARTITIONS = ("dirichlet", "iid", "group")  # host_tools/fleet/data.py checks the same names (numpy: not at --help)


def uplink_options(uplink: str) -> dict[str, Any]:
    """SimOptions fields of an --uplink choice."""
    return {"compress": uplink != "fp32", "uplink_bits": int(uplink[3:]) if uplink != "fp32" else 8}


class _Recording:
    """A parser whose add_argument remembers the options it made: which flag, and its default."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.options: dict[str, tuple[str, Any]] = {}  # dest -> (flag, default)

    def add_argument(self, *args: Any, **kw: Any) -> argparse.Action:
        action = self.parser.add_argument(*args, **kw)
        self.options[action.dest] = (action.option_strings[-1] if action.option_strings[-1].startswith("--")
                                     else action.option_strings[0], action.default)
        return action


FED_ONLY = ("rounds", "precision", "strategy", "local_epochs", "alpha", "partition", "fraction", "uplink")


def add_run_parser(sub: Any, positive_int: Any, learning_rate: Any, split_options: Any = None,
                   split_training: Any = None) -> None:
    s = sub.add_parser(
        "run", help="a local Flower deployment: a SuperLink and one SuperNode per board (QEMU or native trainer)",
        description="Starts a local Flower deployment with Flower's own processes: flower-superlink (TLS with a "
        "certificate made for the run, SuperNode authentication) and --boards flower-supernode processes, each "
        "driving one private board (a QEMU virtual board, or the native trainer with --board host) through Octo's "
        "ClientApp; the ServerApp (Flower's FedAvg/FedAdam, low-bit delta uplink) is submitted with `flwr run`. "
        "Ports are chosen free; every process is stopped on exit, error or Ctrl-C. Logs, keys and certificates "
        "live in a folder under the state dir (removed at the end unless --keep). --mode split runs split "
        "learning (`octo collab`'s loop, the cloud half in the ServerApp) on the same deployment.",
        epilog="examples: octo fleet run build/digits --boards 4 --board virtual-m4 --rounds 5 --json f.json; "
        "octo fleet run build/digits --mode split --split conv2 --codec sgq --bits 4 --boards 4 --json s.json")
    s.set_defaults(func=cmd_fleet_run)
    s.add_argument("model", help="a folder written by `octo convert` (with train.npz / eval.npz)")
    s.add_argument("--mode", choices=["fed", "split"], default="fed",
                   help="fed (default): federated learning (Flower's FedAvg/FedAdam over the boards); split: split "
                   "learning as `octo collab` (--split, --codec, --epochs, ...): the boards run the layers up to "
                   "--split, the cloud half runs in the ServerApp (writes octo.collab/1)")
    s.add_argument("--boards", type=positive_int, default=4, help="boards, one SuperNode each (default 4)")
    s.add_argument("--board", default="virtual-m4",
                   help="virtual board to run in QEMU (default virtual-m4), or host = the native trainer")
    fed = _Recording(s)
    _common_training_args(fed, positive_int, learning_rate)
    for dest in ("init", "lr"):  # both modes; defaults by mode
        fed.options.pop(dest)
    s.set_defaults(init=None)
    s.add_argument("--insecure", action="store_true",
                   help="SuperLink and SuperNodes without TLS, hence without SuperNode authentication (Flower "
                   "requires TLS for it); default: TLS with a CA made for this run, and authentication")
    s.add_argument("--round-timeout", type=float, default=600.0,
                   help="seconds Flower waits for a round's replies before it aggregates those it has; --mode split: "
                   "for one message's reply (default 600)")
    s.add_argument("--fault", action="append", default=[], metavar="KIND:BOARD@ROUND",
                   help="fault injection for tests: kill:1@2 stops board 1 during round 2 (its ClientApp finds the "
                   "link dead the next round and has the board started again), reset:1@2 power-cycles it (it "
                   "rejoins the next round), node:1@2 kills its SuperNode; boards count from 0; repeatable")
    s.add_argument("--keep", action="store_true", help="keep the run's folder (logs, keys, certificates)")
    s.add_argument("--superlink", metavar="HOST:PORT",
                   help="submit to an existing SuperLink on this machine instead (its SuperNodes run `octo fleet "
                   "supernode` next to their boards); waits for --boards of them; --board names their board type")
    s.add_argument("--root-cert", metavar="FILE", help="with --superlink: the CA certificate of its TLS")
    s.add_argument("--json", metavar="FILE", help="write the octo.fleet/1 metrics (octo.collab/1 with --mode split) "
                   "to FILE ('-' = stdout)")
    split_only: dict[str, tuple[str, Any]] = {}
    if split_options is not None:
        split = _Recording(s.add_argument_group("split learning (--mode split; the options of octo collab)"))
        split_options(split, required=False)
        split_training(split, common=False)
        split_only = split.options
    fed_only = {d: fed.options[d] for d in FED_ONLY}
    # fed-only and split-only options default to None, so that one given in the other mode is caught
    s.set_defaults(**dict.fromkeys(fed_only, None), **dict.fromkeys(split_only, None),
                   fed_options=fed_only, split_options=split_only)


def add_supernode_parser(sub: Any) -> None:
    s = sub.add_parser(
        "supernode", help="one Flower SuperNode next to a real board: its ClientApp drives the board on --port",
        description="Runs flower-supernode on the machine a board is plugged into; the SuperNode's ClientApp "
        "(Octo's, from the run the SuperLink sends) opens the board on --port for every round. The board runs "
        "the Octo training firmware for the run's training build (`octo train --board ... ` builds and flashes "
        "it). The SuperLink's administrator registers the public half of --auth-key (`flwr supernode register "
        "k.pem.pub`).",
        epilog="example: octo fleet supernode --superlink 10.0.0.5:9093 --port /dev/ttyACM0 --auth-key k.pem "
        "--root-cert ca.pem --model build/digits")
    s.set_defaults(func=cmd_fleet_supernode)
    s.add_argument("--superlink", required=True, metavar="HOST:PORT", help="the SuperLink's address")
    s.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyACM0) or a socket:// URL")
    s.add_argument("--auth-key", metavar="FILE",
                   help="this SuperNode's private key (EC P-384, OpenSSH format: ssh-keygen -t ecdsa -b 384 -f k)")
    s.add_argument("--root-cert", metavar="FILE", help="CA certificate that signed the SuperLink's TLS certificate")
    s.add_argument("--insecure", action="store_true", help="connect without TLS (a SuperLink started --insecure)")
    s.add_argument("--board", default="nucleo-f746zg",
                   help="the board's name (default nucleo-f746zg); host = a native trainer listening on --port")
    s.add_argument("--partition-id", type=int, default=0, help="this board's data partition (default 0)")
    s.add_argument("--model", help="the model folder on this machine, if not at the same path as on the server")
    s.add_argument("--dry-run", action="store_true", help="print the flower-supernode command line and exit")


def cmd_fleet(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires an action
    raise OctoError("name an action: octo fleet sim|run|supernode ...")


def cmd_fleet_sim(args: argparse.Namespace) -> int:
    from host_tools.fleet.sim import SimOptions, run_sim  # noqa: PLC0415

    if not 0.0 < args.fraction <= 1.0:
        raise OctoError(f"--fraction must be in (0, 1], got {args.fraction}")
    lr = args.lr if args.lr is not None else (0.05 if args.init == "random" else 0.01)
    opts = SimOptions(model_dir=Path(args.model), clients=args.clients, rounds=args.rounds,
                      precision=args.precision, strategy=args.strategy, epochs=args.local_epochs, batch=args.batch,
                      lr=lr, alpha=args.alpha, seed=args.seed, fraction=args.fraction, init=args.init,
                      **uplink_options(args.uplink), partition=args.partition,
                      data=Path(args.data) if args.data else None,
                      eval=Path(args.eval) if args.eval else None, ray_cpus=args.ray_cpus)
    doc = run_sim(opts, toollog.say)
    out = Output(args.json)
    print_summary(out, doc)
    out.emit(doc.pop("schema"), doc)
    return 0


def _mode_options(args: argparse.Namespace) -> None:
    """Checks that no option of the other mode was given and fills this mode's defaults."""
    mine, other = (args.fed_options, args.split_options) if args.mode == "fed" else (args.split_options,
                                                                                      args.fed_options)
    given = [flag for dest, (flag, _d) in other.items() if getattr(args, dest) is not None]
    if given:
        if args.mode == "fed":
            raise OctoError(f"{', '.join(given)}: split-learning option(s); add --mode split")
        raise OctoError(f"{', '.join(given)}: federated-learning option(s), not for --mode split",
                        hint="split learning trains --epochs over each board's shard (options as octo collab)")
    for dest, (_flag, default) in mine.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    if args.init is None:
        args.init = "random" if args.mode == "fed" else "converted"


def cmd_fleet_run(args: argparse.Namespace) -> int:
    from host_tools.fleet.deploy import RunOptions, parse_fault, run_fleet  # noqa: PLC0415

    _mode_options(args)
    if args.mode == "split":
        return _cmd_fleet_run_split(args)
    if not 0.0 < args.fraction <= 1.0:
        raise OctoError(f"--fraction must be in (0, 1], got {args.fraction}")
    if args.round_timeout <= 0:
        raise OctoError(f"--round-timeout must be > 0, got {args.round_timeout}")
    if args.board != "host":
        from host_tools.board.boards import get_board  # noqa: PLC0415

        get_board(args.board)
    faults = [parse_fault(f) for f in args.fault]
    if args.root_cert and not args.superlink:
        raise OctoError("--root-cert goes with --superlink (octo fleet run makes its own CA otherwise)")
    if args.root_cert and not Path(args.root_cert).is_file():
        raise OctoError(f"--root-cert {args.root_cert}: no such file")
    if args.superlink:
        _check_address(args.superlink)
    lr = args.lr if args.lr is not None else (0.05 if args.init == "random" else 0.01)
    opts = RunOptions(model_dir=Path(args.model), clients=args.boards, rounds=args.rounds,
                      precision=args.precision, strategy=args.strategy, epochs=args.local_epochs, batch=args.batch,
                      lr=lr, alpha=args.alpha, seed=args.seed, fraction=args.fraction, init=args.init,
                      **uplink_options(args.uplink), partition=args.partition,
                      data=Path(args.data) if args.data else None,
                      eval=Path(args.eval) if args.eval else None, board=args.board, insecure=args.insecure,
                      round_timeout_s=args.round_timeout, faults=faults, keep=args.keep,
                      superlink=args.superlink or "", root_cert=args.root_cert or "")
    doc = run_fleet(opts, toollog.say)
    out = Output(args.json)
    print_summary(out, doc)
    out.emit(doc.pop("schema"), doc)
    return 0


def _cmd_fleet_run_split(args: argparse.Namespace) -> int:
    """`octo fleet run --mode split`: what `octo collab` would run, on a local Flower deployment."""
    from host_tools.cli import collab_cmds  # noqa: PLC0415
    from host_tools.fleet.deploy import SplitRunOptions, run_split_fleet  # noqa: PLC0415

    if not args.split:
        raise OctoError("--mode split needs --split LAYER: the last layer the boards run (e.g. conv2)")
    for flag, given in (("--fault", args.fault), ("--superlink", args.superlink), ("--root-cert", args.root_cert)):
        if given:
            raise OctoError(f"{flag} is not available with --mode split (federated learning only)",
                            hint="split learning needs every board for every step: a lost board ends the run")
    if args.round_timeout <= 0:
        raise OctoError(f"--round-timeout must be > 0, got {args.round_timeout}")
    if args.board != "host":
        from host_tools.board.boards import get_board  # noqa: PLC0415

        board = get_board(args.board)
        if not board.virtual:
            raise OctoError(f"--mode split runs on virtual boards or --board host, not on {board.name} (yet)",
                            hint="octo collab --port A,B,... drives real boards directly")
        args.board = board.name
    job = collab_cmds.prepare_split_run(args, args.board)
    toollog.say(collab_cmds.describe_split_run(job, args.boards, args.board))
    metrics = run_split_fleet(SplitRunOptions(boards=args.boards, board=args.board, insecure=args.insecure,
                                              reply_timeout_s=args.round_timeout, keep=args.keep), job, toollog.say)
    out = Output(args.json)
    collab_cmds.print_summary(out, metrics)
    out.emit("octo.collab/1", metrics)
    return 0


def _check_address(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise OctoError(f"--superlink {address!r}: expected HOST:PORT")


def supernode_argv(args: argparse.Namespace) -> list[str]:
    """The flower-supernode command line of `octo fleet supernode` (checked, no side effects)."""
    from host_tools.fleet.deploy import free_port, supernode_command  # noqa: PLC0415

    _check_address(args.superlink)
    if args.insecure and args.root_cert:
        raise OctoError("--insecure and --root-cert exclude each other")
    if args.insecure and args.auth_key:
        raise OctoError("--insecure and --auth-key exclude each other (Flower authenticates SuperNodes over TLS only)")
    for flag, path in (("--auth-key", args.auth_key), ("--root-cert", args.root_cert)):
        if path and not Path(path).is_file():
            raise OctoError(f"{flag} {path}: no such file")
    if args.model and not (Path(args.model) / "model.tflite").exists():
        raise OctoError(f"--model {args.model} holds no converted model")
    if args.partition_id < 0:
        raise OctoError(f"--partition-id must be >= 0, got {args.partition_id}")
    if args.board != "host":
        from host_tools.board.boards import get_board  # noqa: PLC0415

        get_board(args.board)
    node: dict[str, Any] = {"partition-id": args.partition_id, "board": args.board, "port": args.port}
    if args.model:
        node["model-dir"] = str(Path(args.model).resolve())
    return supernode_command(args.superlink, node_config=node, runtime_port=free_port(),
                             auth_key=Path(args.auth_key).resolve() if args.auth_key else None,
                             root_cert=Path(args.root_cert).resolve() if args.root_cert else None,
                             insecure=args.insecure)


def cmd_fleet_supernode(args: argparse.Namespace) -> int:
    import os  # noqa: PLC0415
    import shlex  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    from host_tools.fleet.deploy import flower_env  # noqa: PLC0415

    argv = supernode_argv(args)
    if args.dry_run:
        print(shlex.join(argv))
        return 0
    env = flower_env(Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr"))
    toollog.say(f"SuperNode for {args.board} on {args.port}, SuperLink {args.superlink} (Ctrl-C stops it)")
    proc = subprocess.Popen(argv, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def print_summary(out: Output, doc: dict[str, Any]) -> None:
    out.say(f"{'round':>5} {'accuracy':>8} {'loss':>7} {'answered':>8} {'bytes up':>9} {'bytes down':>10} {'s':>6}")
    init = doc["initial"]
    if init["accuracy"] is not None:
        out.say(f"{0:>5} {init['accuracy']:>8.4f} {init['loss']:>7.4f}")
    for r in doc["per_round"]:
        acc = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"
        loss = f"{r['loss']:.4f}" if r["loss"] is not None else "-"
        sec = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        out.say(f"{r['round']:>5} {acc:>8} {loss:>7} {r['clients_answered']:>4}/{r['clients_sampled']:<3} "
                f"{r['bytes_up']:>9} {r['bytes_down']:>10} {sec:>6}")
    bpr = doc["bytes_per_round"]
    out.say(f"final accuracy {doc['final']['eval_accuracy']}; bytes per round up {bpr['up']:.0f}, down "
            f"{bpr['down']:.0f} ({doc['uplink']} uplink); wall {doc['wall_s']} s")
