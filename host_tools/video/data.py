"""Labelled synthetic video for PASS (patch skipping), made from real images that ship with scikit-learn.

Frames are 64x64 uint8 grayscale. Backgrounds are crops of scikit-learn's sample photographs
(``load_sample_images``: china.jpg, flower.jpg), converted to gray, rescaled (1x-2.5x, area-averaged)
and contrast-compressed into a dark band (about 10..170 grey levels). Movers are scikit-learn's real
8x8 handwritten digits (``load_digits``), upscaled to 16x16 (bilinear) and composited as bright
objects: alpha = digit intensity / 16, colour 200..255. Every frame gets fresh Gaussian sensor noise
(sigma ``NOISE_SIGMA`` grey levels), so a gate that fires on "any byte changed" practically never skips a patch.

Labels: a ``GRID`` x ``GRID`` grid of 16x16-pixel cells per frame; cell (i, j) holds 0 when empty and
1 + d when the centre of a digit d (its rendered 16x16 box) lies in it. Digits never overlap (their
boxes stay at least 16 px apart along one axis), so two digit centres never share a cell.

Scenes (``SCENES``):

- ``static``: fixed camera, 1-3 digits that alternate between pausing (4-30 frames) and moving slowly
  (0.4-1.2 px/frame, bouncing off the borders and each other; positions are rendered rounded to whole
  pixels, so a paused digit changes nothing).
- ``pan``: a slow camera pan (0.25-0.75 px/frame, bilinear, sub-pixel) over a background larger than the
  frame, with the same digit motion in screen space.
- ``lighting``: a static scene under a global brightness ramp (slow sinusoidal gain, +-10..25%) and
  occasional flicker (1-3 frames at +-8..15%).
- ``cut``: static segments of 16-48 frames separated by hard cuts (new background, new digits).
- ``mixed``: segments of 24-64 frames of static, pan and lighting, separated by hard cuts (training).

``Clip.changed_fraction[t]`` is the fraction of pixels whose noise-free value moved by more than
``CHANGE_TOL`` grey levels since frame t-1 (1.0 for frame 0); ``Clip.cuts`` lists the frames that start a
new segment after a hard cut (frame 0 is not listed). A clip is a pure function of (scene, frames, seed,
digit_pool, noise_sigma): the digit pool splits the 1797 digit images into disjoint "train" (3/4) and
"test" (1/4) instances so a model can be evaluated on handwriting it never saw; noise_sigma=0 gives the
noise-free twin of a clip (ground truth for what really changed).

Measured (300 frames, seeds 0-4; frame 0 and cut frames excluded): mean changed fraction per frame static 4.0%,
pan 19%, lighting 7.8%, cut 3.0%, mixed 10%; at cuts at least 85% of the pixels change.

File format (``save_clip`` / ``load_clip``): an .npz with ``format_version`` (int, ``FORMAT_VERSION``),
``frames`` uint8 [T,64,64], ``labels`` int8 [T,4,4] (0..10), ``changed_fraction`` float32 [T],
``cuts`` int32 [K] (strictly increasing, in 1..T-1), ``scene`` (str), ``seed`` (int64).
"""

from __future__ import annotations

import functools
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FRAME = 64                 # frame side, pixels
CELL = 16                  # label cell side, pixels
GRID = FRAME // CELL       # label grid side (4)
DIGIT = 16                 # rendered digit side, pixels
NUM_CLASSES = 11           # 0 = empty, 1 + d = digit d
NOISE_SIGMA = 2.0          # per-frame Gaussian sensor noise, grey levels
CHANGE_TOL = 4.0           # a noise-free pixel "changed" if it moved by more than this (grey levels)
FORMAT_VERSION = 1
SCENES = ("static", "pan", "lighting", "cut", "mixed")
DIGIT_POOLS = ("all", "train", "test")

_MAX_POS = FRAME - DIGIT   # top-left coordinate range of a digit box: 0.._MAX_POS
_TEST_EVERY = 4            # digit image i is a "test" instance iff i % 4 == 0


