"""The on-device training engine end to end: gradients against TensorFlow autodiff,
INT8 vs FP32, host == virtual boards bit for bit, resume after a reset, memory
plans that refuse with numbers, malformed requests, and export to a .tflite that
TFLM runs with the accuracy the board measured."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from converter import firmware_sources as fws
from converter import train_plan
from converter.ir import ConvertError
from converter.train_plan import TrainConfig, make_plan, prepare_training
from host_tools.board import protocol as P
from host_tools.board.boards import get_board
from host_tools.board.target import open_train_target
from host_tools.errors import BoardError
from host_tools.services.state_blob import decode_weights
from host_tools.services.training import TrainSession
from host_tools.train.defaults import DEFAULT_LAC, DEFAULT_PRC
from host_tools.train.run import TrainOptions, compute_input_scale, quantize_samples, run_training

ROOT = Path(__file__).resolve().parents[2]
BATCH = 16


def _data(model_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    with np.load(model_dir / "train.npz") as tr, np.load(model_dir / "eval.npz") as ev:
        x, y, xe, ye = tr["x"], tr["y"], ev["x"], ev["y"]
    return x, y, xe, ye, compute_input_scale(x)


def _steps(sess: TrainSession, x: np.ndarray, y: np.ndarray, scale: float, steps: int, first: int = 0) -> list[int]:
    ticks = []
    for s in range(first, first + steps):
        idx = np.arange(s * BATCH, (s + 1) * BATCH) % len(y)
        sess.load(0, y[idx], quantize_samples(x[idx], scale))
        ticks.append(sess.step(s, BATCH).ticks)
    return ticks


@pytest.fixture(scope="module")
def host_int8(digits_dir: Path) -> Iterator[tuple[TrainSession, object]]:
    tb = prepare_training(digits_dir, TrainConfig("int8", BATCH, "all"), "host")
    with open_train_target(tb, "host", say=lambda s: None, sanitize=True) as t:
        yield TrainSession(t.client), tb


def _tf_grads(digits_dir: Path, weights: dict, x: np.ndarray, y: np.ndarray) -> dict[int, tuple[np.ndarray, ...]]:
    """TensorFlow autodiff of the mean cross-entropy at `weights`, in TFLite layouts, per op index."""
    import tensorflow as tf

    from converter.tflite_reader import parse_tflite
    from converter.train_export import _layer_names, keras_from_graph

    g = parse_tflite((digits_dir / "model.tflite").read_bytes(), "digits")
    model = keras_from_graph(g, weights)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, model(tf.constant(x))))
    grads = dict(zip([v.path for v in model.trainable_variables],
                     tape.gradient(loss, model.trainable_variables), strict=True))
    names = _layer_names(g)
    out = {}
    for op_index, (w, _b) in weights.items():
        kern = grads[f"{names[op_index]}/kernel"].numpy()
        if kern.ndim == 4 and g.ops[op_index].kind == "DEPTHWISE_CONV_2D":
            kern = kern.reshape(1, *kern.shape[:2], -1)          # [kh, kw, c, 1] -> TFLite [1, kh, kw, c]
        else:
            kern = np.transpose(kern, (3, 0, 1, 2)) if kern.ndim == 4 else kern.T
        out[op_index] = (kern.reshape(w.shape), )
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _tf_mse_grads(model_dir: Path, weights: dict, x: np.ndarray, target: np.ndarray) -> dict[int, np.ndarray]:
    """TensorFlow autodiff of mean((output - target)^2) at `weights`, in TFLite layouts, per op index."""
    import tensorflow as tf

    from converter.tflite_reader import parse_tflite
    from converter.train_export import keras_from_graph

    model = keras_from_graph(parse_tflite((model_dir / "model.tflite").read_bytes(), model_dir.name), weights)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(tf.reshape(model(tf.constant(x)), (len(x), -1)) - target))
    grads = tape.gradient(loss, model.trainable_variables)
    ref = {}
    for k, (w, _b) in weights.items():
        g_tf = next(g.numpy() for v, g in zip(model.trainable_variables, grads, strict=True)
                    if v.path.endswith("kernel") and v.shape.num_elements() == w.size)
        ref[k] = np.transpose(g_tf, (3, 0, 1, 2)) if g_tf.ndim == 4 else g_tf.T
    return ref


def assert_step_matches(w0: dict, w1: dict, lr: float, ref: dict[int, np.ndarray], min_cos: float,
                        max_rel: float) -> None:
    """One SGD step without momentum moved each weight by -lr * gradient: its direction (cosine) and size (norm)
    against TF's gradient ref[op]."""
    for k, g_tf in ref.items():
        g = (w0[k][0] - w1[k][0]) / lr
        assert _cos(g, g_tf) >= min_cos, f"op {k}: cosine {_cos(g, g_tf):.6f}"
        rel = abs(np.linalg.norm(g) - np.linalg.norm(g_tf)) / np.linalg.norm(g_tf)
        assert rel <= max_rel, f"op {k}: gradient norm {np.linalg.norm(g):.5g} vs TF {np.linalg.norm(g_tf):.5g}"


