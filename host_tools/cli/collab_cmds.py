"""`octo collab`: split (collaborative) learning between boards and a TensorFlow "cloud" (docs/SGQ.md,
section 8). Heavy modules (numpy, TensorFlow, the converter, the targets) are imported inside the
command so `octo --help` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converter import toollog
from host_tools.errors import OctoError
from host_tools.output import Output

if TYPE_CHECKING:
    from converter.train_plan import TrainBuild
    from host_tools.collab.run import SplitJob

DATA_HINT = "an .npz with 'x' (float32 NHWC samples) and 'y' (integer class labels)"


def parse_stripe(text: str) -> tuple[int, int]:
    """"2x0" -> (2, 0): stripe rows x columns, 0 = the full height/width."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise OctoError(f"--stripe {text!r}: use ROWSxCOLS, e.g. 2x0 (2-row bands) or 1x1 (1x1xC columns)")
    return int(parts[0]), int(parts[1])


def split_classes(model_dir: Path, plan: dict[str, Any]) -> int:
    """Checks that the layers after the split can run in the cloud (a chain of ops the Keras rebuild
    supports, ending in the classifier) without importing TensorFlow; returns the class count."""
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415
    from converter.train_export import KERAS_OPS  # noqa: PLC0415

    g = parse_tflite((model_dir / "model.tflite").read_bytes(), str(model_dir))
    split_op = int(plan["layers"][-1]["op_index"])
    tail = [op for op in g.ops if op.index > split_op]
    if tail and tail[-1].kind == "SOFTMAX":
        tail = tail[:-1]
    if not tail:
        raise OctoError(f"--split {plan['split']}: no layer is left for the cloud after it",
                        hint="split at an earlier layer (the cloud needs at least the classifier)")
    bad = [op.label(g) for op in tail if op.kind not in KERAS_OPS]
    if bad:
        raise OctoError(f"--split {plan['split']}: the cloud cannot run {', '.join(bad)}",
                        hint=f"the cloud half runs {', '.join(KERAS_OPS)}")
    return int(g.tensors[g.outputs[0]].shape[-1])


def prepare_split_build(args: argparse.Namespace, board_name: str) -> TrainBuild:
    from converter.train_plan import TrainConfig, prepare_training  # noqa: PLC0415
    from host_tools.cli.train_cmds import _model_dir  # noqa: PLC0415

    model_dir = _model_dir(args)
    if not args.split:
        raise OctoError("--split is required: the name of the last layer the boards run (e.g. conv2)")
    if args.update == "auto":
        raise OctoError("--update auto is for `octo train`; split learning takes all, bias or last:N")
    ram = getattr(args, "init", "converted") == "random" and args.update != "all"  # random weights need RAM
    cfg = TrainConfig(precision="int8", batch=args.batch, update=args.update, split=args.split, frozen_in_ram=ram)
    from host_tools.board.boards import sram_budget  # noqa: PLC0415

    return prepare_training(model_dir, cfg, board_name, sram_bytes=sram_budget(board_name))


def prepare_split_run(args: argparse.Namespace, board_name: str) -> SplitJob:
    """The split-learning run the flags select (training build, codec, data, options): `octo collab` and `octo
    fleet run --mode split` run the same."""
    from host_tools.cli.train_cmds import _default_file  # noqa: PLC0415
    from host_tools.collab.run import CollabOptions, SplitJob, default_lr  # noqa: PLC0415
    from host_tools.services.collab import CodecSpec  # noqa: PLC0415
    from host_tools.train.defaults import DEFAULT_LAC, DEFAULT_PRC  # noqa: PLC0415
    from host_tools.train.run import load_dataset  # noqa: PLC0415

    spec = CodecSpec(args.codec, args.bits, args.groups, parse_stripe(args.stripe), args.gradient_rounding,
                     args.gradient_bits, bool(getattr(args, "clip", False)), bool(getattr(args, "entropy", False)))
    tb = prepare_split_build(args, board_name)
    channels = int(tb.plan["split_shape"][-1])
    if spec.name != "fp32" and args.groups > channels:
        raise OctoError(f"--groups {args.groups}: the split tensor ({args.split}) has {channels} channels; "
                        f"use 1..{channels}")
    model_dir = Path(args.model)
    classes = split_classes(model_dir, tb.plan)
    data_plan = {**tb.plan, "classes": classes}  # the labels are the cloud's classes
    data = _default_file(args.data, model_dir, "train.npz")
    if data is None:
        raise OctoError(f"no training data: {model_dir / 'train.npz'} does not exist",
                        hint=f"pass --data with {DATA_HINT}")
    train_xy = load_dataset(data, data_plan)
    eval_path = _default_file(args.eval, model_dir, "eval.npz")
    eval_xy = load_dataset(eval_path, data_plan) if eval_path else None
    run_dir = Path(args.run_dir) if args.run_dir else tb.dir / "collab"
    opts = CollabOptions(
        epochs=args.epochs, seed=args.seed, init=args.init, lac=DEFAULT_LAC if args.lac is None else args.lac,
        prc=DEFAULT_PRC if args.prc is None else args.prc,
        lr=default_lr(args.init) if args.lr is None else args.lr, cloud_lr=args.cloud_lr,
        schedule=args.schedule,
        momentum=args.momentum, weight_decay=args.weight_decay, prc_k=args.prc_k, lac_l2=args.lac_l2,
        measure=args.measure, telemetry=Path(args.telemetry) if args.telemetry else None,
        progress=toollog.err().isatty() and args.json != "-", model=str(model_dir))
    return SplitJob(tb, spec, train_xy, eval_xy, opts, run_dir, data, eval_path)


