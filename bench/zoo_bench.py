"""Zoo benchmark: every zoo model on virtual boards, next to TFLM's memory needs.

    .venv/bin/python bench/zoo_bench.py [--boards virtual-m4,virtual-m3] [--out bench/results/zoo.json]

Per model and board: instructions per inference (SysTick under QEMU -icount),
instructions per MAC overall and per op type, per-layer numbers, firmware
flash/RAM use from the linked image, our activation arena vs TFLM's arena for
the same .tflite (planned activations, and total including interpreter state).
The digits model is trained; its held-out accuracy is measured on the board.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

ZOO = ["digits_cnn", "ds_cnn", "mobilenet_v1_025"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="virtual-m4,virtual-m3")
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--work", default="build/bench-zoo")
    ap.add_argument("--out", default="bench/results/zoo.json")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from converter.pipeline import convert
    from host_tools.board.boards import get_board
    from host_tools.board.pio import build_firmware
    from host_tools.model.bench import bench_model
    from host_tools.model.folder import load_local_model
    from host_tools.services.inference import board_session

    results = []
    for name in args.models.split(","):
        out = Path(args.work) / name
        print(f"converting {name} ...", flush=True)
        report = convert(ROOT / "models" / f"{name}.py", out, replace=True, say=lambda s: None)
        model = load_local_model(out)
        entry: dict[str, object] = {
            "model": name, "macs": report["totals"]["macs"], "params": report["totals"]["params"],
            "weight_bytes": report["totals"]["weight_bytes"], "arena_bytes": report["totals"]["arena_bytes"],
            "tflm_arena_planned_bytes": report["tflm"]["arena_planned_bytes"],
            "tflm_arena_total_bytes": report["tflm"]["arena_total_bytes"],
            "accuracy": report.get("accuracy", {}), "boards": {},
        }
        for board_name in args.boards.split(","):
            board = get_board(board_name)
            fw = build_firmware(board, model_dir=out)
            res = bench_model(model, board, None, runs=3)
            row = {"instructions": res["total"], "instructions_per_mac": res["instructions_per_mac"],
                   "by_op": res["by_op"], "layers": res["layers"],
                   "firmware": {"flash_used": fw.flash_used, "ram_used": fw.ram_used,
                                "flash_budget": fw.flash_budget, "ram_budget": fw.ram_budget}}
            if name == "digits_cnn" and (out / "eval.npz").exists():
                with np.load(out / "eval.npz") as d:
                    xq, y = model.quantize(d["x"]), d["y"]
                with board_session(board, model, say=lambda s: None) as sess:
                    pred = np.array([int(np.argmax(sess.infer(x))) for x in xq])
                row["board_accuracy"] = round(float(np.mean(pred == y)), 6)
                row["board_accuracy_samples"] = len(y)
            entry["boards"][board_name] = row  # type: ignore[index]
            print(f"  {board_name}: {res['total']:,} instructions ({res['instructions_per_mac']} per MAC), "
                  f"arena {entry['arena_bytes']:,} B vs TFLM {entry['tflm_arena_planned_bytes']:,} B planned / "
                  f"{entry['tflm_arena_total_bytes']:,} B total; flash {fw.flash_used:,} B"
                  + (f"; board accuracy {row['board_accuracy']:.4f}" if "board_accuracy" in row else ""), flush=True)
        results.append(entry)
    write_results(args.out, "octo.bench.zoo/1", results=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
