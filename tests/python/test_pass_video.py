"""PASS end to end (docs/PASS.md): a converted video CNN gets self-supervised gates (`octo pass-train`), the
generated pass_model.c runs on virtual-m4 behind the FRAME messages, and

- in exact mode (skip only bit-identical patches) every frame's output equals TFLM's on the same frame;
- in auto mode the first frame (dense) equals TFLM, later frames skip work, and every skipped layer's
  statistics add up;
- malformed FRAME requests are refused without disturbing the state;
- models PASS cannot run, and gates that do not belong to the model, are refused with the reason.
The runtime itself (random chains, exactness per layer, gates against the numpy mirror, ASan/UBSan) is in
test_pass_runtime.py; the data and the gate trainer in test_video_data.py and test_pass_gates.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from converter.ir import ConvertError
from converter.pass_codegen import compile_pass
from converter.tflite_reader import read_tflite
from host_tools.board import protocol as P
from host_tools.board.boards import get_board
from host_tools.errors import BoardError, OctoError
from host_tools.video import run as V
from host_tools.video.data import make_clip
from host_tools.video.pass_model import pass_train

ROOT = Path(__file__).resolve().parents[2]
FRAMES = 16


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The video CNN, briefly trained (a few seconds), converted."""
    from converter.pipeline import convert

    tmp = tmp_path_factory.mktemp("video")
    recipe = tmp / "video_cnn_fast.py"
    recipe.write_text("from models.video_cnn import make as _make\n\n\n"
                      "def make(seed=0):\n    return _make(seed, epochs=2, train_clips=150)\n")
    out = tmp / "video"
    convert(recipe, out, say=lambda s: None)
    return out


@pytest.fixture(scope="module")
def pass_dir(video_dir: Path) -> Path:
    out = video_dir.parent / "video_pass"
    # tolerance 1.0, not the default 0.75: this 2-epoch model is weak enough that at 0.75 sensor noise at
    # layer 0 already counts as change and every frame would run dense (docs/PASS.md section 4)
    pass_train(video_dir, make_clip("mixed", 120, 1000).frames, out, tolerance=1.0, say=lambda s: None)
    return out


@pytest.fixture(scope="module")
def session(pass_dir: Path) -> Iterator[V.PassSession]:
    with V.pass_session(get_board("virtual-m4"), V.load_pass_model(pass_dir), say=lambda s: None) as s:
        yield s


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    c = make_clip("static", FRAMES, 7)
    return c.frames, c.labels


def _tflm(pass_dir: Path, xq: np.ndarray) -> np.ndarray:
    from converter.tflm import tflm_run

    return tflm_run((pass_dir / "model.tflite").read_bytes(), xq)


def test_pass_plan_and_info_agree(pass_dir: Path, session: V.PassSession) -> None:
    plan = json.loads((pass_dir / "pass_plan.json").read_text())
    info = session.info
    assert info.state_bytes == plan["state_bytes"]
    assert [ly.name for ly in info.layers] == [ly["name"] for ly in plan["layers"]]
    gates = json.loads((pass_dir / "gates.json").read_text())
    gated = {g["name"] for g in gates["layers"]}
    assert gated and {ly.name for ly in info.layers if ly.gated} == gated
    assert info.cut_permille == gates["cut_permille"]
    # the plan's regions add up to the static block the firmware holds
    assert sum(plan["regions"].values()) <= plan["state_bytes"]


def test_exact_mode_equals_tflm_on_every_frame(pass_dir: Path, session: V.PassSession,
                                               clip: tuple[np.ndarray, np.ndarray]) -> None:
    pm = V.load_pass_model(pass_dir)
    frames = clip[0].copy()
    frames[3:] = frames[2]            # identical frames: exact mode must skip everything there
    frames[6, 20:30, 20:30] ^= 0x40   # then a local change
    xq = V.quantize_frames(frames, pm.report)
    res = V.run_pass(session, xq, "exact")
    ref = _tflm(pass_dir, xq)
    for t, r in enumerate(res):
        np.testing.assert_array_equal(r.output, ref[t], err_msg=f"frame {t}")
    # frames 1-2 carry sensor noise on every pixel: exact mode sees a whole new frame (a "cut", run dense)
    assert res[0].dense and res[1].dense and not any(r.dense for r in res[3:])
    assert all(px == 0 for px in res[4].out_pixels)  # frame 4 equals frame 3: nothing recomputed
    first = next(i for i, ly in enumerate(session.info.layers) if ly.gated)
    total = session.info.layers[first].grid[0] * session.info.layers[first].grid[1]
    assert 0 < res[6].patches_changed[first] < total // 4


