"""Budgeted sparse update (`--update auto --sram N`, converter/update_budget.py), partial output channels
(octo_train_layer_t.train_oc) and frozen weights read from flash: the choice fits its budget and says why,
too-small budgets name the smallest that works, partial layers train bit-identically natively and on
virtual-m4 and leave their frozen channels alone, and flash-frozen layers train exactly as the old RAM
layout did with a smaller arena."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from converter.ir import ConvertError
from converter.train_plan import FIRMWARE_RAM_BYTES, TrainConfig, make_plan, prepare_training
from converter.update_budget import choose_update, report_lines
from host_tools.board.target import open_train_target
from host_tools.errors import BoardError
from host_tools.services.state_blob import decode_weights
from host_tools.services.training import TrainSession
from host_tools.train.run import compute_input_scale, quantize_samples

ROOT = Path(__file__).resolve().parents[2]
BATCH = 16


@pytest.fixture(scope="module")
def kws_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The MLPerf KWS DS-CNN as an INT8 .tflite, untrained: these tests plan updates, which depend on the
    architecture only (the recipe's training and its espeak-ng data would cost a minute)."""
    from converter.quantize import quantize_keras
    from models.mlperf_kws import build_model

    out = tmp_path_factory.mktemp("kws") / "kws"
    out.mkdir()
    calib = np.random.default_rng(0).normal(size=(32, 49, 10, 1)).astype(np.float32)
    (out / "model.tflite").write_bytes(quantize_keras(build_model(0), calib))
    yield out


def _data(model_dir: Path) -> tuple[np.ndarray, np.ndarray, float]:
    with np.load(model_dir / "train.npz") as tr:
        return tr["x"], tr["y"], compute_input_scale(tr["x"])


def _train(tb: object, board: str, steps: int = 4, lac: bool = True) -> tuple[bytes, bytes, list[float]]:
    """(state after init, state after `steps` steps, losses) from the converted weights."""
    x, y, scale = _data(Path(tb.dir).parents[1])  # type: ignore[attr-defined]
    with open_train_target(tb, board, say=lambda s: None) as t:
        sess = TrainSession(t.client)
        sess.init(seed=7, init_random=False, lac=lac, prc=True, lr=0.05, momentum=0.9, weight_decay=1e-4,
                  input_scale=scale, prc_k=16.0, lac_l2=1e-4)
        s0 = sess.get_state()
        losses = []
        for s in range(steps):
            idx = np.arange(s * BATCH, (s + 1) * BATCH) % len(y)
            sess.load(0, y[idx], quantize_samples(x[idx], scale))
            losses.append(sess.step(s, BATCH).loss)
        return s0, sess.get_state(), losses


@pytest.mark.parametrize(("model", "batch", "budgets"), [
    ("kws", 2, (150 * 1024, 200 * 1024, 262144)),
    ("digits", 16, (80 * 1024, 96 * 1024)),
])
def test_auto_fits_the_budget_and_reports_every_weight_layer(request: pytest.FixtureRequest, model: str,
                                                             batch: int, budgets: tuple[int, ...]) -> None:
    model_dir = request.getfixturevalue("kws_dir" if model == "kws" else "digits_dir")
    tfl = (model_dir / "model.tflite").read_bytes()
    full, _ = make_plan(tfl, TrainConfig("int8", batch, "all"))
    for budget in budgets:
        ch = choose_update(tfl, TrainConfig("int8", batch), budget, model)
        plan, _ = make_plan(tfl, TrainConfig("int8", batch, ch.spec))
        assert plan["arena_bytes"] == ch.arena_bytes
        assert plan["arena_bytes"] + FIRMWARE_RAM_BYTES <= budget < full["arena_bytes"] + FIRMWARE_RAM_BYTES
        assert ch.macs["backward"] < ch.macs["full_update_backward"]  # fewer operations per training sample
        weight_layers = [la for la in plan["layers"] if la["w_shape"]]
        lines = report_lines(ch)
        assert len(lines) == 1 + len(weight_layers)
        for la, line, row in zip(weight_layers, lines[1:], ch.layers, strict=True):
            assert la["name"] in line and f"op {la['op_index']}" in line and " B" in line
            assert row["why"] and row["chosen"] in line
            trains = la["train_w"] or la["train_b"]
            assert (row["chosen"] != "frozen") == trains
            assert la["w_in_flash"] == (not la["train_w"])
        assert plan["layers"][-1]["train_w"]  # the classifier always trains at these budgets
    json.dumps(ch.to_json())


