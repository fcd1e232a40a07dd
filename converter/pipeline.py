"""`octo convert`: model source -> INT8 .tflite -> IR -> generated C + TFLM export + report.

Sources: a recipe (models/<name>.py exposing make()), a Keras file (.keras/.h5),
a SavedModel folder, or an already-quantized INT8 .tflite. Output folder:

  model.tflite      full-integer INT8 (int8 input/output)
  tflm/             TFLM export (aligned model array + header, op resolver)
  octo/             generated C for Octo's engine (model.c, octo_model_config.h)
  report.json       per-layer shapes, MACs, params, memory; TFLM arena; accuracy
  eval.npz, train.npz   held-out and training data (recipes only)
  personal.npz      personalisation data, a domain pretraining did not see (recipes that have it)
"""

from __future__ import annotations

import importlib.util
import json
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from converter import toollog
from converter.codegen import CompiledModel, compile_graph
from converter.datafile import load_samples
from converter.ir import ConvertError
from converter.tflite_reader import parse_tflite

REPORT_SCHEMA = "octo.report/1"


def _say(msg: str) -> None:
    toollog.say(msg)


def load_recipe(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"octo_recipe_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConvertError(f"cannot load recipe {path}")
    mod = importlib.util.module_from_spec(spec)
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "make"):
        raise ConvertError(f"recipe {path} has no make(seed) function (see models/recipe.py)")
    return mod.make()


def _source_to_tflite(src: Path, calib: Path | None, say: Callable[[str], None]) -> tuple[bytes, Any]:
    """Returns (INT8 .tflite bytes, recipe or None)."""
    from converter.quantize import quantize_keras  # noqa: PLC0415

    if not src.exists():
        raise ConvertError(f"{src} does not exist")
    if src.suffix == ".tflite":
        return src.read_bytes(), None
    if src.suffix == ".py":
        x_given = load_samples(calib, role="calibration")[0] if calib else None  # a bad file fails before training
        say(f"building recipe {src.name} (trains on its data; seconds) ...")
        recipe = load_recipe(src)
        x_cal = x_given if x_given is not None else recipe.calib
        say("quantizing to full-integer INT8 ...")
        return quantize_keras(recipe.model, x_cal), recipe
    if calib is None:
        raise ConvertError(f"{src} is a float model: pass --calib FILE.npz with representative inputs 'x' "
                           "(a few hundred samples) for INT8 quantization")
    if not (src.is_dir() or src.suffix in (".keras", ".h5")):
        raise ConvertError(f"don't know how to convert {src}: expected a recipe .py, .keras, .h5, a SavedModel "
                           "folder or an INT8 .tflite")
    _check_model_file(src)
    x_cal, _ = load_samples(calib, role="calibration")
    from converter.quantize import quantize_file  # noqa: PLC0415

    say(f"checking the ops of {src.name}, then quantizing to full-integer INT8 (in a separate process) ...")
    return quantize_file(src, x_cal), None