class ClipFormatError(ValueError):
    """A clip file that is not a valid clip (the message says which field and why)."""


@dataclass
class Clip:
    frames: np.ndarray            # uint8 [T, 64, 64]
    labels: np.ndarray            # int8 [T, 4, 4]: 0 empty, 1 + digit
    scene: str
    seed: int
    cuts: list[int] = field(default_factory=list)  # frames that start a new segment after a hard cut
    changed_fraction: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # float32 [T]

    def __len__(self) -> int:
        return len(self.frames)


# -- sources (loaded lazily, once) ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    """The sample photographs as float32 grayscale [H, W] in 0..255."""
    from sklearn.datasets import load_sample_images  # noqa: PLC0415

    out = []
    for img in load_sample_images().images:
        rgb = np.asarray(img, np.float32)
        out.append(rgb @ np.array([0.299, 0.587, 0.114], np.float32))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """(alpha [N, 16, 16] float32 in 0..1, labels [N] int64) of every scikit-learn digit, upscaled."""
    from sklearn.datasets import load_digits  # noqa: PLC0415

    d = load_digits()
    small = d.images.astype(np.float32) / 16.0
    c = (np.arange(DIGIT, dtype=np.float32) + 0.5) / (DIGIT / 8) - 0.5   # bilinear, pixel centres aligned
    i0 = np.clip(np.floor(c).astype(int), 0, 7)
    i1 = np.clip(i0 + 1, 0, 7)
    f = np.clip(c - i0, 0.0, 1.0)
    rows = small[:, i0, :] * (1 - f)[None, :, None] + small[:, i1, :] * f[None, :, None]
    big = rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i1] * f[None, None, :]
    return np.clip(big, 0.0, 1.0), d.target.astype(np.int64)


def _pool_indices(pool: str) -> np.ndarray:
    n = len(_digits()[1])
    idx = np.arange(n)
    if pool == "all":
        return idx
    if pool == "train":
        return idx[idx % _TEST_EVERY != 0]
    if pool == "test":
        return idx[idx % _TEST_EVERY == 0]
    raise ValueError(f"digit_pool must be one of {DIGIT_POOLS}, got {pool!r}")


# -- rendering helpers ------------------------------------------------------------------------------