def test_kws_auto_uses_a_partial_layer_when_a_whole_one_does_not_fit(kws_dir: Path) -> None:
    tfl = (kws_dir / "model.tflite").read_bytes()
    for kib in range(200, 256, 8):  # a budget where the next layer's weights fit only in part
        ch = choose_update(tfl, TrainConfig("int8", 2), kib * 1024, "kws")
        partial = [r for r in ch.layers if r["chosen"].startswith("weights ") and "/" in r["chosen"]]
        if partial:
            break
    assert partial and "output channels fit" in partial[0]["why"]
    plan, _ = make_plan(tfl, TrainConfig("int8", 2, ch.spec))
    la = next(la for la in plan["layers"] if la["op_index"] == partial[0]["op_index"])
    assert 0 < la["train_oc"] < la["oc"] and la["offsets"]["dyb"] != 0xFFFFFFFF


@pytest.mark.parametrize("model", ["kws", "digits"])
def test_too_small_budget_names_the_smallest_that_works(request: pytest.FixtureRequest, model: str) -> None:
    model_dir = request.getfixturevalue("kws_dir" if model == "kws" else "digits_dir")
    tfl = (model_dir / "model.tflite").read_bytes()
    cfg = TrainConfig("int8", 2 if model == "kws" else 16)
    with pytest.raises(ConvertError) as e:
        choose_update(tfl, cfg, 48 * 1024, model)
    msg = str(e.value)
    assert "too small" in msg and "\n" not in msg
    smallest = int(msg.rsplit("--sram ", maxsplit=1)[-1].split(maxsplit=1)[0])
    assert choose_update(tfl, cfg, smallest, model).arena_bytes + FIRMWARE_RAM_BYTES <= smallest
    with pytest.raises(ConvertError):
        choose_update(tfl, cfg, smallest - 8, model)


PARTIAL = "set:3=b,4=6,6=7"  # digits: dwconv1 bias, conv3 channels 0..5, fc classes 0..6; conv1, conv2 frozen


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_partial_channels_host_and_virtual_m4_bit_identical_and_frozen_parts_unchanged(
        digits_dir: Path, precision: str) -> None:
    tb = prepare_training(digits_dir, TrainConfig(precision, BATCH, PARTIAL), "host")
    model = (digits_dir / "model.tflite").read_bytes()
    digests = {}
    for board in ("host", "virtual-m4"):
        s0, s1, _ = _train(tb, board, lac=False)
        digests[board] = hashlib.sha256(s1).hexdigest()
    assert len(set(digests.values())) == 1, digests
    w0, w1 = decode_weights(tb.plan, s0, model), decode_weights(tb.plan, s1, model)
    for op in (0, 1):  # frozen in flash, bias too
        assert np.array_equal(w0[op][0], w1[op][0]) and np.array_equal(w0[op][1], w1[op][1])
    assert np.array_equal(w0[3][0], w1[3][0]) and not np.array_equal(w0[3][1], w1[3][1])  # bias only
    for op, k in ((4, 6), (6, 7)):
        assert not np.array_equal(w0[op][0][:k], w1[op][0][:k])
        if precision == "fp32":
            assert np.array_equal(w0[op][0][k:], w1[op][0][k:])
        else:  # one per-tensor scale: a master rescale may round the frozen channels by half a master unit
            unit = np.abs(w0[op][0]).max() / 28000
            assert np.abs(w0[op][0][k:] - w1[op][0][k:]).max() <= unit
        assert not np.array_equal(w0[op][1][k:], w1[op][1][k:])  # their biases train


