"""host_tools/video/gates.py: self-supervised PASS gates, trained on one clip, judged on another.

The model is models/video_cnn.py trained briefly (a few seconds; gates need its filters, not its accuracy)
and quantized once per module. Ground truth for "what really changed" comes from the noise-free twin of
each clip (video_data.make_clip(..., noise_sigma=0)), which the gates never see.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from host_tools.video import gates as PG
from host_tools.video import ref as pass_ref
from host_tools.video.data import make_clip

TRAIN_SEED, HELD_OUT_SEED = 21, 22
TOLERANCES = (0.5, PG.DEFAULT_TOLERANCE, 2.0, 4.0)


@dataclass
class Trained:
    tflite: Path
    graph: object
    gates: dict[float, dict]     # tolerance -> gates trained on the training clip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from converter.quantize import quantize_keras
    from models.video_cnn import make

    recipe = make(0, epochs=4, train_clips=400)
    path = tmp_path_factory.mktemp("video_cnn") / "model.tflite"
    path.write_bytes(quantize_keras(recipe.model, recipe.calib))
    frames = make_clip("static", 160, TRAIN_SEED).frames
    gates = {tol: PG.train_gates(path, frames, tolerance=tol) for tol in TOLERANCES}
    return Trained(path, PG._load_graph(path)[1], gates)


def test_gates_file_layout(trained: Trained) -> None:
    g = trained.gates[PG.DEFAULT_TOLERANCE]
    assert g["version"] == PG.GATES_VERSION and g["tolerance"] == PG.DEFAULT_TOLERANCE
    assert 0 <= g["cut_permille"] <= 1001
    # default: every CONV_2D with a kernel larger than 1x1 (conv5 is 1x1); P = 4 at 64x64, scaled, >= 2
    layers = g["layers"]
    assert [(x["op"], x["name"], x["patch"], x["sample"]) for x in layers] == [
        (0, "conv1", 4, 2), (1, "conv2", 2, 1), (3, "conv3", 2, 1), (5, "conv4", 2, 1)]
    for x in layers:
        assert isinstance(x["a_mean"], int) and isinstance(x["a_max"], int) and isinstance(x["threshold"], int)
        assert x["a_mean"] >= 0 and x["a_max"] >= 0 and max(x["a_mean"], x["a_max"]) == PG.COEF_SCALE
        assert {"pairs", "changed_fraction", "predicted_skip_rate", "recall_changed", "precision",
                "agreement"} <= set(x["train"])


def test_codegen_accepts_the_gates(trained: Trained) -> None:
    from converter.pass_codegen import compile_pass
    from converter.tflite_reader import read_tflite

    text, plan = compile_pass(read_tflite(trained.tflite), trained.gates[PG.DEFAULT_TOLERANCE], "video_cnn")
    assert "k_gate0" in text and sum(ly.gate is not None for ly in plan.layers) == 4


def test_integer_gate_matches_float_rule_and_cannot_overflow(trained: Trained) -> None:
    for gates in trained.gates.values():
        for x in gates["layers"]:
            assert x["train"]["agreement"] >= 0.999, x
            worst = (x["a_mean"] + x["a_max"]) * PG.STAT_MAX
            assert worst < 2**62 and abs(x["threshold"]) < 2**62


def test_trainer_statistics_are_the_devices(trained: Trained) -> None:
    """The trainer's rule on its statistics = pass_ref.gate_map (the device mirror) on real layer inputs."""
    frames = make_clip("static", 12, HELD_OUT_SEED).frames
    model, g = PG._load_graph(trained.tflite)
    gates = trained.gates[PG.DEFAULT_TOLERANCE]["layers"]
    specs = PG._layers(g, [x["op"] for x in gates], None, None)
    acts = PG.layer_inputs(model, PG.quantize_frames(frames, g), [s.in_tensor for s in specs])
    pairs = PG.make_pairs(len(frames), 4, 0)
    for spec, gate in zip(specs, gates, strict=True):
        x = acts[spec.in_tensor]
        mean_q8, mx = PG._stats(x, pairs, spec.patch, spec.sample)
        mine = PG._int_rule(mean_q8, mx, gate["a_mean"], gate["a_max"], gate["threshold"])
        ref = np.stack([pass_ref.gate_map(x[a], x[b], gate) for a, b in pairs]).astype(bool)
        assert np.array_equal(mine, ref)