def _bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """img sampled at float coordinates (ys [H], xs [W] grid), edges clamped."""
    h, w = img.shape
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1 = np.clip(y0 + 1, 0, h - 1)
    x1 = np.clip(x0 + 1, 0, w - 1)
    fy = np.clip(ys - y0, 0.0, 1.0)[:, None]
    fx = np.clip(xs - x0, 0.0, 1.0)[None, :]
    top = img[np.ix_(y0, x0)] * (1 - fx) + img[np.ix_(y0, x1)] * fx
    bot = img[np.ix_(y1, x0)] * (1 - fx) + img[np.ix_(y1, x1)] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def _world(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side x side background: a random crop of a sample photograph at a random scale (1x-2.5x,
    area-averaged), contrast-compressed into a dark band so bright digits stand out."""
    src = _backgrounds()[int(rng.integers(len(_backgrounds())))]
    scale = float(rng.uniform(1.0, 2.5))
    f = max(1, int(scale))                      # integer area-average first, then bilinear for the rest
    h, w = (src.shape[0] // f) * f, (src.shape[1] // f) * f
    img = src[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    step = scale / f
    span = side * step
    top = float(rng.uniform(0, img.shape[0] - span - 1))
    left = float(rng.uniform(0, img.shape[1] - span - 1))
    coords = np.arange(side, dtype=np.float32) * step
    crop = _bilinear(img, top + coords, left + coords)
    lo_p, hi_p = np.percentile(crop, [1, 99])
    norm = np.clip((crop - lo_p) / max(float(hi_p - lo_p), 1.0), 0.0, 1.0)
    lo, hi = float(rng.uniform(10, 50)), float(rng.uniform(120, 170))
    return (lo + (hi - lo) * norm).astype(np.float32)


@dataclass
class _Mover:
    alpha: np.ndarray   # [16, 16] in 0..1
    digit: int
    colour: float
    y: float            # top-left, float; rendered rounded
    x: float
    vy: float = 0.0
    vx: float = 0.0
    left: int = 0       # frames left in the current pause / move
    moving: bool = False

    @property
    def pos(self) -> tuple[int, int]:
        return round(self.y), round(self.x)


def _apart(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Two 16x16 boxes do not overlap (and so their centres lie in different cells)."""
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= DIGIT


def _new_movers(rng: np.random.Generator, pool: np.ndarray, count: int) -> list[_Mover]:
    alphas, digits = _digits()
    movers: list[_Mover] = []
    while len(movers) < count:
        y, x = (float(v) for v in rng.integers(0, _MAX_POS + 1, size=2))
        if not all(_apart((round(y), round(x)), m.pos) for m in movers):
            continue
        i = int(rng.choice(pool))
        m = _Mover(alphas[i], int(digits[i]), float(rng.uniform(200, 255)), y, x)
        m.left = int(rng.integers(0, 12))       # start paused for a while
        movers.append(m)
    return movers


def _step_movers(rng: np.random.Generator, movers: list[_Mover]) -> None:
    """Intermittent slow motion: pause 4-30 frames, move 4-24 frames at 0.4-1.2 px/frame, bounce."""
    for k, m in enumerate(movers):
        if m.left <= 0:
            m.moving = not m.moving
            if m.moving:
                speed, ang = float(rng.uniform(0.4, 1.2)), float(rng.uniform(0, 2 * math.pi))
                m.vy, m.vx = speed * math.sin(ang), speed * math.cos(ang)
                m.left = int(rng.integers(4, 25))
            else:
                m.left = int(rng.integers(4, 31))
        m.left -= 1
        if not m.moving:
            continue
        ny, nx = m.y + m.vy, m.x + m.vx
        if not 0 <= ny <= _MAX_POS:
            m.vy, ny = -m.vy, min(max(ny, 0.0), float(_MAX_POS))
        if not 0 <= nx <= _MAX_POS:
            m.vx, nx = -m.vx, min(max(nx, 0.0), float(_MAX_POS))
        if all(_apart((round(ny), round(nx)), o.pos) for j, o in enumerate(movers) if j != k):
            m.y, m.x = ny, nx
        else:
            m.vy, m.vx = -m.vy, -m.vx


def _composite(bg: np.ndarray, movers: list[_Mover]) -> tuple[np.ndarray, np.ndarray]:
    """(noise-free frame float32 [64,64], label grid int8 [4,4])."""
    frame = bg.copy()
    labels = np.zeros((GRID, GRID), np.int8)
    for m in movers:
        y, x = m.pos
        region = frame[y:y + DIGIT, x:x + DIGIT]
        region[...] = region * (1 - m.alpha) + m.colour * m.alpha
        labels[(y + DIGIT // 2) // CELL, (x + DIGIT // 2) // CELL] = 1 + m.digit
    return frame, labels


# -- segments ---------------------------------------------------------------------------------------


def _segment(kind: str, rng: np.random.Generator, n: int, pool: np.ndarray,
             prev: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """n noise-free frames (float32 [n,64,64]) and labels (int8 [n,4,4]) of one scene segment. With
    `prev` (the last frame before a hard cut), the new background is redrawn until the cut changes most
    of the frame (at least 60% of the pixels, up to 20 tries)."""
    movers = _new_movers(rng, pool, int(rng.integers(1, 4)))
    if kind == "pan":
        extra = int(rng.integers(32, 97))
        world = _world(rng, FRAME + extra)
        speed, ang = float(rng.uniform(0.25, 0.75)), float(rng.uniform(0, 2 * math.pi))
        cam = np.array([rng.uniform(0, extra), rng.uniform(0, extra)], np.float64)
        vel = speed * np.array([math.sin(ang), math.cos(ang)])
    else:
        world = _world(rng, FRAME)
        extra, cam, vel = 0, np.zeros(2), np.zeros(2)
    if prev is not None:
        for _ in range(20):
            first, _lab = _composite(world if kind != "pan" else _pan_view(world, cam), movers)
            if np.mean(np.abs(first - prev) > CHANGE_TOL) >= 0.6:
                break
            world = _world(rng, FRAME + extra)
    gain = np.ones(n)
    if kind == "lighting":
        amp, period = float(rng.uniform(0.10, 0.25)), float(rng.uniform(60, 160))
        phase = float(rng.uniform(0, 2 * math.pi))
        gain = 1.0 + amp * np.sin(2 * math.pi * np.arange(n) / period + phase)
        t = 0
        while t < n:
            if rng.random() < 0.04:
                dur = int(rng.integers(1, 4))
                gain[t:t + dur] *= 1.0 + float(rng.choice([-1, 1])) * float(rng.uniform(0.08, 0.15))
                t += dur
            t += 1
    frames = np.empty((n, FRAME, FRAME), np.float32)
    labels = np.empty((n, GRID, GRID), np.int8)
    for t in range(n):
        if t:
            _step_movers(rng, movers)
            if kind == "pan":
                cam += vel
                for a in range(2):
                    if not 0 <= cam[a] <= extra:
                        vel[a] = -vel[a]
                        cam[a] = min(max(cam[a], 0.0), float(extra))
        bg = _pan_view(world, cam) if kind == "pan" else world
        frame, labels[t] = _composite(bg, movers)
        frames[t] = np.clip(frame * gain[t], 0, 255)
    return frames, labels


def _pan_view(world: np.ndarray, cam: np.ndarray) -> np.ndarray:
    grid = np.arange(FRAME, dtype=np.float64)
    return _bilinear(world, cam[0] + grid, cam[1] + grid)


def _segment_lengths(rng: np.random.Generator, frames: int, lo: int, hi: int) -> list[int]:
    out: list[int] = []
    while sum(out) < frames:
        out.append(min(int(rng.integers(lo, hi + 1)), frames - sum(out)))
    return out


def make_clip(scene: str, frames: int, seed: int, *, digit_pool: str = "all",
              noise_sigma: float = NOISE_SIGMA) -> Clip:
    """A labelled clip of `frames` frames of `scene` (one of SCENES); deterministic in its arguments.
    digit_pool: "all", "train" or "test" - which (disjoint) digit images the movers are drawn from.
    noise_sigma: the sensor noise (grey levels); 0 gives the same clip without noise (ground truth for
    "what really changed": the noise is drawn last, so everything else is identical)."""
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}: expected one of {', '.join(SCENES)}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma}")
    pool = _pool_indices(digit_pool)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, SCENES.index(scene), DIGIT_POOLS.index(digit_pool)])
    if scene == "cut":
        plan = [("static", n) for n in _segment_lengths(rng, frames, 16, 48)]
    elif scene == "mixed":
        kinds = ("static", "pan", "lighting")
        plan = [(kinds[int(rng.integers(3))], n) for n in _segment_lengths(rng, frames, 24, 64)]
    else:
        plan = [(scene, frames)]
    clean_parts, label_parts, cuts = [], [], []
    start = 0
    for kind, n in plan:
        prev = clean_parts[-1][-1] if clean_parts else None
        if start:
            cuts.append(start)
        c, lab = _segment(kind, rng, n, pool, prev)
        clean_parts.append(c)
        label_parts.append(lab)
        start += n
    clean = np.concatenate(clean_parts)
    changed = np.ones(frames, np.float32)
    if frames > 1:
        changed[1:] = np.mean(np.abs(np.diff(clean, axis=0)) > CHANGE_TOL, axis=(1, 2))
    seen = clean + rng.normal(0.0, noise_sigma, size=clean.shape) if noise_sigma > 0 else clean
    video = np.clip(np.rint(seen), 0, 255).astype(np.uint8)
    return Clip(video, np.concatenate(label_parts), scene, int(seed), cuts, changed)


