"""host_tools/video/data.py: labelled synthetic video from scikit-learn's sample photographs and digits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from host_tools.video import data as V

FRAMES = 60


@pytest.fixture(scope="module")
def clips() -> dict[str, V.Clip]:
    return {s: V.make_clip(s, FRAMES, 3) for s in V.SCENES}


def test_shapes_and_dtypes(clips: dict[str, V.Clip]) -> None:
    for scene, c in clips.items():
        assert c.scene == scene and c.seed == 3 and len(c) == FRAMES
        assert c.frames.dtype == np.uint8 and c.frames.shape == (FRAMES, 64, 64)
        assert c.labels.dtype == np.int8 and c.labels.shape == (FRAMES, 4, 4)
        assert c.changed_fraction.dtype == np.float32 and c.changed_fraction.shape == (FRAMES,)
        assert 0 <= c.labels.min() and c.labels.max() < V.NUM_CLASSES
        assert np.all((c.changed_fraction >= 0) & (c.changed_fraction <= 1)) and c.changed_fraction[0] == 1
        occupied = (c.labels > 0).sum(axis=(1, 2))
        assert occupied.min() >= 1 and occupied.max() <= 3, scene   # 1-3 digits, never two in one cell
        assert c.frames.std() > 20, f"{scene}: frames look blank"


def test_deterministic_and_seeded() -> None:
    a, b = V.make_clip("mixed", 40, 11), V.make_clip("mixed", 40, 11)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels) and a.cuts == b.cuts
    assert np.array_equal(a.changed_fraction, b.changed_fraction)
    assert not np.array_equal(a.frames, V.make_clip("mixed", 40, 12).frames)
    assert not np.array_equal(a.frames, V.make_clip("static", 40, 11).frames)   # scenes draw their own streams
    # digit pools are disjoint and change the movers, not the way the scene is drawn
    test_pool = V.make_clip("static", 40, 11, digit_pool="test")
    assert not np.array_equal(test_pool.frames, V.make_clip("static", 40, 11, digit_pool="train").frames)
    assert not set(V._pool_indices("train")) & set(V._pool_indices("test"))


def test_noise_free_twin_and_sensor_noise() -> None:
    """noise_sigma=0 gives the same clip without noise; the noise touches most pixels of every frame."""
    noisy, clean = V.make_clip("static", 30, 5), V.make_clip("static", 30, 5, noise_sigma=0)
    assert np.array_equal(noisy.labels, clean.labels)
    d = noisy.frames.astype(int) - clean.frames.astype(int)
    assert abs(d.std() - V.NOISE_SIGMA) < 0.3 and abs(d.mean()) < 0.1
    static_pixels = np.all(clean.frames == clean.frames[0], axis=0)
    assert static_pixels.mean() > 0.5
    # an "any byte changed" gate never sees a still patch: consecutive noisy frames differ almost everywhere
    assert np.mean(noisy.frames[1:][:, static_pixels] != noisy.frames[:-1][:, static_pixels]) > 0.6


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_labels_match_the_digits_drawn(seed: int) -> None:
    """In noise-free static frames only digits are brighter than 185: every bright pixel lies in the box of a
    labelled digit (its centre cell +- 8 px), and each labelled digit's bright pixels centre on its cell."""
    c = V.make_clip("static", FRAMES, seed, noise_sigma=0)
    for t in range(0, FRAMES, 3):
        bright = c.frames[t] > 185
        covered = np.zeros_like(bright)
        for i, j in zip(*np.nonzero(c.labels[t]), strict=True):
            r0, c0 = max(0, 16 * i - 8), max(0, 16 * j - 8)
            region = bright[r0:16 * i + 24, c0:16 * j + 24]
            covered[r0:16 * i + 24, c0:16 * j + 24] = True
            ys, xs = np.nonzero(region)
            assert len(ys) >= 5, f"frame {t}: no digit drawn for the label in cell {(i, j)}"
            cy, cx = ys.mean() + r0, xs.mean() + c0
            assert 16 * i - 5 <= cy <= 16 * i + 21 and 16 * j - 5 <= cx <= 16 * j + 21, (t, i, j, cy, cx)
        assert not (bright & ~covered).any(), f"frame {t}: a digit with no label"


def test_static_scene_changes_little() -> None:
    means = [float(V.make_clip("static", 120, s).changed_fraction[1:].mean()) for s in range(4)]
    assert max(means) < 0.2 and np.mean(means) < 0.1, means
    # digits do move: some frames change something, and labels move between cells at times
    c = V.make_clip("static", 120, 0)
    assert (c.changed_fraction[1:] > 0).mean() > 0.3
    assert (c.labels[1:] != c.labels[:-1]).any()


def test_pan_and_lighting_change_the_whole_frame(clips: dict[str, V.Clip]) -> None:
    assert clips["pan"].changed_fraction[1:].mean() > clips["static"].changed_fraction[1:].mean()
    brightness = clips["lighting"].frames.reshape(FRAMES, -1).mean(axis=1)
    assert brightness.max() - brightness.min() > 8            # the global gain ramps / flickers
    assert not clips["static"].cuts and not clips["pan"].cuts and not clips["lighting"].cuts


