"""Random initialisation scaled to the data (host_tools/train/init_scale.py): which layers it scales, by how much,
that FP32 and INT8 start from the same real weights, and that the board trains on from the written-back state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.train_plan import TrainConfig, make_plan, prepare_training
from host_tools.board.target import open_train_target
from host_tools.services.state_blob import decode_weights
from host_tools.services.training import TrainSession
from host_tools.train.init_scale import init_gains, input_gain, input_layers, scale_random_init
from host_tools.train.run import compute_input_scale, quantize_samples


def test_only_the_layers_reading_the_samples_are_scaled(digits_dir: Path) -> None:
    plan, _ = make_plan((digits_dir / "model.tflite").read_bytes(), TrainConfig("int8", 16, "all"))
    weight_layers = [i for i, la in enumerate(plan["layers"]) if la["w_shape"] is not None]
    assert input_layers(plan) == [weight_layers[0]]
    xq = np.full((4, 8), 50, np.int8)  # every sample value 50 * 0.02 = 1.0 ... RMS 1: gain 1
    assert input_gain(xq, 0.02) == pytest.approx(1.0)
    assert input_gain(xq, 0.1) == pytest.approx(0.2)   # RMS 5
    assert input_gain(np.zeros((2, 8), np.int8), 0.1) == 1.0
    assert init_gains(plan, xq, 0.1) == {weight_layers[0]: pytest.approx(0.2)}


def _init(digits_dir: Path, precision: str, xq: np.ndarray, scale: float
          ) -> tuple[dict, dict[int, tuple[np.ndarray, np.ndarray]], dict[int, tuple[np.ndarray, np.ndarray]], float]:
    tb = prepare_training(digits_dir, TrainConfig(precision, 16, "all"), "host")
    with open_train_target(tb, "host", say=lambda s: None) as t:
        sess = TrainSession(t.client)
        sess.init(seed=7, init_random=True, lac=False, prc=False, lr=0.05, momentum=0.9, weight_decay=0.0,
                  input_scale=scale, prc_k=16.0, lac_l2=0.0)
        before = decode_weights(tb.plan, sess.get_state())
        gains = scale_random_init(sess, tb.plan, xq, scale)
        after = decode_weights(tb.plan, sess.get_state())
        info = sess.info()
        assert info.state_valid and info.step == 0
        sess.load(0, np.arange(16) % 10, xq[:16])
        loss = sess.step(0, 16).loss  # the board trains on from the written-back state
    (gain,) = set(gains.values())
    return tb.plan, before, after, gain if np.isfinite(loss) else float("nan")


def test_scaled_init_is_the_same_in_both_precisions_and_the_board_trains_on(digits_dir: Path) -> None:
    with np.load(digits_dir / "train.npz") as d:
        x = d["x"][:64]
    scale = compute_input_scale(x)
    xq = quantize_samples(x, scale)
    first = None
    w0: dict[str, np.ndarray] = {}
    for precision in ("fp32", "int8"):
        plan, before, after, gain = _init(digits_dir, precision, xq, scale)
        rms = float(np.sqrt(np.mean(np.square(xq.astype(np.float64) * np.float32(scale)))))
        assert gain == pytest.approx(1.0 / rms, rel=1e-6) and gain != pytest.approx(1.0, abs=0.05)
        first = plan["layers"][input_layers(plan)[0]]["op_index"]
        for op, (w, b) in after.items():
            if op == first:  # the He draw times 1 / RMS, bias still 0
                np.testing.assert_allclose(w, before[op][0] * np.float32(gain), rtol=1e-6)
                assert not b.any()
            else:
                np.testing.assert_array_equal(w, before[op][0])
        w0[precision] = after[first][0]
    assert first is not None
    unit = float(np.abs(w0["int8"]).max()) / 28000  # one INT8 master unit (max |M| = 28000 at init)
    assert float(np.abs(w0["fp32"] - w0["int8"]).max()) <= 0.51 * unit
