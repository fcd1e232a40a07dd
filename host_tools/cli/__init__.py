"""The `octo` command line. Parsing lives here; each command is a function in
host_tools/cli/board_cmds.py that can be called as a library.

Heavy imports (TensorFlow, PlatformIO, pyserial) happen inside commands, so
`octo --help` stays instant.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from host_tools.errors import OctoError
from host_tools.train import defaults as D


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON to FILE ('-' = stdout)")


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", "-b", help="board name (see `octo boards`; default virtual-m4)")
    p.add_argument("--port", "-p", help="serial port: /dev/ttyACM0, COM3 or socket://127.0.0.1:PORT "
                   "(default: the running virtual board, or the board's usual device)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for real serial ports (default 115200)")


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return n


def _number(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False,
            what: str = "") -> Callable[[str], float]:
    """An argparse type: a finite float in [lo, hi] (open ends where asked), checked before anything runs."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            left, right = "(" if lo_open else "[", ")" if hi_open else "]"
            raise argparse.ArgumentTypeError(f"{text}: use a finite number in {left}{lo:g}, {hi:g}{right}{what}")
        return v
    return parse


LEARNING_RATE = _number(0.0, 1e6, lo_open=True, what=" (a learning rate; the boards take at most 1e6)")
MOMENTUM = _number(0.0, 1.0, hi_open=True)
NON_NEGATIVE = _number(0.0, 1e9)
POSITIVE = _number(0.0, 1e9, lo_open=True)


def _update_spec(text: str) -> str:
    """--update: all | bias | last:N (N >= 1) | auto | set:OP=W,... (the explicit set auto reports)."""
    if text in ("all", "bias", "auto"):
        return text
    if text.startswith("last:") and text[5:].isdigit() and int(text[5:]) >= 1:
        return f"last:{int(text[5:])}"
    if re.fullmatch(r"set:\d+=(b|w|\d+)(,\d+=(b|w|\d+))*", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use all, bias, last:N (the last N trainable layers), auto, or "
                                     "set:OP=W,... (W: b bias, w weights, k channels; what --report prints)")


def _sram(text: str) -> int:
    """--sram: bytes, 96k (KiB) or 1m (MiB)."""
    from converter.update_budget import parse_bytes  # noqa: PLC0415

    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_train_config(p: argparse.ArgumentParser, board_help: str) -> None:
    """The flags that select a training build (config-id = <precision>-b<batch>-<update>[-mse]) and its run."""
    p.add_argument("model", help="a folder written by `octo convert`")
    p.add_argument("--board", "-b", help=board_help)
    p.add_argument("--target", choices=["host", "board"], default="board",
                   help="host = the same training engine compiled natively; board = on --board (default)")
    p.add_argument("--precision", choices=["int8", "fp32"], default="int8",
                   help="int8 = Octo INT8 training (default); fp32 = the float baseline")
    p.add_argument("--batch", type=_positive_int, default=None,
                   help=f"samples per training step (default {D.BATCH}, or the largest smaller batch whose plan "
                        "fits the board)")
    p.add_argument("--update", type=_update_spec, default=None,
                   help="what trains: all (default; auto when the full update fits the board at no batch), last:N "
                        "(the last N trainable layers), bias, or auto (the biases, last layers and output channels "
                        "that fit the SRAM budget: docs/TRAINING.md)")
    p.add_argument("--sram", type=_sram,
                   help="SRAM budget in bytes (262144, 200k, 1m): the training arena plus ~32 KiB of firmware must "
                        "fit it (default: the board's SRAM; none natively)")
    p.add_argument("--report", action="store_true",
                   help="print what trains per weight layer, what each option costs and why (also in --json)")
    p.add_argument("--loss", choices=["auto", "xent", "mse"], default="auto",
                   help="auto (default): softmax cross-entropy (xent) for a model ending in SOFTMAX, else mean "
                        "squared error against the input (mse: autoencoders, scored by reconstruction error)")
    p.add_argument("--run-dir", help="checkpoints and telemetry (default <model>/train/<config-id>/run)")


def _on_off(flag: bool) -> str:
    return "on" if flag else "off"