def describe_split_run(job: SplitJob, boards: int, board_name: str) -> str:
    n_eval = len(job.eval_xy[1]) if job.eval_xy is not None else 0
    shape = "x".join(str(v) for v in job.tb.plan["split_shape"])
    return (f"split learning {job.opts.model} at {job.tb.config.split} ({shape} per sample) with {boards} board(s) on "
            f"{board_name}, codec {job.spec.label}: {len(job.train_xy[1])} samples from {job.data}"
            + (f", {n_eval} eval samples from {job.eval_path}" if job.eval_xy is not None else ", no eval set")
            + f", {job.opts.epochs} epoch(s)")


def cmd_collab(args: argparse.Namespace) -> int:
    from host_tools.cli.train_cmds import board_name_of  # noqa: PLC0415
    from host_tools.collab.run import open_boards, run_collab  # noqa: PLC0415

    out = Output(args.json)
    board_name = board_name_of(args)
    job = prepare_split_run(args, board_name)
    tb, spec, train_xy, eval_xy, opts, run_dir = job.tb, job.spec, job.train_xy, job.eval_xy, job.opts, job.run_dir
    ports = [p for p in (args.port or "").split(",") if p]
    toollog.say(describe_split_run(job, args.boards, board_name))
    with open_boards(tb, board_name, args.boards, ports, toollog.say) as targets:
        if args.engine == "flower":
            from host_tools.fleet.split import run_collab_on_flower  # noqa: PLC0415

            toollog.say("engine: Flower simulation, one ClientApp per board, the cloud in the ServerApp")
            metrics = run_collab_on_flower(
                targets, lambda sessions: run_collab(targets, tb, train_xy, eval_xy, spec, opts, toollog.say, run_dir,
                                                     sessions),
                opts.measure)
            metrics["engine"] = "flower"
        else:
            metrics = run_collab(targets, tb, train_xy, eval_xy, spec, opts, toollog.say, run_dir)
            metrics["engine"] = "direct"
    print_summary(out, metrics)
    out.emit("octo.collab/1", metrics)
    return 0


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def print_summary(out: Output, m: dict[str, Any]) -> None:
    out.say(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'eval acc':>8} {'up B/smp':>9} {'down B/smp':>10} "
            f"{'feat relL2':>10} {'grad relL2':>10} {'seconds':>8}")
    for e in m["epochs"]:
        b = e["bytes_per_sample"]
        out.say(f"{e['epoch']:>5} {_f(e['train_loss'], '.4f'):>10} {_f(e['train_accuracy'], '.4f'):>9} "
                f"{_f(e['eval_accuracy'], '.4f'):>8} {_f(b['up_wire'], '.1f'):>9} {_f(b['down_wire'], '.1f'):>10} "
                f"{_f(e['features']['rel_l2'], '.4f'):>10} {_f(e['gradients']['rel_l2'], '.4f'):>10} "
                f"{e['seconds']:>8.1f}")
    fin = m["final"]
    per = ", ".join(f"{a:.4f}" for a in fin["eval_accuracy_per_board"])
    out.say(f"final eval accuracy {_f(fin['eval_accuracy'], '.4f')} (mean of {m['boards']} board(s): {per}) after "
            f"{m['steps']} board steps, codec {m['codec']['name']}"
            + (f" {m['codec']['bits']} bits" if m["codec"]["name"] != "fp32" else "")
            + (f" ({m['codec']['gradient_bits']}-bit gradients)" if "gradient_bits" in m["codec"] else "")
            + (", clipped ranges" if m["codec"].get("clip") else "")
            + (", range-coded" if m["codec"].get("entropy") else ""))
    b = m["bytes_per_sample"]
    ratio = b["ratio_vs_fp32_payload"]
    out.say(f"per sample: features {_f(b['up_payload'], '.1f')} B payload / {_f(b['up_wire'], '.1f')} B on the wire "
            f"up, gradients {_f(b['down_payload'], '.1f')} B payload / {_f(b['down_wire'], '.1f')} B on the wire down "
            f"(fp32 payload {b['fp32_payload']:.1f} B: {_f(ratio['up'], '.2f')}x / {_f(ratio['down'], '.2f')}x)")
    dev = m["device"]
    costs = dev["instructions_per_sample"] or dev["cycles_per_sample"]
    if costs:
        unit = "instructions" if dev["instructions_per_sample"] else "cycles"
        out.say(f"device {unit} per sample: " + ", ".join(f"{k} {v:,.0f}" for k, v in costs.items()))
    out.say(f"device training SRAM {dev['peak_training_sram_bytes']:,} B (split buffers "
            f"{dev['memory'].get('collab', 0):,} B); telemetry {m['telemetry']}")
