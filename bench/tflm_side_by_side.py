"""Octo next to real TFLM + CMSIS-NN on the same virtual board, for one converted model.

    .venv/bin/python bench/tflm_side_by_side.py build/digits [--board virtual-m4] [--n 8] [--out FILE.json]

TFLM side (:func:`tflm_cmsis_nn`, also what bench/mlperf_tiny.py calls for its TFLM column): the model's TFLM
export (<model>/tflm/) in firmware/tflm/octo_tflm_main.cc, linked with libtensorflow-microlite.a built by TFLM's
Makefile with OPTIMIZED_KERNEL_DIR=cmsis_nn (host_tools/board/tflm_build.py, cached in ~/.cache/octo/tflm/), run under
QEMU -icount shift=0 on n held-out inputs (<model>/eval.npz, else random int8): instructions per inference
(median), arena_used_bytes(), the image's flash use, and whether every output byte equals Octo's generated C.
Octo side (the CLI only): `octo bench` on the same board (median instructions per inference over random inputs),
and the arena of the converted model (report.json).
Without a TFLM tree (see TFLM_DIR) the script prints a one-line note and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def held_out_inputs(model_dir: Path, n: int, seed: int = 0):  # -> np.ndarray int8 [n, ...]
    """The first n samples of <model>/eval.npz quantized as the model's input, else n random int8 inputs."""
    import numpy as np

    from host_tools.model.folder import load_local_model

    model = load_local_model(model_dir)
    data = model_dir / "eval.npz"
    if data.is_file():
        with np.load(data) as d:
            x = d["x"][:n]
        if len(x) == n:
            return model.quantize(x)
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n, *model.input_shape[1:]), dtype=np.int64).astype(np.int8)


def tflm_cmsis_nn(model_dir: str | Path, board: str = "virtual-m4", n: int = 8,
                  work: Path | None = None) -> dict[str, Any]:
    """Run model_dir's TFLM export with TFLM + CMSIS-NN on board: {"instructions_per_inference" (median over n
    inputs), "arena_used_bytes", "flash_bytes" (whole image), "outputs_equal" (every byte equals Octo's generated C
    on the host), ...}. Raises OctoError (one line) when TFLM or its packages are missing: see `make tflm`."""
    import numpy as np

    from host_tools.board.tflm_build import BOARD_ARCH, build_library
    from host_tools.board.tflm_firmware import TflmExport, build_firmware, run_firmware
    from host_tools.model.folder import load_local_model, run_on_host

    model_dir = Path(model_dir)
    model = load_local_model(model_dir)
    export = TflmExport.read(model_dir)
    lib = build_library(BOARD_ARCH.get(board, "cortex-m4+fp"))
    xq = held_out_inputs(model_dir, n)
    with tempfile.TemporaryDirectory(prefix="octo-tflm-") as tmp:
        run = run_firmware(build_firmware(model_dir, xq, work or Path(tmp), board, lib), board)
    ours = run_on_host(model, xq)
    return {
        "board": board,
        "runtime": "TFLM + CMSIS-NN",
        "n": n,
        "instructions_per_inference": int(statistics.median(run.instructions)),
        "instructions": run.instructions,
        "arena_used_bytes": run.arena_used_bytes,
        "arena_suggested_bytes": export.arena_size,
        "flash_bytes": run.flash_bytes,
        "ram_bytes": run.ram_bytes,
        "outputs_equal": bool(np.array_equal(run.outputs, ours.reshape(run.outputs.shape))),
        "outputs": run.outputs.tolist(),  # int8 [n][output bytes]
        "library": {"arch": lib.arch, "key": lib.key, "build_seconds": lib.build_seconds},
    }