def _add_optimizer(p: Any, *, lr_help: str | None, lr_default: float | None, what: str) -> None:
    """The optimizer and Octo-technique flags of `octo train` and `octo collab`, defined once (defaults from
    host_tools/train/defaults.py, where the benchmarks put them). lr_help None: without --lr."""
    p.add_argument("--lac", action=argparse.BooleanOptionalAction, default=None,
                   help=f"INT8 loss-aware compensation{what}, a learned per-channel gain and offset (default "
                        f"{_on_off(D.DEFAULT_LAC)}: the measured best, bench/results/train.json)")
    p.add_argument("--prc", action=argparse.BooleanOptionalAction, default=None,
                   help=f"INT8 parameterized range clipping{what} of backward tensors at k x mean|g| (default "
                        f"{_on_off(D.DEFAULT_PRC)}: the measured best, bench/results/train.json)")
    if lr_help is not None:
        p.add_argument("--lr", type=LEARNING_RATE, default=lr_default, help=lr_help)
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="learning-rate schedule over the run (default cosine decay to 0)")
    p.add_argument("--momentum", type=MOMENTUM, default=D.MOMENTUM, help=f"SGD momentum (default {D.MOMENTUM:g})")
    p.add_argument("--weight-decay", type=NON_NEGATIVE, default=0.0, help="L2 weight decay (default 0)")
    p.add_argument("--prc-k", type=POSITIVE, default=D.PRC_K_DEFAULT,
                   help=f"PRC range parameter k (default {D.PRC_K_DEFAULT:g}, the best measured)")
    p.add_argument("--lac-l2", type=NON_NEGATIVE, default=D.LAC_L2_DEFAULT,
                   help=f"LAC L2 regularization (default {D.LAC_L2_DEFAULT:g})")


def _add_split_options(p: Any, *, required: bool = True) -> None:
    """What a split-learning run exchanges (the split layer, the codec): `octo collab` and `octo fleet run --mode
    split` share these definitions."""
    p.add_argument("--split", required=required,
                   help="the last layer the boards run (a layer name, e.g. conv2)")
    p.add_argument("--codec", choices=["sgq", "uniform", "fp32"], default="sgq",
                   help="sgq (default), uniform (per-payload uniform quantization, same format) or fp32")
    p.add_argument("--bits", type=int, choices=[2, 4, 8], default=4, help="code width of sgq/uniform (default 4)")
    p.add_argument("--groups", type=_positive_int, default=4, help="SGQ channel groups (default 4; at most C)")
    p.add_argument("--stripe", default="2x0", help="SGQ stripe ROWSxCOLS, 0 = full (default 2x0: 2-row bands)")
    p.add_argument("--gradient-bits", type=int, choices=[2, 4, 8],
                   help="code width of the gradients when it differs from --bits (e.g. --bits 2 --gradient-bits 4)")
    p.add_argument("--gradient-rounding", choices=["nearest", "stochastic"], default="nearest",
                   help="rounding of gradient codes on the cloud (default nearest)")
    p.add_argument("--clip", action=argparse.BooleanOptionalAction, default=False,
                   help="sgq/uniform: clipped ranges, min(max, alpha x mean non-zero |v|), alpha 2.25 at 2 bits, 5 at "
                        "4 bits, both directions (default off; docs/SGQ.md)")
    p.add_argument("--entropy", action=argparse.BooleanOptionalAction, default=False,
                   help="sgq/uniform: range-code the codes in both directions where that is shorter; lossless, "
                        "so accuracy is unchanged (default off; docs/SGQ.md)")


def _add_split_training(p: Any, *, common: bool = True) -> None:
    """How split learning trains, shared by `octo collab` and `octo fleet run --mode split`; common=False leaves out
    --batch, --data, --eval, --init, --lr and --seed (`octo fleet run` has them for both of its modes)."""
    if common:
        p.add_argument("--batch", type=_positive_int, default=D.BATCH,
                       help=f"samples per step and board (default {D.BATCH})")
    p.add_argument("--update", type=_update_spec, default="all",
                   help="what trains on the boards: all (default), last:N or bias")
    if common:
        p.add_argument("--data", help="training .npz: 'x' float32 NHWC, 'y' labels (default MODEL/train.npz), "
                       "split into one shard per board")
        p.add_argument("--eval", help="evaluation .npz, run on every board after every epoch (default "
                       "MODEL/eval.npz)")
    p.add_argument("--epochs", type=_positive_int, default=5, help="epochs over each board's shard (default 5)")
    if common:
        p.add_argument("--init", choices=["converted", "random"], default="converted",
                       help="both halves start from the converted weights (default) or fresh He-uniform weights")
    _add_optimizer(p, lr_help="SGD learning rate of the boards (default 0.005 with converted weights, 0.05 with "
                   "--init random)" if common else None, lr_default=None, what=" on the boards")
    p.add_argument("--cloud-lr", type=LEARNING_RATE, help="SGD learning rate of the cloud (default: --lr)")
    if common:
        p.add_argument("--seed", type=int, default=0, help="seed of shards, batch order, random init (default 0)")
    p.add_argument("--measure", action=argparse.BooleanOptionalAction, default=True,
                   help="read the exact device features every step to measure the feature reconstruction error "
                        "(not counted as traffic; default on)")
    p.add_argument("--run-dir", help="telemetry folder (default <model>/train/<config-id>/collab)")
    p.add_argument("--telemetry", help="JSON-lines log, one line per board step and epoch (default "
                   "RUN_DIR/telemetry.jsonl)")


