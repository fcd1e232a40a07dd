"""Training kernels on a virtual board: one step of a 3x3 conv, FP32 vs INT8, on two shapes, and of 3x3 depthwise convs.

    .venv/bin/python bench/train_kernel_bench.py [--board virtual-m4] [--out FILE.json]

Builds bench/c/train_conv_bench.c with the training kernels (firmware/src/train) and the
board's real support code once per shape (16x16x16 -> 16, and the engine-like 8x8x8 -> 16
of the digits CNN, where per-output overhead shows), runs it under QEMU -icount shift=0
(instructions = SysTick ticks x 40) and reports instructions per MAC for each pass. A training MAC counts the
forward, input-gradient and weight-gradient passes (3 x the forward MACs). The INT8 step
includes converting results to int8 (stochastic rounding forward, nearest backward); the
optimizer update is not part of these kernels yet. The depthwise layers (DEPTHWISE_CONV_2D,
multiplier 1, SAME, batch 1, ReLU: MobileNet-like 24x24x32 and 24x24x16 stride 1, 48x48x8 stride 2)
go to the "depthwise" entry of the results.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

SHAPES = {  # name: (H, W, C, OC, K), stride 1, SAME, batch 1, ReLU
    "16x16x16": (16, 16, 16, 16, 3),
    "engine_8x8x8": (8, 8, 8, 16, 3),
}
DW_SHAPES = {  # name: (H, W, C, K, stride), depthwise multiplier 1, SAME, batch 1, ReLU
    "dw_24x24x32": (24, 24, 32, 3, 1),
    "dw_24x24x16": (24, 24, 16, 3, 1),
    "dw_48x48x8_s2": (48, 48, 8, 3, 2),
}


def macs(shape: tuple[int, int, int, int, int]) -> int:
    """MACs per pass, padding taps included."""
    h, w, c, oc, k = shape
    return h * w * c * k * k * oc


def dw_macs(shape: tuple[int, int, int, int, int]) -> int:
    """Depthwise MACs per pass: every output x its KxK window, padding taps included."""
    h, w, c, k, s = shape
    return -(-h // s) * -(-w // s) * c * k * k


def build_and_run(board_name: str, work: Path, shape: tuple[int, int, int, int, int],
                  depthwise: bool = False) -> dict[str, int]:
    from host_tools.boards import get_board
    from host_tools.qemu import ICOUNT_SHIFT, instructions_from_ticks

    board = get_board(board_name)
    fw = ROOT / "firmware"
    float_flags = ["-mfloat-abi=hard", f"-mfpu={board.fpu}"] if board.fpu else ["-mfloat-abi=soft"]
    sources = [ROOT / "bench" / "c" / "train_conv_bench.c", *sorted((fw / "src" / "train").glob("*.c")),
               fw / "src" / "common" / "octo_status.c", *sorted((fw / "boards" / "cortexm").glob("*.c")),
               *sorted((fw / "boards" / "common").glob("*.c")), *sorted((fw / "boards" / board.bsp).glob("*.c"))]
    elf = work / f"train-bench-{board.name}-{'dw' if depthwise else ''}{'x'.join(map(str, shape))}.elf"
    names = ("H", "W", "C", "K", "S") if depthwise else ("H", "W", "C", "OC", "K")
    defines = [f"-DBENCH_{k}={v}" for k, v in zip(names, shape, strict=True)] + (["-DBENCH_DW=1"] if depthwise else [])
    cmd = ["arm-none-eabi-gcc", *defines, f"-mcpu={board.cpu}", "-mthumb", *float_flags, "-std=c99", "-O2", "-Wall",
           "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections", f"-I{fw / 'include'}",
           f'-DOCTO_BOARD_NAME="{board.name}"', f'-DOCTO_BOARD_CPU="{board.cpu}"', *map(str, sources),
           f"-L{fw / 'ld'}", f"-T{board.name}.ld", "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
           "-Wl,--gc-sections", "-o", str(elf)]
    subprocess.run(cmd, check=True)
    run = subprocess.run(["qemu-system-arm", "-machine", str(board.qemu_machine), "-nodefaults", "-display", "none",
                          "-monitor", "none", "-nic", "none", "-icount", f"shift={ICOUNT_SHIFT}", "-kernel", str(elf),
                          "-semihosting-config", "enable=on,target=native"],
                         capture_output=True, text=True, timeout=600, check=False)
    text = run.stdout + run.stderr
    if run.returncode != 0 or "train-bench done" not in text:
        raise SystemExit(f"benchmark failed on {board.name} (rc {run.returncode}):\n{text}")
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = instructions_from_ticks(int(parts[1]), 25_000_000)
    return out


def summarize(instr: dict[str, int], n: int, layer: str) -> dict[str, Any]:
    """Per-MAC figures of one shape (n MACs per pass); printed as they are made."""
    per_mac = {key: round(v / n, 3) for key, v in instr.items()}
    f32_step = instr["f32_fwd"] + instr["f32_bwd_input"] + instr["f32_bwd_weight"]
    s8_step = sum(v for key, v in instr.items() if key.startswith("s8_"))
    print(f"== {layer}")
    for key, v in per_mac.items():
        print(f"{key:<22} {instr[key]:>10,} instructions  {v:6.3f} per MAC")
    print(f"step: FP32 {f32_step / (3 * n):.3f} / INT8 {s8_step / (3 * n):.3f} instructions per training MAC "
          f"(INT8/FP32 {s8_step / f32_step:.3f}; weight update not included)")
    return {
        "layer": layer, "macs_per_pass": n,
        "instructions": instr, "instructions_per_mac": per_mac,
        "step": {"f32_instructions_per_training_mac": round(f32_step / (3 * n), 3),
                 "s8_instructions_per_training_mac": round(s8_step / (3 * n), 3),
                 "s8_over_f32": round(s8_step / f32_step, 3), "includes_update": False},
    }


def conv_layer(shape: tuple[int, int, int, int, int]) -> str:
    h, w, c, oc, k = shape
    return f"conv {k}x{k} {h}x{w}x{c} -> {oc}, stride 1, SAME, batch 1, ReLU"


def dw_layer(shape: tuple[int, int, int, int, int]) -> str:
    h, w, c, k, s = shape
    return f"depthwise {k}x{k} {h}x{w}x{c}, stride {s}, SAME, batch 1, ReLU"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="virtual-m4")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    shapes, dw_shapes = {}, {}
    with tempfile.TemporaryDirectory(prefix="octo-trainbench-") as tmp:
        for name, shape in SHAPES.items():
            shapes[name] = summarize(build_and_run(args.board, Path(tmp), shape), macs(shape), conv_layer(shape))
        for name, shape in DW_SHAPES.items():
            dw_shapes[name] = summarize(build_and_run(args.board, Path(tmp), shape, depthwise=True), dw_macs(shape),
                                        dw_layer(shape))
    main_shape = shapes["16x16x16"]
    doc = {
        "board": args.board, **main_shape, "shapes": shapes,
        "goals": {"f32_fwd_instructions_per_mac": 3.2, "s8_step_instructions_per_training_mac": 4.0,
                  "s8_fwd_instructions_per_mac": 1.6, "s8_bwd_input_instructions_per_mac": 1.6,
                  "s8_bwd_weight_instructions_per_mac": 2.0},
        "depthwise": {"shapes": dw_shapes,
                      "goals": {"shape": "dw_24x24x32", "s8_fwd_instructions_per_mac": 3.0,
                                "s8_bwd_input_instructions_per_mac": 3.0,
                                "s8_bwd_weight_instructions_per_mac": 4.0}},
    }
    write_results(args.out or f"bench/results/train-kernels-{args.board}.json", "octo.bench.train_kernels/1",
                  **doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
