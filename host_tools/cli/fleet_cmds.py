"""`octo fleet sim`: federated INT8 training on Flower (docs/FLEET.md). flwr and Ray are imported inside the
command, so `octo --help` stays instant."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from converter import toollog
from host_tools.errors import OctoError
from host_tools.output import Output


def add_fleet_parser(add: Any, positive_int: Any, learning_rate: Any) -> None:
    p = add("fleet", cmd_fleet, "federated learning on Flower: one Flower client per board, each training with "
            "Octo's engine over its link (docs/FLEET.md)")
    sub = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    s = sub.add_parser("sim", help="a Flower simulation (Ray backend): N clients on the native trainer",
                       description="Flower simulation engine (Ray backend): --clients ClientApps, each training its "
                       "own non-IID partition with Octo's engine (--target host: the boards' C compiled natively), "
                       "a ServerApp with Flower's FedAvg/FedAdam; updates travel as INT8 deltas")
    s.set_defaults(func=cmd_fleet_sim)
    s.add_argument("model", help="a folder written by `octo convert` (with train.npz / eval.npz)")
    s.add_argument("--clients", type=positive_int, default=4, help="simulated clients (SuperNodes; default 4)")
    s.add_argument("--rounds", type=positive_int, default=10, help="federation rounds (default 10)")
    s.add_argument("--target", choices=["host"], default="host",
                   help="host = the training engine compiled natively (the only simulation target)")
    s.add_argument("--precision", choices=["int8", "fp32"], default="int8",
                   help="int8 = Octo INT8 training on the clients (default); fp32 = the float baseline")
    s.add_argument("--strategy", choices=["fedavg", "fedadam"], default="fedavg",
                   help="Flower strategy (default fedavg)")
    s.add_argument("--local-epochs", type=positive_int, default=2, help="epochs over a client's partition per "
                   "round (default 2)")
    s.add_argument("--batch", type=positive_int, default=16, help="samples per training step (default 16)")
    s.add_argument("--lr", type=learning_rate, default=None,
                   help="clients' SGD learning rate (default 0.05 from --init random, 0.01 from converted)")
    s.add_argument("--alpha", type=float, default=0.5,
                   help="Dirichlet concentration of the class split (default 0.5; 0 = IID)")
    s.add_argument("--partition", choices=["dirichlet", "iid", "group"], default="dirichlet",
                   help="how clients split the data: dirichlet over classes (--alpha; default), iid, or group = one "
                   "group per client from the .npz's 'g' array (KWS: one synthetic voice per client)")
    s.add_argument("--fraction", type=float, default=1.0, help="fraction of clients sampled per round (default 1)")
    s.add_argument("--init", choices=["random", "converted"], default="random",
                   help="initial global model: fresh weights from --seed (default) or the converted model's")
    s.add_argument("--uplink", choices=["int8", "int4", "int3", "int2", "fp32"], default="int8",
                   help="updates as deltas of 8 (default), 4, 3 or 2 bits per weight with a per-tensor scale, "
                   "stochastically rounded, or as FP32 weights")
    s.add_argument("--seed", type=int, default=0, help="seed of partitions, batch order and init (default 0)")
    s.add_argument("--data", help="training .npz (default MODEL/train.npz), partitioned over the clients")
    s.add_argument("--eval", help="evaluation .npz for the global model (default MODEL/eval.npz)")
    s.add_argument("--ray-cpus", type=positive_int, default=2, help="CPUs Ray may use (default 2)")
    s.add_argument("--json", metavar="FILE", help="write the octo.fleet/1 metrics to FILE ('-' = stdout)")


def cmd_fleet(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires an action
    raise OctoError("name an action: octo fleet sim ...")


def cmd_fleet_sim(args: argparse.Namespace) -> int:
    from host_tools.fleet.sim import SimOptions, run_sim  # noqa: PLC0415

    if not 0.0 < args.fraction <= 1.0:
        raise OctoError(f"--fraction must be in (0, 1], got {args.fraction}")
    lr = args.lr if args.lr is not None else (0.05 if args.init == "random" else 0.01)
    opts = SimOptions(model_dir=Path(args.model), clients=args.clients, rounds=args.rounds,
                      precision=args.precision, strategy=args.strategy, epochs=args.local_epochs, batch=args.batch,
                      lr=lr, alpha=args.alpha, seed=args.seed, fraction=args.fraction, init=args.init,
                      compress=args.uplink != "fp32",
                      uplink_bits=int(args.uplink[3:]) if args.uplink != "fp32" else 8,
                      partition=args.partition, data=Path(args.data) if args.data else None,
                      eval=Path(args.eval) if args.eval else None, ray_cpus=args.ray_cpus)
    doc = run_sim(opts, toollog.say)
    out = Output(args.json)
    print_summary(out, doc)
    out.emit(doc.pop("schema"), doc)
    return 0


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
