"""`octo train | export`: on-device training (docs/TRAINING.md) and export of the trained weights.

Heavy modules (numpy, the converter, TFLM, the training target) are imported
inside the commands so `octo --help` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converter import toollog
from host_tools.errors import OctoError
from host_tools.output import Output

if TYPE_CHECKING:
    import numpy as np
if TYPE_CHECKING:  # a block of its own: isort groups a module that exists differently from one that does not yet
    from converter.train_plan import TrainBuild

CALIB_SAMPLES = 500          # representative inputs for the exported model's quantization
DATA_HINT = ("an .npz with 'x' (float32 NHWC samples) and 'y' (integer class labels; MSE models: optional, 0 normal "
             "/ 1 anomalous)")


def board_name_of(args: argparse.Namespace) -> str:
    """`--target host` -> "host"; otherwise --board (default virtual-m4), checked against the board table."""
    board = getattr(args, "board", None)
    if getattr(args, "target", "board") == "host":
        if board not in (None, "host"):
            raise OctoError(f"--target host trains natively; it cannot be combined with --board {board}")
        return "host"
    if board == "host":
        return "host"
    from host_tools.board.boards import get_board  # noqa: PLC0415

    return get_board(board or "virtual-m4").name


def _model_dir(args: argparse.Namespace) -> Path:
    model_dir = Path(args.model)
    if not (model_dir / "report.json").exists() or not (model_dir / "model.tflite").exists():
        raise OctoError(f"{model_dir} is not a converted model folder (needs report.json and model.tflite)",
                        hint=f"run `octo convert <model> -o {model_dir}` first")
    return model_dir


def prepare_build(args: argparse.Namespace, board_name: str) -> TrainBuild:
    """The training build (plan + generated C) of the configuration the flags select."""
    from converter.ir import ConvertError  # noqa: PLC0415
    from converter.train_plan import TrainConfig, fitting_batch, prepare_training  # noqa: PLC0415
    from host_tools.board.boards import sram_budget  # noqa: PLC0415
    from host_tools.train.defaults import BATCH  # noqa: PLC0415

    model_dir = _model_dir(args)
    sram = getattr(args, "sram", None)
    budget = sram if sram is not None else sram_budget(board_name)
    loss = getattr(args, "loss", "auto")
    update, choice, batch = args.update or "all", None, args.batch
    # MSE regression: the training data's 'y' holds per-sample targets (more than one dimension) rather than
    # labels; the build then stages them (TrainConfig.targets, docs/TRAINING.md "Losses")
    from host_tools.train.run import has_targets  # noqa: PLC0415

    targets = loss != "xent" and has_targets(_default_file(getattr(args, "data", None), model_dir, "train.npz"))
    tgt = {"targets": True} if targets else {}
    if args.update is None and budget is not None:  # the default: all, or auto when all fits at no batch
        full = fitting_batch(model_dir, TrainConfig(args.precision, 1, "all", loss=loss, **tgt), budget, 1,
                             strict=True)
        if full == 0:
            update = "auto"
            toollog.say(f"the full update does not fit {'the --sram budget' if sram is not None else board_name} "
                        "at any batch: --update auto chooses what trains (--update all insists)")
    # random init has no converted weights to keep in flash: frozen layers keep theirs in RAM (docs/TRAINING.md)
    extra = {"frozen_in_ram": True} if getattr(args, "init", "converted") == "random" and update != "all" else {}
    extra.update(tgt)
    report = getattr(args, "report", False)
    if update == "auto" or report:
        from converter.update_budget import choose_update, describe_update  # noqa: PLC0415

        model = (model_dir / "model.tflite").read_bytes()
        if update == "auto":
            if budget is None:
                raise OctoError("--update auto needs an SRAM budget", hint="pass --sram N (e.g. 200k) or a --board")
            for b in [batch] if batch is not None else [BATCH, 8, 4, 2, 1]:  # without --batch: the largest that fits
                try:
                    choice = choose_update(model, TrainConfig(args.precision, b, loss=loss, **extra), budget,
                                           model_dir.name)
                    batch = b
                    break
                except ConvertError:
                    if b == (batch if batch is not None else 1):
                        raise
            assert choice is not None
            update = choice.spec
    if batch is None:  # the default: BATCH, or the largest smaller batch that fits the board
        batch = BATCH if budget is None else fitting_batch(
            model_dir, TrainConfig(args.precision, BATCH, update, loss=loss, **extra), budget, BATCH)
    if batch != BATCH and args.batch is None:
        toollog.say(f"batch {batch}: the largest up to {BATCH} whose training plan fits "
                    f"{'the --sram budget' if sram is not None else board_name} (--batch chooses)")
    if report and choice is None:
        choice = describe_update(model, TrainConfig(args.precision, batch, update, loss=loss, **extra), budget,
                                 model_dir.name)
    cfg = TrainConfig(precision=args.precision, batch=batch, update=update, loss=loss, **extra)
    tb = prepare_training(model_dir, cfg, "the --sram budget" if sram is not None else board_name,
                          sram_bytes=budget)
    tb.update_choice = choice
    return tb


def _default_file(flag: str | None, model_dir: Path, name: str) -> Path | None:
    if flag:
        return Path(flag)
    path = model_dir / name
    return path if path.exists() else None


def _run_dir(args: argparse.Namespace, tb: TrainBuild) -> Path:
    return Path(args.run_dir) if getattr(args, "run_dir", None) else Path(tb.dir) / "run"


# -- train -------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from host_tools.board import lock  # noqa: PLC0415
    from host_tools.board.target import open_train_target  # noqa: PLC0415
    from host_tools.train.defaults import DEFAULT_LAC, DEFAULT_PRC, default_grad_rounding, default_lr  # noqa: PLC0415
    from host_tools.train.run import TrainOptions, load_dataset, normal_only, plan_loss, run_training  # noqa: PLC0415

    out = Output(args.json)
    board_name = board_name_of(args)
    tb = prepare_build(args, board_name)
    if args.report and tb.update_choice is not None:
        from converter.update_budget import report_lines  # noqa: PLC0415

        for line in report_lines(tb.update_choice):
            out.say(line)
    model_dir = Path(args.model)
    data = _default_file(args.data, model_dir, "train.npz")
    if data is None:
        raise OctoError(f"no training data: {model_dir / 'train.npz'} does not exist",
                        hint=f"pass --data with {DATA_HINT}")
    train_xy = load_dataset(data, tb.plan)
    if plan_loss(tb.plan) == "mse" and not tb.plan.get("targets"):  # an autoencoder learns what normal looks like
        train_xy, left_out = normal_only(train_xy)
        if left_out:
            toollog.say(f"MSE: training on the {len(train_xy[1])} normal samples of {data} (y == 0); {left_out} "
                        "anomalous ones (y == 1) left out")
        if not len(train_xy[1]):
            raise OctoError(f"{data} holds no normal samples (y == 0) to train the autoencoder on")
    eval_path = _default_file(args.eval, model_dir, "eval.npz")
    eval_xy = load_dataset(eval_path, tb.plan) if eval_path else None
    run_dir = _run_dir(args, tb)
    opts = TrainOptions(
        epochs=args.epochs, seed=args.seed, init=args.init, lac=DEFAULT_LAC if args.lac is None else args.lac,
        prc=DEFAULT_PRC if args.prc is None else args.prc, lr=default_lr(args.init) if args.lr is None else args.lr,
        grad_rounding=default_grad_rounding(args.init) if args.grad_rounding is None else args.grad_rounding,
        schedule=getattr(args, "schedule", "cosine"),
        momentum=args.momentum, weight_decay=args.weight_decay, prc_k=args.prc_k, lac_l2=args.lac_l2,
        checkpoint_every=args.checkpoint_every, resume=args.resume,
        telemetry=Path(args.telemetry) if args.telemetry else None,
        progress=toollog.err().isatty() and args.json != "-", model=str(model_dir))
    n_eval = len(eval_xy[1]) if eval_xy is not None else 0
    toollog.say(f"training {model_dir} ({tb.config.config_id}) on {board_name}: {len(train_xy[1])} samples from {data}"
         + (f", {n_eval} eval samples from {eval_path}" if eval_xy is not None else ", no eval set")
         + f", {args.epochs} epoch(s); run dir {run_dir}")
    with lock.hold(lock.run_dir_key(run_dir), f"run folder {run_dir}"), \
            open_train_target(tb, board_name, args.port, toollog.say) as target:
        metrics = run_training(target, tb, train_xy, eval_xy, opts, toollog.say, run_dir)
    if tb.update_choice is not None:
        metrics["update_choice"] = tb.update_choice.to_json()
    print_summary(out, metrics)
    out.emit("octo.train/1", metrics)
    return 0


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def print_summary(out: Output, m: dict[str, Any]) -> None:
    if m["config"].get("loss") == "mse":
        print_summary_mse(out, m)
        return
    out.say(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'eval loss':>9} {'eval acc':>8} {'steps':>6} "
            f"{'seconds':>8}")
    for e in m["epochs"]:
        out.say(f"{e['epoch']:>5} {_f(e['train_loss'], '.4f'):>10} {_f(e['train_accuracy'], '.4f'):>9} "
                f"{_f(e['eval_loss'], '.4f'):>9} {_f(e['eval_accuracy'], '.4f'):>8} {e['steps']:>6} "
                f"{e['seconds']:>8.1f}")
    fin = m["final"]
    out.say(f"final eval accuracy {_f(fin['eval_accuracy'], '.4f')} (loss {_f(fin['eval_loss'], '.4f')}) after "
            f"{m['steps']} steps on {m['board']}")
    _print_cost(out, m)


def print_summary_mse(out: Output, m: dict[str, Any]) -> None:
    """MSE (autoencoder) runs: the loss is the mean reconstruction error; no accuracy, the ROC AUC of the
    per-sample error when the eval set labels samples normal (0) / anomalous (1)."""
    out.say(f"{'epoch':>5} {'train loss':>10} {'eval loss':>9} {'eval AUC':>8} {'steps':>6} {'seconds':>8}")
    for e in m["epochs"]:
        out.say(f"{e['epoch']:>5} {_f(e['train_loss'], '.4f'):>10} {_f(e['eval_loss'], '.4f'):>9} "
                f"{_f(e.get('eval_auc'), '.4f'):>8} {e['steps']:>6} {e['seconds']:>8.1f}")
    ini, fin = m["initial"], m["final"]
    auc = (f", ROC AUC {_f(ini.get('eval_auc'), '.4f')} -> {_f(fin.get('eval_auc'), '.4f')}"
           if fin.get("eval_auc") is not None else "")
    what = "MSE against the targets" if m["config"].get("targets") else "reconstruction error (MSE)"
    out.say(f"eval {what} {_f(ini.get('eval_loss'), '.4f')} before training -> "
            f"{_f(fin['eval_loss'], '.4f')}{auc} after {m['steps']} steps on {m['board']}")
    _print_cost(out, m)


def _print_cost(out: Output, m: dict[str, Any]) -> None:
    cost = (f"{m['instructions_per_sample']:,.0f} instructions/sample" if m["instructions_per_sample"] is not None
            else f"{m['cycles_per_sample']:,.0f} cycles/sample" if m["cycles_per_sample"] is not None
            else "not counted on the native trainer (time it on a board)")
    link = m["link"]
    out.say(f"training step: {cost}; peak training SRAM {m['peak_training_sram_bytes']:,} B; link "
            f"{link['bytes_sent']:,} B sent, {link['bytes_received']:,} B received"
            + (f"; {m['recoveries']} recoveries" if m["recoveries"] else ""))
    out.say(f"checkpoint: {m['checkpoint']}")


# -- export ------------------------------------------------------------------------------------------
def _calibration(args: argparse.Namespace, model_dir: Path, eval_path: Path | None) -> np.ndarray:
    import numpy as np  # noqa: PLC0415

    from converter.datafile import load_samples  # noqa: PLC0415

    path = _default_file(getattr(args, "data", None), model_dir, "train.npz") or eval_path
    if path is None:
        raise OctoError("export needs representative inputs to quantize the trained model",
                        hint=f"pass --data with {DATA_HINT} (the training set)")
    x, _ = load_samples(path, role="calibration")
    if len(x) > CALIB_SAMPLES:
        x = x[np.sort(np.random.default_rng(0).permutation(len(x))[:CALIB_SAMPLES])]
    return x


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from converter.train_export import export_tflite  # noqa: PLC0415
    from host_tools.services.state_blob import decode_weights  # noqa: PLC0415
    from host_tools.train.export import tflite_accuracy, tflite_reconstruction_error  # noqa: PLC0415
    from host_tools.train.run import check_checkpoint, load_dataset, plan_loss, read_checkpoint, roc_auc  # noqa: PLC0415

    out = Output(args.json)
    board_name = board_name_of(args)
    tb = prepare_build(args, board_name)
    model_dir = Path(args.model)
    ck = read_checkpoint(_run_dir(args, tb))
    check_checkpoint(ck, tb.config.config_id, int(tb.plan["fingerprint"]))
    eval_path = _default_file(args.eval, model_dir, "eval.npz")
    calib_x = _calibration(args, model_dir, eval_path)
    out_path = Path(args.output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    weights = decode_weights(tb.plan, ck.blob, model=(model_dir / "model.tflite").read_bytes())
    export_report = export_tflite(model_dir, weights, calib_x, out_path)
    history = ck.meta.get("history") or []
    board_acc = history[-1].get("eval_accuracy") if history else None
    board_loss = history[-1].get("eval_loss") if history else None
    board_auc = history[-1].get("eval_auc") if history else None
    mse = plan_loss(tb.plan) == "mse"
    tflite_acc = tflite_loss = tflite_auc = None
    n_eval = 0
    if eval_path is not None:
        x, y = load_dataset(eval_path, tb.plan)
        n_eval = len(y)
        if mse:
            targets = bool(tb.plan.get("targets"))
            err = tflite_reconstruction_error(out_path.read_bytes(), str(out_path), x, y if targets else None)
            tflite_loss = round(float(np.mean(err)), 6)
            auc = None if targets else roc_auc(err, y)
            tflite_auc = None if auc is None else round(auc, 6)
        else:
            tflite_acc = round(tflite_accuracy(out_path.read_bytes(), str(out_path), x, y), 6)
    out.say(f"exported the weights of step {ck.meta['step']} ({len(history)} epoch(s), {tb.config.config_id}) "
            f"-> {out_path} ({out_path.stat().st_size:,} B)")
    if tflite_loss is not None:
        what = "MSE against the targets" if tb.plan.get("targets") else "reconstruction error (MSE)"
        out.say(f"eval {what} on {n_eval} samples: exported INT8 .tflite (TFLM) {tflite_loss:.4f}"
                + (f", ROC AUC {tflite_auc:.4f}" if tflite_auc is not None else "")
                + f"; on the board at the checkpoint {_f(board_loss, '.4f')}"
                + (f", ROC AUC {_f(board_auc, '.4f')}" if board_auc is not None else ""))
    elif tflite_acc is not None:
        out.say(f"eval accuracy on {n_eval} samples: exported INT8 .tflite (TFLM) {tflite_acc:.4f}; "
                f"on the board at the checkpoint {_f(board_acc, '.4f')}")
    else:
        out.say("no eval set (pass --eval FILE.npz) so the exported model's accuracy was not measured")
    out.emit("octo.export/1", {
        "model": str(model_dir), "config_id": tb.config.config_id, "checkpoint": str(ck.path),
        "step": ck.meta["step"], "epochs": len(history), "output": str(out_path),
        "tflite_bytes": out_path.stat().st_size, "eval_samples": n_eval, "tflite_eval_accuracy": tflite_acc,
        "board_eval_accuracy": board_acc, "loss": plan_loss(tb.plan), "tflite_eval_loss": tflite_loss,
        "tflite_eval_auc": tflite_auc, "board_eval_loss": board_loss,
        "board_eval_auc": board_auc, "export": export_report,
    })
    return 0
