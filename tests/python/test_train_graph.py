"""Graph training: residual ADDs (identity and projection shortcuts) and tensors read by several layers,
on the small residual digits model (models/digits_resnet.py, the structure of MLPerf Tiny's ResNet-8):
gradients against TensorFlow autodiff, host == virtual boards bit for bit, the gradient routing and the
liveness of the memory plan, refusals, and `octo train` + `octo export` end to end."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converter.ir import ConvertError
from converter.train_plan import DX_FINAL, DX_NONE, DX_SINK, DX_STORE, NONE, TrainConfig, make_plan, prepare_training
from host_tools.board.target import open_train_target
from host_tools.services.state_blob import decode_weights
from host_tools.services.training import TrainSession
from host_tools.train.run import quantize_samples
from tests.python.test_train_engine import _data, _steps, _tf_grads, assert_step_matches

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from converter.pipeline import convert

    out = tmp_path_factory.mktemp("dres") / "digits_resnet"
    convert(ROOT / "models" / "digits_resnet.py", out, say=lambda s: None)
    return out


def _layers(plan: dict) -> dict[str, dict]:
    return {la["name"]: la for la in plan["layers"]}


def test_shortcuts_route_their_gradients(resnet_dir: Path) -> None:
    """conv1's output feeds block 1's first conv and its ADD: the ADD (the later reader) starts a partial
    sum, the conv finishes it; the projection block's input has two conv readers; single readers sink."""
    plan, code = make_plan((resnet_dir / "model.tflite").read_bytes(), TrainConfig("int8", 16, "all"))
    la = _layers(plan)
    conv1 = plan["layers"].index(la["conv1"])
    add1 = la["b1_add"]
    assert add1["kind"] == "ADD" and conv1 in add1["src"]
    assert add1["dx_mode"][add1["src"].index(conv1)] == DX_STORE
    assert la["b1_conv1"]["dx_mode"] == [DX_FINAL]
    assert sorted([la["b2_conv1"]["dx_mode"][0], la["b2_proj"]["dx_mode"][0]]) == [DX_STORE, DX_FINAL]
    assert la["b2_conv2"]["dx_mode"] == [DX_SINK] and la["conv1"]["dx_mode"] == [DX_NONE]
    assert la["conv1"]["offsets"]["gp"] != NONE and la["b2_conv2"]["offsets"]["gp"] == NONE
    assert ".kind = 5" in code  # the ADDs are layers of the generated table


def test_liveness_shares_memory_between_buffers_that_never_live_together(resnet_dir: Path) -> None:
    """Training only the classifier leaves every earlier output transient: block 1's ADD needs three of the
    model's four 8x8x8 outputs at once, never all of them; with every layer training, the plan still
    overlaps the partial sums with outputs that are dead by then."""
    model = (resnet_dir / "model.tflite").read_bytes()
    full, _ = make_plan(model, TrainConfig("int8", 16, "all"))
    last, _ = make_plan(model, TrainConfig("int8", 16, "last:1"))
    outputs = sum(16 * int(np.prod(la["out_shape"])) for la in full["layers"])
    big = 16 * 8 * 8 * 8
    assert sum(16 * int(np.prod(la["out_shape"])) == big for la in full["layers"]) == 4
    assert last["memory"]["activations"] < 4 * big < outputs
    gp = sum(16 * int(np.prod(la["out_shape"])) for la in full["layers"] if la["offsets"]["gp"] != NONE)
    assert full["memory"]["activations"] < outputs + gp


@pytest.mark.parametrize(("precision", "init", "min_cos", "max_rel"), [
    ("fp32", 0, 0.99999, 1e-4),    # FP32: TF's gradients through both branches of every shortcut
    ("int8", 1, 0.995, 0.05),      # INT8: the ADD's own scales and the partial sums keep them close
])
def test_graph_gradients_match_tensorflow(resnet_dir: Path, precision: str, init: int, min_cos: float,
                                          max_rel: float) -> None:
    x, y, _, _, scale = _data(resnet_dir)
    tb = prepare_training(resnet_dir, TrainConfig(precision, 16, "all"), "host")
    lr = 1e-3 if precision == "fp32" else 0.02
    with open_train_target(tb, "host", say=lambda s: None, sanitize=True) as t:
        sess = TrainSession(t.client)
        sess.init(seed=5, init_random=bool(init), lac=False, prc=False, lr=lr, momentum=0.0, weight_decay=0.0,
                  input_scale=scale, prc_k=0.0, lac_l2=0.0)
        w0 = decode_weights(tb.plan, sess.get_state())
        _steps(sess, x, y, scale, 1)
        w1 = decode_weights(tb.plan, sess.get_state())
    xq = quantize_samples(x[:16], scale).astype(np.float32) * np.float32(scale)
    ref = _tf_grads(resnet_dir, w0, xq, y[:16])
    assert len(ref) == 7  # every conv of both blocks, the projection and the classifier
    assert_step_matches(w0, w1, lr, {k: g for k, (g,) in ref.items()}, min_cos, max_rel)


