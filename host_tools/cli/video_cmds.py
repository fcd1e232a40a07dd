"""`octo video-data`, `octo pass-train`, `octo video`: PASS video perception (docs/PASS.md)."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from converter import toollog
from host_tools.board.boards import get_board
from host_tools.errors import OctoError
from host_tools.output import Output


def _say(msg: str) -> None:
    toollog.say(msg)


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


def pass_train(model_dir: Path, frames: Any, out_dir: Path, *, tolerance: float | None = None,
               cut_permille: int | None = None, say: Any = _say) -> dict[str, Any]:
    """Trains gates on unlabelled frames and writes a PASS model folder; returns its plan."""
    from converter.ir import ConvertError  # noqa: PLC0415
    from converter.pass_codegen import compile_pass, gate_summary  # noqa: PLC0415
    from converter.tflite_reader import read_tflite  # noqa: PLC0415
    from host_tools.video.gates import train_gates  # noqa: PLC0415

    tfl = model_dir / "model.tflite"
    rep = model_dir / "report.json"
    if not tfl.exists() or not rep.exists():
        raise OctoError(f"{model_dir} is not a converted model folder (needs model.tflite and report.json)",
                        hint=f"run `octo convert <model> -o {model_dir}` first")
    if out_dir.resolve() == model_dir.resolve():
        raise OctoError("-o must differ from the model folder (the dense model stays as the baseline)")
    report = json.loads(rep.read_text())
    try:
        graph = read_tflite(tfl)
        from converter.pass_codegen import check_chain  # noqa: PLC0415
        from converter.rewrite import rewrite_graph  # noqa: PLC0415

        check_chain(rewrite_graph(graph))
    except ConvertError as exc:
        raise OctoError(f"{model_dir}: {exc}") from None
    kw: dict[str, Any] = {"say": say}
    if tolerance is not None:
        kw["tolerance"] = tolerance
    gates = train_gates(tfl, frames, **kw)
    if cut_permille is not None:
        gates["cut_permille"] = cut_permille
    text, plan = compile_pass(graph, gates, report.get("name", model_dir.name),
                              int(str(report.get("fingerprint", "0x0")), 16))
    (out_dir / "octo").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tfl, out_dir / "model.tflite")
    shutil.copyfile(rep, out_dir / "report.json")
    (out_dir / "gates.json").write_text(json.dumps(gates, indent=1) + "\n")
    (out_dir / "octo" / "pass_model.c").write_text(text)
    info = plan.as_dict()
    info.update(source=str(model_dir.resolve()), dense_arena_bytes=int(report["totals"]["arena_bytes"]),
                gates=gate_summary(plan))
    (out_dir / "pass_plan.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def cmd_pass_train(args: argparse.Namespace) -> int:
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


def _dense_run(model_dir: Path, xq: Any, board_name: str, port: str | None
               ) -> tuple[list[Any], list[int], list[list[int]], Any]:
    from host_tools.services.inference import board_session, load_local_model  # noqa: PLC0415

    model = load_local_model(model_dir)
    board = get_board(board_name)
    outputs, ticks, layer_ticks = [], [], []
    with board_session(board, model, port, say=_say) as sess:
        for t in range(len(xq)):
            total, per_layer = sess.invoke_timed(xq[t])
            outputs.append(sess.read_output())
            ticks.append(total)
            layer_ticks.append(per_layer)
            if (t + 1) % 50 == 0 or t + 1 == len(xq):
                _say(f"  dense: {t + 1}/{len(xq)} frames")
        to_instr = _instr_fn(sess.timer_hz, sess.icount)
    return outputs, ticks, layer_ticks, to_instr


def _instr_fn(timer_hz: int, icount: bool) -> Any:
    from host_tools.board.qemu import instructions_from_ticks  # noqa: PLC0415

    return (lambda t: instructions_from_ticks(t, timer_hz)) if icount else (lambda t: None)


def video_compare(model_dir: Path, clip_path: Path, board_name: str, *, port: str | None = None,
                  mode: str = "auto", dense_only: bool = False, no_dense: bool = False, limit: int | None = None,
                  heatmap: Path | None = None) -> dict[str, Any]:
    """PASS (and the dense model alongside) or the dense model alone over a clip: the `octo video` document."""
    import numpy as np  # noqa: PLC0415

    from host_tools.video import run as V  # noqa: PLC0415
    clip = _load_clip(clip_path)
    frames, labels = clip.frames, clip.labels
    if limit:
        frames, labels = frames[:limit], labels[:limit]
    board = get_board(board_name)
    is_pass = V.is_pass_dir(model_dir)
    result: dict[str, Any] = {"model": str(model_dir), "clip": str(clip_path), "scene": clip.scene,
                              "board": board.name, "frames": len(frames), "mode": mode}
    pass_sum = dense_sum = None
    dense_dir: Path | None = None
    if is_pass and not dense_only:
        pm = V.load_pass_model(model_dir)
        xq = V.quantize_frames(frames, pm.report)
        with V.pass_session(board, pm, port, say=_say) as sess:
            def progress(t: int) -> None:
                if (t + 1) % 50 == 0 or t + 1 == len(xq):
                    _say(f"  PASS: {t + 1}/{len(xq)} frames")
            res = V.run_pass(sess, xq, mode, on_frame=progress)
            pass_sum = V.summarize_pass(sess.info, res, _instr_fn(sess.timer_hz, sess.icount), labels)
        pass_sum["dense_arena_bytes"] = int(pm.plan.get("dense_arena_bytes", 0))
        pass_sum["board_sram_bytes"] = board.sram_bytes
        if not no_dense:
            src = Path(pm.plan.get("source", ""))
            dense_dir = src if (src / "octo" / "model.c").exists() else None
            if dense_dir is None:
                _say(f"dense baseline skipped: the source model {src} is gone (pass --no-dense to silence)")
    elif dense_only:
        dense_dir = Path(V.load_pass_model(model_dir).plan["source"]) if is_pass else model_dir
    else:
        raise OctoError(f"{model_dir} is a dense model; pass --dense for the dense baseline, or train gates with "
                        f"`octo pass-train {model_dir} --video CLIP.npz -o DIR` and run DIR")
    if dense_dir is not None:
        from host_tools.services.inference import load_local_model  # noqa: PLC0415

        dm = load_local_model(dense_dir)
        xq_d = V.quantize_frames(frames, dm.report)
        outputs, ticks, layer_ticks, to_instr = _dense_run(dense_dir, xq_d, board.name, port)
        dense_sum = V.summarize_dense(outputs, ticks, layer_ticks, to_instr, labels, dm.report)
    if pass_sum is not None:
        result["pass"] = pass_sum
        if heatmap is not None:
            V.heatmap(pass_sum, heatmap, f"{model_dir.name} on a {clip.scene} clip: patches skipped", frames[0])
            result["heatmap"] = str(heatmap)
    if dense_sum is not None:
        result["dense"] = dense_sum
    if pass_sum is not None and dense_sum is not None:
        V.attach_dense_layers(pass_sum, dense_sum)
        result["speedup"] = round(dense_sum["instructions_per_frame"] / pass_sum["instructions_per_frame"], 3)
        result["accuracy_delta_pp"] = round(100 * (pass_sum["cell_accuracy"] - dense_sum["cell_accuracy"]), 3)
        result["predictions_equal_fraction"] = round(float(np.mean(
            np.array(pass_sum["predictions"]) == np.array(dense_sum["predictions"]))), 6)
        result["outputs_identical"] = pass_sum["output_crc32"] == dense_sum["output_crc32"]
    return result


def video_lines(result: dict[str, Any]) -> list[str]:
    from host_tools.video import run as V  # noqa: PLC0415

    lines = V.table(result.get("pass"), result.get("dense"))
    p = result.get("pass")
    if p is not None:
        lines.append(f"PASS state {p['state_bytes']:,} B (dense arena {p['dense_arena_bytes']:,} B) of the board's "
                     f"{p['board_sram_bytes']:,} B SRAM; {p['dense_frames']} of {p['frames']} frames ran dense")
    if "outputs_identical" in result:
        lines.append("outputs bit-identical to the dense model on every frame" if result["outputs_identical"] else
                     f"predicted cells equal to the dense model's: {result['predictions_equal_fraction']:.2%}")
    return lines


def cmd_video(args: argparse.Namespace) -> int:
    out = Output(args.json)
    result = video_compare(Path(args.model), Path(args.frames), args.board, port=args.port, mode=args.mode,
                           dense_only=args.dense, no_dense=args.no_dense, limit=args.limit,
                           heatmap=Path(args.heatmap) if args.heatmap else None)
    for line in video_lines(result):
        out.say(line)
    out.emit("octo.video/1", result)
    return 0
