"""The `octo` command line. Parsing lives here; each command is a function in
host_tools/commands.py that can be called as a library.

Heavy imports (TensorFlow, PlatformIO, pyserial) happen inside commands, so
`octo --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from host_tools.errors import OctoError


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON to FILE ('-' = stdout)")


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", "-b", help="board name (see `octo boards`; default virtual-m4)")
    p.add_argument("--port", "-p", help="serial port: /dev/ttyACM0, COM3 or socket://127.0.0.1:PORT "
                   "(default: the running virtual board, or the board's usual device)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for real serial ports (default 115200)")


def build_parser() -> argparse.ArgumentParser:
    from host_tools import commands as c  # noqa: PLC0415  (light module, no heavy imports)

    ap = argparse.ArgumentParser(
        prog="octo",
        description="Octo: INT8 TinyML toolchain for Cortex-M (virtual boards under QEMU, real ones over serial).",
    )
    ap.add_argument("--verbose", "-v", action="store_true", help="show tool output (PlatformIO, QEMU)")
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

    from host_tools import model_cmds as mc  # noqa: PLC0415  (light: heavy imports are inside)

    p = add("convert", mc.cmd_convert, "convert a model (recipe .py, .keras/.h5, SavedModel, INT8 .tflite) to "
            "INT8 TFLite + generated C + TFLM export + report")
    p.add_argument("source", help="models/<name>.py recipe, a .keras/.h5 file, a SavedModel folder or a .tflite")
    p.add_argument("-o", "--output", required=True, help="output folder (e.g. build/digits)")
    p.add_argument("--calib", help=".npz with 'x' (float32 NHWC) representative inputs, for float models")
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

    p = add("demo", c.cmd_demo, "the whole loop on the virtual board (what `make demo` runs)")
    p.add_argument("--board", "-b", default="virtual-m4", help="virtual board (default virtual-m4)")
    p.add_argument("--out", default="build/demo", help="folder for the demo's outputs (default build/demo)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except OctoError as exc:
        print(f"octo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("octo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
