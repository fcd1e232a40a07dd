"""`octo video-data`, `octo pass-train`, `octo video`: PASS video perception (docs/PASS.md)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from host_tools.errors import OctoError
from host_tools.output import Output


def _load_clip(path: Path) -> Any:
    """A clip from `octo video-data`; a damaged or foreign file is a one-line error."""
    from host_tools.video.data import ClipFormatError, load_clip  # noqa: PLC0415

    try:
        return load_clip(path)
    except ClipFormatError as exc:
        raise OctoError(str(exc), hint="make one with `octo video-data --out FILE.npz`") from None


def cmd_video_data(args: argparse.Namespace) -> int:
    from host_tools.video.data import SCENES, make_clip, save_clip  # noqa: PLC0415

    out = Output(args.json)
    if args.scene not in SCENES:
        raise OctoError(f"unknown scene {args.scene!r}; choose one of {', '.join(SCENES)}")
    if args.frames < 2:
        raise OctoError("--frames must be at least 2")
    clip = make_clip(args.scene, args.frames, args.seed)
    save_clip(Path(args.out), clip)
    changed = float(clip.changed_fraction[1:].mean())
    out.say(f"{args.out}: {args.frames} frames of {clip.frames.shape[2]}x{clip.frames.shape[1]} ({args.scene}, seed "
            f"{args.seed}); {changed:.1%} of pixels change per frame on average; "
            f"{len(clip.cuts)} scene cut(s)")
    out.emit("octo.video_data/1", {"path": args.out, "scene": args.scene, "frames": args.frames, "seed": args.seed,
                                   "shape": list(clip.frames.shape[1:]), "mean_changed_fraction": round(changed, 5),
                                   "cuts": [int(c) for c in clip.cuts]})
    return 0


def cmd_pass_train(args: argparse.Namespace) -> int:
    from host_tools.video.pass_model import pass_train  # noqa: PLC0415
    out = Output(args.json)
    clip = _load_clip(Path(args.video))
    t0 = time.perf_counter()
    info = pass_train(Path(args.model), clip.frames, Path(args.output), tolerance=args.tolerance,
                      cut_permille=args.cut_permille)
    gates = json.loads((Path(args.output) / "gates.json").read_text())
    out.say(f"{args.output}: PASS model, {len(info['gates'])} gated layer(s), state {info['state_bytes']:,} B "
            f"(dense arena {info['dense_arena_bytes']:,} B); {time.perf_counter() - t0:.0f} s")
    for g, t in zip(info["gates"], gates["layers"], strict=False):
        tr = t.get("train", {})
        out.say(f"  {g['name']:<8} P={g['patch']} S={g['sample']} grid {g['grid'][0]}x{g['grid'][1]}; gate reads "
                f"{g['gate_cost_vs_dense_macs']:.2%} of the layer's dense MACs"
                + (f"; training pairs: skip {tr['predicted_skip_rate']:.1%}, recall of changed "
                   f"{tr['recall_changed']:.1%}" if "predicted_skip_rate" in tr else ""))
    out.emit("octo.pass_train/1", {"model": args.model, "output": args.output, "video": args.video,
                                   "plan": info, "gates": gates})
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from host_tools.video.run import video_compare, video_lines  # noqa: PLC0415
    out = Output(args.json)
    result = video_compare(Path(args.model), Path(args.frames), args.board, port=args.port, mode=args.mode,
                           dense_only=args.dense, no_dense=args.no_dense, limit=args.limit,
                           heatmap=Path(args.heatmap) if args.heatmap else None)
    for line in video_lines(result):
        out.say(line)
    out.emit("octo.video/1", result)
    return 0