@pytest.mark.parametrize(("precision", "batch", "boards"), [
    ("int8", 16, ["virtual-m4", "virtual-m3"]),  # DSP + FPU, and portable C + soft float; stochastic gradients
    ("fp32", 4, ["virtual-m4"]),                 # FP32 at batch 16 does not fit 256 KiB
])
def test_graph_trains_bit_identically_on_host_and_boards(resnet_dir: Path, precision: str, batch: int,
                                                         boards: list[str]) -> None:
    x, y, _, _, scale = _data(resnet_dir)
    tb = prepare_training(resnet_dir, TrainConfig(precision, batch, "all"), "host")
    digests = {}
    for board in ["host", *boards]:
        with open_train_target(tb, board, say=lambda s: None) as t:
            sess = TrainSession(t.client)
            sess.init(seed=11, init_random=True, lac=True, prc=True, lr=0.05, momentum=0.9, weight_decay=1e-4,
                      input_scale=scale, prc_k=16.0, lac_l2=1e-4, grad_sr=precision == "int8")
            for s in range(3):
                idx = np.arange(s * batch, (s + 1) * batch)
                sess.load(0, y[idx], quantize_samples(x[idx], scale))
                sess.step(s, batch)
            digests[board] = hashlib.sha256(sess.get_state()).hexdigest()
    assert len(set(digests.values())) == 1, digests


def test_graphs_the_engine_cannot_train_are_refused_with_the_op(tmp_path: Path) -> None:
    import keras

    from converter.quantize import quantize_keras

    inp = keras.Input((8, 8, 2), batch_size=1)
    a = keras.layers.Conv2D(2, 3, padding="same")(inp)
    b = keras.layers.Conv2D(2, 3, padding="same")(inp)
    cat = keras.layers.Concatenate()([a, b])
    out = keras.layers.Softmax()(keras.layers.Dense(3)(keras.layers.Flatten()(cat)))
    model = quantize_keras(keras.Model(inp, out), np.random.default_rng(0).random((32, 8, 8, 2), np.float32))
    with pytest.raises(ConvertError, match=r"CONCATENATION cannot be trained on the board.*ADD of two tensors"):
        make_plan(model, TrainConfig())