def octo_side(model_dir: Path, board: str, runs: int, xq) -> dict[str, Any]:
    """Octo's own firmware on the board, in one session: `octo bench` (median instructions per inference over runs
    random inputs) and the same held-out inputs xq as the TFLM run (median instructions, output bytes)."""
    import numpy as np

    from converter import toollog
    from host_tools.board.boards import get_board
    from host_tools.board.pio import build_dir
    from host_tools.board.qemu import instructions_from_ticks
    from host_tools.board.tflm_firmware import image_memory
    from host_tools.model.bench import bench_session
    from host_tools.model.folder import load_local_model
    from host_tools.services.inference import board_session

    model = load_local_model(model_dir)
    b = get_board(board)
    same_inputs, outputs = [], []
    with board_session(b, model, None, say=toollog.say) as sess:
        res = bench_session(sess, model, b.name, runs)
        for x in xq:
            total, _ = sess.invoke_timed(x)
            same_inputs.append(instructions_from_ticks(total, sess.timer_hz))
            outputs.append(sess.read_output())
    totals = model.report["totals"]
    flash, ram = image_memory(build_dir(b, model_dir) / "firmware.elf")
    return {"board": board, "runtime": "Octo", "unit": res["unit"],
            "instructions_per_inference": int(statistics.median(same_inputs)), "instructions": same_inputs,
            "octo_bench": {"runs": runs, "inputs": "random int8", "instructions_per_inference": res["total"]},
            "outputs": np.array(outputs, dtype=np.int8).tolist(),
            "arena_bytes": totals["arena_bytes"], "weight_bytes": totals["weight_bytes"],
            "image_flash_bytes": flash, "image_ram_bytes": ram,
            "image_note": "the whole Octo firmware (serial link, services, training engine), not the model alone"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a folder written by `octo convert`")
    ap.add_argument("--board", default="virtual-m4")
    ap.add_argument("--n", type=int, default=8, help="held-out inputs for the TFLM run (default 8)")
    ap.add_argument("--runs", type=int, default=5, help="`octo bench` runs for the Octo side (default 5)")
    ap.add_argument("--out", help="write the comparison as JSON here (e.g. bench/results/tflm_digits.json)")
    args = ap.parse_args(argv)

    from host_tools.board.tflm_build import skip_reason
    from host_tools.errors import OctoError

    reason = skip_reason()
    if reason:
        print(f"octo: note: {reason}; skipping the TFLM side by side")
        return 0
    try:
        tflm = tflm_cmsis_nn(args.model, args.board, args.n)
        octo = octo_side(args.model, args.board, args.runs, held_out_inputs(args.model, args.n))
    except OctoError as exc:
        print(f"octo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    ratio = tflm["instructions_per_inference"] / octo["instructions_per_inference"]
    boards_agree = tflm.pop("outputs") == octo.pop("outputs")
    print(f"{args.model.name} on {args.board}, instructions per inference (median):")
    print(f"  TFLM + CMSIS-NN {tflm['instructions_per_inference']:>10,}  arena_used {tflm['arena_used_bytes']:,} B "
          f"(suggested {tflm['arena_suggested_bytes']:,}), image flash {tflm['flash_bytes']:,} B, "
          f"outputs equal to Octo's C on the host: {tflm['outputs_equal']}, to Octo on the board: {boards_agree}")
    print(f"  Octo            {octo['instructions_per_inference']:>10,}  arena {octo['arena_bytes']:,} B, "
          f"image flash {octo['image_flash_bytes']:,} B (whole firmware); `octo bench` (random inputs) "
          f"{octo['octo_bench']['instructions_per_inference']:,}")
    print(f"  TFLM / Octo = {ratio:.2f}x instructions")
    if args.out:
        from benchlib import write_results  # bench/ is on sys.path when run as a script

        write_results(args.out, "octo.bench.tflm/1", model=str(args.model),
                      inputs=f"the first {args.n} samples of eval.npz (held out), the same on both sides",
                      tflm_cmsis_nn=tflm, octo=octo, outputs_equal_on_the_board=boards_agree,
                      tflm_over_octo_instructions=round(ratio, 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
