"""The generated C gives TFLM's bytes on every target: host, virtual-m4/m7 (DSP path), virtual-m3 (portable),
virtual-m55 (Helium/MVE path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.pipeline import convert
from converter.tflm import tflm_run
from host_tools.board.boards import get_board
from host_tools.model.folder import load_local_model, run_on_host
from host_tools.services.inference import board_session


@pytest.fixture(scope="module", params=[None, 1 << 20], ids=["1-byte", "2-byte"])
def conv_model(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Fast paths on every target: 3-channel first conv, stride 2, borders, 16->16, odd channel counts,
    depthwise (3x3 stride 1 and 2, 5x3), pooling and a dense layer; weights at 1 byte (the default), and at 2 bytes
    (every packed layer, under a 1 MiB --flash budget)."""
    import keras

    d = tmp_path_factory.mktemp("boardinf")
    keras.utils.set_random_seed(3)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = keras.layers.DepthwiseConv2D((5, 3), padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(6, 1)(x)
    x = keras.layers.Conv2D(5, (3, 2), padding="same")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(7, bias_initializer="random_normal")(x)
    model = keras.Model(inp, x)
    model.save(d / "m.keras")
    np.savez(d / "calib.npz", x=np.random.default_rng(0).normal(size=(64, 12, 12, 3)).astype(np.float32))
    convert(d / "m.keras", d / "out", calib=d / "calib.npz", say=lambda s: None, flash=request.param)
    code = (d / "out" / "octo" / "model.c").read_text()
    assert ("octo_conv_s8_packed(" in code) == (request.param is not None)
    assert ("octo_conv_s8_packed8(" in code) == (request.param is None)
    return d / "out"


def _inputs(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(7).integers(-128, 128, size=(n, *shape), dtype=np.int64).astype(np.int8)


@pytest.mark.parametrize("board", ["virtual-m4", "virtual-m7", "virtual-m3", "virtual-m55"])
def test_board_output_equals_tflm(conv_model: Path, board: str) -> None:
    model = load_local_model(conv_model)
    x = _inputs(6, tuple(model.input_shape[1:]))
    ref = tflm_run((conv_model / "model.tflite").read_bytes(), x).reshape(len(x), -1)
    assert np.array_equal(run_on_host(model, x.reshape(len(x), -1)), ref)
    with board_session(get_board(board), model, say=lambda s: None) as sess:
        ours = np.stack([sess.infer(xi) for xi in x])
        total, per_layer = sess.invoke_timed(x[0])
    assert np.array_equal(ours, ref), f"{board} output differs from TFLM"
    assert len(per_layer) == len(model.report["layers"]) and all(t > 0 for t in per_layer)
    assert total == sum(per_layer)


@pytest.mark.parametrize("recipe", ["ds_cnn"])
def test_zoo_model_on_virtual_m55_equals_tflm(recipe: str, tmp_path: Path) -> None:
    """The Helium (MVE) kernels on a real layer chain: conv -> depthwise -> pointwise with in-place planning, where
    the conv kernel's in-place interior reads must not meet the pixel's own output (octo_conv_s8_packed.c)."""
    root = Path(__file__).resolve().parent.parent.parent
    convert(root / "models" / f"{recipe}.py", tmp_path / recipe, say=lambda s: None)
    model = load_local_model(tmp_path / recipe)
    x = _inputs(3, tuple(model.input_shape[1:]))
    ref = tflm_run((tmp_path / recipe / "model.tflite").read_bytes(), x).reshape(len(x), -1)
    with board_session(get_board("virtual-m55"), model, say=lambda s: None) as sess:
        ours = np.stack([sess.infer(xi) for xi in x])
    assert np.array_equal(ours, ref), "virtual-m55 output differs from TFLM"


def test_boards_refuse_generated_c_in_an_old_weight_layout(tmp_path: Path) -> None:
    """model.c from before the Helium weight layout would be misread by the MVE kernel, and int16 depthwise tables
    from before 1-byte depthwise weights would not compile against the kernel: the build says which."""
    from host_tools.board.pio import build_firmware
    from host_tools.errors import OctoError

    (tmp_path / "octo").mkdir()
    (tmp_path / "octo" / "model.c").write_text("static const int16_t l0_wpack[16] = {0};\n")
    with pytest.raises(OctoError, match="converted before the Helium"):
        build_firmware(get_board("virtual-m55"), model_dir=tmp_path)
    (tmp_path / "octo" / "model.c").write_text("static const int16_t l0_dwpack[16] = {0};\n")
    for board in ("virtual-m55", "virtual-m4"):
        with pytest.raises(OctoError, match="before depthwise weights took 1 byte"):
            build_firmware(get_board(board), model_dir=tmp_path)