def test_cli_trains_and_exports_a_residual_model(resnet_dir: Path, tmp_path: Path) -> None:
    """`octo train` on the native trainer, then `octo export`: TFLM runs the tuned residual model with the
    accuracy the board measured."""
    with np.load(resnet_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:320], y=d["y"][:320])
    common = ["--target", "host", "--run-dir", str(tmp_path / "run")]
    octo = [sys.executable, "-m", "host_tools.cli"]
    tr = subprocess.run([*octo, "train", str(resnet_dir), "--epochs", "1", "--data", str(tmp_path / "small.npz"),
                         *common, "--json", "-"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert tr.returncode == 0, tr.stderr[-2000:]
    m = json.loads(tr.stdout)
    assert m["steps"] == 20 and m["final"]["eval_accuracy"] >= m["initial"]["eval_accuracy"] - 0.05, m
    assert m["config"]["grad_rounding"] == "nearest"  # the default from converted weights
    ex = subprocess.run([*octo, "export", str(resnet_dir), *common, "-o", str(tmp_path / "t.tflite"), "--json", "-"],
                        capture_output=True, text=True, check=False, cwd=ROOT)
    assert ex.returncode == 0, ex.stderr[-2000:]
    e = json.loads(ex.stdout)
    assert abs(e["tflite_eval_accuracy"] - e["board_eval_accuracy"]) <= 0.03, e


def test_without_update_a_plan_too_big_for_the_budget_trains_what_fits(resnet_dir: Path, tmp_path: Path) -> None:
    """The default update is every layer; when that fits the budget at no batch (here --sram 70k: 77.7 KB at
    batch 1 with the firmware), `octo train` says so and trains what --update auto chooses."""
    with np.load(resnet_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:64], y=d["y"][:64])
    octo = [sys.executable, "-m", "host_tools.cli"]
    tr = subprocess.run([*octo, "train", str(resnet_dir), "--target", "host", "--sram", "70k", "--epochs", "1",
                         "--data", str(tmp_path / "small.npz"), "--run-dir", str(tmp_path / "run"), "--json", "-"],
                        capture_output=True, text=True, check=False, cwd=ROOT)
    assert tr.returncode == 0, tr.stderr[-2000:]
    assert "the full update does not fit the --sram budget at any batch: --update auto" in tr.stderr
    m = json.loads(tr.stdout)
    plan = json.loads((resnet_dir / "train" / m["config"]["config_id"] / "train_plan.json").read_text())
    assert plan["update"].startswith("set:") and plan["arena_bytes"] + 32 * 1024 <= 70 * 1024


def test_depth_multiplier_matches_tensorflow_and_trains_bit_identically_on_a_board(tmp_path: Path) -> None:
    """DEPTHWISE_CONV_2D with depth multipliers 2 and 3 (output channel o reads input channel o // m): one FP32
    step moves the weights by TF's gradients, and INT8 steps leave the same state bits natively and on
    virtual-m4."""
    import keras
    from sklearn.datasets import load_digits

    from converter.quantize import quantize_keras

    keras.utils.set_random_seed(0)
    d = load_digits()
    x, y = (d.images[:64, :, :, None] / 16.0).astype(np.float32), d.target[:64].astype(np.int64)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu", name="dw2")(h)
    h = keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=3, name="dw3")(h)  # 3x3x24
    out = keras.layers.Softmax()(keras.layers.Dense(10, name="fc")(keras.layers.Flatten()(h)))
    md = tmp_path / "dmult"
    md.mkdir()
    (md / "model.tflite").write_bytes(quantize_keras(keras.Model(inp, out), x))
    plan, _ = make_plan((md / "model.tflite").read_bytes(), TrainConfig("int8", 8, "all"))
    assert [la["w_shape"] for la in plan["layers"] if la["kind"] == "DEPTHWISE_CONV_2D"] == \
        [[1, 3, 3, 8], [1, 3, 3, 24]]
    scale = float(np.abs(x).max()) / 127.0
    lr = 1e-3
    tb = prepare_training(md, TrainConfig("fp32", 8, "all"), "host")
    with open_train_target(tb, "host", say=lambda s: None, sanitize=True) as t:
        sess = TrainSession(t.client)
        sess.init(seed=3, init_random=True, lac=False, prc=False, lr=lr, momentum=0.0, weight_decay=0.0,
                  input_scale=scale, prc_k=0.0, lac_l2=0.0)
        w0 = decode_weights(tb.plan, sess.get_state())
        sess.load(0, y[:8], quantize_samples(x[:8], scale))
        sess.step(0, 8)
        w1 = decode_weights(tb.plan, sess.get_state())
    xq = quantize_samples(x[:8], scale).astype(np.float32) * np.float32(scale)
    ref = _tf_grads(md, w0, xq, y[:8])
    assert len(ref) == 4
    assert_step_matches(w0, w1, lr, {k: g for k, (g,) in ref.items()}, 0.99999, 1e-4)

    tb = prepare_training(md, TrainConfig("int8", 8, "all"), "host")
    digests = {}
    for board in ("host", "virtual-m4"):
        with open_train_target(tb, board, say=lambda s: None) as t:
            sess = TrainSession(t.client)
            sess.init(seed=4, init_random=True, lac=True, prc=False, lr=0.05, momentum=0.9, weight_decay=0.0,
                      input_scale=scale, prc_k=16.0, lac_l2=1e-4)
            losses = []
            for s in range(6):
                idx = np.arange(s * 8, (s + 1) * 8)
                sess.load(0, y[idx], quantize_samples(x[idx], scale))
                losses.append(sess.step(s, 8).loss)
            digests[board] = hashlib.sha256(sess.get_state()).hexdigest()
        assert all(np.isfinite(losses)), losses
    assert len(set(digests.values())) == 1, digests