def test_layer0_gate_generalises_to_a_new_clip(trained: Trained) -> None:
    """On a clip the gates never saw: patches where only sensor noise changed are skipped, patches a digit
    moved into or out of are recomputed (ground truth from the noise-free twin)."""
    noisy = make_clip("static", 120, HELD_OUT_SEED)
    clean = make_clip("static", 120, HELD_OUT_SEED, noise_sigma=0).frames.astype(np.int32)
    xq = PG.quantize_frames(noisy.frames, trained.graph)
    gate = trained.gates[PG.DEFAULT_TOLERANCE]["layers"][0]
    p = gate["patch"]
    noise_skipped, mover_caught = [], []
    for t in range(1, len(xq)):
        changed = pass_ref.gate_map(xq[t], xq[t - 1], gate, t).astype(bool)   # the grid of frame t
        d = np.abs(clean[t] - clean[t - 1]).reshape(64 // p, p, 64 // p, p).max(axis=(1, 3))
        noise_skipped += list(~changed[d == 0])
        mover_caught += list(changed[d > 60])
    total = (64 // p) ** 2 * (len(xq) - 1)
    assert len(noise_skipped) > total // 4 and len(mover_caught) > total // 150   # both kinds well represented
    assert np.mean(noise_skipped) >= 0.97, np.mean(noise_skipped)
    assert np.mean(mover_caught) >= 0.85, np.mean(mover_caught)


def test_all_layers_generalise_to_a_new_clip(trained: Trained) -> None:
    """Against the network's own pseudo-labels on the held-out clip: most patches skipped, most changes caught."""
    frames = make_clip("static", 120, HELD_OUT_SEED).frames
    rows = PG.evaluate_gates(trained.tflite, frames, trained.gates[PG.DEFAULT_TOLERANCE])
    for r in rows:
        assert r["predicted_skip_rate"] >= 0.6, r
        assert r["recall_changed"] >= 0.85, r


def test_scene_cuts_trigger_a_dense_frame(trained: Trained) -> None:
    """At a hard cut layer 0's gates mark at least cut_permille of the patches changed; inside a static
    segment far fewer."""
    clip = make_clip("cut", 120, HELD_OUT_SEED)
    xq = PG.quantize_frames(clip.frames, trained.graph)
    gates = trained.gates[PG.DEFAULT_TOLERANCE]
    frac = np.array([pass_ref.gate_map(xq[t], xq[t - 1], gates["layers"][0]).mean() for t in range(1, len(xq))])
    cut = gates["cut_permille"] / 1000
    assert clip.cuts and all(frac[c - 1] >= cut for c in clip.cuts)
    others = np.setdiff1d(np.arange(1, len(xq)), clip.cuts) - 1
    assert frac[others].max() < cut


def test_tolerance_trades_skipping(trained: Trained) -> None:
    """Higher tolerance = fewer patches count as changed = more skipping, layer by layer."""
    for k in range(4):
        skip = [trained.gates[t]["layers"][k]["train"]["predicted_skip_rate"] for t in TOLERANCES]
        changed = [trained.gates[t]["layers"][k]["train"]["changed_fraction"] for t in TOLERANCES]
        assert all(b >= a - 0.01 for a, b in itertools.pairwise(skip)), (k, skip)
        assert all(b <= a for a, b in itertools.pairwise(changed)), (k, changed)
    total = [sum(x["train"]["predicted_skip_rate"] for x in trained.gates[t]["layers"]) for t in TOLERANCES]
    assert total[-1] > total[0]


def test_gate_cost_within_five_percent(trained: Trained) -> None:
    rows = PG.gate_cost(trained.tflite)
    assert [r["name"] for r in rows] == ["conv1", "conv2", "conv3", "conv4"]
    assert all(r["ratio"] <= 0.05 and r["ratio_per_frame"] <= 0.05 for r in rows)
    assert rows[0]["elements_per_patch"] == 4 and rows[0]["dense_macs_per_patch"] == 288   # 2x2 outputs x 8 x 9
    # the trained gates carry the same numbers
    assert [x["cost"]["ratio"] for x in trained.gates[PG.DEFAULT_TOLERANCE]["layers"]] == [r["ratio"] for r in rows]
    # every pixel of 1x1 patches at the 1-channel input: 1 element per 18 MACs = 5.6%
    dense = {"layers": [{"op": 0, "patch": 1, "sample": 1}]}
    with pytest.raises(ValueError, match="conv1"):
        PG.gate_cost(trained.tflite, dense)
    assert PG.gate_cost(trained.tflite, dense, limit=None)[0]["ratio"] > 0.05


def test_bad_arguments(trained: Trained) -> None:
    frames = make_clip("static", 8, 0).frames
    with pytest.raises(ValueError, match="uint8"):
        PG.train_gates(trained.tflite, frames.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        PG.train_gates(trained.tflite, frames[:, :32, :32])
    with pytest.raises(ValueError, match="not CONV_2D"):
        PG.train_gates(trained.tflite, frames, layers=[2])   # pool1
    with pytest.raises(ValueError, match="tolerance"):
        PG.train_gates(trained.tflite, frames, tolerance=-1)
