"""Video through a board: PASS (patch skipping) or the dense model, frame by frame (docs/PASS.md).

`run_video` streams a clip (host_tools/video/data.py) to a board and collects, per frame, the output grid, the
instructions, and for PASS the per-layer recomputed pixels, gate decisions and skip maps; `summarize` turns
that into the table `octo video` prints (and --json writes, schema octo.video/1); `plot_heatmap` draws how often
each patch was skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter import toollog
from host_tools.board.boards import Board, get_board
from host_tools.errors import OctoError
from host_tools.services.video import FrameResult, PassInfo, PassSession


@dataclass(frozen=True)
class PassModelDir:
    """A folder written by `octo pass-train`: model.tflite, report.json, gates.json, octo/pass_model.c."""

    path: Path
    report: dict[str, Any]
    gates: dict[str, Any]
    plan: dict[str, Any]
    fingerprint: int


def load_pass_model(path: Path) -> PassModelDir:
    need = ["model.tflite", "report.json", "gates.json", "pass_plan.json", "octo/pass_model.c"]
    missing = [n for n in need if not (path / n).exists()]
    if missing:
        raise OctoError(f"{path} is not a PASS model folder (missing {', '.join(missing)})",
                        hint=f"run `octo pass-train <converted model> --video CLIP.npz -o {path}`")
    from host_tools.model.folder import read_folder_json  # noqa: PLC0415

    return PassModelDir(path, read_folder_json(path / "report.json"), read_folder_json(path / "gates.json"),
                        read_folder_json(path / "pass_plan.json"),
                        zlib.crc32((path / "model.tflite").read_bytes()))


def is_pass_dir(path: Path) -> bool:
    return (path / "octo" / "pass_model.c").exists()


def quantize_frames(frames: np.ndarray, report: dict[str, Any]) -> np.ndarray:
    """uint8 frames [T, H, W] -> the model's int8 input [T, H, W, 1] (model units: pixel / 255)."""
    from converter.pipeline import quantize_inputs  # noqa: PLC0415

    shape = tuple(report["input"]["shape"][1:])
    if frames.ndim != 3 or (*frames.shape[1:], 1) != shape:
        raise OctoError(f"frames have shape {tuple(frames.shape)}; the model takes [T, {shape[0]}, {shape[1]}] "
                        "grayscale frames")
    x = frames.astype(np.float32)[..., None] / np.float32(255.0)
    return quantize_inputs(x, report["input"]["scale"], report["input"]["zero_point"])


@contextmanager
def pass_session(board: Board, model: PassModelDir, port: str | None = None, *,
                 say: Callable[[str], None] = print) -> Iterator[PassSession]:
    from host_tools.board.target import open_model_client  # noqa: PLC0415

    with open_model_client(board, model.path, port, what=" (PASS)", say=say) as client:
        yield PassSession(client, model)


def grid_predictions(outputs: np.ndarray, labels_shape: tuple[int, ...]) -> np.ndarray:
    """int8 outputs [T, cells * classes] -> predicted class per cell [T, *labels_shape[1:]]."""
    return np.asarray(outputs).reshape(len(outputs), *labels_shape[1:], -1).argmax(-1)