@pytest.mark.parametrize(("precision", "update"), [("int8", "bias"), ("int8", "last:2"), ("int8", PARTIAL),
                                                   ("fp32", "last:2")])
def test_flash_frozen_weights_train_exactly_as_the_ram_layout(digits_dir: Path, precision: str, update: str) -> None:
    """The same trajectory (losses, every layer's decoded weights and biases) with frozen weights in flash as
    in the state blob, and the arena shrinks by the frozen weights' bytes."""
    model = (digits_dir / "model.tflite").read_bytes()
    runs = {}
    for ram in (False, True):
        tb = prepare_training(digits_dir, TrainConfig(precision, BATCH, update, frozen_in_ram=ram), "host")
        _, s1, losses = _train(tb, "host")
        runs[ram] = (tb.plan, decode_weights(tb.plan, s1, model), losses)
    (pf, wf, lf), (pr, wr, lr_) = runs[False], runs[True]
    assert lf == lr_
    assert wf.keys() == wr.keys()
    for op in wf:
        assert np.array_equal(wf[op][0], wr[op][0]) and np.array_equal(wf[op][1], wr[op][1]), op
    es = 1 if precision == "int8" else 4
    frozen = [la for la in pf["layers"] if la["w_shape"] and not la["train_w"]]
    assert frozen and all(la["w_in_flash"] for la in frozen)
    saved = sum((int(np.prod(la["w_shape"])) * es + 7) // 8 * 8 for la in frozen)
    assert pr["state_bytes"] - pf["state_bytes"] == saved
    assert pr["arena_bytes"] - pf["arena_bytes"] == saved


def test_random_init_needs_frozen_weights_in_ram(digits_dir: Path, tmp_path: Path) -> None:
    tb = prepare_training(digits_dir, TrainConfig("int8", BATCH, "last:2"), "host")
    _, _, scale = _data(digits_dir)
    with open_train_target(tb, "host", say=lambda s: None) as t:
        with pytest.raises(BoardError, match="random init needs the frozen weights in RAM"):
            TrainSession(t.client).init(seed=1, init_random=True, lac=False, prc=False, lr=0.05, momentum=0.9,
                                        weight_decay=0.0, input_scale=scale, prc_k=16.0, lac_l2=0.0)
    r = _octo("train", str(digits_dir), "--target", "host", "--update", "last:2", "--init", "random", "--epochs",
              "1", "--run-dir", str(tmp_path / "run"), "--json", "-")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)["config"]
    assert cfg["config_id"] == "int8-b16-last2-ramw"
    assert cfg["grad_rounding"] == "stochastic"  # the default from random weights (host_tools/train/defaults.py)


def _octo(*args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600, check=False)


def test_cli_auto_report_and_json(digits_dir: Path, tmp_path: Path) -> None:
    r = _octo("train", str(digits_dir), "--target", "host", "--update", "auto", "--sram", "96k", "--report",
              "--epochs", "1", "--run-dir", str(tmp_path / "run"), "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ch = doc["update_choice"]
    assert ch["sram_budget"] == 96 * 1024 and ch["spec"].startswith("set:")
    assert ch["arena_bytes"] + ch["firmware_ram_bytes"] <= 96 * 1024 == ch["sram_budget"]
    assert [row["name"] for row in ch["layers"]] == ["conv1", "conv2", "dwconv1", "conv3", "fc"]
    assert doc["peak_training_sram_bytes"] == ch["arena_bytes"]
    assert "update auto: SRAM budget 98,304 B" in r.stderr and "conv3" in r.stderr
    r = _octo("train", str(digits_dir), "--target", "host", "--update", "auto", "--sram", "40k", "--epochs", "1",
              "--run-dir", str(tmp_path / "run2"))
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("octo: error:")]
    assert len(err) == 1 and "too small" in err[0] and "smallest update set" in err[0], r.stderr
    r = _octo("train", str(digits_dir), "--target", "host", "--update", "auto", "--epochs", "1")
    assert r.returncode != 0 and "--sram" in r.stderr