@pytest.mark.parametrize(("precision", "init", "min_cos", "max_rel"), [
    ("fp32", 0, 0.99999, 1e-4),    # FP32: the same gradients as TF up to float rounding
    ("int8", 1, 0.98, 0.1),        # INT8 from random weights: close in direction and size
])
def test_one_step_gradients_match_tensorflow(digits_dir: Path, precision: str, init: int, min_cos: float,
                                             max_rel: float) -> None:
    """One SGD step without momentum moves each weight by -lr * gradient: compare with TF autodiff."""
    x, y, _, _, scale = _data(digits_dir)
    tb = prepare_training(digits_dir, TrainConfig(precision, BATCH, "all"), "host")
    lr = 1e-3 if precision == "fp32" else 0.02
    with open_train_target(tb, "host", say=lambda s: None) as t:
        sess = TrainSession(t.client)
        sess.init(seed=5, init_random=bool(init), lac=False, prc=False, lr=lr, momentum=0.0, weight_decay=0.0,
                  input_scale=scale, prc_k=0.0, lac_l2=0.0)
        w0 = decode_weights(tb.plan, sess.get_state())
        _steps(sess, x, y, scale, 1)
        w1 = decode_weights(tb.plan, sess.get_state())
    xq = quantize_samples(x[:BATCH], scale).astype(np.float32) * np.float32(scale)
    ref = _tf_grads(digits_dir, w0, xq, y[:BATCH])
    assert_step_matches(w0, w1, lr, {k: g for k, (g,) in ref.items()}, min_cos, max_rel)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_host_and_virtual_boards_train_bit_identically(digits_dir: Path, precision: str) -> None:
    """The same seed and batches give the same state blob natively and on virtual-m4 (DSP, FPU) and
    virtual-m7; INT8 also on virtual-m3 (portable C, soft float)."""
    x, y, _, _, scale = _data(digits_dir)
    boards = ["host", "virtual-m4", "virtual-m7"] + (["virtual-m3"] if precision == "int8" else [])
    tb = prepare_training(digits_dir, TrainConfig(precision, BATCH, "all"), "host")
    digests = {}
    for board in boards:
        with open_train_target(tb, board, say=lambda s: None) as t:
            sess = TrainSession(t.client)
            sess.init(seed=11, init_random=True, lac=True, prc=True, lr=0.05, momentum=0.9, weight_decay=1e-4,
                      input_scale=scale, prc_k=16.0, lac_l2=1e-4)
            _steps(sess, x, y, scale, 4)
            digests[board] = hashlib.sha256(sess.get_state()).hexdigest()
    assert len(set(digests.values())) == 1, digests