def build_parser() -> argparse.ArgumentParser:
    from host_tools.cli import board_cmds as c  # noqa: PLC0415  (light module, no heavy imports)

    ap = argparse.ArgumentParser(
        prog="octo",
        description="Octo: INT8 TinyML toolchain for Cortex-M (virtual boards under QEMU, real ones over serial).",
    )
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="show the tools' own output (TensorFlow, PlatformIO) instead of writing it to "
                         "<folder>/octo-tools.log")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=fn)
        return p

    p = add("boards", c.cmd_boards, "list known boards: virtual (QEMU) and real, with CPU, SRAM and flash")
    _add_json(p)

    p = add("build", c.cmd_build, "build the firmware for a board with PlatformIO; prints RAM/flash use vs budget")
    p.add_argument("--board", "-b", default="virtual-m4", help="board name (default virtual-m4)")
    p.add_argument("--model", "-m", help="link a converted model (a folder written by `octo convert`)")
    _add_json(p)

    p = add("flash", c.cmd_flash, "flash the firmware; for a virtual board: start QEMU with it, print the serial URL")
    p.add_argument("--board", "-b", default="virtual-m4", help="board name (default virtual-m4)")
    p.add_argument("--elf", help="firmware ELF to run (default: the last `octo build` for the board)")
    p.add_argument("--model", "-m", help="firmware with this converted model (built if needed)")
    _add_json(p)

    p = add("stop", c.cmd_stop, "stop a running virtual board")
    p.add_argument("--board", "-b", default="virtual-m4", help="board name (default virtual-m4)")

    p = add("info", c.cmd_info, "ask a board for its HELLO: board, CPU, clock, firmware version, memory budget")
    _add_target(p)
    _add_json(p)

    p = add("ping", c.cmd_ping, "measure round-trip time and throughput of the serial link")
    _add_target(p)
    p.add_argument("--count", "-n", type=int, default=20, help="pings per size (default 20)")
    p.add_argument("--size", type=int, action="append", help="payload bytes (repeatable; default 0 and max)")
    _add_json(p)

    p = add("monitor", c.cmd_monitor, "stream live telemetry lines; also written as JSON lines to a file")
    _add_target(p)
    p.add_argument("--period-ms", type=int, default=500, help="telemetry period in ms (default 500, min 10)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--log", default="octo-telemetry.jsonl", help="JSON-lines file (default octo-telemetry.jsonl)")

    from host_tools.cli import model_cmds as mc  # noqa: PLC0415  (light: heavy imports are inside)

    p = add("convert", mc.cmd_convert, "convert a model (recipe .py, .keras/.h5, SavedModel, INT8 .tflite) to "
            "INT8 TFLite + generated C + TFLM export + report")
    p.add_argument("source", help="models/<name>.py recipe, a .keras/.h5 file, a SavedModel folder or a .tflite")
    p.add_argument("-o", "--output", required=True, help="output folder (e.g. build/digits)")
    p.add_argument("--calib", help=".npz with 'x' (float32 NHWC) representative inputs, for float models")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier conversion in the output folder, with everything derived from it")
    p.add_argument("--flash", type=_sram, metavar="N",
                   help="bytes of weights allowed in flash (300000, 400k, 1m): conv/dense layers take the faster "
                        "2-byte weight layout (Cortex-M4/M7) while it fits, most MACs per byte first; default: "
                        "every weight 1 byte")
    _add_json(p)

    p = add("report", mc.cmd_report, "per-layer ops, shapes, MACs, params, activation bytes; peak SRAM and flash; "
            "which boards it fits")
    p.add_argument("model", help="a folder written by `octo convert`")
    p.add_argument("--board", "-b", help="only this board (default: every board)")
    p.add_argument("--firmware-ram", type=int, default=32768,
                   help="firmware RAM besides the arena, for the fit estimate (default 32768; `octo build --model` "
                        "gives the exact figure)")
    _add_json(p)

    p = add("infer", mc.cmd_infer, "run a converted model on inputs: natively (--target host) or on a board")
    p.add_argument("model", help="a folder written by `octo convert`")
    p.add_argument("--input", "-i", required=True, help=".npz with 'x' (float32 NHWC, model units), optional 'y'")
    p.add_argument("--output", "-o", required=True, help=".npy for the outputs (raw int8 unless --dequantize)")
    p.add_argument("--target", choices=["host", "board"], default="board",
                   help="host = the generated C compiled natively; board = on --board (default)")
    p.add_argument("--board", "-b", help="board (default virtual-m4; a virtual board is built and booted)")
    p.add_argument("--port", "-p", help="serial port of a board already running this model's firmware")
    p.add_argument("--dequantize", action="store_true", help="write float outputs instead of int8")
    p.add_argument("--limit", type=int, help="only the first N samples")
    _add_json(p)

    p = add("bench", mc.cmd_bench, "per-layer cycles on a board (virtual boards: instructions under -icount)")
    p.add_argument("model", help="a folder written by `octo convert`")
    p.add_argument("--board", "-b", default="virtual-m4", help="board (default virtual-m4)")
    p.add_argument("--port", "-p", help="serial port of a board already running this model's firmware")
    p.add_argument("--runs", type=int, default=3, help="inferences to take the median of (default 3)")
    p.add_argument("--plot", help="write a per-layer bar chart (PNG) here")
    _add_json(p)

    from host_tools.cli import train_cmds as tc  # noqa: PLC0415  (light: heavy imports are inside)

    p = add("train", tc.cmd_train, "train a converted model on a board (or natively) in INT8 or FP32: "
            "checkpoints, resume, progress, telemetry, accuracy and cost per sample")
    _add_train_config(p, "board to train on (default virtual-m4; a virtual board is built and booted)")
    p.add_argument("--port", "-p", help="serial port of a real board running this configuration's training firmware")
    p.add_argument("--data", help="training .npz: 'x' float32 NHWC, 'y' labels (default MODEL/train.npz)")
    p.add_argument("--eval", help="evaluation .npz, run after every epoch (default MODEL/eval.npz if present)")
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs to train in total (default 10)")
    p.add_argument("--init", choices=["converted", "random"], default="converted",
                   help="start from the converted model's weights (default) or fresh He-uniform weights")
    _add_optimizer(p, lr_help=f"SGD learning rate (default {D.LR['converted']:g} from the converted weights, "
                   f"{D.LR['random']:g} with --init random: the measured best, bench/results/graph_train.json "
                   "and train.json)",
                   lr_default=None, what="")
    p.add_argument("--grad-rounding", choices=("nearest", "stochastic"), default=None,
                   help=f"INT8 input gradients rounded to nearest or stochastically (default "
                        f"{D.GRAD_ROUNDING['converted']} from the converted weights, {D.GRAD_ROUNDING['random']} "
                        "with --init random: the measured best, bench/results/graph_train.json)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch order and random init (default 0)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in the run dir")
    p.add_argument("--checkpoint-every", type=_positive_int, default=D.CHECKPOINT_EVERY,
                   help=f"steps between checkpoints (default {D.CHECKPOINT_EVERY}; also at every epoch end)")
    p.add_argument("--telemetry", help="JSON-lines log, one line per step and epoch (default RUN_DIR/telemetry.jsonl)")
    _add_json(p)

    p = add("export", tc.cmd_export, "export the trained weights of a training run's checkpoint as an INT8 .tflite "
            "and measure its accuracy with TFLM")
    _add_train_config(p, "the board the run trained on (default virtual-m4); with the other flags it selects "
                         "the run's checkpoint, no board is needed")
    p.add_argument("--init", choices=["converted", "random"], default="converted",
                   help="the run's --init (random keeps frozen weights in RAM: another build)")
    p.add_argument("-o", "--output", required=True, help="the .tflite to write (e.g. tuned.tflite)")
    p.add_argument("--eval", help="evaluation .npz for the accuracy check (default MODEL/eval.npz if present)")
    p.add_argument("--data", help="representative inputs for quantization (default MODEL/train.npz)")
    _add_json(p)

    from host_tools.cli import collab_cmds as cb  # noqa: PLC0415  (light: heavy imports are inside)

    p = add("collab", cb.cmd_collab, "split learning: N boards run the layers up to --split in INT8 and exchange "
            "SGQ/uniform/fp32-encoded features and gradients with a TensorFlow cloud running the rest")
    p.add_argument("model", help="a folder written by `octo convert`")
    _add_split_options(p)
    p.add_argument("--boards", type=_positive_int, default=2, help="boards training concurrently (default 2)")
    p.add_argument("--board", "-b", help="board kind (default virtual-m4; each board gets its own QEMU)")
    p.add_argument("--target", choices=["host", "board"], default="board",
                   help="host = the device half compiled natively, one process per board; board = --board")
    p.add_argument("--port", "-p", help="real boards: comma-separated serial ports, one per board")
    _add_split_training(p)
    p.add_argument("--engine", choices=["direct", "flower"], default="direct",
                   help="direct (default): this process drives the boards; flower: the cloud half runs in a Flower "
                   "ServerApp and every exchange travels as a Flower message to the board's ClientApp (simulation "
                   "engine; native trainers and virtual boards; deployment mode: octo fleet run --mode split)")
    _add_json(p)

    from host_tools.cli import fleet_cmds as fc  # noqa: PLC0415  (light: flwr and Ray are imported inside)

    fc.add_fleet_parser(add, _positive_int, LEARNING_RATE, _add_split_options, _add_split_training)

    from host_tools.cli import codec_cmds as cc  # noqa: PLC0415  (light: numpy is imported inside the command)

    p = add("codec", cc.cmd_codec_bench, "split-learning codecs (SGQ, uniform, fp32) offline; see docs/SGQ.md")
    codec_sub = p.add_subparsers(dest="codec_command", metavar="ACTION", required=True)
    p = codec_sub.add_parser("bench", help="bytes per sample, ratio vs fp32 and reconstruction error per codec "
                             "and bit width",
                             description="encode and decode a saved [N,H,W,C] tensor in payloads of --batch samples "
                             "with each codec and bit width; report bytes (headers included), ratio vs fp32, "
                             "relative L2, max abs error and cosine")
    p.set_defaults(func=cc.cmd_codec_bench)
    p.add_argument("--features", "-f", required=True, help=".npy float tensor [N,H,W,C] (features or gradients)")
    p.add_argument("--kind", choices=cc.KINDS, default="features",
                   help="features (device -> cloud) or gradients (cloud -> device); default features")
    p.add_argument("--codec", default="sgq", help="comma-separated codecs: sgq, uniform, fp32 (default sgq)")
    p.add_argument("--bits", default="2,4,8", help="comma-separated bit widths from 2, 4, 8 (default 2,4,8)")
    p.add_argument("--batch", type=_positive_int, default=16, help="samples per payload (default 16)")
    p.add_argument("--groups", type=_positive_int, default=4, help="SGQ channel groups (default 4; at most C)")
    p.add_argument("--stripe", default="2x0", help="SGQ stripe ROWSxCOLS, 0 = full (default 2x0: 2-row bands)")
    p.add_argument("--rounding", choices=["nearest", "stochastic"], default="nearest",
                   help="rounding of gradient codes (default nearest)")
    p.add_argument("--seed", type=int, default=0, help="stochastic rounding seed (default 0)")
    p.add_argument("--clip", action="store_true",
                   help="sgq/uniform: clipped ranges with the measured alpha per bit width (docs/SGQ.md)")
    p.add_argument("--entropy", action="store_true",
                   help="sgq/uniform: range-coded codes where shorter (lossless; docs/SGQ.md)")
    _add_json(p)

    from host_tools.cli import video_cmds as vc  # noqa: PLC0415  (light: numpy/TensorFlow are imported inside)

    p = add("video-data", vc.cmd_video_data, "generate a labelled test video (sklearn sample images as backgrounds, "
            "sklearn digits as moving objects)")
    p.add_argument("--out", "-o", required=True, help="output .npz (frames uint8 [T,64,64], labels [T,4,4])")
    p.add_argument("--frames", type=_positive_int, default=300, help="number of frames (default 300)")
    p.add_argument("--scene", default="static", help="static (default), pan, lighting, cut or mixed")
    p.add_argument("--seed", type=int, default=0, help="seed of backgrounds, digits and motion (default 0)")
    _add_json(p)

    p = add("pass-train", vc.cmd_pass_train, "train PASS gates self-supervised on unlabelled frames and write a "
            "patch-skipping model folder")
    p.add_argument("model", help="a folder written by `octo convert` (CONV_2D / pooling layers only)")
    p.add_argument("--video", required=True, help="training clip .npz (`octo video-data`; labels are not used)")
    p.add_argument("--output", "-o", required=True, help="the PASS model folder to write")
    p.add_argument("--tolerance", type=float, help="how much change of a layer's output still counts as "
                   "'same': higher skips more and costs accuracy (default: the trainer's)")
    p.add_argument("--cut-permille", type=int, help="a frame whose first gate marks at least this many per "
                   "mille of its patches changed is a scene cut and runs dense (default: the trainer's)")
    _add_json(p)

    p = add("video", vc.cmd_video, "stream a clip through a board: PASS (with the dense model alongside) or --dense")
    p.add_argument("model", help="a PASS folder (`octo pass-train`) or, with --dense, a converted model folder")
    p.add_argument("--frames", required=True, help="clip .npz (`octo video-data`)")
    p.add_argument("--board", "-b", default="virtual-m4", help="board (default virtual-m4)")
    p.add_argument("--port", "-p", help="serial port of a real board")
    p.add_argument("--dense", action="store_true", help="run only the dense model (the baseline)")
    p.add_argument("--no-dense", action="store_true", help="PASS only: skip the dense run alongside")
    p.add_argument("--mode", choices=["auto", "exact"], default="auto",
                   help="auto: the learned gates decide (default); exact: skip only bit-identical patches")
    p.add_argument("--limit", type=_positive_int, help="only the first N frames")
    p.add_argument("--heatmap", help="PNG of how often each patch was skipped, per gated layer")
    _add_json(p)

    p = add("demo", c.cmd_demo, "the whole loop on the virtual board (what `make demo` runs)")
    p.add_argument("--board", "-b", default="virtual-m4", help="virtual board (default virtual-m4)")
    p.add_argument("--out", default="build/demo", help="folder for the demo's outputs (default build/demo)")
    return ap