def test_auto_mode_skips_and_counts(pass_dir: Path, session: V.PassSession,
                                    clip: tuple[np.ndarray, np.ndarray]) -> None:
    pm = V.load_pass_model(pass_dir)
    xq = V.quantize_frames(clip[0], pm.report)
    res = V.run_pass(session, xq, "auto")
    ref = _tflm(pass_dir, xq[:1])
    np.testing.assert_array_equal(res[0].output, ref[0])  # the first frame runs dense
    assert res[0].dense and not any(r.dense for r in res[1:]), [(r.dense, r.patches_changed[0]) for r in res]
    info = session.info
    for r in res[1:]:
        for i, ly in enumerate(info.layers):
            assert 0 <= r.out_pixels[i] <= ly.out_hwc[0] * ly.out_hwc[1]
            if ly.gated:
                assert r.patches_changed[i] <= r.patches_checked[i]
                assert int(r.gate_maps[i].sum()) == r.patches_changed[i]
    skipped = 1 - np.mean([r.out_pixels[1] for r in res[1:]]) / (info.layers[1].out_hwc[0] * info.layers[1].out_hwc[1])
    assert skipped > 0.5, f"a static clip should skip most of conv2, skipped {skipped:.1%}"
    # the summary adds the same numbers up
    s = V.summarize_pass(info, res, lambda t: t * 40, clip[1])
    assert s["frames"] == FRAMES and s["dense_frames"] == 1
    # cell accuracy recomputed here from the raw outputs: argmax over each cell's classes against the labels
    labels = clip[1]
    logits = np.stack([r.output for r in res]).astype(np.int32).reshape(len(res), *labels.shape[1:], -1)
    assert s["cell_accuracy"] == pytest.approx(float(np.mean(logits.argmax(-1) == labels)), abs=1e-6)


def test_bad_frame_requests_leave_the_state_alone(pass_dir: Path, session: V.PassSession,
                                                  clip: tuple[np.ndarray, np.ndarray]) -> None:
    pm = V.load_pass_model(pass_dir)
    xq = V.quantize_frames(clip[0][:3], pm.report)
    session.reset()
    first = session.frame(xq[0], "auto")
    c = session.client
    with pytest.raises(BoardError) as e:
        c.request(P.MSG_FRAME, bytes([7]))
    assert e.value.status == -10
    with pytest.raises(BoardError):
        c.request(P.MSG_FRAME, b"")
    with pytest.raises(BoardError):
        c.request(P.MSG_FRAME_DATA, (session.info.input_bytes - 2).to_bytes(4, "little") + b"abcd")
    with pytest.raises(BoardError):
        c.request(P.MSG_FRAME_RESET, b"x")
    # the caches survived: the same frame again is not dense and recomputes nothing in exact mode
    again = session.frame(xq[0], "exact")
    assert not again.dense and sum(again.out_pixels) == 0
    np.testing.assert_array_equal(again.output, first.output)


def test_pass_refuses_models_it_cannot_run(digits_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(OctoError, match="not patch-local"):
        pass_train(digits_dir, np.zeros((4, 8, 8), np.uint8), tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_gates_must_belong_to_the_model(pass_dir: Path) -> None:
    g = read_tflite(pass_dir / "model.tflite")
    gates = json.loads((pass_dir / "gates.json").read_text())
    compile_pass(g, gates)  # as trained: fine
    bad = json.loads(json.dumps(gates))
    bad["version"] = 99
    with pytest.raises(ConvertError, match="version"):
        compile_pass(g, bad)
    bad = json.loads(json.dumps(gates))
    bad["layers"][0]["op"] = 2  # a pooling layer
    with pytest.raises(ConvertError, match="no CONV_2D"):
        compile_pass(g, bad)
    bad = json.loads(json.dumps(gates))
    bad["layers"][0]["name"] = "conv9"
    with pytest.raises(ConvertError, match="trained for layer"):
        compile_pass(g, bad)
    bad = json.loads(json.dumps(gates))
    bad["layers"][0]["patch"] = 0
    with pytest.raises(ConvertError, match="patch"):
        compile_pass(g, bad)


def test_cli_video_data_and_errors(tmp_path: Path, video_dir: Path) -> None:
    from host_tools.cli import main

    out = tmp_path / "c.npz"
    js = tmp_path / "c.json"
    assert main(["video-data", "--out", str(out), "--frames", "12", "--scene", "cut", "--seed", "3",
                 "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["schema"] == "octo.video_data/1" and doc["frames"] == 12 and doc["scene"] == "cut"
    assert main(["video-data", "--out", str(out), "--scene", "underwater"]) != 0
    # a dense model folder needs --dense
    assert main(["video", str(video_dir), "--frames", str(out)]) != 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, frames=np.zeros((3, 64, 64), np.float32))
    assert main(["video", str(video_dir), "--frames", str(bad), "--dense"]) != 0


def test_quantize_frames_checks_shape(video_dir: Path) -> None:
    rep = json.loads((video_dir / "report.json").read_text())
    with pytest.raises(OctoError, match="grayscale"):
        V.quantize_frames(np.zeros((2, 32, 32), np.uint8), rep)


@pytest.mark.qemu
def test_octo_video_runs_pass_beside_dense_and_draws_the_heatmap(pass_dir: Path, tmp_path: Path) -> None:
    """The README's `octo video PASS_DIR --frames clip.npz --board virtual-m4 --json v.json --heatmap skip.png`."""
    from host_tools.cli import main as octo_main
    from host_tools.video.data import save_clip

    clip_path = tmp_path / "clip.npz"
    save_clip(clip_path, make_clip("static", 8, 11))
    assert octo_main(["video", str(pass_dir), "--frames", str(clip_path), "--board", "virtual-m4", "--json",
                      str(tmp_path / "v.json"), "--heatmap", str(tmp_path / "skip.png")]) == 0
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["schema"] == "octo.video/1" and doc["frames"] == 8 and doc["heatmap"] == str(tmp_path / "skip.png")
    assert (tmp_path / "skip.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["pass"]["frames"] == doc["dense"]["frames"] == 8 and doc["speedup"] > 0
