"""Training kernels on a virtual board: one step of a 3x3 conv 16x16x16 -> 16, FP32 vs INT8.

    .venv/bin/python bench/train_kernel_bench.py [--board virtual-m4] [--out FILE.json]

Builds bench/c/train_conv_bench.c with the training kernels (firmware/src/train) and the
board's real support code, runs it under QEMU -icount shift=0 (instructions = SysTick
ticks x 40) and reports instructions per MAC for each pass. A training MAC counts the
forward, input-gradient and weight-gradient passes (3 x the forward MACs). The INT8 step
includes converting results to int8 (stochastic rounding forward, nearest backward); the
optimizer update is not part of these kernels yet.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

MACS = 16 * 16 * 16 * 3 * 3 * 16  # per pass, padding taps included


def build_and_run(board_name: str, work: Path) -> dict[str, int]:
    from host_tools.boards import get_board
    from host_tools.qemu import ICOUNT_SHIFT, instructions_from_ticks

    board = get_board(board_name)
    fw = ROOT / "firmware"
    float_flags = ["-mfloat-abi=hard", f"-mfpu={board.fpu}"] if board.fpu else ["-mfloat-abi=soft"]
    sources = [ROOT / "bench" / "c" / "train_conv_bench.c", *sorted((fw / "src" / "train").glob("*.c")),
               fw / "src" / "common" / "octo_status.c", *sorted((fw / "boards" / "cortexm").glob("*.c")),
               *sorted((fw / "boards" / "common").glob("*.c")), *sorted((fw / "boards" / board.bsp).glob("*.c"))]
    elf = work / f"train-bench-{board.name}.elf"
    cmd = ["arm-none-eabi-gcc", f"-mcpu={board.cpu}", "-mthumb", *float_flags, "-std=c99", "-O2", "-Wall", "-Wextra",
           "-Werror", "-ffunction-sections", "-fdata-sections", f"-I{fw / 'include'}",
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="virtual-m4")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="octo-trainbench-") as tmp:
        instr = build_and_run(args.board, Path(tmp))
    per_mac = {k: round(v / MACS, 3) for k, v in instr.items()}
    f32_step = instr["f32_fwd"] + instr["f32_bwd_input"] + instr["f32_bwd_weight"]
    s8_step = sum(v for k, v in instr.items() if k.startswith("s8_"))
    doc = {
        "board": args.board,
        "layer": "conv 3x3 16x16x16 -> 16, stride 1, SAME, batch 1, ReLU", "macs_per_pass": MACS,
        "instructions": instr, "instructions_per_mac": per_mac,
        "step": {"f32_instructions_per_training_mac": round(f32_step / (3 * MACS), 3),
                 "s8_instructions_per_training_mac": round(s8_step / (3 * MACS), 3),
                 "s8_over_f32": round(s8_step / f32_step, 3), "includes_update": False},
        "goals": {"f32_fwd_instructions_per_mac": 3.2, "s8_step_instructions_per_training_mac": 4.0},
    }
    for k, v in per_mac.items():
        print(f"{k:<22} {instr[k]:>10,} instructions  {v:6.3f} per MAC")
    print(f"step: FP32 {doc['step']['f32_instructions_per_training_mac']} / INT8 "
          f"{doc['step']['s8_instructions_per_training_mac']} instructions per training MAC "
          f"(INT8/FP32 {doc['step']['s8_over_f32']}; weight update not included)")
    write_results(args.out or f"bench/results/train-kernels-{args.board}.json", "octo.bench.train_kernels/1",
                  **doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