# Exception classes that mean "the input or the environment is wrong", not a bug: one line, no traceback.
# Looked up in sys.modules, so `octo --help` imports none of them (an error of a module never imported
# cannot have been raised).
USER_ERRORS = (("converter.ir", "ConvertError"), ("converter.hostbuild", "HostBuildError"),
               ("host_tools.sgq.codec", "SgqFormatError"), ("host_tools.video.data", "ClipFormatError"))


def user_error_classes() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [OctoError]
    for module, name in USER_ERRORS:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


# Commands that run TensorFlow: their tools' output goes to octo-tools.log in this argument's folder.
LOG_FOLDER = {"convert": "output", "pass-train": "output", "demo": "out", "train": "model", "export": "model",
              "collab": "model", "fleet": "model", "infer": "model", "bench": "model", "video": "model"}


def _log_path(args: argparse.Namespace) -> Path | None:
    from converter.toollog import LOG_NAME  # noqa: PLC0415  (light module)

    attr = LOG_FOLDER.get(args.command)
    if attr is None or getattr(args, "verbose", False) or not getattr(args, attr, None):
        return None
    return Path(getattr(args, attr)) / LOG_NAME


def main(argv: Sequence[str] | None = None) -> int:
    from converter import toollog  # noqa: PLC0415  (light module)
    from host_tools.board import lock  # noqa: PLC0415  (light module)

    ap = build_parser()
    args = ap.parse_args(argv)
    previous = lock.set_command(f"octo {args.command}")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        with toollog.capture(_log_path(args)) as log:
            try:
                return func(args)
            except Exception as exc:
                if log is not None and not isinstance(exc, user_error_classes()):
                    toollog.say(f"octo: unexpected failure; the last lines of the tool log {log}:")
                    for line in toollog.tail(log):
                        toollog.say(f"  | {line}")
                raise
    except Exception as exc:
        if not isinstance(exc, user_error_classes()):
            raise
        print(f"octo: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("octo: interrupted", file=sys.stderr)
        return 130
    finally:
        lock.set_command(previous)  # main() may run in-process (tests, notebooks)

