"""MLPerf Tiny recipes (models/mlperf_*.py) and their offline data (models/datasets.py).

Data: deterministic per seed (same bytes from a fresh cache), cached (the second call reads the file), right
shapes and classes, held-out and personalisation splits disjoint from training. Models: the published layer
lists, BatchNorm folded away, MACs within 3% of MLPerf Tiny's published figures. One recipe end to end through
`octo convert`, bit-exact with TFLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from models import datasets

ROOT = Path(__file__).resolve().parent.parent.parent

# Small sizes keep the generators quick; the recipes use the defaults.
SMALL = {
    "kws": lambda seed: datasets.kws_data(seed, per_class=(2, 1, 1)),
    "ic": lambda seed: datasets.ic_data(seed, sizes=(60, 20, 20)),
    "vww": lambda seed: datasets.vww_data(seed, sizes=(20, 10, 10)),
    "ad": lambda seed: datasets.ad_data(seed, clips=(3, 2, 2)),
}
SHAPES = {"kws": (49, 10, 1), "ic": (32, 32, 3), "vww": (96, 96, 3), "ad": (640,)}
CLASSES = {"kws": 12, "ic": 10, "vww": 2, "ad": 2}
SPLITS = ("train", "test", "personal")

# MLPerf Tiny's published MACs per inference (v0.5 reference models).
PUBLISHED_MACS = {"mlperf_kws": 2.66e6, "mlperf_vww": 7.49e6, "mlperf_ic": 12.5e6, "mlperf_ad": 0.264e6}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OCTO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize("kind", list(SMALL))
def test_data_deterministic_and_cached(kind: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = SMALL[kind](3)
    files = list(data_dir.glob(f"{kind}-3-v*.npz"))
    assert len(files) == 1, files
    mtime = files[0].stat().st_mtime_ns
    again = SMALL[kind](3)  # from the cache: the file is read, not rewritten
    assert files[0].stat().st_mtime_ns == mtime
    monkeypatch.setenv("OCTO_DATA_DIR", str(data_dir.parent / "fresh"))
    fresh = SMALL[kind](3)  # generated anew: the same bytes
    other = SMALL[kind](4)
    assert sorted(first) == sorted(again) == sorted(fresh)
    for k in first:
        assert first[k].dtype == fresh[k].dtype and first[k].tobytes() == fresh[k].tobytes(), k
        assert first[k].tobytes() == again[k].tobytes(), k
    assert first["x_train"].tobytes() != other["x_train"].tobytes()


def test_damaged_cache_is_regenerated(data_dir: Path) -> None:
    good = SMALL["ad"](0)
    path = next(data_dir.glob("ad-0-*.npz"))
    path.write_bytes(b"not an npz")
    again = SMALL["ad"](0)
    assert again["x_train"].tobytes() == good["x_train"].tobytes()


@pytest.mark.parametrize("kind", list(SMALL))
def test_data_shapes_classes_and_disjoint_splits(kind: str, data_dir: Path) -> None:
    d = SMALL[kind](0)
    for split in SPLITS:
        x, y, g = d[f"x_{split}"], d[f"y_{split}"], d[f"g_{split}"]
        assert x.shape[1:] == SHAPES[kind] and len(x) == len(y) == len(g) > 0, (split, x.shape)
        assert y.min() >= 0 and y.max() < CLASSES[kind]
        assert np.isfinite(x.astype(np.float32)).all()
    if kind == "ad":
        assert set(np.unique(d["y_train"])) == {0}  # an autoencoder learns the normal sound only
        assert set(np.unique(d["y_test"])) == set(np.unique(d["y_personal"])) == {0, 1}
    else:
        assert len(np.unique(d["y_train"])) == CLASSES[kind]
    # No sample of the held-out or personalisation split appears in training ...
    seen = {row.tobytes() for row in d["x_train"]}
    for split in ("test", "personal"):
        assert not any(row.tobytes() in seen for row in d[f"x_{split}"]), split
    # ... and the groups (voice, digit row, clip) say why: personalisation shares none with training, nor
    # (images, sounds) does the held-out split. Keyword held-out clips are new renditions by the training voices.
    groups = {s: set(d[f"g_{s}"].tolist()) - {-1} for s in SPLITS}
    assert not groups["personal"] & groups["train"]
    assert not groups["personal"] & groups["test"]
    if kind == "kws":
        assert groups["test"] <= set(range(len(datasets.kws_voices()[0])))
    else:
        assert not groups["test"] & groups["train"]


def test_kws_voices_held_out() -> None:
    train, personal = datasets.kws_voices()
    assert not set(train) & set(personal)
    assert not {v.split("+")[1] for v in train} & {v.split("+")[1] for v in personal}


def test_espeak_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from host_tools.errors import OctoError

    monkeypatch.setattr(datasets.shutil, "which", lambda name: None)
    with pytest.raises(OctoError) as err:
        datasets.kws_data(0)
    assert "espeak-ng" in str(err.value) and "make setup" in str(err.value)


def test_roc_auc() -> None:
    assert datasets.roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert datasets.roc_auc(np.array([0.9, 0.2, 0.8, 0.1]), np.array([0, 0, 1, 1])) == 0.25
    assert datasets.roc_auc(np.ones(4), np.array([0, 1, 0, 1])) == 0.5


def _keras_layers(model) -> Counter:
    return Counter(type(layer).__name__ for layer in model.layers)


def _converted(model, calib: np.ndarray) -> list[dict]:
    """The per-layer rows `octo convert` reports for model (random weights; BN folded by TFLite)."""
    import zlib

    from converter.codegen import compile_graph
    from converter.quantize import quantize_keras
    from converter.tflite_reader import parse_tflite

    tfl = quantize_keras(model, calib)
    cm = compile_graph(parse_tflite(tfl, model.name), model.name, zlib.crc32(tfl))
    return [layer.as_dict() for layer in cm.layers]


# Published layer lists: Keras layers of the reference model, and the ops left after conversion.
ARCH = {
    "mlperf_kws": ({"Conv2D": 5, "DepthwiseConv2D": 4, "Dense": 1, "BatchNormalization": 9, "Add": 0},
                   {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "FULLY_CONNECTED": 1, "AVERAGE_POOL_2D": 1}),
    "mlperf_ic": ({"Conv2D": 9, "DepthwiseConv2D": 0, "Dense": 1, "BatchNormalization": 7, "Add": 3},
                  {"CONV_2D": 9, "ADD": 3, "FULLY_CONNECTED": 1, "AVERAGE_POOL_2D": 1}),
    "mlperf_vww": ({"Conv2D": 14, "DepthwiseConv2D": 13, "Dense": 1, "BatchNormalization": 27, "Add": 0},
                   {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "FULLY_CONNECTED": 1, "AVERAGE_POOL_2D": 1}),
    "mlperf_ad": ({"Conv2D": 0, "DepthwiseConv2D": 0, "Dense": 10, "BatchNormalization": 9, "Add": 0},
                  {"FULLY_CONNECTED": 10}),
}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(ARCH))
def test_published_architecture_and_macs(recipe: str) -> None:
    import importlib

    mod = importlib.import_module(f"models.{recipe}")
    model = mod.build_model(0)
    keras_want, ops_want = ARCH[recipe]
    got = _keras_layers(model)
    assert {k: got.get(k, 0) for k in keras_want} == keras_want
    out_units = model.output_shape[-1]
    assert out_units == {"mlperf_kws": 12, "mlperf_ic": 10, "mlperf_vww": 2, "mlperf_ad": 640}[recipe]
    if recipe != "mlperf_ad":
        # Up to the logits: random weights give near-constant logits, whose tiny scale TFLite's int8 softmax
        # refuses (the trained recipes convert with their softmax); a softmax has no MACs.
        assert type(model.layers[-1]).__name__ == "Softmax"
        import keras

        model = keras.Model(model.input, model.layers[-2].output, name=model.name)
    shape = model.input_shape[1:]
    calib = np.random.default_rng(0).uniform(0, 1, size=(16, *shape)).astype(np.float32)
    layers = _converted(model, calib)
    ops = Counter(layer["op"] for layer in layers)
    assert {k: ops.get(k, 0) for k in ops_want} == ops_want, ops
    # BatchNorm is folded: nothing but the published ops (and the reshape/softmax glue) remains.
    assert set(ops) <= set(ops_want) | {"SOFTMAX", "RESHAPE"}, ops
    macs = sum(layer["macs"] for layer in layers)
    assert abs(macs / PUBLISHED_MACS[recipe] - 1) < 0.03, (recipe, macs)


@pytest.mark.slow
def test_octo_convert_autoencoder_end_to_end(tmp_path: Path) -> None:
    """`octo convert models/mlperf_ad.py`: trains, INT8, generated C bit-exact with TFLM on every held-out vector,
    scored by AUC; writes the three data files."""
    env = {**os.environ, "OCTO_DATA_DIR": str(tmp_path / "data"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "ad"
    proc = subprocess.run([sys.executable, "-m", "host_tools.cli", "convert", str(ROOT / "models" / "mlperf_ad.py"),
                           "-o", str(out)], check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "held-out auc" in proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    acc = report["accuracy"]
    assert acc["metric"] == "auc" and acc["host_matches_tflm"] is True, acc
    assert acc["float"] > 0.8 and acc["int8_host"] > 0.8 and abs(acc["int8_host"] - acc["float"]) < 0.05, acc
    assert abs(report["totals"]["macs"] / PUBLISHED_MACS["mlperf_ad"] - 1) < 0.03
    for name in ("train.npz", "eval.npz", "personal.npz"):
        with np.load(out / name) as d:
            assert d["x"].shape[1:] == (640,) and len(d["x"]) == len(d["y"]), name
