"""Split learning (`octo collab`, docs/SGQ.md section 8): the device half encodes its own INT8 features
byte-identically to host_tools/sgq/codec.py, a collaborative step trains the device layers with TensorFlow's
gradients, host and virtual-m4 agree bit for bit, hostile gradient payloads are refused without touching
the state, bytes are accounted per direction, and two boards train concurrently and reproducibly."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from converter.ir import ConvertError
from converter.train_plan import TrainBuild, TrainConfig, prepare_training
from host_tools.board import protocol as P
from host_tools.board.boards import get_board
from host_tools.board.target import open_train_target
from host_tools.collab.run import CollabOptions, open_boards, run_collab
from host_tools.errors import BoardError
from host_tools.services.collab import CodecSpec, CollabSession, fp32_payload_bytes
from host_tools.services.state_blob import decode_weights
from host_tools.sgq import codec as S
from host_tools.train.run import compute_input_scale, quantize_samples

BATCH = 16
SHAPE = (8, 8, 16)  # conv2's output per sample
ELEMS = int(np.prod(SHAPE))


def _data(model_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    with np.load(model_dir / "train.npz") as tr, np.load(model_dir / "eval.npz") as ev:
        x, y, xe, ye = tr["x"], tr["y"], ev["x"], ev["y"]
    return x, y, xe, ye, compute_input_scale(x)


def _init(sess: CollabSession, scale: float, *, seed: int = 3, random: bool = False, lr: float = 0.05,
          momentum: float = 0.9, lac: bool = True, prc: bool = True) -> None:
    sess.init(seed, random, lac, prc, lr, momentum, 0.0, scale, 16.0 if prc else 0.0, 1e-4 if lac else 0.0)


@pytest.fixture(scope="module")
def split_build(digits_dir: Path) -> TrainBuild:
    return prepare_training(digits_dir, TrainConfig("int8", BATCH, "all", split="conv2"), "host")


@pytest.fixture(scope="module")
def host_split(split_build: TrainBuild) -> Iterator[CollabSession]:
    """The device half natively under ASan/UBSan: no out-of-bounds access on any request below."""
    with open_train_target(split_build, "host", say=lambda s: None, sanitize=True) as t:
        yield CollabSession(t.client)


def test_split_plan_counts_its_buffers(digits_dir: Path, split_build: TrainBuild) -> None:
    """The payload area holds the largest payload (fp32), the dy area the int8 gradient, and both are in
    the arena the SRAM check counts; a plan without a split does not grow."""
    plan = split_build.plan
    co = plan["collab"]
    assert plan["split_shape"] == list(SHAPE) and plan["classes"] == 0
    assert co["payload_bytes"] == fp32_payload_bytes(BATCH, ELEMS) == 12 + 4 * BATCH * ELEMS
    assert co["dy_bytes"] == BATCH * ELEMS and co["sgq_bytes"] >= 16 + 32 + 260
    assert plan["memory"]["collab"] == co["bytes"] >= co["payload_bytes"] + co["dy_bytes"] + co["sgq_bytes"]
    assert co["sgq_off"] + co["sgq_bytes"] <= plan["arena_bytes"] == plan["memory"]["total"]
    full = prepare_training(digits_dir, TrainConfig("int8", BATCH, "all"), "host")
    assert "collab" not in full.plan["memory"] and full.plan["collab"] is None
    assert f".payload_bytes = {co['payload_bytes']}u" in (split_build.dir / "train_model.c").read_text()
    assert ".payload_bytes = 0u" in (full.dir / "train_model.c").read_text()


CODEC_CASES = [
    ("sgq2", CodecSpec("sgq", 2)),
    ("sgq4", CodecSpec("sgq", 4)),
    ("sgq8", CodecSpec("sgq", 8)),
    ("sgq4-g8-columns", CodecSpec("sgq", 4, groups=8, stripe=(1, 1))),
    ("sgq2-g16-3x5-tiles", CodecSpec("sgq", 2, groups=16, stripe=(3, 5))),
    ("uniform2", CodecSpec("uniform", 2)),
    ("uniform4", CodecSpec("uniform", 4)),
    ("uniform8", CodecSpec("uniform", 8)),
    ("sgq2-rc", CodecSpec("sgq", 2, entropy=True)),
    ("sgq4-rc", CodecSpec("sgq", 4, entropy=True)),
    ("sgq8-rc", CodecSpec("sgq", 8, entropy=True)),
    ("uniform4-rc", CodecSpec("uniform", 4, entropy=True)),
    ("sgq2-clip", CodecSpec("sgq", 2, clip=True)),
    ("sgq4-clip", CodecSpec("sgq", 4, clip=True)),
    ("sgq8-clip", CodecSpec("sgq", 8, clip=True)),
    ("sgq2-g16-3x5-tiles-clip", CodecSpec("sgq", 2, groups=16, stripe=(3, 5), clip=True)),
    ("uniform2-clip", CodecSpec("uniform", 2, clip=True)),
    ("fp32", CodecSpec("fp32")),
]


def test_codec_spec_clip() -> None:
    """--clip: COLLAB_FORWARD flags bit 1, the host twins clip with the bit width's alpha in both directions
    (none at 8 bits), fp32 refuses it; without it the request and the labels are what they were."""
    from host_tools.errors import OctoError
    from host_tools.services.collab import FLAG_CLIP, FLAG_SHARED

    n_shape = (BATCH, *SHAPE)
    assert CodecSpec("sgq", 2).device_fields(n_shape)[5] == 0
    assert CodecSpec("sgq", 2, clip=True).device_fields(n_shape)[5] == FLAG_CLIP
    assert CodecSpec("uniform", 4, clip=True).device_fields(n_shape)[5] == FLAG_SHARED | FLAG_CLIP
    spec = CodecSpec("sgq", 2, gradient_bits=4, clip=True)
    assert spec.label == "sgq2-g4-clip" and CodecSpec("sgq", 2).label == "sgq2"
    for codec, bits in ((spec.host_codec(), 2), (spec.host_codec(gradients=True), 4)):
        assert codec.params(n_shape, S.RANGE_AUTO, S.ROUND_NEAREST, 0).clip == S.CLIP_ALPHA8[bits] > 0
    assert CodecSpec("sgq", 8, clip=True).host_codec().params(n_shape, S.RANGE_AUTO, S.ROUND_NEAREST, 0).clip == 0
    assert "clip" not in CodecSpec("sgq", 2).as_dict() and CodecSpec("sgq", 2, clip=True).as_dict()["clip"]
    with pytest.raises(OctoError, match="--clip"):
        CodecSpec("fp32", clip=True)


def test_codec_spec_entropy() -> None:
    """--entropy: COLLAB_FORWARD flags bit 2, both host twins range-code, fp32 refuses it."""
    from host_tools.errors import OctoError
    from host_tools.services.collab import FLAG_RC, FLAG_SHARED

    n_shape = (BATCH, *SHAPE)
    assert CodecSpec("sgq", 4, entropy=True).device_fields(n_shape)[5] == FLAG_RC
    assert CodecSpec("uniform", 4, entropy=True).device_fields(n_shape)[5] == FLAG_SHARED | FLAG_RC
    spec = CodecSpec("sgq", 2, gradient_bits=4, entropy=True)
    assert spec.label == "sgq2-g4-rc" and spec.as_dict()["entropy"] and "entropy" not in CodecSpec().as_dict()
    for codec in (spec.host_codec(), spec.host_codec(gradients=True)):
        assert codec.params(n_shape, S.RANGE_AUTO, S.ROUND_NEAREST, 0).entropy  # type: ignore[union-attr]
    with pytest.raises(OctoError, match="--entropy"):
        CodecSpec("fp32", entropy=True)


@pytest.mark.parametrize(("name", "spec"), CODEC_CASES, ids=[c[0] for c in CODEC_CASES])
def test_device_feature_payload_equals_the_python_encoding(digits_dir: Path, host_split: CollabSession,
                                                           name: str, spec: CodecSpec) -> None:
    """The C encoder on the device's own features (evaluation and training forwards, full and partial
    batches, random and converted weights) writes the bytes host_tools/sgq/codec.py writes for them."""
    x, y, _, _, scale = _data(digits_dir)
    sess = host_split
    for random, train, n in ((False, False, BATCH), (True, True, 5)):
        _init(sess, scale, random=random)
        sess.load(0, y[:n], quantize_samples(x[:n], scale))
        fr = sess.forward(0, n, train, spec, SHAPE)
        payload = sess.read_payload(fr.payload_len)
        q = sess.read_features(n, SHAPE)
        assert q.max() > 0, "features are all zero: a vacuous comparison"
        if spec.name == "fp32":
            want = S.fp32_encode(q.astype(np.float32) * np.float32(fr.scale))
        else:
            want = spec.host_codec().encode_int8(q, fr.scale)  # type: ignore[union-attr]
        assert payload == want, f"{name}: device {len(payload)} B vs python {len(want)} B"
        assert len(payload) == fr.payload_len


def _tf_device_grads(digits_dir: Path, weights: dict, x: np.ndarray, y: np.ndarray) -> dict[int, np.ndarray]:
    """TF autodiff of the whole model (device layers at `weights`, the rest converted), TFLite layouts."""
    import tensorflow as tf

    from converter.tflite_reader import parse_tflite
    from converter.train_export import keras_from_graph

    g = parse_tflite((digits_dir / "model.tflite").read_bytes(), "digits")
    model = keras_from_graph(g, weights)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, model(tf.constant(x))))
    grads = tape.gradient(loss, model.trainable_variables)
    kernels = [np.transpose(gr.numpy(), (3, 0, 1, 2)) for v, gr in zip(model.trainable_variables, grads, strict=True)
               if v.path.endswith("kernel") and gr.shape.rank == 4]
    return {k: next(t for t in kernels if t.shape == w.shape) for k, (w, _b) in weights.items()}  # shapes differ


def test_fp32_collab_step_matches_tensorflow(digits_dir: Path, split_build: TrainBuild,
                                             host_split: CollabSession) -> None:
    """One step without momentum: cloud gradient (TF on the decoded features) -> fp32 payload -> the board's
    int8 gradient -> Octo backward. The device layers move by -lr x the whole model's TF gradient."""
    from host_tools.collab.cloud import CloudTail

    x, y, _, _, scale = _data(digits_dir)
    sess, lr = host_split, 0.02
    _init(sess, scale, seed=5, random=True, lr=lr, momentum=0.0, lac=False, prc=False)
    w0 = decode_weights(split_build.plan, sess.get_state())
    xq = quantize_samples(x[:BATCH], scale)
    sess.load(0, y[:BATCH], xq)
    fr = sess.forward(0, BATCH, True, CodecSpec("fp32"), SHAPE)
    feats = S.fp32_decode(sess.read_payload(fr.payload_len))
    cloud = CloudTail(digits_dir / "model.tflite", int(split_build.plan["layers"][-1]["op_index"]))
    _loss, _logits, gx = cloud.train_step(feats, y[:BATCH], 0.0)
    payload = S.fp32_encode(gx)
    sess.write_payload(payload)
    br = sess.backward(0, len(payload), lr)
    assert br.step_after == 1
    assert br.dy_scale == S.quantize_int8(gx)[1]  # the board quantizes exactly as the host twin
    w1 = decode_weights(split_build.plan, sess.get_state())
    ref = _tf_device_grads(digits_dir, w0, xq.astype(np.float32) * np.float32(scale), y[:BATCH])
    assert set(ref) == set(w0) and len(ref) == 2
    for k, g_tf in ref.items():
        g = (w0[k][0] - w1[k][0]) / lr
        cos = float(np.dot(g.ravel(), g_tf.ravel()) / (np.linalg.norm(g) * np.linalg.norm(g_tf)))
        assert cos >= 0.99, f"op {k}: cosine {cos:.5f}"
        assert abs(np.linalg.norm(g) / np.linalg.norm(g_tf) - 1) <= 0.1