@pytest.mark.parametrize("scene", ["cut", "mixed"])
def test_cuts_are_listed_and_change_most_pixels(scene: str) -> None:
    c = V.make_clip(scene, 200, 4)
    assert c.cuts and c.cuts == sorted(c.cuts) and 0 not in c.cuts
    f = c.frames.astype(int)
    for t in c.cuts:
        assert c.changed_fraction[t] >= 0.6
        assert np.mean(np.abs(f[t] - f[t - 1]) > 12) > 0.5, f"cut at {t} changes too little"
    if scene == "cut":   # between cuts the scene is static
        others = np.setdiff1d(np.arange(1, 200), c.cuts)
        assert c.changed_fraction[others].mean() < 0.1
        assert c.changed_fraction[others].max() < 0.5


def test_save_load_roundtrip(tmp_path: Path, clips: dict[str, V.Clip]) -> None:
    c = clips["cut"]
    path = tmp_path / "clip.bin"          # written exactly where asked (no ".npz" appended)
    V.save_clip(path, c)
    back = V.load_clip(path)
    assert np.array_equal(back.frames, c.frames) and np.array_equal(back.labels, c.labels)
    assert np.array_equal(back.changed_fraction, c.changed_fraction)
    assert (back.scene, back.seed, back.cuts) == (c.scene, c.seed, c.cuts)


def _fields(c: V.Clip) -> dict[str, np.ndarray]:
    return {"format_version": np.int64(V.FORMAT_VERSION), "frames": c.frames, "labels": c.labels,
            "changed_fraction": c.changed_fraction, "cuts": np.asarray(c.cuts, np.int32),
            "scene": np.str_(c.scene), "seed": np.int64(c.seed)}


def _drop(key: str) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda d: d.pop(key)


def _set(key: str, value: object) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(d: dict[str, np.ndarray]) -> None:
        d[key] = value(d) if callable(value) else value
    return edit


BAD_FILES = [
    ("missing frames", _drop("frames"), "missing frames"),
    ("missing cuts and seed", lambda d: (d.pop("cuts"), d.pop("seed")), "missing cuts, seed"),
    ("frames float", _set("frames", lambda d: d["frames"].astype(np.float32)), "frames must be uint8"),
    ("frames wrong size", _set("frames", lambda d: d["frames"][:, :32]), "frames must be uint8"),
    ("labels int64", _set("labels", lambda d: d["labels"].astype(np.int64)), "labels must be int8"),
    ("labels too few", _set("labels", lambda d: d["labels"][:-1]), "labels must be int8"),
    ("label out of range", _set("labels", lambda d: np.full_like(d["labels"], 11)), "labels must lie in"),
    ("changed_fraction int", _set("changed_fraction", lambda d: np.zeros(len(d["frames"]), np.int32)),
     "changed_fraction must be float"),
    ("cuts unsorted", _set("cuts", np.array([30, 20], np.int32)), "cuts must be strictly increasing"),
    ("cut at frame 0", _set("cuts", np.array([0], np.int32)), "cuts must be strictly increasing"),
    ("unknown scene", _set("scene", np.str_("underwater")), "scene"),
    ("future version", _set("format_version", np.int64(99)), "format_version"),
]


@pytest.mark.parametrize(("case", "edit", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_load_rejects_bad_clips(tmp_path: Path, clips: dict[str, V.Clip], case: str,
                                edit: Callable[[dict[str, np.ndarray]], None], message: str) -> None:
    fields = _fields(clips["cut"])
    edit(fields)
    path = tmp_path / f"{case}.npz"
    np.savez(path, **fields)
    with pytest.raises(V.ClipFormatError, match=message) as e:
        V.load_clip(path)
    assert str(path) in str(e.value)


def test_load_rejects_non_clip_files(tmp_path: Path) -> None:
    with pytest.raises(V.ClipFormatError, match="no such file"):
        V.load_clip(tmp_path / "absent.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip archive at all")
    with pytest.raises(V.ClipFormatError, match="not a clip"):
        V.load_clip(junk)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(V.ClipFormatError, match="single array"):
        V.load_clip(single)
    truncated = tmp_path / "truncated.npz"
    V.save_clip(truncated, V.make_clip("static", 4, 0))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(V.ClipFormatError):
        V.load_clip(truncated)


def test_make_clip_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown scene"):
        V.make_clip("underwater", 10, 0)
    with pytest.raises(ValueError, match="frames"):
        V.make_clip("static", 0, 0)
    with pytest.raises(ValueError, match="digit_pool"):
        V.make_clip("static", 10, 0, digit_pool="val")
    with pytest.raises(ValueError, match="noise_sigma"):
        V.make_clip("static", 10, 0, noise_sigma=-1)