def _forced_blocks(la: train_plan._Layer, batch: int, es: int) -> int:
    """3 output channels per block for every trainable conv, 4 for the FC (remainders included)."""
    if not (la.has_weights and la.train_w) or la.kind == "DEPTHWISE_CONV_2D":
        return la.oc if la.has_weights else 0
    return min(la.oc, 4 if la.kind == "FULLY_CONNECTED" else 3)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_weight_gradients_in_blocks_give_the_same_bits(digits_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    """Layers whose weight gradients exceed the gradient buffer train in blocks of output channels, the
    input gradient waiting in a side buffer: the state after a few steps (the first update's momentum
    measurement included) is the same bits as in one piece. Blocks are forced on every conv and the FC;
    the default plan blocks none of this small model's layers."""
    x, y, _, _, scale = _data(digits_dir)
    states = []
    for forced in (False, True):
        if forced:
            monkeypatch.setattr(train_plan, "chunk_channels", _forced_blocks)
        model = tmp_path / f"forced{int(forced)}" / digits_dir.name
        shutil.copytree(digits_dir, model, ignore=shutil.ignore_patterns("train"))
        tb = prepare_training(model, TrainConfig(precision, BATCH, "all"), "host")
        blocked = {la["name"]: la["chunk_oc"] for la in tb.plan["layers"]
                   if la["w_shape"] is not None and la["chunk_oc"] < la["oc"]}
        assert blocked == ({"conv1": 3, "conv2": 3, "conv3": 3, "fc": 4} if forced else {}), blocked
        with open_train_target(tb, "host", say=lambda s: None, sanitize=True) as t:
            sess = TrainSession(t.client)
            sess.init(seed=5, init_random=True, lac=True, prc=True, lr=0.05, momentum=0.9, weight_decay=1e-4,
                      input_scale=scale, prc_k=16.0, lac_l2=1e-4)
            _steps(sess, x, y, scale, 3)
            blob = sess.get_state()
        states.append(blob[:8] + blob[12:])  # bytes 8..12: the configuration CRC (the plans differ)
    assert states[0] == states[1]


def test_eval_does_not_change_the_state(host_int8: tuple[TrainSession, object]) -> None:
    sess, _ = host_int8
    sess.init(seed=3, init_random=True, lac=True, prc=True, lr=0.05, momentum=0.9, weight_decay=0.0,
              input_scale=1 / 127, prc_k=16.0, lac_l2=1e-4)
    before = sess.get_state()
    rng = np.random.default_rng(0)
    sess.load(0, rng.integers(0, 10, BATCH), rng.integers(-127, 128, (BATCH, 64)).astype(np.int8))
    r = sess.eval(BATCH)
    assert r.n == BATCH and len(r.preds) == BATCH and np.isfinite(r.loss)
    assert sess.get_state() == before


def test_samples_larger_than_a_frame_are_staged_in_parts(host_int8: tuple[TrainSession, object]) -> None:
    """TRAIN_LOAD_PART: with frames too small for one sample the host sends parts; the board evaluates
    exactly what it evaluates after a whole-sample TRAIN_LOAD."""
    sess, _ = host_int8
    sess.init(seed=3, init_random=True, lac=True, prc=False, lr=0.05, momentum=0.9, weight_decay=0.0,
              input_scale=1 / 127, prc_k=16.0, lac_l2=1e-4)
    rng = np.random.default_rng(1)
    x, y = rng.integers(-127, 128, (4, 64)).astype(np.int8), rng.integers(0, 10, 4)
    sess.load(0, y, x)
    whole = sess.eval(4)
    sess.load(0, np.zeros(4, int), np.zeros((4, 64), np.int8))
    saved = sess.client.max_payload
    try:
        sess.client.max_payload = 40  # 32 data bytes per TRAIN_LOAD_PART
        sess.load(0, y, x)
    finally:
        sess.client.max_payload = saved
    parts = sess.eval(4)
    assert np.array_equal(parts.preds, whole.preds) and parts.loss == whole.loss and parts.correct == whole.correct


def test_resume_after_board_reset_is_bit_identical(digits_dir: Path, tmp_path: Path) -> None:
    """Kill the (native) board mid-training: the host restores the last checkpoint and replays, and the
    final weights equal an uninterrupted run's."""
    x, y, xe, ye, _ = _data(digits_dir)
    x, y = x[:320], y[:320]
    tb = prepare_training(digits_dir, TrainConfig("int8", BATCH, "all"), "host")
    opts = dict(epochs=2, seed=4, checkpoint_every=7)

    def run(out: Path, reset_at: int | None) -> tuple[dict, bytes]:
        with open_train_target(tb, "host", say=lambda s: None) as t:
            if reset_at is not None:
                orig = TrainSession.step

                def step(self: TrainSession, step: int, n: int, lr: float | None = None, **kw: object) -> object:
                    if step == reset_at and not getattr(t, "_was_reset", False):
                        t._was_reset = True  # type: ignore[attr-defined]
                        t.restart()           # the board loses everything
                        self.client = t.client
                    return orig(self, step, n, lr, **kw)  # type: ignore[arg-type]

                TrainSession.step = step  # type: ignore[method-assign]
            try:
                metrics = run_training(t, tb, (x, y), (xe, ye), TrainOptions(**opts), lambda s: None, out)
            finally:
                if reset_at is not None:
                    TrainSession.step = orig  # type: ignore[method-assign]
            return metrics, TrainSession(t.client).get_state()

    m1, blob1 = run(tmp_path / "a", None)
    m2, blob2 = run(tmp_path / "b", 30)
    assert m2["recoveries"] == 1 and m1["recoveries"] == 0
    assert blob1 == blob2
    assert m1["final"] == m2["final"]


def test_plan_too_big_for_the_board_is_refused_with_numbers(digits_dir: Path) -> None:
    with pytest.raises(ConvertError) as e:
        prepare_training(digits_dir, TrainConfig("fp32", 128, "all"), "virtual-m3",
                         sram_bytes=get_board("virtual-m3").sram_bytes)
    msg = str(e.value)
    assert "needs" in msg and "B of SRAM" in msg and "activations" in msg and "virtual-m3 has 131,072 B" in msg
    assert "--batch" in msg and "--precision int8" in msg
    with pytest.raises(ConvertError) as e:     # an INT8 run is not told to use INT8
        prepare_training(digits_dir, TrainConfig("int8", 255, "all"), "virtual-m3",
                         sram_bytes=get_board("virtual-m3").sram_bytes)
    assert "--batch" in str(e.value) and "--precision" not in str(e.value)
    # INT8 at the same batch needs far less: the planner is what makes the difference
    fp, _ = make_plan((digits_dir / "model.tflite").read_bytes(), TrainConfig("fp32", 16, "all"))
    q8, _ = make_plan((digits_dir / "model.tflite").read_bytes(), TrainConfig("int8", 16, "all"))
    assert q8["arena_bytes"] <= 0.4 * fp["arena_bytes"]
    assert q8["memory"]["activations"] * 4 <= fp["memory"]["activations"] * 1.01


def test_unsupported_options_are_refused() -> None:
    with pytest.raises(ConvertError, match="last:N"):
        TrainConfig(update="first:2")
    with pytest.raises(ConvertError, match="int8 or fp32"):
        TrainConfig(precision="fp16")


def test_malformed_requests_get_specific_errors(host_int8: tuple[TrainSession, object]) -> None:
    sess, _ = host_int8
    c = sess.client
    sess.init(seed=1, init_random=False, lac=True, prc=True, lr=0.01, momentum=0.9, weight_decay=0.0,
              input_scale=1 / 127, prc_k=16.0, lac_l2=1e-4)
    with pytest.raises(BoardError, match="step mismatch"):
        c.request(P.MSG_TRAIN_STEP, struct.pack("<IH", 5, BATCH))
    with pytest.raises(BoardError, match=r"1\.\.batch"):
        c.request(P.MSG_TRAIN_STEP, struct.pack("<IH", 0, BATCH + 1))
    with pytest.raises(BoardError, match="TRAIN_LOAD length"):
        c.request(P.MSG_TRAIN_LOAD, struct.pack("<HH", 0, 2) + b"\x00" * 10)
    with pytest.raises(BoardError, match="label >= classes"):
        c.request(P.MSG_TRAIN_LOAD, struct.pack("<HH", 0, 1) + b"\x0a" + b"\x00" * 64)
    with pytest.raises(BoardError, match="hyper-parameter"):
        c.request(P.MSG_TRAIN_INIT, struct.pack("<IBBHffffff", 1, 0, 3, 0, 0.01, 1.5, 0, 1 / 127, 3, 0))
    blob = sess.get_state()
    # a corrupted blob (CRC) and a blob of another configuration are refused; the state stays invalid
    c.request(P.MSG_SET_WEIGHTS, struct.pack("<I", 0) + blob[:64])
    with pytest.raises(BoardError, match="CRC-32 mismatch"):
        c.request(P.MSG_COMMIT_WEIGHTS, struct.pack("<II", len(blob), zlib.crc32(blob) ^ 1))
    with pytest.raises(BoardError, match="no training state"):
        c.request(P.MSG_TRAIN_STEP, struct.pack("<IH", 0, 1))
    other = bytearray(blob)
    other[8] ^= 0xFF  # config CRC field
    sess.set_state(bytes(blob))  # a good blob restores
    with pytest.raises(BoardError, match="another model or training configuration"):
        sess.set_state(bytes(other))
    assert sess.info().state_valid is False
    sess.set_state(blob)
    assert sess.info().state_valid is True and sess.info().step == 0


def test_exported_model_runs_in_tflm_with_the_boards_accuracy(digits_dir: Path, tmp_path: Path) -> None:
    """Fine-tune on the (native) board, export, and check: the .tflite parses, TFLM's accuracy is the
    accuracy our inference C gets bit-exactly, and it is within 1.5 points of the board's INT8 eval."""
    from converter.codegen import compile_graph
    from converter.hostbuild import build_host_runner, run_host
    from converter.pipeline import quantize_inputs, write_outputs
    from converter.tflite_reader import parse_tflite
    from converter.tflm import tflm_run
    from converter.train_export import export_tflite

    x, y, xe, ye, _ = _data(digits_dir)
    tb = prepare_training(digits_dir, TrainConfig("int8", BATCH, "last:2"), "host")
    with open_train_target(tb, "host", say=lambda s: None) as t:
        m = run_training(t, tb, (x, y), (xe, ye), TrainOptions(epochs=2, seed=0, lr=0.02), lambda s: None,
                         tmp_path / "run")
        blob = TrainSession(t.client).get_state()
    out = tmp_path / "tuned.tflite"
    export_tflite(digits_dir, decode_weights(tb.plan, blob), x[:300], out)
    model = out.read_bytes()
    g = parse_tflite(model, "tuned")
    xq = quantize_inputs(xe, *g.input.qparams())
    ref = tflm_run(model, xq).reshape(len(ye), -1)
    acc_tflm = float(np.mean(ref.argmax(1) == ye))
    cm = compile_graph(g, "tuned", zlib.crc32(model))
    write_outputs(cm, model, tmp_path / "tuned", "tuned", {"head": 0, "tail": 0})
    ours = run_host(build_host_runner(tmp_path / "tuned" / "octo"), xq, g.output.size)
    assert np.array_equal(ours, ref.reshape(ours.shape))
    assert abs(acc_tflm - m["final"]["eval_accuracy"]) <= 0.015, (acc_tflm, m["final"])


def test_plan_scratch_mirrors_the_kernels(host_cc) -> None:
    """converter/train_plan.py sizes kernel scratch with its own copy of the C formulas: they must agree."""
    import subprocess

    from converter.train_plan import s8_scratch_bytes

    exe = host_cc("train_scratch_sizes", [ROOT / "tests" / "c" / "train_scratch_sizes.c",
                                          *fws.sources("train_kernels", "status")], sanitize=False)
    shapes = [("conv", (16, 3, 3, 8)), ("conv", (8, 3, 3, 1)), ("conv", (32, 1, 1, 16)), ("conv", (10, 5, 3, 7)),
              ("conv", (64, 1, 1, 64)), ("fc", (10, 1, 1, 32)), ("fc", (7, 1, 1, 300))]
    args = []
    for kind, (o, kh, kw, c) in shapes:
        args += ["conv", str(o), str(kh), str(kw), str(c)] if kind == "conv" else ["fc", str(o), str(c)]
    got = [int(v) for v in subprocess.run([str(exe), *args], capture_output=True, text=True, check=True).stdout.split()]
    want = [s8_scratch_bytes("CONV_2D" if k == "conv" else "FULLY_CONNECTED", s) for k, s in shapes]
    assert got == want


def test_cli_train_and_export_write_clean_json_to_stdout(digits_dir: Path, tmp_path: Path) -> None:
    """`octo train/export --json -`: stdout is exactly one JSON document (TF's native prints go to stderr)."""
    import json
    import subprocess
    import sys

    with np.load(digits_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:160], y=d["y"][:160])
    common = ["--target", "host", "--update", "last:2", "--run-dir", str(tmp_path / "run")]
    octo = [sys.executable, "-m", "host_tools.cli"]
    tr = subprocess.run([*octo, "train", str(digits_dir), "--epochs", "1", "--data", str(tmp_path / "small.npz"),
                         *common, "--json", "-"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert tr.returncode == 0, tr.stderr[-2000:]
    m = json.loads(tr.stdout)
    assert m["schema"] == "octo.train/1" and m["steps"] == 10
    assert (m["config"]["lac"], m["config"]["prc"]) == (DEFAULT_LAC, DEFAULT_PRC)  # the measured defaults
    ex = subprocess.run([*octo, "export", str(digits_dir), *common, "-o", str(tmp_path / "t.tflite"), "--json", "-"],
                        capture_output=True, text=True, check=False, cwd=ROOT)
    assert ex.returncode == 0, ex.stderr[-2000:]
    e = json.loads(ex.stdout)
    assert e["schema"] == "octo.export/1" and e["step"] == 10 and (tmp_path / "t.tflite").stat().st_size > 1000
    assert abs(e["tflite_eval_accuracy"] - e["board_eval_accuracy"]) <= 0.03


def _octo(*args: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], capture_output=True, text=True,
                          check=False, cwd=ROOT)


def test_divergence_stops_at_once_with_one_line_and_no_replay(digits_dir: Path, tmp_path: Path) -> None:
    """The board's OCTO_E_DIVERGED (a status of its own, -13) is never taken for a board reset: no
    'recovering', no replay of the checkpoint, one line naming the step and the fix, exit code 2."""
    from host_tools.train.run import read_checkpoint, write_checkpoint

    with np.load(digits_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:160], y=d["y"][:160])
    common = ["--precision", "fp32", "--target", "host", "--run-dir", str(tmp_path / "run"),
              "--data", str(tmp_path / "small.npz")]
    first = _octo("train", str(digits_dir), "--epochs", "1", *common)
    assert first.returncode == 0, first.stderr[-2000:]
    # Poison the checkpoint the way a runaway update would: the first layer's FP32 weights become inf.
    ck = read_checkpoint(tmp_path / "run")
    plan = prepare_training(digits_dir, TrainConfig("fp32", BATCH, "all"), "host").plan
    la = next(la for la in plan["layers"] if la["w_shape"] is not None)
    n, off = int(np.prod(la["w_shape"])), int(la["offsets"]["w"])
    blob = bytearray(ck.blob)
    blob[off : off + 4 * n] = np.full(n, np.inf, np.float32).tobytes()
    write_checkpoint(tmp_path / "run", ck.meta, bytes(blob))
    again = _octo("train", str(digits_dir), "--epochs", "2", "--resume", *common)
    assert again.returncode == 2, again.stdout[-2000:] + again.stderr[-2000:]
    assert "recover" not in again.stdout + again.stderr
    err = again.stderr.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("octo: error:")]
    assert errors == [err[-1]] and err[-1].startswith("octo: error: training diverged at step 10"), again.stderr
    assert "--lr" in err[-1] and "Traceback" not in again.stderr


