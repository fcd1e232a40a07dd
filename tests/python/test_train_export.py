"""converter/train_export.py: float weights -> Keras -> INT8 .tflite, checked with TFLM on held-out digits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from converter.codegen import layer_name
from converter.ir import ConvertError, Graph
from converter.pipeline import quantize_inputs
from converter.tflite_reader import read_tflite
from converter.tflm import tflm_run
from converter.train_export import export_tflite, graph_float_weights, keras_from_graph

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Digits:
    dir: Path
    graph: Graph
    x_eval: np.ndarray
    y_eval: np.ndarray
    x_train: np.ndarray
    tflm_out: np.ndarray        # int8 outputs of the original model.tflite on x_eval


@pytest.fixture(scope="module")
def digits(digits_dir: Path) -> Digits:
    out = digits_dir
    g = read_tflite(out / "model.tflite")
    with np.load(out / "eval.npz") as ev, np.load(out / "train.npz") as tr:
        x, y, x_train = ev["x"], ev["y"], tr["x"]
    ref = tflm_run((out / "model.tflite").read_bytes(), quantize_inputs(x, *g.input.qparams()))
    return Digits(out, g, x, y, x_train, ref)


def _run_exported(info: dict, x: np.ndarray) -> np.ndarray:
    xq = quantize_inputs(x, info["input_scale"], info["input_zero_point"])
    return tflm_run(Path(info["path"]).read_bytes(), xq)


def _float_predict(model: object, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x))  # type: ignore[operator]  # the batch-1 model computes any batch


def test_round_trip_keeps_accuracy_ops_and_names(digits: Digits, tmp_path: Path) -> None:
    info = export_tflite(digits.dir, graph_float_weights(digits.graph), digits.x_train, tmp_path / "m.tflite")
    assert info["bytes"] == (tmp_path / "m.tflite").stat().st_size and info["ops"] == len(digits.graph.ops)
    new = read_tflite(tmp_path / "m.tflite")
    assert [op.kind for op in new.ops] == [op.kind for op in digits.graph.ops]
    names = [layer_name(g.tensors[op.outputs[0]].name, "?") for g in (new, digits.graph) for op in g.ops
             if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert names[: len(names) // 2] == names[len(names) // 2 :] == ["conv1", "conv2", "dwconv1", "conv3", "fc"]
    acc_orig = np.mean(digits.tflm_out.argmax(1) == digits.y_eval)
    acc_new = np.mean(_run_exported(info, digits.x_eval).argmax(1) == digits.y_eval)
    assert acc_orig >= 0.9 and abs(acc_new - acc_orig) <= 0.01, (acc_orig, acc_new)


def test_changed_weights_reach_the_tflite(digits: Digits, tmp_path: Path) -> None:
    fc = next(op.index for op in digits.graph.ops if op.kind == "FULLY_CONNECTED")
    w, b = graph_float_weights(digits.graph)[fc]
    changed = {fc: (-w, b)}
    info = export_tflite(digits.dir, changed, digits.x_train, tmp_path / "neg.tflite")
    pred = _run_exported(info, digits.x_eval).argmax(1)
    assert np.mean(pred != digits.tflm_out.argmax(1)) > 0.8
    float_pred = _float_predict(keras_from_graph(digits.graph, changed), digits.x_eval).argmax(1)
    assert np.mean(pred == float_pred) >= 0.95


def test_float_model_matches_int8_original(digits: Digits) -> None:
    model = keras_from_graph(digits.graph, {})
    assert tuple(model.inputs[0].shape) == digits.graph.input.shape
    agree = np.mean(_float_predict(model, digits.x_eval).argmax(1) == digits.tflm_out.argmax(1))
    assert agree >= 0.97, agree


def _bad_shape(g: Graph) -> dict:
    w, b = graph_float_weights(g)[1]
    return {1: (w[:, :, :, :4], b)}


ERRORS = [
    ("no model.tflite", "missing", lambda g: {}, ["has no model.tflite", "octo convert"]),
    ("pool op", "dir", lambda g: {2: (np.zeros(1), np.zeros(1))},
     ["op 2 (MAX_POOL_2D)", "not a trainable op", "trainable ops are 0 (CONV_2D)"]),
    ("out of range", "dir", lambda g: {99: (np.zeros(1), np.zeros(1))}, ["op index 99", "not a trainable op"]),
    ("weight shape", "dir", _bad_shape, ["op 1 (CONV_2D", "conv2", "(16, 3, 3, 4)", "(16, 3, 3, 8)"]),
    ("bias shape", "dir", lambda g: {6: (graph_float_weights(g)[6][0], np.zeros(3))},
     ["op 6 (FULLY_CONNECTED", "bias have shape (3,)", "(10,)"]),
    ("nan", "dir", lambda g: {6: (graph_float_weights(g)[6][0] * np.nan, graph_float_weights(g)[6][1])},
     ["op 6 (FULLY_CONNECTED", "NaN"]),
]


@pytest.mark.parametrize(("case", "where", "make", "expect"), ERRORS, ids=[e[0] for e in ERRORS])
def test_export_errors(digits: Digits, tmp_path: Path, case: str, where: str, make, expect: list[str]) -> None:
    model_dir = tmp_path / "empty" if where == "missing" else digits.dir
    with pytest.raises(ConvertError) as err:
        export_tflite(model_dir, make(digits.graph), digits.x_train, tmp_path / "x.tflite")
    for text in expect:
        assert text in str(err.value), (case, str(err.value))
    assert not (tmp_path / "x.tflite").exists()


def test_other_ops_round_trip(tmp_path: Path) -> None:
    """PAD, RELU6, ADD, AVERAGE_POOL_2D, depth multiplier 2 and Flatten -> FC (NHWC order) survive the export."""
    import keras
    from keras import layers

    from converter.quantize import quantize_keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((10, 10, 3), name="img")
    x = layers.ZeroPadding2D(1, name="pad")(inp)
    x = layers.Conv2D(8, 3, strides=2, activation="relu6", name="c1")(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(x)
    x = layers.AveragePooling2D(2, name="ap")(layers.Add(name="res")([x, y]))
    x = layers.Flatten(name="flat")(layers.DepthwiseConv2D(1, depth_multiplier=2, name="dw2")(x))
    x = layers.Dense(5, name="d2")(layers.Dense(12, activation="relu", name="d1")(x))
    calib = np.random.default_rng(0).random((64, 10, 10, 3)).astype(np.float32)
    (tmp_path / "model.tflite").write_bytes(quantize_keras(keras.Model(inp, layers.Softmax()(x)), calib))
    info = export_tflite(tmp_path, {}, calib, tmp_path / "e.tflite")
    old, new = read_tflite(tmp_path / "model.tflite"), read_tflite(tmp_path / "e.tflite")
    assert [(op.kind, op.options.get("activation")) for op in new.ops] == \
           [(op.kind, op.options.get("activation")) for op in old.ops]
    assert "RELU6" in [op.options.get("activation") for op in old.ops]
    a = tflm_run((tmp_path / "model.tflite").read_bytes(), quantize_inputs(calib, *old.input.qparams())).astype(int)
    b = _run_exported(info, calib).astype(int)
    assert np.abs(a - b).max() <= 2 and np.mean(a.argmax(1) == b.argmax(1)) >= 0.95
