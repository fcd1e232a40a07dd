"""MLPerf Tiny benchmark: the four reference models (models/mlperf_*.py) on virtual boards, next to TFLM.

    .venv/bin/python bench/mlperf_tiny.py [--boards virtual-m4] [--models mlperf_kws,...] [--samples 40]
                                          [--work build/bench-mlperf] [--reuse] [--out bench/results/mlperf_tiny.json]

Per model: MACs, params, the held-out accuracy (AUC for the autoencoder) of the float model, of the INT8 generated
C and of TFLM, whether the generated C equals TFLM on every held-out sample (host), our activation arena vs TFLM's
planner, the .tflite size. Per model and board: instructions per inference (QEMU -icount) and per MAC, per op
type and per layer, the firmware image's flash and RAM use, and whether the board's int8 outputs equal TFLM's on
the first --samples held-out samples. `tflm_cmsis_nn`: the same model's TFLM export run by the real TFLM
interpreter with CMSIS-NN kernels on virtual-m4 in the same run (bench/tflm_side_by_side.py; `make tflm` builds the
library once), with Octo's instructions as a ratio of TFLM's; null with a one-line note where no TFLM tree exists
(`TFLM_DIR`, default ../shared/third_party/tflm) or with --no-tflm.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

MODELS = ["mlperf_kws", "mlperf_vww", "mlperf_ic", "mlperf_ad"]
# MLPerf Tiny's published MACs per inference of the reference models.
PUBLISHED_MACS = {"mlperf_kws": 2_660_000, "mlperf_vww": 7_490_000, "mlperf_ic": 12_500_000, "mlperf_ad": 264_000}
TFLM_BOARD = "virtual-m4"     # the TFLM + CMSIS-NN firmware exists for the Cortex-M4F board


def tflm_column(out: Path, macs: int, octo_instructions: int | None, n: int) -> tuple[dict | None, str]:
    """TFLM + CMSIS-NN on TFLM_BOARD for one converted model, or (None, why not)."""
    from tflm_side_by_side import tflm_cmsis_nn

    from host_tools.errors import OctoError

    try:
        r = tflm_cmsis_nn(out, TFLM_BOARD, n=n)
    except OctoError as exc:
        return None, f"TFLM + CMSIS-NN not measured: {exc}"
    instr = r["instructions_per_inference"]
    return {"board": TFLM_BOARD, "instructions": instr, "instructions_per_mac": round(instr / macs, 3),
            "arena_used_bytes": r["arena_used_bytes"], "arena_suggested_bytes": r["arena_suggested_bytes"],
            "flash_bytes": r["flash_bytes"], "outputs_equal_octo": r["outputs_equal"], "samples": r["n"],
            "octo_vs_tflm_instructions": round(octo_instructions / instr, 3) if octo_instructions else None}, ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="virtual-m4")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--samples", type=int, default=40, help="held-out samples compared with TFLM on each board")
    ap.add_argument("--runs", type=int, default=3, help="timed inferences per model and board (median)")
    ap.add_argument("--work", default="build/bench-mlperf")
    ap.add_argument("--reuse", action="store_true", help="keep a model already converted in --work")
    ap.add_argument("--out", default="bench/results/mlperf_tiny.json")
    ap.add_argument("--flash", help="octo convert --flash N: bytes of weights allowed, the fastest layers at 2 bytes "
                    "per weight while they fit (default: every weight 1 byte)")
    ap.add_argument("--tflm", action=argparse.BooleanOptionalAction, default=True,
                    help="also run TFLM + CMSIS-NN on virtual-m4 (default on; skipped with a note without a TFLM tree)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from converter.pipeline import convert
    from converter.tflm import tflm_run
    from converter.update_budget import parse_bytes
    from host_tools.board.boards import get_board
    from host_tools.board.pio import build_firmware
    from host_tools.errors import OctoError
    from host_tools.model.bench import bench_session
    from host_tools.model.folder import load_local_model
    from host_tools.services.inference import board_session

    results = []
    for name in args.models.split(","):
        out = Path(args.work) / name
        t0 = time.monotonic()
        if args.reuse and (out / "report.json").exists():
            print(f"{name}: reusing {out}", flush=True)
            report = json.loads((out / "report.json").read_text())
            build_s = None
        else:
            print(f"converting {name} (generates or loads its data, trains, quantizes) ...", flush=True)
            report = convert(ROOT / "models" / f"{name}.py", out, replace=True, say=lambda s: None,
                             flash=parse_bytes(args.flash) if args.flash else None)
            build_s = round(time.monotonic() - t0, 1)
        model = load_local_model(out)
        tflite = (out / "model.tflite").read_bytes()
        with np.load(out / "eval.npz") as d:
            xq = model.quantize(d["x"][: args.samples]).reshape(-1, *model.input_shape[1:])
        ref = tflm_run(tflite, xq).reshape(len(xq), -1)
        t = report["totals"]
        entry: dict[str, object] = {
            "model": name, "macs": t["macs"], "published_macs": PUBLISHED_MACS.get(name),
            "macs_vs_published": round(t["macs"] / PUBLISHED_MACS[name], 4) if name in PUBLISHED_MACS else None,
            "params": t["params"], "weight_bytes": t["weight_bytes"], "tflite_bytes": t["tflite_bytes"],
            "arena_bytes": t["arena_bytes"], "tflm_arena_planned_bytes": report["tflm"]["arena_planned_bytes"],
            "tflm_arena_total_bytes": report["tflm"]["arena_total_bytes"],
            "arena_vs_tflm_planned": round(t["arena_bytes"] / report["tflm"]["arena_planned_bytes"], 4),
            "accuracy": report.get("accuracy", {}), "convert_seconds": build_s,
            "layers": [{k: layer[k] for k in ("index", "name", "op", "macs", "params", "output_shape")}
                       for layer in report["layers"]],
            "boards": {}, "tflm_cmsis_nn": None, "tflm_cmsis_nn_note": "not run (--no-tflm)",
        }
        for board_name in args.boards.split(","):
            board = get_board(board_name)
            try:
                fw = build_firmware(board, model_dir=out)
            except OctoError as exc:  # e.g. AD's int16 weights exceed virtual-m3's 512 KiB of flash
                if "does not fit" not in str(exc):
                    raise
                entry["boards"][board_name] = {"fits": False, "note": str(exc).splitlines()[0]}  # type: ignore[index]
                print(f"  {board_name}: skipped, {str(exc).splitlines()[0]}", flush=True)
                continue
            with board_session(board, model, say=lambda s: None) as sess:
                res = bench_session(sess, model, board.name, args.runs)
                got = np.stack([sess.infer(x.reshape(-1)) for x in xq])
            unit = res["unit"]
            exact = bool(np.array_equal(got, ref))
            row = {"unit": unit, unit: res["total"], f"{unit}_per_mac": res[f"{unit}_per_mac"],
                   "by_op": res["by_op"], "layers": res["layers"],
                   "matches_tflm": exact, "samples_compared": len(xq),
                   "firmware": {"flash_used": fw.flash_used, "ram_used": fw.ram_used,
                                "flash_budget": fw.flash_budget, "ram_budget": fw.ram_budget}}
            entry["boards"][board_name] = row  # type: ignore[index]
            print(f"  {board_name}: {res['total']:,} {unit} ({res[f'{unit}_per_mac']} per MAC, {t['macs']:,} MACs), "
                  f"arena {t['arena_bytes']:,} B vs TFLM {report['tflm']['arena_planned_bytes']:,} B planned; "
                  f"flash {fw.flash_used:,} B (.tflite {t['tflite_bytes']:,} B); bit-exact with TFLM on "
                  f"{len(xq)} held-out samples: {exact}", flush=True)
        if args.tflm:
            octo_m4 = entry["boards"].get(TFLM_BOARD, {})  # type: ignore[union-attr]
            col, why = tflm_column(out, t["macs"], octo_m4.get("instructions"), min(args.samples, 8))
            entry["tflm_cmsis_nn"], entry["tflm_cmsis_nn_note"] = col, why
            print(f"  TFLM + CMSIS-NN on {TFLM_BOARD}: " + (f"{col['instructions']:,} instructions "
                  f"({col['instructions_per_mac']} per MAC), arena {col['arena_used_bytes']:,} B, flash "
                  f"{col['flash_bytes']:,} B; Octo / TFLM instructions {col['octo_vs_tflm_instructions']}; outputs "
                  f"equal Octo's: {col['outputs_equal_octo']}" if col else why), flush=True)
        results.append(entry)
    write_results(args.out, "octo.bench.mlperf_tiny/1", boards=args.boards.split(","), results=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