def test_a_loss_far_above_its_start_is_warned_about(digits_dir: Path, tmp_path: Path) -> None:
    """FP32 at --lr 1e6 keeps every value finite (so the board cannot call it divergence), but the loss explodes:
    the host says so once, with the fix."""
    with np.load(digits_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:160], y=d["y"][:160])
    r = _octo("train", str(digits_dir), "--epochs", "1", "--precision", "fp32", "--lr", "1e6", "--target", "host",
              "--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "small.npz"))
    assert r.returncode == 0, r.stderr[-2000:]
    warnings = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("warning: the training loss")]
    assert len(warnings) == 1 and "smaller learning rate (--lr 100000)" in warnings[0], r.stdout[-2000:]


def test_ctrl_c_on_the_native_trainer_keeps_the_last_step_and_resumes_identically(digits_dir: Path,
                                                                                   tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole foreground process group. The native trainer runs in its own
    group, so it survives to hand over the state of the last completed step: exit code 130, a checkpoint of
    exactly that step, and a resume that ends bit-identical to an uninterrupted run."""
    import json
    import signal
    import sys
    import time

    from host_tools.train.run import read_checkpoint

    common = ["--target", "host", "--epochs", "20", "--checkpoint-every", "1000", "--lr", "0.005"]
    ref = _octo("train", str(digits_dir), *common, "--run-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-2000:]
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "host_tools.cli", "train", str(digits_dir), *common,
                             "--run-dir", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)
    tele = run / "telemetry.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if tele.exists() and sum(1 for ln in tele.read_text().splitlines() if '"step"' in ln) >= 150:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)               # what the terminal does on Ctrl-C
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "could not checkpoint" not in out + err
    steps = [json.loads(ln)["step"] for ln in tele.read_text().splitlines() if '"step"' in ln and '"loss"' in ln]
    ck = read_checkpoint(run)
    assert ck.meta["step"] == steps[-1] and f"checkpoint of step {steps[-1]} saved" in err
    again = _octo("train", str(digits_dir), *common, "--run-dir", str(run), "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert read_checkpoint(run).blob == read_checkpoint(tmp_path / "ref").blob


def test_the_readme_train_command_keeps_the_converted_accuracy(digits_dir: Path, tmp_path: Path) -> None:
    """`octo train build/digits --epochs 10` with every default (converted weights, all layers, the default
    learning rate) ends at or above where it started; the run says where it started. (On the native trainer,
    bit-identical to the boards.)"""
    import json

    r = _octo("train", str(digits_dir), "--epochs", "10", "--target", "host", "--run-dir", str(tmp_path / "run"),
              "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "m.json").read_text())
    start, end = m["initial"]["eval_accuracy"], m["final"]["eval_accuracy"]
    assert f"held-out accuracy before training {start:.4f}" in r.stderr
    assert end >= start, (start, end)
    assert "warning" not in r.stderr


def test_a_run_that_loses_accuracy_says_so(digits_dir: Path, tmp_path: Path) -> None:
    with np.load(digits_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:320], y=d["y"][:320])
    r = _octo("train", str(digits_dir), "--epochs", "2", "--lr", "0.05", "--target", "host", "--data",
              str(tmp_path / "small.npz"), "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "warning: held-out accuracy fell from" in r.stderr and "--lr 0.005" in r.stderr, r.stderr[-2000:]


# -- mean squared error (autoencoders) ---------------------------------------------------------------------------------
AE_IN = 32


def _ae_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """32 values on a 3-dimensional subspace plus noise (normal, y 0); every third sample gets large noise on a
    few values (anomalous, y 1)."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(3, AE_IN)).astype(np.float32)
    x = (rng.normal(size=(n, 3)).astype(np.float32) @ basis + 0.05 * rng.normal(size=(n, AE_IN))).astype(np.float32)
    y = (np.arange(n) % 3 == 2).astype(np.int64)
    x[y == 1, :8] += rng.normal(0, 2.0, size=(int(y.sum()), 8)).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def ae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny autoencoder converted like a user's model: FC 32 -> 16 (ReLU) -> reshape 4x2x2 -> 3x3 conv to 4x2x4
    (32 values, with pixels and channels), pretrained a little on normal data; train.npz holds normal samples
    only (no y), eval.npz normal and anomalous ones with y 0/1."""
    import keras

    from converter.pipeline import convert
    from converter.quantize import quantize_keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((AE_IN,), batch_size=1)
    h = keras.layers.Reshape((4, 2, 2))(keras.layers.Dense(16, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, padding="same")(h))
    x, y = _ae_data(0, 480)
    xn = x[y == 0]
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(xn, xn.reshape(-1, 4, 2, 4), epochs=20, batch_size=32, verbose=0)
    root = tmp_path_factory.mktemp("ae")
    (root / "ae.tflite").write_bytes(quantize_keras(model, xn[:200]))
    out = root / "ae"
    convert(root / "ae.tflite", out, say=lambda s: None)
    np.savez(out / "train.npz", x=xn)
    xe, ye = _ae_data(1, 96)
    np.savez(out / "eval.npz", x=xe, y=ye)
    return out


def _ae_steps(sess: TrainSession, x: np.ndarray, scale: float, steps: int) -> None:
    for s in range(steps):
        idx = np.arange(s * BATCH, (s + 1) * BATCH) % len(x)
        sess.load(0, np.zeros(BATCH, np.int64), quantize_samples(x[idx], scale))
        sess.step(s, BATCH)


def _ae_train(ae_dir: Path) -> tuple[np.ndarray, float]:
    with np.load(ae_dir / "train.npz") as d:
        x = d["x"]
    return x, compute_input_scale(x)


def test_mse_is_chosen_by_the_head_and_a_mismatch_is_refused_with_the_fix(digits_dir: Path, ae_dir: Path,
                                                                           tmp_path: Path) -> None:
    import keras

    from converter.quantize import quantize_keras
    from host_tools.errors import OctoError
    from host_tools.train.run import load_dataset

    ae = (ae_dir / "model.tflite").read_bytes()
    plan, code = make_plan(ae, TrainConfig("int8", BATCH, "all"))
    assert plan["loss"] == "mse" and plan["config"]["loss"] == "mse" and plan["classes"] == AE_IN
    assert plan["config_id"] == "int8-b16-all-mse" and ".loss = 1," in code
    digits = (digits_dir / "model.tflite").read_bytes()
    plan, code = make_plan(digits, TrainConfig("int8", BATCH, "all"))
    assert plan["loss"] == "xent" and plan["config_id"] == "int8-b16-all" and ".loss = 0," in code
    with pytest.raises(ConvertError, match=r"^--loss mse on a classifier: the model ends in SOFTMAX.*--loss xent"):
        make_plan(digits, TrainConfig(loss="mse"))
    with pytest.raises(ConvertError, match=r"^--loss xent needs a classifier ending in SOFTMAX; this model ends in "
                                           r"CONV_2D with 32 output values: train it with --loss mse"):
        make_plan(ae, TrainConfig(loss="xent"))
    inp = keras.Input((8,), batch_size=1)
    narrow = quantize_keras(keras.Model(inp, keras.layers.Dense(4)(inp)),
                            np.random.default_rng(0).random((32, 8), np.float32))
    with pytest.raises(ConvertError, match="maps 8 input values to 4"):
        make_plan(narrow, TrainConfig())
    with pytest.raises(ConvertError, match="auto, xent or mse"):
        TrainConfig(loss="l1")
    # per-sample float targets for an autoencoder build (set up from data without targets): said in one line
    np.savez(tmp_path / "targets.npz", x=np.zeros((4, AE_IN), np.float32), y=np.zeros((4, AE_IN), np.float32))
    with pytest.raises(OctoError, match="per-sample targets, but this training build is an autoencoder"):
        load_dataset(tmp_path / "targets.npz", {"loss": "mse", "input_shape": [AE_IN], "classes": AE_IN})
    # the command line: one error line with the fix, before anything is built
    r = _octo("train", str(digits_dir), "--loss", "mse", "--target", "host", "--run-dir", str(tmp_path / "run"))
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and err[-1].startswith("octo: error: --loss mse on a classifier"), r.stderr[-2000:]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("precision", "init", "min_cos", "max_rel"), [
    ("fp32", 0, 0.99999, 1e-4),    # FP32: the same gradients as TF up to float rounding
    ("int8", 1, 0.97, 0.15),       # INT8 from random weights: close in direction and size
])
def test_mse_one_step_gradients_match_tensorflow(ae_dir: Path, precision: str, init: int, min_cos: float,
                                                 max_rel: float) -> None:
    """MSE (mean over the batch and the output values, against the sample itself): one SGD step without momentum
    moves each weight by -lr * gradient, compared with TF autodiff of the same loss."""


    x, scale = _ae_train(ae_dir)
    tb = prepare_training(ae_dir, TrainConfig(precision, BATCH, "all"), "host")
    lr = 1e-3 if precision == "fp32" else 0.02
    with open_train_target(tb, "host", say=lambda s: None) as t:
        sess = TrainSession(t.client)
        sess.init(seed=5, init_random=bool(init), lac=False, prc=False, lr=lr, momentum=0.0, weight_decay=0.0,
                  input_scale=scale, prc_k=0.0, lac_l2=0.0)
        w0 = decode_weights(tb.plan, sess.get_state())
        _ae_steps(sess, x, scale, 1)
        w1 = decode_weights(tb.plan, sess.get_state())
    xq = quantize_samples(x[:BATCH], scale).astype(np.float32) * np.float32(scale)
    assert_step_matches(w0, w1, lr, _tf_mse_grads(ae_dir, w0, xq, xq), min_cos, max_rel)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_mse_host_and_virtual_boards_train_bit_identically(ae_dir: Path, precision: str) -> None:
    """An MSE model (output with pixels and channels, LAC on the last layer too) gives the same state blob natively
    and on virtual-m4; INT8 also on virtual-m3 (portable C, soft float). The MSE kernels have no DSP path, so
    virtual-m7 (the M4's code for another core) is left to test_host_and_virtual_boards_train_bit_identically."""
    x, scale = _ae_train(ae_dir)
    boards = ["host", "virtual-m4"] + (["virtual-m3"] if precision == "int8" else [])
    tb = prepare_training(ae_dir, TrainConfig(precision, BATCH, "all"), "host")
    digests = {}
    for board in boards:
        with open_train_target(tb, board, say=lambda s: None) as t:
            sess = TrainSession(t.client)
            sess.init(seed=11, init_random=False, lac=True, prc=True, lr=0.02, momentum=0.9, weight_decay=1e-4,
                      input_scale=scale, prc_k=16.0, lac_l2=1e-4)
            _ae_steps(sess, x, scale, 4)
            digests[board] = hashlib.sha256(sess.get_state()).hexdigest()
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_eval_returns_per_sample_losses(ae_dir: Path, precision: str) -> None:
    """EVAL's per-sample losses of an MSE model are each sample's reconstruction error: their mean is the reported
    loss, and (FP32) each equals a float recomputation with the board's weights."""
    from converter.tflite_reader import parse_tflite
    from converter.train_export import keras_from_graph

    with np.load(ae_dir / "eval.npz") as d:
        xe = d["x"][:BATCH]
    x, scale = _ae_train(ae_dir)
    tb = prepare_training(ae_dir, TrainConfig(precision, BATCH, "all"), "host")
    with open_train_target(tb, "host", say=lambda s: None, sanitize=True) as t:
        sess = TrainSession(t.client)
        sess.init(seed=2, init_random=False, lac=False, prc=False, lr=0.01, momentum=0.9, weight_decay=0.0,
                  input_scale=scale, prc_k=16.0, lac_l2=1e-4)
        _ae_steps(sess, x, scale, 2)   # trained weights (INT8: known output ranges)
        w = decode_weights(tb.plan, sess.get_state())
        xq = quantize_samples(xe, scale)
        sess.load(0, np.zeros(BATCH, np.int64), xq)
        r = sess.eval(BATCH)
    assert r.losses.shape == (BATCH,) and r.losses.dtype == np.float32 and np.all(r.losses >= 0)
    assert r.correct == 0 and not r.preds.any()
    assert np.isclose(r.loss, float(np.mean(r.losses, dtype=np.float64)), rtol=1e-5)
    xf = xq.astype(np.float32) * np.float32(scale)
    model = keras_from_graph(parse_tflite((ae_dir / "model.tflite").read_bytes(), "ae"), w)
    ref = np.mean((np.asarray(model(xf)).reshape(BATCH, -1) - xf) ** 2, axis=1)
    if precision == "fp32":
        np.testing.assert_allclose(r.losses, ref, rtol=1e-4, atol=1e-6)
    else:  # INT8 outputs: the same ranking of samples, errors within 20% of the float ones
        assert np.corrcoef(r.losses, ref)[0, 1] > 0.95 and abs(r.loss / ref.mean() - 1) < 0.2, (r.losses, ref)


def test_eval_per_sample_losses_of_a_classifier(host_int8: tuple[TrainSession, object]) -> None:
    """Cross-entropy: each sample's -log softmax[label]; the mean is the reported loss."""
    sess, _ = host_int8
    sess.init(seed=3, init_random=True, lac=False, prc=False, lr=0.05, momentum=0.9, weight_decay=0.0,
              input_scale=1 / 127, prc_k=16.0, lac_l2=1e-4)
    rng = np.random.default_rng(4)
    sess.load(0, rng.integers(0, 10, BATCH), rng.integers(-127, 128, (BATCH, 64)).astype(np.int8))
    r = sess.eval(BATCH)
    assert r.losses.shape == (BATCH,) and np.all(r.losses >= 0) and np.ptp(r.losses) > 0
    assert np.isclose(r.loss, float(np.mean(r.losses, dtype=np.float64)), rtol=1e-5)


def test_cli_trains_an_autoencoder_and_reports_reconstruction_error_and_auc(ae_dir: Path, tmp_path: Path) -> None:
    """`octo train` of an MSE model: the eval loss (mean reconstruction error) and the ROC AUC of the per-sample
    error before and after, no accuracy; `octo export` measures the exported model's error the same way."""
    import json

    common = ["--target", "host", "--run-dir", str(tmp_path / "run")]
    tr = _octo("train", str(ae_dir), "--epochs", "2", "--lr", "0.005", *common, "--json", "-")
    assert tr.returncode == 0, tr.stderr[-2000:]
    m = json.loads(tr.stdout)
    assert m["config"]["loss"] == "mse" and m["config"]["config_id"] == "int8-b16-all-mse"
    assert all(e["train_accuracy"] is None and e["eval_accuracy"] is None for e in m["epochs"])
    assert m["initial"]["eval_auc"] > 0.8 and m["final"]["eval_auc"] > 0.8, m
    assert m["final"]["eval_loss"] > 0 and m["final"]["eval_accuracy"] is None
    assert "held-out reconstruction error (MSE) before training" in tr.stderr
    assert "accuracy" not in tr.stderr, tr.stderr[-2000:]
    ex = _octo("export", str(ae_dir), *common, "-o", str(tmp_path / "t.tflite"), "--json", "-")
    assert ex.returncode == 0, ex.stderr[-2000:]
    e = json.loads(ex.stdout)
    assert e["loss"] == "mse" and e["tflite_eval_accuracy"] is None and e["board_eval_loss"] == m["final"]["eval_loss"]
    assert abs(e["tflite_eval_loss"] / e["board_eval_loss"] - 1) < 0.25 and e["tflite_eval_auc"] > 0.8, e


# -- mean squared error against per-sample targets (regression) ------------------------------------------------------
REG_OUT = 4


def _reg_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8x1 samples and 4 float targets each: a fixed linear map of the sample plus a little noise."""
    rng = np.random.default_rng(seed)
    w = np.random.default_rng(98).normal(size=(64, REG_OUT)).astype(np.float32) / 8
    x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
    y = (x.reshape(n, -1) @ w + 0.02 * rng.normal(size=(n, REG_OUT))).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def reg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny regression model converted like a user's: 8x8x1 -> flatten -> dense 4 (Keras' initial weights);
    train.npz and eval.npz hold x and float targets y [N, 4]."""
    import keras

    from converter.pipeline import convert
    from converter.quantize import quantize_keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(REG_OUT)(keras.layers.Flatten()(inp)))
    x, y = _reg_data(0, 256)
    root = tmp_path_factory.mktemp("reg")
    (root / "reg.tflite").write_bytes(quantize_keras(model, x[:200]))
    out = root / "reg"
    convert(root / "reg.tflite", out, say=lambda s: None)
    np.savez(out / "train.npz", x=x, y=y)
    xe, ye = _reg_data(1, 64)
    np.savez(out / "eval.npz", x=xe, y=ye)
    return out


def _reg_train(reg_dir: Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    with np.load(reg_dir / "train.npz") as d:
        x, y = d["x"], d["y"]
    return x, y, compute_input_scale(x), compute_input_scale(y)


def _reg_steps(sess: TrainSession, x: np.ndarray, y: np.ndarray, scale: float, t_scale: float, steps: int) -> None:
    for s in range(steps):
        idx = np.arange(s * BATCH, (s + 1) * BATCH) % len(x)
        sess.load(0, np.zeros(BATCH, np.int64), quantize_samples(x[idx], scale))
        sess.load_targets(0, quantize_samples(y[idx], t_scale))
        sess.step(s, BATCH)


def test_mse_targets_plan_data_and_messages(reg_dir: Path, ae_dir: Path, digits_dir: Path, tmp_path: Path) -> None:
    """Targets are a configuration of their own (config id -y, a target buffer in the arena) that lets the output
    differ from the input; autoencoder plans stay as they were; y is targets by shape; TRAIN_LOAD_TARGETS checks
    its bounds and is refused by builds without targets."""
    from host_tools.errors import OctoError
    from host_tools.train.run import has_targets, load_dataset

    reg = (reg_dir / "model.tflite").read_bytes()
    with pytest.raises(ConvertError, match=r"maps 64 input values to 4.*per-sample targets"):
        make_plan(reg, TrainConfig(loss="mse"))
    plan, code = make_plan(reg, TrainConfig("int8", BATCH, "all", loss="mse", targets=True))
    assert plan["config_id"] == "int8-b16-all-mse-y" and plan["config"]["targets"] is True and plan["targets"]
    assert plan["classes"] == REG_OUT and ".targets = 1," in code
    ae_plan, ae_code = make_plan((ae_dir / "model.tflite").read_bytes(), TrainConfig("int8", BATCH, "all"))
    assert "targets" not in ae_plan["config"] and ".targets = 0," in ae_code
    assert ae_plan["config_id"] == "int8-b16-all-mse"
    with pytest.raises(ConvertError, match="need --loss mse"):
        TrainConfig(loss="xent", targets=True)
    with pytest.raises(ConvertError, match=r"ends in SOFTMAX \(a classifier\).*one-hot labels\? store y = y\.argmax"):
        make_plan((digits_dir / "model.tflite").read_bytes(), TrainConfig(targets=True))   # auto: a classifier
    assert has_targets(reg_dir / "train.npz") and not has_targets(ae_dir / "eval.npz")
    x, y = load_dataset(reg_dir / "train.npz", plan)
    assert y.shape == (len(x), REG_OUT) and y.dtype == np.float32
    np.savez(tmp_path / "labels.npz", x=x[:4], y=np.zeros(4, np.int64))
    with pytest.raises(OctoError, match="regresses per-sample targets"):
        load_dataset(tmp_path / "labels.npz", plan)
    np.savez(tmp_path / "wide.npz", x=x[:4], y=np.zeros((4, 5), np.float32))
    with pytest.raises(OctoError, match=r"must be \[4, 4\]"):
        load_dataset(tmp_path / "wide.npz", plan)
    tb = prepare_training(reg_dir, TrainConfig("int8", BATCH, "all", loss="mse", targets=True), "host")
    with open_train_target(tb, "host", say=lambda s: None, sanitize=True) as t:
        sess = TrainSession(t.client)
        with pytest.raises(BoardError, match="hyper-parameter"):   # no target scale
            sess.init(seed=1, init_random=False, lac=False, prc=False, lr=0.01, momentum=0.9, weight_decay=0.0,
                      input_scale=1 / 127, prc_k=16.0, lac_l2=1e-4)
        sess.init(seed=1, init_random=False, lac=False, prc=False, lr=0.01, momentum=0.9, weight_decay=0.0,
                  input_scale=1 / 127, prc_k=16.0, lac_l2=1e-4, target_scale=0.01)
        with pytest.raises(BoardError, match="beyond batch"):
            sess.client.request(P.MSG_TRAIN_LOAD_TARGETS, struct.pack("<I", BATCH * REG_OUT - 1) + b"\x00\x00")
        with pytest.raises(BoardError, match="beyond batch"):
            sess.client.request(P.MSG_TRAIN_LOAD_TARGETS, struct.pack("<I", 0xFFFFFFFF) + b"\x00")
        sess.load_targets(0, np.ones((BATCH, REG_OUT), np.int8))
    tb = prepare_training(ae_dir, TrainConfig("int8", BATCH, "all"), "host")
    with open_train_target(tb, "host", say=lambda s: None) as t, \
            pytest.raises(BoardError, match="trains without targets"):
        TrainSession(t.client).load_targets(0, np.ones((1, AE_IN), np.int8))


@pytest.mark.parametrize(("precision", "init", "min_cos", "max_rel"), [
    ("fp32", 0, 0.99999, 1e-4),    # FP32: the same gradients as TF up to float rounding
    ("int8", 1, 0.97, 0.15),       # INT8 from random weights: close in direction and size
])
def test_mse_targets_one_step_gradients_match_tensorflow(reg_dir: Path, precision: str, init: int, min_cos: float,
                                                         max_rel: float) -> None:
    """MSE against staged targets: one SGD step without momentum moves each weight by -lr * gradient of
    mean((model(x) - t)^2), compared with TF autodiff at the staged (quantized) inputs and targets."""


    x, y, scale, t_scale = _reg_train(reg_dir)
    tb = prepare_training(reg_dir, TrainConfig(precision, BATCH, "all", loss="mse", targets=True), "host")
    lr = 1e-3 if precision == "fp32" else 0.02
    with open_train_target(tb, "host", say=lambda s: None) as t:
        sess = TrainSession(t.client)
        sess.init(seed=5, init_random=bool(init), lac=False, prc=False, lr=lr, momentum=0.0, weight_decay=0.0,
                  input_scale=scale, prc_k=0.0, lac_l2=0.0, target_scale=t_scale)
        w0 = decode_weights(tb.plan, sess.get_state())
        _reg_steps(sess, x, y, scale, t_scale, 1)
        w1 = decode_weights(tb.plan, sess.get_state())
    xq = quantize_samples(x[:BATCH], scale).astype(np.float32) * np.float32(scale)
    tq = quantize_samples(y[:BATCH], t_scale).astype(np.float32) * np.float32(t_scale)
    assert_step_matches(w0, w1, lr, _tf_mse_grads(reg_dir, w0, xq, tq), min_cos, max_rel)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_mse_targets_host_and_virtual_board_train_bit_identically(reg_dir: Path, precision: str) -> None:
    """Regression steps give the same state blob natively and on virtual-m4."""
    x, y, scale, t_scale = _reg_train(reg_dir)
    tb = prepare_training(reg_dir, TrainConfig(precision, BATCH, "all", loss="mse", targets=True), "host")
    digests = {}
    for board in ["host", "virtual-m4"]:
        with open_train_target(tb, board, say=lambda s: None) as t:
            sess = TrainSession(t.client)
            sess.init(seed=11, init_random=False, lac=True, prc=True, lr=0.02, momentum=0.9, weight_decay=1e-4,
                      input_scale=scale, prc_k=16.0, lac_l2=1e-4, target_scale=t_scale)
            _reg_steps(sess, x, y, scale, t_scale, 4)
            digests[board] = hashlib.sha256(sess.get_state()).hexdigest()
    assert len(set(digests.values())) == 1, digests


def test_cli_trains_a_regression_model_on_targets(reg_dir: Path, tmp_path: Path) -> None:
    """`octo train --loss mse` with float targets y [N, 4]: the build stages targets (-mse-y), the loss falls, no
    accuracy or AUC; `octo export` measures the exported model's MSE against the targets."""
    import json

    common = ["--target", "host", "--loss", "mse", "--run-dir", str(tmp_path / "run")]
    tr = _octo("train", str(reg_dir), "--epochs", "3", "--lr", "0.01", *common, "--json", "-")
    assert tr.returncode == 0, tr.stderr[-2000:]
    m = json.loads(tr.stdout)
    assert m["config"]["config_id"] == "int8-b16-all-mse-y" and m["config"]["targets"] is True
    assert m["final"]["eval_loss"] < 0.5 * m["initial"]["eval_loss"], m
    assert m["epochs"][-1]["train_loss"] < m["epochs"][0]["train_loss"], m["epochs"]
    assert m["final"]["eval_auc"] is None and m["final"]["eval_accuracy"] is None
    assert "held-out MSE against the targets before training" in tr.stderr
    ck = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert ck["target_scale"] == m["target_scale"] > 0
    rs = _octo("train", str(reg_dir), "--epochs", "4", "--lr", "0.01", *common, "--resume", "--json", "-")
    assert rs.returncode == 0 and "resuming at step" in rs.stderr, rs.stderr[-2000:]
    m = json.loads(rs.stdout)
    assert len(m["epochs"]) == 4 and m["final"]["eval_loss"] < 0.5 * m["initial"]["eval_loss"], m
    ex = _octo("export", str(reg_dir), *common, "-o", str(tmp_path / "t.tflite"), "--json", "-")
    assert ex.returncode == 0, ex.stderr[-2000:]
    e = json.loads(ex.stdout)
    assert e["config_id"] == "int8-b16-all-mse-y" and e["tflite_eval_auc"] is None
    assert abs(e["tflite_eval_loss"] / e["board_eval_loss"] - 1) < 0.25, e
