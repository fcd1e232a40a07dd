"""Bad input to the model compiler: clear ConvertError / one-line CLI error, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converter.codegen import compile_graph
from converter.ir import ConvertError
from converter.quantize import quantize_keras
from converter.tflite_reader import parse_tflite

ROOT = Path(__file__).resolve().parent.parent.parent


def _small_model(activation: str | None = "relu"):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation=activation)(inp)
    return keras.Model(inp, x)


@pytest.fixture(scope="module")
def good_tflite() -> bytes:
    calib = np.random.default_rng(0).normal(size=(32, 6, 6, 2)).astype(np.float32)
    return quantize_keras(_small_model(), calib)


def _parse_and_compile(data: bytes) -> None:
    compile_graph(parse_tflite(data, "fuzz.tflite"), "fuzz")


def test_not_a_tflite_file() -> None:
    with pytest.raises(ConvertError, match="not a TensorFlow Lite model"):
        parse_tflite(b"hello world, definitely not a flatbuffer", "x.tflite")


def test_truncated_everywhere(good_tflite: bytes) -> None:
    """Every truncation point is refused with a ConvertError naming the file, or (when only unused trailing
    bytes were cut) compiles to exactly the C of the intact model: never another exception, never other code."""
    intact = compile_graph(parse_tflite(good_tflite, "fuzz.tflite"), "fuzz").files
    step = max(1, len(good_tflite) // 200)
    points = [*range(0, len(good_tflite), step), len(good_tflite) - 1]
    refused = 0
    for n in points:
        try:
            cm = compile_graph(parse_tflite(good_tflite[:n], "fuzz.tflite"), "fuzz")
        except ConvertError as exc:
            assert "fuzz.tflite" in str(exc) or "model" in str(exc), str(exc)
            refused += 1
            continue
        assert cm.files == intact, f"a model truncated to {n} of {len(good_tflite)} bytes compiled differently"
    assert refused >= 0.9 * len(points), f"only {refused} of {len(points)} truncations were refused"


def test_random_corruption_never_crashes(good_tflite: bytes) -> None:
    rng = np.random.default_rng(1)
    errors = 0
    for _ in range(400):
        data = bytearray(good_tflite)
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(8, len(data)))] = int(rng.integers(0, 256))
        try:
            _parse_and_compile(bytes(data))
        except ConvertError:
            errors += 1
    assert errors > 0  # the corruption reached the validator


def test_float_model_rejected(tmp_path: Path) -> None:
    import tensorflow as tf

    data = tf.lite.TFLiteConverter.from_keras_model(_small_model()).convert()
    with pytest.raises(ConvertError, match=r"INT8|int8"):
        _parse_and_compile(data)


def test_hybrid_model_rejected() -> None:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(_small_model())
    conv.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights, float activations
    with pytest.raises(ConvertError, match=r"INT8|int8|float"):
        _parse_and_compile(conv.convert())


def test_unsupported_op_names_op_layer_and_list() -> None:
    calib = np.random.default_rng(0).normal(size=(32, 6, 6, 2)).astype(np.float32)
    data = quantize_keras(_small_model(activation="tanh"), calib)
    with pytest.raises(ConvertError) as exc:
        _parse_and_compile(data)
    msg = str(exc.value)
    assert "TANH" in msg and "op 1" in msg and "Supported: CONV_2D" in msg


def _octo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], capture_output=True, text=True,
                          cwd=cwd, check=False)


def test_cli_convert_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    cases = [
        (["convert", "junk.tflite", "-o", "out"], "not a TensorFlow Lite model"),
        (["convert", "missing.keras", "-o", "out"], "does not exist"),
        (["report", "nowhere"], "not a converted model folder"),
    ]
    for args, expect in cases:
        r = _octo(*args, cwd=tmp_path)
        assert r.returncode != 0, args
        assert expect in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_infer_wrong_input_shape(tmp_path: Path, good_tflite: bytes) -> None:
    (tmp_path / "m.tflite").write_bytes(good_tflite)
    assert _octo("convert", "m.tflite", "-o", "out", cwd=tmp_path).returncode == 0
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 5, 5, 2), np.float32))
    r = _octo("infer", "out", "--input", "bad.npz", "--target", "host", "-o", "y.npy", cwd=tmp_path)
    assert r.returncode != 0 and "expects [N, 6, 6, 2]" in r.stderr and "Traceback" not in r.stderr
    np.savez(tmp_path / "good.npz", x=np.zeros((3, 6, 6, 2), np.float32))
    r = _octo("infer", "out", "--input", "good.npz", "--target", "host", "-o", "y.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "y.npy").shape == (3, 6 * 6 * 4)


def test_model_too_big_for_board(tmp_path: Path) -> None:
    """A 3x3 conv with 384->384 channels (1.33M weights, 1 byte each) needs > 1 MiB of flash: the build says so,
    with numbers."""
    import keras

    from host_tools.board.boards import get_board
    from host_tools.board.pio import build_firmware
    from host_tools.errors import OctoError

    keras.utils.set_random_seed(0)
    inp = keras.Input((3, 3, 384))
    model = keras.Model(inp, keras.layers.Conv2D(384, 3, padding="same")(inp))
    model.save(tmp_path / "big.keras")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(16, 3, 3, 384)).astype(np.float32))
    assert _octo("convert", "big.keras", "--calib", "c.npz", "-o", "big", cwd=tmp_path).returncode == 0
    with pytest.raises(OctoError, match=r"does not fit virtual-m4: FLASH budget is 1048576 bytes"):
        build_firmware(get_board("virtual-m4"), model_dir=tmp_path / "big")
    r = _octo("report", "big", "--board", "virtual-m4", cwd=tmp_path)
    assert "DOES NOT FIT" in r.stdout


def test_convert_into_a_used_folder_refuses_or_replaces_everything(tmp_path: Path, digits_dir: Path) -> None:
    """A second conversion into the same folder needs --force, and then nothing stale survives; a folder that
    is not an Octo model folder is never written into. (The session's converted digits .tflite: no recipe
    training three times.)"""
    src = str(digits_dir / "model.tflite")
    first = _octo("convert", src, "-o", "m", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    (tmp_path / "m" / "train").mkdir()
    (tmp_path / "m" / "train" / "stale.json").write_text("{}")
    (tmp_path / "m" / "old_plot.png").write_bytes(b"png")
    again = _octo("convert", src, "-o", "m", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a converted model; pass --force" in again.stderr
    assert (tmp_path / "m" / "old_plot.png").exists()          # refused: nothing touched
    forced = _octo("convert", src, "-o", "m", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert not (tmp_path / "m" / "old_plot.png").exists() and not (tmp_path / "m" / "train").exists()
    assert (tmp_path / "m" / "report.json").exists() and (tmp_path / "m" / "model.tflite").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    other = _octo("convert", src, "-o", "mine", "--force", cwd=tmp_path)
    assert other.returncode == 2 and "not an Octo model folder" in other.stderr
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_a_keras_lstm_is_refused_by_name_before_calibration(tmp_path: Path) -> None:
    """TensorFlow's INT8 calibrator segfaulted `octo convert` on a Keras LSTM (exit 139). The float graph is
    checked first and names the layer; calibration runs in a child process either way."""
    import keras

    inp = keras.Input((20, 8))
    out = keras.layers.Dense(4, activation="softmax")(keras.layers.LSTM(16, name="speech_lstm")(inp))
    keras.Model(inp, out).save(tmp_path / "lstm.keras")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((40, 20, 8), np.float32))
    r = _octo("convert", "lstm.keras", "--calib", "calib.npz", "-o", "out", cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("octo: error:")]
    assert len(errors) == 1 and "layer 'speech_lstm' becomes TFLite WHILE" in errors[0], r.stderr[-2000:]


def test_a_float_tflite_is_refused_before_code_generation(tmp_path: Path) -> None:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(_small_model())
    (tmp_path / "f.tflite").write_bytes(conv.convert())
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 6, 6, 2), np.float32))
    r = _octo("convert", "f.tflite", "--calib", "calib.npz", "-o", "out", cwd=tmp_path)
    assert r.returncode == 2 and "is a float .tflite" in r.stderr and "generating C" not in r.stderr, r.stderr


def test_flash_budget_picks_two_byte_layers_and_refuses_too_little(tmp_path: Path) -> None:
    """Weights take 1 byte by default; --flash N gives the 2-byte (faster on DSP cores) layout to the layers with
    the most MACs per extra byte while the budget holds, records the choice in report.json, and refuses a budget
    below the 1-byte weights with one clear line."""
    import json

    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 8))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)  # 64 pixels: 64 MACs per extra byte
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)  # 16 pixels
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(10)(x))  # 1 pixel
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(16, 8, 8, 8)).astype(np.float32))
    r = _octo("convert", "m.keras", "--calib", "c.npz", "-o", "one", cwd=tmp_path)
    assert r.returncode == 0 and "weights: 1 byte each" in r.stdout + r.stderr
    one = json.loads((tmp_path / "one" / "report.json").read_text())
    w1 = one["totals"]["weight_bytes"]
    assert one["weight_layout"]["two_byte_layers"] == [] and one["weight_layout"]["flash_budget"] is None
    assert w1 < one["totals"]["params"] + 2048  # 1 byte per weight, plus biases and requantization tables
    # room for the first conv's extra bytes only (16 x 72 weights: 16 x (2 x 72 - 72) bytes)
    budget = w1 + 16 * 72 + 100
    r = _octo("convert", "m.keras", "--calib", "c.npz", "-o", "two", "--flash", str(budget), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "1 of 3 packed layers at 2 bytes" in r.stdout + r.stderr
    two = json.loads((tmp_path / "two" / "report.json").read_text())
    layout = two["weight_layout"]
    assert layout["flash_budget"] == budget and layout["two_byte_layers"] == [0]
    assert w1 < two["totals"]["weight_bytes"] == layout["weight_bytes"] <= budget
    assert "octo_conv_s8_packed(" in (tmp_path / "two" / "octo" / "model.c").read_text()
    r = _octo("convert", "m.keras", "--calib", "c.npz", "-o", "none", "--flash", "1k", cwd=tmp_path)
    assert r.returncode != 0
    assert f"--flash 1024: the model's weights take {w1:,} bytes even at 1 byte per weight" in r.stderr