def _valid_gradient(q: np.ndarray, seed: int = 0) -> np.ndarray:
    """A plausible feature gradient: zero where the ReLU output is zero."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(q.shape) * 1e-3 * (q > 0)).astype(np.float32)


def _pending_forward(sess: CollabSession, digits_dir: Path, spec: CodecSpec) -> tuple[np.ndarray, bytes]:
    x, y, _, _, scale = _data(digits_dir)
    _init(sess, scale)
    sess.load(0, y[:BATCH], quantize_samples(x[:BATCH], scale))
    sess.forward(0, BATCH, True, spec, SHAPE)
    q = sess.read_features(BATCH, SHAPE)
    return q, S.SgqCodec(bits=4).encode_gradients(_valid_gradient(q))


def _mutate(b: bytes, i: int, v: int) -> bytes:
    return b[:i] + bytes([v]) + b[i + 1:]


def _gradient_of_shape(shape: tuple[int, int, int, int]) -> bytes:
    return S.SgqCodec(bits=4).encode_gradients(np.full(shape, 0.01, np.float32))


def _range_coded_gradient(end_plus_one: bool = False) -> bytes:
    """A valid range-coded gradient payload for the split tensor (sparse, like a max-pool's backward); with
    end_plus_one its stream ends one above the encoder's final low end (the decoder's code register is 1)."""
    rng = np.random.default_rng(5)
    g = rng.normal(0, 1e-3, (BATCH, *SHAPE)) * (rng.random((BATCH, *SHAPE)) < 0.25)
    payload = S.SgqCodec(bits=4, entropy=True).encode_gradients(g.astype(np.float32))
    assert S.parse_header(payload).entropy and payload[-1] < 0xFF
    return payload[:-1] + bytes([payload[-1] + 1]) if end_plus_one else payload


BAD_PAYLOADS: list[tuple[str, Callable[[bytes], bytes], int, str]] = [
    ("empty", lambda g: b"", -32, "SGQ_E_SHORT"),
    ("truncated", lambda g: g[:-3], -37, "length does not add up"),
    ("trailing byte", lambda g: g + b"\0", -37, "length does not add up"),
    ("bad magic", lambda g: _mutate(g, 0, 0x58), -33, "SGQ_E_MAGIC"),
    ("future version", lambda g: _mutate(g, 1, 3), -34, "version"),
    ("range-coded, truncated", lambda g: _range_coded_gradient()[:-1], -37, "cut short"),
    ("range-coded, trailing byte", lambda g: _range_coded_gradient() + b"\0", -37, "followed by bytes"),
    ("range-coded, does not end on its interval",
     lambda g: _range_coded_gradient(end_plus_one=True), -40, "does not end where"),
    ("range-coded flag in version 1", lambda g: _mutate(g, 2, g[2] | 0x20), -35, "header"),
    ("reserved bits", lambda g: _mutate(g, 2, g[2] | 0x80), -35, "header"),
    ("range > 127", lambda g: _mutate(g, 18 + 4, 200), -39, "range"),
    ("one sample short", lambda g: _gradient_of_shape((BATCH - 1, *SHAPE)), -10, "shape is not"),
    ("other channels", lambda g: _gradient_of_shape((BATCH, 8, 8, 8)), -10, "shape is not"),
    ("larger than the split tensor", lambda g: _gradient_of_shape((BATCH, 16, 16, 16)), -2, "OCTO_E_BUF"),
    ("fp32 with NaN", lambda g: S.fp32_encode(np.full((BATCH, *SHAPE), np.nan, np.float32)), -10, "inf or NaN"),
    ("fp32 truncated", lambda g: S.fp32_encode(np.zeros((BATCH, *SHAPE), np.float32))[:-4], -10, "fp32 length"),
    ("fp32 version", lambda g: _mutate(S.fp32_encode(np.zeros((BATCH, *SHAPE), np.float32)), 1, 9), -10,
     "fp32 header"),
    ("fp32 other shape", lambda g: S.fp32_encode(np.zeros((BATCH, 8, 8, 15), np.float32)), -10, "shape is not"),
]


def test_hostile_gradient_payloads_are_refused_and_leave_the_state(digits_dir: Path,
                                                                   host_split: CollabSession) -> None:
    """Every malformed payload gets an ERROR with the decoder's code and a specific text; the state blob
    is untouched and the forward stays pending, so the good payload afterwards trains normally."""
    sess = host_split
    _q, good = _pending_forward(sess, digits_dir, CodecSpec("sgq", 4))
    before = sess.get_state()
    for name, make, status, text in BAD_PAYLOADS:
        bad = make(good)
        sess.write_payload(bad)
        with pytest.raises(BoardError, match=text) as e:
            sess.backward(0, len(bad), 0.05)
        assert e.value.status == status, f"{name}: status {e.value.status}, expected {status}"
        assert sess.get_state() == before, f"{name}: the state changed"
    rng = np.random.default_rng(7)
    for _ in range(40):  # random garbage after a valid header start
        junk = good[:2] + rng.integers(0, 256, int(rng.integers(0, 700)), dtype=np.uint8).tobytes()
        sess.write_payload(junk)
        with pytest.raises(BoardError) as e:
            sess.backward(0, len(junk), 0.05)
        assert e.value.status in S.STATUS_NAMES or e.value.status == -10
    with pytest.raises(BoardError, match="beyond the payload area"):
        sess.backward(0, fp32_payload_bytes(BATCH, ELEMS) + 1, 0.05)
    with pytest.raises(BoardError, match="outside the payload area"):
        sess._req(P.MSG_COLLAB_WRITE, (fp32_payload_bytes(BATCH, ELEMS) - 2).to_bytes(4, "little") + b"abcd")
    with pytest.raises(BoardError, match="step mismatch"):
        sess.backward(7, len(good), 0.05)
    assert sess.get_state() == before
    sess.write_payload(good)
    assert sess.backward(0, len(good), 0.05).step_after == 1
    with pytest.raises(BoardError, match="without a pending training forward") as e:
        sess.backward(1, len(good), 0.05)
    assert e.value.status == P.E_STATE
    with pytest.raises(BoardError, match="no features"):
        sess.read_features(BATCH, SHAPE)
    # staging new samples voids a pending forward (the first layer's saved input is overwritten)
    x, y, _, _, scale = _data(digits_dir)
    sess.forward(1, BATCH, True, CodecSpec("sgq", 4), SHAPE)
    sess.load(0, y[:BATCH], quantize_samples(x[:BATCH], scale))
    sess.write_payload(good)
    with pytest.raises(BoardError, match="without a pending training forward"):
        sess.backward(1, len(good), 0.05)


def test_bad_forward_requests_are_refused_before_the_forward(digits_dir: Path, host_split: CollabSession) -> None:
    x, y, _, _, scale = _data(digits_dir)
    sess = host_split
    _init(sess, scale)
    sess.load(0, y[:BATCH], quantize_samples(x[:BATCH], scale))
    before = sess.get_state()
    with pytest.raises(BoardError, match="no encoded features"):
        sess.read_payload(10)
    bad_groups = CodecSpec("sgq", 4, groups=16, stripe=(1, 1))
    req = bytearray(14)
    req[4:6] = BATCH.to_bytes(2, "little")
    for fields, text in (((1, 0, 3, 4, 2, 8, 0, 0), "SGQ settings"),   # bits 3
                         ((1, 0, 4, 17, 2, 8, 0, 0), "SGQ settings"),  # groups > C
                         ((1, 0, 4, 4, 9, 8, 0, 0), "SGQ settings"),   # stripe > H
                         ((1, 2, 4, 4, 2, 8, 0, 0), "codec 0"),        # unknown codec
                         ((1, 0, 4, 4, 2, 8, 8, 0), "flags bits 0-2"), # flags bit 3
                         ((1, 0, 4, 4, 2, 8, 0, 1), "reserved 0")):
        req[6:14] = bytes(fields)
        with pytest.raises(BoardError, match=text):
            sess._req(P.MSG_COLLAB_FORWARD, bytes(req))
    with pytest.raises(BoardError, match="step mismatch"):
        sess.forward(3, BATCH, True, bad_groups, SHAPE)
    with pytest.raises(BoardError, match=r"1\.\.batch"):
        sess.forward(0, BATCH + 1, True, bad_groups, SHAPE)
    assert sess.get_state() == before


def test_collab_messages_on_a_build_without_split(digits_dir: Path) -> None:
    tb = prepare_training(digits_dir, TrainConfig("int8", BATCH, "last:2"), "host")
    with open_train_target(tb, "host", say=lambda s: None) as t:
        sess = CollabSession(t.client)
        with pytest.raises(BoardError, match="not a split-learning build") as e:
            sess.forward(0, 1, False, CodecSpec("sgq", 4), SHAPE)
        assert e.value.status == -9


def test_split_names_are_checked(digits_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from host_tools.cli import main as octo_main

    with pytest.raises(ConvertError, match=r"no layer named 'conv9' to split at; layers: conv1, conv2, pool1"):
        prepare_training(digits_dir, TrainConfig("int8", BATCH, "all", split="conv9"), "host")
    with pytest.raises(ConvertError, match="INT8"):
        TrainConfig("fp32", BATCH, "all", split="conv2")
    base = ["collab", str(digits_dir), "--target", "host", "--epochs", "1"]
    assert octo_main([*base, "--split", "conv9"]) == 2
    assert "no layer named 'conv9'" in capsys.readouterr().err
    assert octo_main([*base, "--split", "fc"]) == 2
    assert "no layer is left for the cloud" in capsys.readouterr().err


def _small_run(digits_dir: Path, split_build: TrainBuild, spec: CodecSpec, tmp: Path, *, boards: int = 2,
               epochs: int = 2, seed: int = 1) -> tuple[dict, list[bytes], list[dict]]:
    x, y, xe, ye, _ = _data(digits_dir)
    opts = CollabOptions(epochs=epochs, seed=seed, lr=0.002, telemetry=tmp / "tele.jsonl")
    with open_boards(split_build, "host", boards, say=lambda s: None) as targets:
        m = run_collab(targets, split_build, (x[:160], y[:160]), (xe[:48], ye[:48]), spec, opts, lambda s: None, tmp)
        states = [CollabSession(t.client).get_state() for t in targets]
    lines = [json.loads(s) for s in (tmp / "tele.jsonl").read_text().splitlines()]
    return m, states, lines


def _initial_state(digits_dir: Path, tb: TrainBuild) -> bytes:
    with open_boards(tb, "host", 1, say=lambda s: None) as (t,):
        sess = CollabSession(t.client)
        sess.init(1, False, True, True, 0.002, 0.9, 0.0, _data(digits_dir)[4], 16.0, 1e-4)
        return sess.get_state()


def _stable(m: dict) -> dict:
    """The metrics without timings and link bytes (request ids are random, so COBS may differ by a byte)."""
    m = json.loads(json.dumps(m))
    for part in [m, *m["epochs"]]:
        part.pop("seconds", None)
        for k in ("up_wire", "down_wire"):
            part["bytes_per_sample"].pop(k)
    for k in ("telemetry", "link", "eval_wire_bytes"):
        m.pop(k)
    m["device"].pop("ticks")
    return m


@pytest.mark.parametrize("codec", ["sgq", "fp32"])
def test_two_boards_train_concurrently_reproducibly_and_count_bytes(digits_dir: Path, split_build: TrainBuild,
                                                                    tmp_path: Path, codec: str) -> None:
    spec = CodecSpec(codec, 4)
    m, states, lines = _small_run(digits_dir, split_build, spec, tmp_path / "a")
    steps = [ln for ln in lines if "board" in ln]
    assert m["boards"] == 2 and m["samples"]["per_board"] == [80, 80] and m["steps"] == len(steps) == 2 * 2 * 5
    assert states[0] != states[1], "each board keeps its own device weights"
    assert {ln["board"] for ln in steps} == {0, 1} and max(ln["step"] for ln in steps) == 10
    init = _initial_state(digits_dir, split_build)
    assert all(st != init for st in states), "the boards trained"
    assert all(np.isfinite(ln["loss"]) for ln in steps) and m["final"]["eval_accuracy"] >= 0.8
    # bytes: the telemetry's per-step payloads add up to the per-sample figures; fp32 payloads are exact
    n = sum(ln["n"] for ln in steps)
    b = m["bytes_per_sample"]
    for k in ("up_payload", "down_payload", "up_wire", "down_wire"):
        assert abs(b[k] - sum(ln[k] for ln in steps) / n) < 0.01, k
    if codec == "fp32":
        assert all(ln["up_payload"] == ln["down_payload"] == fp32_payload_bytes(ln["n"], ELEMS) for ln in steps)
        assert m["reconstruction"]["features"]["rel_l2"] == 0.0
    else:
        assert all(ln["up_payload"] <= S.encoded_max_len((ln["n"], *SHAPE), S.SgqParams(bits=4, stripe_w=8))
                   for ln in steps)
        assert b["ratio_vs_fp32_payload"]["up"] > 7.5 and 0 < m["reconstruction"]["features"]["rel_l2"] < 0.1
    for ln in steps:  # frames and headers: a few dozen bytes per step on top of the payloads
        assert ln["up_payload"] < ln["up_wire"] < ln["up_payload"] * 1.02 + 120
        assert ln["down_payload"] < ln["down_wire"] < ln["down_payload"] * 1.02 + 200
    # same seed -> the same run, bit for bit, whatever the threads' timing
    m2, states2, _ = _small_run(digits_dir, split_build, spec, tmp_path / "b")
    assert states2 == states and _stable(m2) == _stable(m)


def test_range_coding_is_lossless_in_training(digits_dir: Path, split_build: TrainBuild, tmp_path: Path) -> None:
    """--entropy changes the bytes on the wire and nothing else: the boards end in the same state and every
    metric but the byte counts is identical to the fixed-width run; both directions send fewer bytes."""
    m, states, _ = _small_run(digits_dir, split_build, CodecSpec("sgq", 4), tmp_path / "fixed")
    mr, states_rc, _ = _small_run(digits_dir, split_build, CodecSpec("sgq", 4, entropy=True), tmp_path / "rc")
    assert states_rc == states
    assert mr["final"] == m["final"] and mr["reconstruction"] == m["reconstruction"]
    assert [e["eval_accuracy"] for e in mr["epochs"]] == [e["eval_accuracy"] for e in m["epochs"]]
    b, br = m["bytes_per_sample"], mr["bytes_per_sample"]
    for k in ("up_payload", "down_payload", "up_wire", "down_wire"):
        assert br[k] < 0.9 * b[k], (k, br[k], b[k])
    assert mr["codec"]["entropy"] is True


@pytest.mark.qemu
@pytest.mark.parametrize("entropy", [False, True], ids=["fixed-width", "range-coded"])
def test_host_and_virtual_m4_keep_bit_identical_device_state(digits_dir: Path, entropy: bool) -> None:
    """The same steps (SGQ features out, SGQ gradients in) on the native build and on virtual-m4: the same
    payload bytes every step and the same state blob."""
    tb = prepare_training(digits_dir, TrainConfig("int8", BATCH, "all", split="conv2"), "virtual-m4",
                          sram_bytes=get_board("virtual-m4").sram_bytes)
    x, y, _, _, scale = _data(digits_dir)
    spec = CodecSpec("sgq", 4, entropy=entropy)
    runs = {}
    for board in ("host", "virtual-m4"):
        with open_boards(tb, board, 1, say=lambda s: None) as (t,):
            sess = CollabSession(t.client)
            _init(sess, scale, seed=11, random=True)
            out = []
            for s in range(3):
                sess.load(0, y[s * BATCH:(s + 1) * BATCH], quantize_samples(x[s * BATCH:(s + 1) * BATCH], scale))
                fr = sess.forward(s, BATCH, True, spec, SHAPE)
                feats = sess.read_payload(fr.payload_len)
                q = S.decode(feats).q
                grad = S.SgqCodec(bits=4, entropy=entropy).encode_gradients(_valid_gradient(q, s))
                assert S.parse_header(grad).entropy == entropy and S.parse_header(feats).entropy == entropy
                sess.write_payload(grad)
                br = sess.backward(s, len(grad), 0.05)
                out.append((feats, br.dy_scale, br.step_after))
            runs[board] = (out, hashlib.sha256(sess.get_state()).hexdigest(), fr.encode_ticks, br.decode_ticks)
    assert runs["host"][0] == runs["virtual-m4"][0]
    assert runs["host"][1] == runs["virtual-m4"][1]
    assert runs["virtual-m4"][2] > 0 and runs["virtual-m4"][3] > 0


def test_cli_collab_json(digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from host_tools.cli import main as octo_main

    with np.load(digits_dir / "train.npz") as d:
        np.savez(tmp_path / "small.npz", x=d["x"][:64], y=d["y"][:64])
    with np.load(digits_dir / "eval.npz") as d:
        np.savez(tmp_path / "ev.npz", x=d["x"][:32], y=d["y"][:32])
    rc = octo_main(["collab", str(digits_dir), "--split", "conv2", "--codec", "uniform", "--bits", "2",
                    "--gradient-bits", "8", "--clip", "--target", "host", "--boards", "2", "--epochs", "1", "--data",
                    str(tmp_path / "small.npz"), "--eval", str(tmp_path / "ev.npz"), "--run-dir",
                    str(tmp_path / "run"), "--json", "-"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err[-2000:]
    m = json.loads(cap.out)
    assert m["schema"] == "octo.collab/1" and m["codec"] == {"name": "uniform", "bits": 2, "gradient_bits": 8,
                                                              "gradient_rounding": "nearest", "clip": True}
    assert m["steps"] == 4 and len(m["final"]["eval_accuracy_per_board"]) == 2
    b = m["bytes_per_sample"]  # uniform: one range per payload, so the sizes are exact (clipping keeps them)
    assert b["up_payload"] == pytest.approx((18 + 1 + 16 * ELEMS * 2 // 8) / 16, abs=0.01)
    assert b["down_payload"] == pytest.approx((18 + 1 + 16 * ELEMS) / 16, abs=0.01)
    assert m["device"]["instructions_per_sample"] is None and m["device"]["ticks"]["encode"] > 0
    assert (tmp_path / "run" / "telemetry.jsonl").exists()
