"""Kernel speed on a virtual board: instructions per MAC for the four reference shapes.

    .venv/bin/python bench/kernel_bench.py [--board virtual-m4] [--out bench/results/kernels-virtual-m4.json]

Shapes (issue 3): 3x3 stride-1 SAME convs with random int8 data and per-channel
quantization, MACs counted nominally (padding taps included):
  conv 16x16x16 -> 16         goal <= 2.0 instructions/MAC (CMSIS-NN DSP: 2.33)
  conv 32x32x3 -> 8           goal <= 5.0                   (CMSIS-NN DSP: 6.12)
  depthwise 3x3 on 16x16x32   goal <= 7.0                   (CMSIS-NN DSP: 8.07)
  fully connected 256 -> 64   goal <= 2.0                   (CMSIS-NN DSP: 2.08)
Each layer is converted by the real pipeline (Keras -> INT8 TFLite -> generated C),
checked bit-exact against TFLM on the host, built into firmware with PlatformIO
and timed on the board with SysTick under QEMU -icount (instructions = ticks x 40).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

CMSIS_NN_DSP = {"conv_16x16x16_16": 2.33, "conv_32x32x3_8": 6.12, "dwconv_16x16x32": 8.07, "fc_256_64": 2.08}
NAIVE_TFLM = {"conv_16x16x16_16": 7.4, "conv_32x32x3_8": 16.2, "dwconv_16x16x32": 25.1, "fc_256_64": 7.2}
GOALS = {"conv_16x16x16_16": 2.0, "conv_32x32x3_8": 5.0, "dwconv_16x16x32": 7.0, "fc_256_64": 2.0}


def kernel_path(board_name: str, name: str) -> str:
    """Which code path the layer runs: "mve" (Helium: every kernel on virtual-m55), "dsp" (SMLAD) or
    "portable"."""
    from host_tools.board.boards import get_board

    board = get_board(board_name)
    if board.mve:
        return "mve"
    return "dsp" if board.dsp else "portable"


def build_layer(name: str):  # -> keras.Model
    import keras

    keras.utils.set_random_seed(0)
    if name == "conv_16x16x16_16":
        inp = keras.Input((16, 16, 16))
        out = keras.layers.Conv2D(16, 3, padding="same")(inp)
    elif name == "conv_32x32x3_8":
        inp = keras.Input((32, 32, 3))
        out = keras.layers.Conv2D(8, 3, padding="same")(inp)
    elif name == "dwconv_16x16x32":
        inp = keras.Input((16, 16, 32))
        out = keras.layers.DepthwiseConv2D(3, padding="same")(inp)
    elif name == "fc_256_64":
        inp = keras.Input((256,))
        out = keras.layers.Dense(64)(inp)
    else:
        raise ValueError(name)
    model = keras.Model(inp, out, name=name)
    # Random (not trained) weights with per-channel spread, as a trained layer would have.
    for w in model.weights:
        if len(w.shape) > 1:
            rng = np.random.default_rng(1)
            arr = rng.normal(size=w.shape).astype(np.float32)
            arr *= rng.uniform(0.2, 1.5, size=w.shape[-1]).astype(np.float32)
            w.assign(arr)
    return model


def bench_one(name: str, board_name: str, work: Path) -> dict[str, object]:
    from converter.pipeline import convert
    from host_tools.board.boards import get_board
    from host_tools.model.bench import bench_model
    from host_tools.model.folder import load_local_model

    model = build_layer(name)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    calib = np.random.default_rng(2).normal(size=(128, *shape)).astype(np.float32)
    model_path = work / f"{name}.keras"
    model.save(model_path)
    np.savez(work / f"{name}_calib.npz", x=calib)
    out = work / name
    report = convert(model_path, out, calib=work / f"{name}_calib.npz", replace=True, say=lambda s: None)
    _check_bit_exact(out, report)
    res = bench_model(load_local_model(out), get_board(board_name), None, runs=3)
    layer = next(lay for lay in res["layers"] if lay["macs"])  # type: ignore[attr-defined]
    per_mac = float(layer["instructions_per_mac"])
    dsp = get_board(board_name).dsp
    return {"kernel": name, "op": layer["op"], "macs": layer["macs"], "instructions": layer["instructions"],
            "instructions_per_mac": per_mac, "path": kernel_path(board_name, name), "goal": GOALS[name],
            "meets_goal": (per_mac <= GOALS[name]) if dsp else None,
            "cmsis_nn_dsp": CMSIS_NN_DSP[name], "naive_tflm": NAIVE_TFLM[name],
            "arena_bytes": report["totals"]["arena_bytes"], "tflm_arena_planned": report["tflm"]["arena_planned_bytes"],
            "weight_bytes": report["totals"]["weight_bytes"]}


def _check_bit_exact(out: Path, report: dict) -> None:
    from converter.hostbuild import build_host_runner, run_host
    from converter.tflm import tflm_run

    size = int(np.prod(report["input"]["shape"]))
    x = np.random.default_rng(3).integers(-128, 128, size=(4, size), dtype=np.int64).astype(np.int8)
    ours = run_host(build_host_runner(out / "octo"), x, int(np.prod(report["output"]["shape"])))
    ref = tflm_run((out / "model.tflite").read_bytes(), x.reshape(4, *report["input"]["shape"][1:]))
    if not np.array_equal(ours, ref.reshape(ours.shape)):
        raise SystemExit(f"{out.name}: generated C is not bit-exact with TFLM; refusing to benchmark")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="virtual-m4")
    ap.add_argument("--kernels", default=",".join(GOALS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = []
    with tempfile.TemporaryDirectory(prefix="octo-kbench-") as tmp:
        for name in args.kernels.split(","):
            r = bench_one(name, args.board, Path(tmp))
            rows.append(r)
            mark = {True: "ok", False: "MISSES GOAL", None: "portable C path (goals are for the DSP path)"}[
                r["meets_goal"]]
            print(f"{name:<18} {r['instructions_per_mac']:6.2f} instr/MAC  (goal <= {r['goal']}, CMSIS-NN "
                  f"{r['cmsis_nn_dsp']}, naive {r['naive_tflm']})  {mark}", flush=True)
    write_results(args.out or f"bench/results/kernels-{args.board}.json", "octo.bench.kernels/1",
                  board=args.board, results=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
