"""PASS video benchmark (docs/PASS.md): patch skipping vs the dense model on virtual-m4, per scene.

    .venv/bin/python bench/pass_bench.py [--frames 300] [--out bench/results/pass.json] [--work build/bench-pass]
                                         [--tolerances 0.05,0.1,0.2] [--quick]

The video CNN (models/video_cnn.py: 64x64 grayscale frames -> a 4x4 grid of cells, each empty or one of ten
digits) is converted once; its gates are trained self-supervised (`octo pass-train`, no labels) on a `mixed`
clip whose seed no evaluation clip uses. Then every scene - static camera with small movers, slow pan,
lighting change, scene cuts - is generated with its own seed and streamed through virtual-m4 twice with
`octo video` (the PASS firmware and the dense firmware, same frames): instructions per frame (timer ticks under
QEMU -icount), per-layer skip rates, gate cost, cell accuracy against the labels, flip rate, dense frames.
The static clip also runs in `exact` mode (skip only bit-identical patches), whose outputs must equal the
dense model's bit for bit, and with each tolerance in --tolerances (the skip-vs-accuracy knob).
Goal (static clip, under 20% of the area changing per frame): >= 3x fewer instructions per frame than dense,
cell accuracy within 1 pp, flip rate no worse than dense.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

SCENES = ("static", "pan", "lighting", "cut")
TRAIN_SEED = 1000       # the gates' training clip; evaluation clips use seeds 1..4
BOARD = "virtual-m4"


def octo(*argv: str) -> dict[str, Any]:
    """Runs an `octo` command in this process with --json to a temp file; returns the JSON."""
    import tempfile

    from host_tools.cli import main

    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as f:
        path = f.name
    rc = main([*argv, "--json", path])
    if rc != 0:
        raise SystemExit(f"octo {' '.join(argv)} failed with exit code {rc}")
    data = json.loads(Path(path).read_text())
    Path(path).unlink()
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pass.json"))
    ap.add_argument("--work", default=str(ROOT / "build" / "bench-pass"))
    ap.add_argument("--tolerances", default="", help="extra gate tolerances to try on the static clip")
    ap.add_argument("--quick", action="store_true", help="60 frames, static clip only: a smoke test")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    frames = 60 if args.quick else args.frames
    scenes = ("static",) if args.quick else SCENES
    t0 = time.perf_counter()
    dense_dir = work / "video_cnn"
    if not (dense_dir / "octo" / "model.c").exists():
        octo("convert", str(ROOT / "models" / "video_cnn.py"), "-o", str(dense_dir))
    report = json.loads((dense_dir / "report.json").read_text())
    train_clip = work / "train_mixed.npz"
    octo("video-data", "--out", str(train_clip), "--frames", "600", "--scene", "mixed", "--seed", str(TRAIN_SEED))
    pass_dir = work / "video_cnn_pass"
    trained = octo("pass-train", str(dense_dir), "--video", str(train_clip), "-o", str(pass_dir))
    runs: dict[str, Any] = {}
    clips: dict[str, Any] = {}
    for k, scene in enumerate(scenes, start=1):
        clip = work / f"{scene}.npz"
        clips[scene] = octo("video-data", "--out", str(clip), "--frames", str(frames), "--scene", scene,
                            "--seed", str(k))
        print(f"{scene}: PASS vs dense on {BOARD}, {frames} frames", flush=True)
        heat = ROOT / "bench" / "results" / f"pass_{scene}_skip.png" if scene == "static" else None
        extra = ["--heatmap", str(heat)] if heat else []
        runs[scene] = octo("video", str(pass_dir), "--frames", str(clip), "--board", BOARD, *extra)
    static_clip = work / "static.npz"
    exact = octo("video", str(pass_dir), "--frames", str(static_clip), "--board", BOARD, "--mode", "exact")
    knob: dict[str, Any] = {}
    for tol in [t for t in args.tolerances.split(",") if t]:
        d = work / f"video_cnn_pass_tol{tol}"
        octo("pass-train", str(dense_dir), "--video", str(train_clip), "-o", str(d), "--tolerance", tol)
        r = octo("video", str(d), "--frames", str(static_clip), "--board", BOARD)
        knob[tol] = {k: r.get(k) for k in ("speedup", "accuracy_delta_pp")} | {
            "skip": [ly["skip_rate"] for ly in r["pass"]["layers"]], "flip_rate": r["pass"]["flip_rate"]}
    s = runs["static"]
    goals = {
        "static_mean_changed_fraction": clips["static"]["mean_changed_fraction"],
        "static_under_20pct_change": clips["static"]["mean_changed_fraction"] < 0.2,
        "speedup": s["speedup"], "speedup_ok": s["speedup"] >= 3.0,
        "accuracy_delta_pp": s["accuracy_delta_pp"], "accuracy_ok": s["accuracy_delta_pp"] >= -1.0,
        "flip_rate": [s["pass"]["flip_rate"], s["dense"]["flip_rate"]],
        "flip_ok": s["pass"]["flip_rate"] <= s["dense"]["flip_rate"],
        "gate_cost_max": max(ly.get("gate_cost_vs_dense_macs", 0.0) for ly in s["pass"]["layers"]),
        "gate_cost_ok": all(ly.get("gate_cost_vs_dense_macs", 0.0) <= 0.05 for ly in s["pass"]["layers"]),
        "exact_mode_outputs_identical": exact.get("outputs_identical"),
        "memory": {"pass_state_bytes": s["pass"]["state_bytes"], "dense_arena_bytes": s["pass"]["dense_arena_bytes"],
                   "overhead_bytes": s["pass"]["state_bytes"] - s["pass"]["dense_arena_bytes"],
                   "board_sram_bytes": s["pass"]["board_sram_bytes"],
                   "overhead_of_budget": round((s["pass"]["state_bytes"] - s["pass"]["dense_arena_bytes"])
                                               / s["pass"]["board_sram_bytes"], 4)},
    }

    def slim(r: dict[str, Any]) -> dict[str, Any]:  # drop the per-frame lists from the committed file
        out = {k: v for k, v in r.items() if k not in ("pass", "dense")}
        for key in ("pass", "dense"):
            if key in r:
                out[key] = {k: v for k, v in r[key].items()
                            if k not in ("predictions", "instructions_per_frame_all", "output_crc32")}
        return out

    write_results(args.out, "octo.bench.pass/1", model=report["name"], macs=report["totals"]["macs"],
                  board=BOARD, frames=frames, train_clip={"scene": "mixed", "seed": TRAIN_SEED, "frames": 600},
                  gates=trained.get("plan", {}).get("gates"), clips=clips,
                  scenes={k: slim(v) for k, v in runs.items()}, exact_mode=slim(exact), tolerance_knob=knob,
                  goals=goals, seconds=round(time.perf_counter() - t0, 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