def _check_model_file(src: Path) -> None:
    """A model file is what its name says before TensorFlow sees it (Keras's own message for a non-zip .keras
    is 'File not found')."""
    import zipfile  # noqa: PLC0415

    if src.is_dir():
        if not (src / "saved_model.pb").exists() and not (src / "saved_model.pbtxt").exists():
            raise ConvertError(f"{src} is a folder without saved_model.pb: not a TensorFlow SavedModel")
        return
    if src.suffix == ".keras" and not zipfile.is_zipfile(src):
        raise ConvertError(f"{src} is not a Keras model file (a .keras file is a zip archive written by "
                           "model.save('name.keras')); re-save the model")
    if src.suffix == ".h5":
        with src.open("rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise ConvertError(f"{src} is not an HDF5 file (a legacy Keras .h5 model); re-save the model")


def quantize_inputs(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float model inputs -> int8 with the model's input parameters (as TFLite's Quantize op)."""
    q = np.round(x.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def write_outputs(cm: CompiledModel, model: bytes, out: Path, name: str, tflm: dict[str, int]) -> None:
    from converter.tflm_export import export_tflm  # noqa: PLC0415

    (out / "octo").mkdir(parents=True, exist_ok=True)
    (out / "tflm").mkdir(parents=True, exist_ok=True)
    (out / "model.tflite").write_bytes(model)
    for fname, text in cm.files.items():
        (out / "octo" / fname).write_text(text)
    # Suggested TFLM arena: what TFLM used on the host plus 25%, rounded up to 1 KiB.
    hint = ((tflm["total"] * 5 // 4) + 1023) // 1024 * 1024 if tflm.get("total") else None
    for fname, text in export_tflm(model, cm.graph, name, hint).items():
        (out / "tflm" / fname).write_text(text)


def build_report(cm: CompiledModel, model: bytes, name: str, source: str, tflm: dict[str, int]) -> dict[str, Any]:
    g = cm.graph
    return {
        "schema": REPORT_SCHEMA,
        "name": name,
        "source": source,
        "fingerprint": f"0x{cm.fingerprint:08x}",
        "input": {"shape": list(g.input.shape), "scale": float(g.input.qparams()[0]),
                  "zero_point": g.input.qparams()[1]},
        "output": {"shape": list(g.output.shape), "scale": float(g.output.qparams()[0]),
                   "zero_point": g.output.qparams()[1]},
        "layers": [layer.as_dict() for layer in cm.layers],
        "totals": {
            "macs": sum(layer.macs for layer in cm.layers),
            "params": sum(layer.params for layer in cm.layers),
            "weight_bytes": cm.weight_bytes,
            "arena_bytes": cm.arena_bytes,
            "tflite_bytes": len(model),
        },
        "tflm": {"arena_total_bytes": tflm.get("total"), "arena_planned_bytes": tflm.get("head"),
                 "arena_persistent_bytes": tflm.get("tail")},
        "accuracy": {},
    }


def prepare_output(out: Path, replace: bool) -> None:
    """The output folder is new, empty, or an earlier conversion that replace allows to go (all of it: code,
    data, training builds, plots; only the tool log stays). Anything else is refused, so nothing stale
    survives and nothing of the user's is overwritten."""
    import shutil  # noqa: PLC0415

    from converter.toollog import LOG_NAME  # noqa: PLC0415

    if not out.exists():
        return
    if not out.is_dir():
        raise ConvertError(f"-o {out} is a file; pass a folder")
    content = [p for p in out.iterdir() if p.name != LOG_NAME]
    if not content:
        return
    if not (out / "report.json").exists() and not (out / "octo").is_dir():
        raise ConvertError(f"-o {out} is not empty and is not an Octo model folder; pass a new or empty folder")
    if not replace:
        raise ConvertError(f"-o {out} already holds a converted model; pass --force to replace it and everything "
                           "derived from it (generated C, train.npz/eval.npz, training builds, firmware, plots)")
    for p in content:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def convert(source: Path, out: Path, *, calib: Path | None = None, replace: bool = False,
            say: Callable[[str], None] = _say, flash: int | None = None) -> dict[str, Any]:
    """Convert source into the folder out (see prepare_output for an existing one); returns report.json's
    document. flash: bytes of constant data allowed (converter/flash.py); packed layers get the faster 2-byte
    weight layout while it fits, else every weight takes 1 byte."""
    prepare_output(out, replace)
    model, recipe = _source_to_tflite(source, calib, say)
    name = recipe.name if recipe is not None else source.stem
    graph = parse_tflite(model, str(source))
    if source.suffix == ".tflite":
        if graph.inputs and graph.input.dtype == "float32":
            raise ConvertError(f"{source} is a float .tflite: Octo converts INT8 .tflite files, and TFLite cannot "
                               "quantize a .tflite; convert the Keras model or SavedModel it came from with --calib")
        if calib is not None:
            say(f"note: --calib is not used: {source.name} is already quantized")
    say(f"generating C for {len(graph.ops)} ops ...")
    cm = compile_graph(graph, name, zlib.crc32(model))
    from converter.flash import choose_wide, layout_line  # noqa: PLC0415

    wide, layout = choose_wide(cm.graph, cm.weight_bytes, flash)
    if wide:
        cm = compile_graph(cm.graph, name, zlib.crc32(model), wide)
        if flash is not None and cm.weight_bytes > flash:  # choose_wide counts exactly; a bug if not
            raise AssertionError(f"weights {cm.weight_bytes} over --flash {flash}")
    layout["weight_bytes"] = cm.weight_bytes
    say(layout_line(layout))
    from converter.tflm import tflm_arena_bytes  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    tflm = tflm_arena_bytes(model)
    write_outputs(cm, model, out, name, tflm)
    report = build_report(cm, model, name, str(source), tflm)
    report["weight_layout"] = layout
    if recipe is not None:
        if recipe.x_test is not None and recipe.y_test is not None:
            np.savez_compressed(out / "eval.npz", x=recipe.x_test.astype(np.float32), y=recipe.y_test)
        if recipe.x_train is not None and recipe.y_train is not None:
            g = getattr(recipe, "g_train", None)
            extra = {"g": np.asarray(g, np.int64)} if g is not None and len(g) == len(recipe.x_train) else {}
            np.savez_compressed(out / "train.npz", x=recipe.x_train.astype(np.float32), y=recipe.y_train, **extra)
        if getattr(recipe, "x_personal", None) is not None and getattr(recipe, "y_personal", None) is not None:
            np.savez_compressed(out / "personal.npz", x=recipe.x_personal.astype(np.float32), y=recipe.y_personal)
        metric = getattr(recipe, "metric", "accuracy")
        if metric != "accuracy":
            report["accuracy"]["metric"] = metric
        if recipe.float_accuracy is not None:
            report["accuracy"]["float"] = round(float(recipe.float_accuracy), 6)
        if recipe.x_test is not None and recipe.y_test is not None and recipe.trained:
            say(f"measuring held-out {metric} of the INT8 model (generated C on the host, and TFLM) ...")
            report["accuracy"].update(host_accuracy(out, cm, model, recipe.x_test, recipe.y_test, metric))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def host_accuracy(out: Path, cm: CompiledModel, model: bytes, x: np.ndarray, y: np.ndarray,
                  metric: str = "accuracy") -> dict[str, Any]:
    """The INT8 model's held-out figure from the generated C (natively) and from TFLM, and whether their outputs
    are identical. metric "accuracy": argmax against class labels; "auc": ROC AUC of the reconstruction error
    (an autoencoder: dequantized outputs against the float inputs) against 0/1 anomaly labels."""
    from converter.hostbuild import build_host_runner, run_host  # noqa: PLC0415
    from converter.tflm import tflm_run  # noqa: PLC0415

    scale, zp = cm.graph.input.qparams()
    xq = quantize_inputs(x, scale, zp)
    ours = run_host(build_host_runner(out / "octo"), xq, cm.graph.output.size)
    ref = tflm_run(model, xq)
    if metric == "auc":
        oscale, ozp = cm.graph.output.qparams()
        score = lambda o: reconstruction_auc(o, x, y, oscale, ozp)
    elif metric == "accuracy":
        score = lambda o: label_accuracy(o, y)
    else:
        raise ConvertError(f"recipe metric {metric!r} is unknown: expected 'accuracy' or 'auc'")
    return {
        "int8_host": round(score(ours), 6),
        "int8_tflm": round(score(ref), 6),
        "host_matches_tflm": bool(np.array_equal(ours, ref.reshape(ours.shape))),
        "samples": len(y),
    }


def label_accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    """Argmax accuracy of class scores against integer labels. Labels of shape [N, ...] (e.g. a grid of cells)
    score outputs [N, ..., classes] cell by cell (outputs may arrive flattened per sample)."""
    y = np.asarray(y)
    scores = np.asarray(outputs).reshape(len(y), *y.shape[1:], -1)
    return float(np.mean(scores.argmax(-1) == y))


def reconstruction_auc(outputs: np.ndarray, x: np.ndarray, y: np.ndarray, scale: float, zero_point: int) -> float:
    """ROC AUC of the per-sample mean squared error between dequantized int8 outputs and the float inputs x,
    for labels y (1 = anomalous)."""
    out = (np.asarray(outputs).reshape(len(x), -1).astype(np.float32) - zero_point) * np.float32(scale)
    return roc_auc(np.mean((out - np.asarray(x, np.float32).reshape(len(x), -1)) ** 2, axis=1), y)


def roc_auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of scores (higher = more anomalous) for 0/1 labels y (ties count half)."""
    from scipy.stats import rankdata  # noqa: PLC0415

    pos = np.asarray(y).ravel().astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ConvertError("an AUC needs samples of both labels (0 normal, 1 anomalous)")
    ranks = rankdata(np.asarray(scores, np.float64).ravel())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