# -- files ------------------------------------------------------------------------------------------


def save_clip(path: str | Path, clip: Clip) -> None:
    """Write `clip` as an .npz (exactly at `path`; see the module docstring for the fields)."""
    _check_arrays(clip.frames, clip.labels, clip.changed_fraction, np.asarray(clip.cuts, np.int64), str(path))
    with open(path, "wb") as f:
        np.savez_compressed(f, format_version=np.int64(FORMAT_VERSION), frames=clip.frames, labels=clip.labels,
                            changed_fraction=clip.changed_fraction.astype(np.float32),
                            cuts=np.asarray(clip.cuts, np.int32), scene=np.str_(clip.scene),
                            seed=np.int64(clip.seed))


_KEYS = ("format_version", "frames", "labels", "changed_fraction", "cuts", "scene", "seed")


def load_clip(path: str | Path) -> Clip:
    """Read and validate a clip written by save_clip; raises ClipFormatError saying what is wrong."""
    where = str(path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ClipFormatError(f"{where}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ClipFormatError(f"{where}: not a clip .npz file ({e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ClipFormatError(f"{where}: not a clip .npz file (a single array, not an archive)")
    try:
        with z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ClipFormatError(f"{where}: damaged clip .npz file ({e})") from None
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise ClipFormatError(f"{where}: missing {', '.join(missing)} (a clip has {', '.join(_KEYS)})")
    version = data["format_version"]
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
        raise ClipFormatError(f"{where}: format_version {version!r} is not supported (expected {FORMAT_VERSION})")
    scene = data["scene"]
    if scene.shape != () or scene.dtype.kind != "U" or str(scene) not in SCENES:
        raise ClipFormatError(f"{where}: scene {scene!r} is not one of {', '.join(SCENES)}")
    seed = data["seed"]
    if seed.shape != () or seed.dtype.kind not in "iu":
        raise ClipFormatError(f"{where}: seed must be an integer scalar, got {seed.dtype} {seed.shape}")
    frames, labels, changed, cuts = data["frames"], data["labels"], data["changed_fraction"], data["cuts"]
    _check_arrays(frames, labels, changed, cuts, where)
    return Clip(frames, labels, str(scene), int(seed), [int(c) for c in cuts], changed.astype(np.float32))


def _check_arrays(frames: np.ndarray, labels: np.ndarray, changed: np.ndarray, cuts: np.ndarray,
                  where: str) -> None:
    def bad(msg: str) -> ClipFormatError:
        return ClipFormatError(f"{where}: {msg}")

    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[1:] != (FRAME, FRAME) or len(frames) < 1:
        raise bad(f"frames must be uint8 [T,{FRAME},{FRAME}] with T >= 1, got {frames.dtype} {frames.shape}")
    t = len(frames)
    if labels.dtype != np.int8 or labels.shape != (t, GRID, GRID):
        raise bad(f"labels must be int8 [{t},{GRID},{GRID}], got {labels.dtype} {labels.shape}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise bad(f"labels must lie in 0..{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}")
    if changed.dtype.kind != "f" or changed.shape != (t,):
        raise bad(f"changed_fraction must be float [{t}], got {changed.dtype} {changed.shape}")
    if not np.all((changed >= 0) & (changed <= 1)):
        raise bad("changed_fraction must lie in [0, 1]")
    if cuts.dtype.kind not in "iu" or cuts.ndim != 1:
        raise bad(f"cuts must be a 1-D integer array, got {cuts.dtype} {cuts.shape}")
    if len(cuts) and (cuts.min() < 1 or cuts.max() >= t or np.any(np.diff(cuts) <= 0)):
        raise bad(f"cuts must be strictly increasing frame indices in 1..{t - 1}, got {cuts.tolist()}")