def accuracy_and_flips(pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Cell accuracy, accuracy on occupied cells, and the flip rate: over consecutive frames whose labels are
    identical, the fraction of cells whose predicted class changed (label-stable flicker)."""
    acc = float(np.mean(pred == labels))
    occ = labels != 0
    occ_acc = float(np.mean(pred[occ] == labels[occ])) if occ.any() else float("nan")
    frame_acc = float(np.mean(np.all((pred == labels).reshape(len(pred), -1), axis=1)))
    same = np.all((labels[1:] == labels[:-1]).reshape(len(labels) - 1, -1), axis=1)
    flips = (pred[1:] != pred[:-1]).reshape(len(pred) - 1, -1)[same]
    return {"cell_accuracy": round(acc, 6), "occupied_cell_accuracy": round(occ_acc, 6),
            "frame_accuracy": round(frame_acc, 6),
            "flip_rate": round(float(flips.mean()) if flips.size else 0.0, 6), "stable_pairs": int(same.sum())}


def run_pass(sess: PassSession, xq: np.ndarray, mode: str, *, on_frame: Callable[[int], None] | None = None
             ) -> list[FrameResult]:
    sess.reset()
    out = []
    for t in range(len(xq)):
        out.append(sess.frame(xq[t], mode))
        if on_frame is not None:
            on_frame(t)
    return out


def summarize_pass(info: PassInfo, results: list[FrameResult], to_instr: Callable[[int], int | None],
                   labels: np.ndarray, *, skip_first: bool = True) -> dict[str, Any]:
    """Per-layer skip rates and cost, per-frame instructions and accuracy. Averages over all frames; the
    'steady' figures leave out dense frames (the first frame and scene cuts)."""
    outputs = np.stack([r.output for r in results])
    pred = grid_predictions(outputs, labels.shape)
    dense = np.array([r.dense for r in results])
    instr = np.array([to_instr(r.ticks) or r.ticks for r in results], np.float64)
    layers = []
    for i, ly in enumerate(info.layers):
        total = ly.out_hwc[0] * ly.out_hwc[1]
        px = np.array([r.out_pixels[i] for r in results], np.float64)
        row: dict[str, Any] = {
            "name": ly.name, "op": ly.kind, "gated": ly.gated, "dense_macs": ly.macs,
            "recomputed_fraction": round(float(px.mean() / total), 4),
            "skip_rate": round(1.0 - float(px.mean() / total), 4),
            "macs_per_frame": round(float(np.mean([r.macs[i] for r in results])), 1),
            "instructions_per_frame": round(float(np.mean([to_instr(r.layer_ticks[i]) or 0 for r in results])), 1),
        }
        if ly.gated:
            gh, gw = ly.grid
            row.update(patch=ly.patch, sample=ly.sample, grid=[gh, gw],
                       patch_skip_rate=round(1.0 - float(np.mean([r.patches_changed[i] for r in results]))
                                             / (gh * gw), 4),
                       gate_instructions_per_frame=round(float(np.mean([to_instr(r.gate_ticks[i]) or 0
                                                                        for r in results])), 1),
                       gate_elements_per_frame=round(float(np.mean([r.gate_elements[i] for r in results])), 1),
                       gate_cost_vs_dense_macs=round(float(np.mean([r.gate_elements[i] for r in results]))
                                                     / max(ly.macs, 1), 5))
        layers.append(row)
    maps = {info.layers[i].name: np.mean([r.gate_maps[i] for r in results if i in r.gate_maps], axis=0)
            for i, ly in enumerate(info.layers) if ly.gated}
    return {
        "frames": len(results), "dense_frames": int(dense.sum()),
        "instructions_per_frame": round(float(instr.mean()), 1),
        "instructions_per_frame_steady": round(float(instr[~dense].mean()), 1) if (~dense).any() else None,
        "instructions_per_frame_all": [int(v) for v in instr],
        **accuracy_and_flips(pred, labels),
        "state_bytes": info.state_bytes,
        "layers": layers,
        "skip_maps": {k: np.round(1.0 - v, 4).tolist() for k, v in maps.items()},  # fraction of frames skipped
        "predictions": pred.astype(int).tolist(),
        "output_crc32": [zlib.crc32(r.output.tobytes()) for r in results],
    }


def summarize_dense(outputs: list[np.ndarray], ticks: list[int], layer_ticks: list[list[int]],
                    to_instr: Callable[[int], int | None], labels: np.ndarray, report: dict[str, Any]
                    ) -> dict[str, Any]:
    pred = grid_predictions(np.stack(outputs), labels.shape)
    instr = np.array([to_instr(t) or t for t in ticks], np.float64)
    per_layer = np.array([[to_instr(v) or v for v in row] for row in layer_ticks], np.float64).mean(axis=0)
    layers = [{"name": ly["name"], "op": ly["op"], "macs": ly["macs"],
               "instructions_per_frame": round(float(v), 1)}
              for ly, v in zip(report["layers"], per_layer, strict=False)]
    return {"frames": len(outputs), "instructions_per_frame": round(float(instr.mean()), 1), "layers": layers,
            "instructions_per_frame_all": [int(v) for v in instr], **accuracy_and_flips(pred, labels),
            "predictions": pred.astype(int).tolist(),
            "output_crc32": [zlib.crc32(np.asarray(o, np.int8).tobytes()) for o in outputs]}


def attach_dense_layers(pass_sum: dict[str, Any], dense_sum: dict[str, Any]) -> None:
    """Per layer: the dense model's instructions for that layer, and the gate's instructions against them."""
    for ly, d in zip(pass_sum["layers"], dense_sum["layers"], strict=False):
        ly["dense_instructions_per_frame"] = d["instructions_per_frame"]
        ly["instructions_vs_dense"] = round(ly["instructions_per_frame"] / max(d["instructions_per_frame"], 1), 4)
        if ly["gated"]:
            ly["gate_instructions_vs_dense_layer"] = round(ly["gate_instructions_per_frame"]
                                                          / max(d["instructions_per_frame"], 1), 4)
            ly["gate_instructions_vs_dense_macs"] = round(ly["gate_instructions_per_frame"]
                                                         / max(ly["dense_macs"], 1), 4)


def plot_heatmap(summary: dict[str, Any], path: Path, title: str, frame: np.ndarray | None = None) -> None:
    """One panel per gated layer: the fraction of frames each patch was skipped (over the first frame of the
    clip when given)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    maps = summary["skip_maps"]
    n = len(maps) + (frame is not None)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(3.2 * max(n, 1), 3.4), squeeze=False)
    k = 0
    if frame is not None:
        axes[0][0].imshow(frame, cmap="gray", vmin=0, vmax=255)
        axes[0][0].set_title("first frame")
        axes[0][0].axis("off")
        k = 1
    im = None
    for name, m in maps.items():
        ax = axes[0][k]
        im = ax.imshow(np.asarray(m), cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(f"{name}: skipped")
        ax.axis("off")
        k += 1
    if im is not None:
        fig.colorbar(im, ax=[a for a in axes[0]], shrink=0.8, label="fraction of frames skipped")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(pass_sum: dict[str, Any] | None, dense_sum: dict[str, Any] | None) -> list[str]:
    """The side-by-side summary `octo video` prints."""
    lines = []
    if pass_sum is not None:
        lines.append(f"{'layer':<10} {'op':<12} {'gate':<5} {'pixels':>7} {'patches':>8} {'instr/frame':>12} "
                     f"{'dense':>11} {'gate instr':>10} {'gate/MACs':>9}")
        lines.append(f"{'':<10} {'':<12} {'':<5} {'skipped':>7} {'skipped':>8}")
        for ly in pass_sum["layers"]:
            gated = ly["gated"]
            gate_cost = ly.get("gate_instructions_vs_dense_macs")
            lines.append(f"{ly['name']:<10} {ly['op'][:12]:<12} {('P=' + str(ly['patch'])) if gated else '-':<5} "
                         f"{ly['skip_rate']:>7.1%} "
                         + (f"{ly['patch_skip_rate']:>8.1%} " if gated else f"{'-':>8} ")
                         + f"{ly['instructions_per_frame']:>12,.0f} "
                         f"{ly.get('dense_instructions_per_frame', float('nan')):>11,.0f} "
                         + (f"{ly['gate_instructions_per_frame']:>10,.0f} " if gated else f"{'-':>10} ")
                         + (f"{gate_cost:>9.1%}" if gated and gate_cost is not None else f"{'-':>9}"))
    cols = [("PASS", pass_sum), ("dense", dense_sum)]
    cols = [(n, s) for n, s in cols if s is not None]
    lines.append("")
    lines.append(f"{'':<28}" + "".join(f"{n:>14}" for n, _ in cols))
    for key, label, fmt in (("instructions_per_frame", "instructions / frame", "{:,.0f}"),
                            ("cell_accuracy", "cell accuracy", "{:.4f}"),
                            ("occupied_cell_accuracy", "occupied-cell accuracy", "{:.4f}"),
                            ("flip_rate", "flip rate", "{:.4f}")):
        lines.append(f"{label:<28}" + "".join(f"{fmt.format(s[key]):>14}" for _, s in cols))
    if pass_sum is not None and dense_sum is not None:
        lines.append(f"{'speed-up (dense / PASS)':<28}"
                     f"{dense_sum['instructions_per_frame'] / pass_sum['instructions_per_frame']:>14.2f}x")
    return lines


def _dense_run(model_dir: Path, xq: Any, board_name: str, port: str | None
               ) -> tuple[list[Any], list[int], list[list[int]], Any]:
    from host_tools.model.folder import load_local_model  # noqa: PLC0415
    from host_tools.services.inference import board_session  # noqa: PLC0415

    model = load_local_model(model_dir)
    board = get_board(board_name)
    outputs, ticks, layer_ticks = [], [], []
    with board_session(board, model, port, say=toollog.say) as sess:
        for t in range(len(xq)):
            total, per_layer = sess.invoke_timed(xq[t])
            outputs.append(sess.read_output())
            ticks.append(total)
            layer_ticks.append(per_layer)
            if (t + 1) % 50 == 0 or t + 1 == len(xq):
                toollog.say(f"  dense: {t + 1}/{len(xq)} frames")
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

    from host_tools.video.data import load_clip  # noqa: PLC0415

    clip = load_clip(clip_path)
    frames, labels = clip.frames, clip.labels
    if limit:
        frames, labels = frames[:limit], labels[:limit]
    board = get_board(board_name)
    is_pass = is_pass_dir(model_dir)
    result: dict[str, Any] = {"model": str(model_dir), "clip": str(clip_path), "scene": clip.scene,
                              "board": board.name, "frames": len(frames), "mode": mode}
    pass_sum = dense_sum = None
    dense_dir: Path | None = None
    if is_pass and not dense_only:
        pm = load_pass_model(model_dir)
        xq = quantize_frames(frames, pm.report)
        with pass_session(board, pm, port, say=toollog.say) as sess:
            def progress(t: int) -> None:
                if (t + 1) % 50 == 0 or t + 1 == len(xq):
                    toollog.say(f"  PASS: {t + 1}/{len(xq)} frames")
            res = run_pass(sess, xq, mode, on_frame=progress)
            pass_sum = summarize_pass(sess.info, res, _instr_fn(sess.timer_hz, sess.icount), labels)
        pass_sum["dense_arena_bytes"] = int(pm.plan.get("dense_arena_bytes", 0))
        pass_sum["board_sram_bytes"] = board.sram_bytes
        if not no_dense:
            src = Path(pm.plan.get("source", ""))
            dense_dir = src if (src / "octo" / "model.c").exists() else None
            if dense_dir is None:
                toollog.say(f"dense baseline skipped: the source model {src} is gone (pass --no-dense to silence)")
    elif dense_only:
        dense_dir = Path(load_pass_model(model_dir).plan["source"]) if is_pass else model_dir
    else:
        raise OctoError(f"{model_dir} is a dense model; pass --dense for the dense baseline, or train gates with "
                        f"`octo pass-train {model_dir} --video CLIP.npz -o DIR` and run DIR")
    if dense_dir is not None:
        from host_tools.model.folder import load_local_model  # noqa: PLC0415

        dm = load_local_model(dense_dir)
        xq_d = quantize_frames(frames, dm.report)
        outputs, ticks, layer_ticks, to_instr = _dense_run(dense_dir, xq_d, board.name, port)
        dense_sum = summarize_dense(outputs, ticks, layer_ticks, to_instr, labels, dm.report)
    if pass_sum is not None:
        result["pass"] = pass_sum
        if heatmap is not None:
            plot_heatmap(pass_sum, heatmap, f"{model_dir.name} on a {clip.scene} clip: patches skipped", frames[0])
            result["heatmap"] = str(heatmap)
    if dense_sum is not None:
        result["dense"] = dense_sum
    if pass_sum is not None and dense_sum is not None:
        attach_dense_layers(pass_sum, dense_sum)
        result["speedup"] = round(dense_sum["instructions_per_frame"] / pass_sum["instructions_per_frame"], 3)
        result["accuracy_delta_pp"] = round(100 * (pass_sum["cell_accuracy"] - dense_sum["cell_accuracy"]), 3)
        result["predictions_equal_fraction"] = round(float(np.mean(
            np.array(pass_sum["predictions"]) == np.array(dense_sum["predictions"]))), 6)
        result["outputs_identical"] = pass_sum["output_crc32"] == dense_sum["output_crc32"]
    return result


def video_lines(result: dict[str, Any]) -> list[str]:

    lines = table(result.get("pass"), result.get("dense"))
    p = result.get("pass")
    if p is not None:
        lines.append(f"PASS state {p['state_bytes']:,} B (dense arena {p['dense_arena_bytes']:,} B) of the board's "
                     f"{p['board_sram_bytes']:,} B SRAM; {p['dense_frames']} of {p['frames']} frames ran dense")
    if "outputs_identical" in result:
        lines.append("outputs bit-identical to the dense model on every frame" if result["outputs_identical"] else
                     f"predicted cells equal to the dense model's: {result['predictions_equal_fraction']:.2%}")
    return lines
