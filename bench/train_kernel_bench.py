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

    .venv/bin/python bench/train_kernel_bench.py --mobilenet [--save FILE.json] [--compare FILE.json]

measures instead every conv / depthwise layer shape of the MobileNetV1-0.25 zoo model (32x32x3
input, padding as the training engine passes it, no fused activation; the forward and input gradient
per sample, the weight gradient over a batch of 8 as the engine runs it) and prints instructions per
sample and per MAC for each pass, FP32 and INT8, and the INT8 kernels' scratch bytes;
--save writes those numbers as JSON (never to bench/results), --compare prints them next to an
earlier --save. These builds link a benchmark-only 4 MiB memory budget (the large layers' FP32
operands do not fit virtual-m4's real 256 KiB).
"""

from __future__ import annotations

import argparse
import os
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

# MobileNetV1-0.25 on 32x32x3 (the zoo model): name -> (kind, H, W, C, OC or K, K or stride)
MOBILENET = {  # conv: (H, W, C, OC, K, stride); dw: (H, W, C, K, stride); SAME as the engine pads it
    "conv1_3x3s2_32x32x3_8": ("conv", (32, 32, 3, 8, 3, 2)),
    "dw_16x16x8_s1": ("dw", (16, 16, 8, 3, 1)),
    "pw_16x16x8_16": ("conv", (16, 16, 8, 16, 1, 1)),
    "dw_16x16x16_s2": ("dw", (16, 16, 16, 3, 2)),
    "pw_8x8x16_32": ("conv", (8, 8, 16, 32, 1, 1)),
    "dw_8x8x32_s1": ("dw", (8, 8, 32, 3, 1)),
    "pw_8x8x32_32": ("conv", (8, 8, 32, 32, 1, 1)),
    "dw_8x8x32_s2": ("dw", (8, 8, 32, 3, 2)),
    "pw_4x4x32_64": ("conv", (4, 4, 32, 64, 1, 1)),
    "dw_4x4x64_s1": ("dw", (4, 4, 64, 3, 1)),
    "pw_4x4x64_64": ("conv", (4, 4, 64, 64, 1, 1)),
    "dw_4x4x64_s2": ("dw", (4, 4, 64, 3, 2)),
    "pw_2x2x64_128": ("conv", (2, 2, 64, 128, 1, 1)),
    "dw_2x2x128_s1": ("dw", (2, 2, 128, 3, 1)),
    "pw_2x2x128_128": ("conv", (2, 2, 128, 128, 1, 1)),
    "dw_2x2x128_s2": ("dw", (2, 2, 128, 3, 2)),
    "pw_1x1x128_256": ("conv", (1, 1, 128, 256, 1, 1)),
    "dw_1x1x256_s1": ("dw", (1, 1, 256, 3, 1)),
    "pw_1x1x256_256": ("conv", (1, 1, 256, 256, 1, 1)),
    "pw_1x1x256_10": ("conv", (1, 1, 256, 10, 1, 1)),
}
MOBILENET_BATCH = 8  # the weight-gradient passes run over the batch (the engine's MobileNet speed runs use 8)
MOBILENET_COUNT = {"dw_2x2x128_s1": 5, "pw_2x2x128_128": 5}  # layers of that shape in the model


def macs(shape: tuple[int, int, int, int, int]) -> int:
    """MACs per pass, padding taps included."""
    h, w, c, oc, k = shape
    return h * w * c * k * k * oc


def dw_macs(shape: tuple[int, int, int, int, int]) -> int:
    """Depthwise MACs per pass: every output x its KxK window, padding taps included."""
    h, w, c, k, s = shape
    return -(-h // s) * -(-w // s) * c * k * k


def conv_macs(shape: tuple[int, ...]) -> int:
    """Conv MACs per pass (H, W, C, OC, K, stride; SAME), padding taps included."""
    h, w, c, oc, k, s = shape
    return -(-h // s) * -(-w // s) * oc * k * k * c


def build_and_run(board_name: str, work: Path, shape: tuple[int, ...],
                  depthwise: bool = False, mobilenet: bool = False,
                  scratch: dict[str, int] | None = None) -> dict[str, int]:
    from converter import firmware_sources as fws
    from host_tools.board.boards import get_board
    from host_tools.board.qemu import ICOUNT_SHIFT, instructions_from_ticks

    board = get_board(board_name)
    fw = ROOT / "firmware"
    float_flags = ["-mfloat-abi=hard", f"-mfpu={board.fpu}"] if board.fpu else ["-mfloat-abi=soft"]
    sources = [ROOT / "bench" / "c" / "train_conv_bench.c", *fws.sources("train_kernels", "status"),
               *fws.board_sources(board.bsp)]
    tag = "mn" if mobilenet else ""
    elf = work / f"train-bench-{board.name}-{tag}{'dw' if depthwise else ''}{'x'.join(map(str, shape))}.elf"
    names = ("H", "W", "C", "K", "S") if depthwise else ("H", "W", "C", "OC", "K", "S")[:len(shape)]
    defines = [f"-DBENCH_{k}={v}" for k, v in zip(names, shape, strict=True)] + (["-DBENCH_DW=1"] if depthwise else [])
    ld = [f"-T{board.name}.ld"]
    if mobilenet:  # the engine passes no fused activation; a benchmark-only 4 MiB budget (see the docstring)
        defines += ["-DBENCH_ACT=0", f"-DBENCH_NB={MOBILENET_BATCH}"]
        script = work / f"speed-only-{board.name}.ld"
        script.write_text("MEMORY\n{\n    FLASH (rx)  : ORIGIN = 0x00000000, LENGTH = 4096K\n"
                          "    RAM   (rwx) : ORIGIN = 0x20000000, LENGTH = 4096K\n}\n"
                          "OCTO_STACK_SIZE = 16K;\nINCLUDE octo_cortexm.ld\n")
        ld = [f"-L{work}", f"-T{script.name}"]
    cmd = ["arm-none-eabi-gcc", *defines, f"-mcpu={board.cpu}", "-mthumb", *float_flags, "-std=c99", "-O2", "-Wall",
           "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections", f"-I{fw / 'include'}",
           f'-DOCTO_BOARD_NAME="{board.name}"', f'-DOCTO_BOARD_CPU="{board.cpu}"', *map(str, sources),
           f"-L{fw / 'ld'}", *ld, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
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
        elif len(parts) == 3 and parts[0] == "scratch" and parts[2].isdigit() and scratch is not None:
            scratch[parts[1]] = int(parts[2])
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


PASSES = ("fwd", "bwd_input", "bwd_weight")


def mobilenet(board: str, save: str | None, compare: str | None) -> int:
    """Every MobileNet layer shape: instructions per call and per MAC, FP32 and INT8, and INT8 scratch."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    before = json.loads(Path(compare).read_text())["shapes"] if compare else {}

    def one(item: tuple[str, tuple[str, tuple[int, ...]]]) -> tuple[str, dict[str, Any]]:
        name, (kind, shape) = item
        scratch: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="octo-trainbench-") as tmp:
            instr = build_and_run(board, Path(tmp), shape, depthwise=kind == "dw", mobilenet=True, scratch=scratch)
        n = dw_macs(shape) if kind == "dw" else conv_macs(shape)  # type: ignore[arg-type]
        per_sample = {k: (v / MOBILENET_BATCH if k.endswith("bwd_weight") else v) for k, v in instr.items()}
        return name, {"kind": kind, "shape": list(shape), "macs_per_pass": n, "instructions": instr,
                      "weight_grad_batch": MOBILENET_BATCH, "instructions_per_sample": per_sample,
                      "scratch": scratch, "layers": MOBILENET_COUNT.get(name, 1)}

    with ThreadPoolExecutor(max_workers=max(1, min(8, (os.cpu_count() or 2)))) as pool:
        results = dict(pool.map(one, MOBILENET.items()))
    print(f"MobileNetV1-0.25 layer shapes on {board}: instructions per sample (per MAC; weight gradients over a "
          f"batch of {MOBILENET_BATCH}, divided by it); INT8 excludes requant"
          + (f"; before -> after from {compare}" if compare else ""))
    tot_now = tot_before = tot_f32 = 0
    for name, r in results.items():
        instr, n, old = r["instructions_per_sample"], r["macs_per_pass"], before.get(name, {})
        print(f"== {name} ({n:,} MACs per pass)" + (f", scratch {r['scratch']}" if r["scratch"] else ""))
        for ps in PASSES:
            s8, f32 = instr[f"s8_{ps}"], instr[f"f32_{ps}"]
            tot_now += s8 * r["layers"]
            tot_f32 += f32 * r["layers"]
            line = f"  {ps:<11} f32 {f32:>9,.0f} ({f32 / n:6.2f})   s8 "
            if old:
                o = old["instructions_per_sample"][f"s8_{ps}"]
                tot_before += o * r["layers"]
                line += f"{o:>9,.0f} ({o / n:6.2f}) -> "
            line += f"{s8:>9,.0f} ({s8 / n:6.2f})  s8/f32 {s8 / f32:5.2f}"
            print(line)
        if old and old.get("scratch"):
            print(f"  scratch {old['scratch']} -> {r['scratch']}")
    print(f"whole model (layer counts applied), kernels only: f32 {tot_f32:,.0f}  s8 "
          + (f"{tot_before:,.0f} -> " if before else "") + f"{tot_now:,.0f} instructions per sample")
    if save:
        Path(save).write_text(json.dumps({"board": board, "shapes": results}, indent=2) + "\n")
        print(f"wrote {save}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="virtual-m4")
    ap.add_argument("--out", default=None)
    ap.add_argument("--mobilenet", action="store_true", help="the MobileNetV1-0.25 layer shapes (stdout only)")
    ap.add_argument("--save", default=None, help="with --mobilenet: write the numbers as JSON here")
    ap.add_argument("--compare", default=None, help="with --mobilenet: an earlier --save to compare with")
    args = ap.parse_args()
    if args.mobilenet:
        if args.save and Path(args.save).resolve().parent == (ROOT / "bench" / "results").resolve():
            raise SystemExit("--save: not into bench/results (that holds the full benchmark runs)")
        return mobilenet(args.board, args.save, args.compare)
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
