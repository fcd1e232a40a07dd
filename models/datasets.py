"""Offline data for the MLPerf Tiny recipes (models/mlperf_*.py): generated, deterministic per seed, cached.

Nothing is downloaded. Each generator returns a dict of numpy arrays with three splits:

  x_train, y_train        pretraining data (what the recipe's Keras model is fitted on)
  x_test, y_test          held-out data, never trained on (the recipe's accuracy / AUC)
  x_personal, y_personal  personalisation data: a shifted domain the pretrained model has not seen
                          (other voices, other writers / photo, another machine), for on-device training
  g_train, g_test, g_personal   the group of each sample (voice, digit row, photo, clip), so tests can
                                check the splits are disjoint

What each generator makes:

* ``kws`` (keyword spotting, 12 classes as MLPerf Tiny's KWS: the ten Speech Commands keywords, "silence",
  "unknown"): words spoken by Debian's ``espeak-ng`` speech synthesiser with English accents x voice variants,
  random speed and pitch, shifted in time inside 1 s at 16 kHz, mixed with white/pink/brown noise; silence is
  noise alone, unknown is one of twenty other Speech Commands words. Features as the MLPerf Tiny reference
  (kws_util.py / get_dataset.py): peak-normalised audio, Hann STFT of 30 ms windows every 20 ms, magnitude,
  40 mel bins 20-4000 Hz, log(mel + 1e-6), first 10 MFCCs -> 49x10x1. Training and held-out clips use the same
  voices (different renditions); the personalisation clips use voice variants never seen in training.
* ``ic`` (image classification, 10 classes): scikit-learn's 8x8 handwritten digits, upscaled to 14-26 px and
  alpha-blended in a random colour onto 32x32 crops (32-96 px, box-downscaled) of the photographs that ship
  with scikit-learn. Training and held-out digits are disjoint rows of the first 1300 (writers in row order) on
  disjoint regions of china.jpg (left 440 px / right 200 px); personalisation uses the last 497 rows (writers
  never seen) on flower.jpg.
* ``vww`` (visual wake words, 2 classes: 1 = a digit is in the picture): 96x96x3 crops (96-200 px, resized)
  of the same photographs, half with a 32-64 px digit pasted (strokes twice as opaque). Same row/region split
  as ``ic``; personalisation is flower.jpg with held-out writers.
* ``ad`` (anomaly detection): 2 s machine sounds at 16 kHz, synthesised as a machine-specific fundamental with
  decaying harmonics, amplitude modulation and broadband noise (small random jitter per clip). Anomalies add a
  shifted or extra partial, or a click train. Features as the MLPerf Tiny / DCASE 2020 reference: 1024-point
  STFT every 512 samples, power, 128 mel bins, 10*log10, five consecutive frames -> 640 values. y = 0 normal,
  1 anomalous; training data is normal only (machine A); the held-out split is machine A, half its clips
  anomalous; personalisation is machine B (normal and anomalous clips, fine-tune on y == 0).

Images are cached as uint8 and returned as float32 in [0, 1]. The cache lives in ``$OCTO_DATA_DIR`` or
``~/.cache/octo/data`` as ``<name>-<seed>-v<version>[-<size>].npz``; a missing or unreadable file is
regenerated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

Arrays = dict[str, np.ndarray]

# ---------------------------------------------------------------- cache


def data_dir() -> Path:
    """Where generated data sets are cached: $OCTO_DATA_DIR, else ~/.cache/octo/data."""
    env = os.environ.get("OCTO_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "octo" / "data"


def cache_path(name: str, seed: int, version: int, tag: str = "") -> Path:
    return data_dir() / f"{name}-{seed}-v{version}{'-' + tag if tag else ''}.npz"


def cached(name: str, seed: int, version: int, generate: Callable[[], Arrays], tag: str = "") -> Arrays:
    """The arrays in the cache file for (name, seed, version, tag), generated (and written) if missing or bad."""
    path = cache_path(name, seed, version, tag)
    if path.exists():
        try:
            with np.load(path) as d:
                return {k: d[k] for k in d.files}
        except (OSError, ValueError, EOFError):
            pass  # damaged: regenerate
    arrays = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return arrays


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


# ---------------------------------------------------------------- keyword spotting

KWS_VERSION = 1
KWS_LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown"]
KWS_WORDS = KWS_LABELS[:10]
KWS_UNKNOWN = ["bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one",
               "seven", "sheila", "six", "three", "tree", "two", "wow", "zero"]
KWS_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
               "en-us-nyc"]
KWS_TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt", "klatt2"]
KWS_PERSONAL_VARIANTS = ["m6", "f4", "klatt3"]
SAMPLE_RATE = 16000
ESPEAK_RATE = 22050


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        from host_tools.errors import OctoError

        raise OctoError("espeak-ng is not installed: the keyword-spotting recipe synthesises its speech with it",
                        hint="Debian package espeak-ng; `make setup` installs it")
    return exe


def speak(word: str, voice: str, speed: int, pitch: int, exe: str | None = None) -> np.ndarray:
    """One word spoken by espeak-ng, float32 at 16 kHz, leading/trailing silence trimmed, peak 1."""
    from scipy.signal import resample_poly

    out = subprocess.run([exe or espeak_binary(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         capture_output=True, check=True, timeout=30).stdout
    pcm = np.frombuffer(out[44:44 + (len(out) - 44) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    audio = resample_poly(pcm, SAMPLE_RATE // 50, ESPEAK_RATE // 50).astype(np.float32)  # 320 / 441
    loud = np.flatnonzero(np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9))
    if loud.size:
        audio = audio[loud[0]:loud[-1] + 1]
    return audio / (np.abs(audio).max() + 1e-9)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise, unit RMS."""
    kind = rng.integers(3)
    w = rng.standard_normal(n)
    if kind:
        spec = np.fft.rfft(w)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 * kind)
        w = np.fft.irfft(spec, n)
    return (w / (w.std() + 1e-12)).astype(np.float32)


def mfcc(audio: np.ndarray) -> np.ndarray:
    """[N, 16000] float audio -> [N, 49, 10, 1] MFCCs as MLPerf Tiny's KWS reference computes them."""
    import tensorflow as tf

    x = tf.constant(audio, tf.float32)
    stft = tf.signal.stft(x, frame_length=SAMPLE_RATE * 30 // 1000, frame_step=SAMPLE_RATE * 20 // 1000,
                          window_fn=tf.signal.hann_window)
    spec = tf.abs(stft)
    mel_w = tf.signal.linear_to_mel_weight_matrix(40, spec.shape[-1], SAMPLE_RATE, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(spec, mel_w, 1) + 1e-6)
    coeffs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10]
    return coeffs.numpy()[..., None].astype(np.float32)


def _kws_split(seed: int, stream: int, per_class: int, voices: list[str], exe: str) -> tuple[np.ndarray, ...]:
    """All random choices are drawn in a fixed order first; espeak-ng then runs two at a time."""
    from concurrent.futures import ThreadPoolExecutor

    rng = _rng(seed, stream)
    labels = np.repeat(np.arange(len(KWS_LABELS)), per_class)
    rng.shuffle(labels)
    jobs: list[tuple[str, str, int, int] | None] = []
    groups = []
    for lab in labels:
        if KWS_LABELS[lab] == "silence":
            jobs.append(None)
            groups.append(-1)
            continue
        word = KWS_LABELS[lab] if lab < 10 else KWS_UNKNOWN[int(rng.integers(len(KWS_UNKNOWN)))]
        voice = int(rng.integers(len(voices)))
        jobs.append((word, voices[voice], int(rng.integers(130, 230)), int(rng.integers(20, 81))))
        groups.append(voice)
    with ThreadPoolExecutor(max_workers=2) as pool:
        spoken = list(pool.map(lambda j: None if j is None else speak(*j, exe=exe), jobs))
    n = SAMPLE_RATE
    clips = []
    for word_audio in spoken:
        if word_audio is None:  # silence: background noise alone
            clips.append(_noise(rng, n) * np.float32(rng.uniform(0.01, 0.3)))
            continue
        audio = word_audio[:n]
        out = np.zeros(n, np.float32)
        start = int(rng.integers(0, n - audio.size + 1))
        out[start:start + audio.size] = audio * np.float32(rng.uniform(0.3, 1.0))
        if rng.random() < 0.8:
            out += _noise(rng, n) * np.float32(rng.uniform(0.0, 0.1))
        clips.append(out / (np.abs(out).max() + 1e-9))  # the reference peak-normalises each clip
    return mfcc(np.stack(clips)), labels.astype(np.int64), np.asarray(groups, np.int64)


def kws_voices() -> tuple[list[str], list[str]]:
    """(pretraining voices, personalisation voices) as espeak-ng voice names accent+variant."""
    train = [f"{a}+{v}" for a in KWS_ACCENTS for v in KWS_TRAIN_VARIANTS]
    personal = [f"{a}+{v}" for a in KWS_ACCENTS for v in KWS_PERSONAL_VARIANTS]
    return train, personal


def kws_data(seed: int = 0, per_class: tuple[int, int, int] = (100, 25, 25)) -> Arrays:
    """Keyword spotting MFCCs: per_class = clips per class in (train, test, personal). Group = voice index
    (personal voices are numbered after the training voices; -1 = silence)."""
    exe = espeak_binary()

    def gen() -> Arrays:
        train_v, pers_v = kws_voices()
        x_tr, y_tr, g_tr = _kws_split(seed, 0, per_class[0], train_v, exe)
        x_te, y_te, g_te = _kws_split(seed, 1, per_class[1], train_v, exe)
        x_pe, y_pe, g_pe = _kws_split(seed, 2, per_class[2], pers_v, exe)
        g_pe = np.where(g_pe >= 0, g_pe + len(train_v), g_pe)
        return {"x_train": x_tr, "y_train": y_tr, "g_train": g_tr, "x_test": x_te, "y_test": y_te, "g_test": g_te,
                "x_personal": x_pe, "y_personal": y_pe, "g_personal": g_pe}

    return cached("kws", seed, KWS_VERSION, gen, tag="x".join(map(str, per_class)))


# ---------------------------------------------------------------- digits on photographs

IMAGE_VERSION = 1
PRETRAIN_ROWS = 1300        # sklearn digits rows [0, 1300) pretraining, the rest (other writers) personalisation
TRAIN_REGION = (0, 440)     # china.jpg columns for training crops; held-out crops come from the rest
TEST_REGION = (440, 640)


def _photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    d = load_sample_images()
    return {Path(f).name: (img.astype(np.float32) / 255.0) for f, img in zip(d.filenames, d.images, strict=True)}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an HxW or HxWxC float image to size x size (Pillow, deterministic)."""
    from PIL import Image

    if img.ndim == 2:
        return np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
    return np.stack([_resize(img[..., c], size) for c in range(img.shape[2])], axis=-1)


def _crop(rng: np.random.Generator, photo: np.ndarray, cols: tuple[int, int], size: int, out: int) -> np.ndarray:
    h = photo.shape[0]
    x0 = int(rng.integers(cols[0], cols[1] - size + 1))
    y0 = int(rng.integers(0, h - size + 1))
    patch = photo[y0:y0 + size, x0:x0 + size]
    if size == out:
        return patch.copy()
    if size % out == 0:
        f = size // out
        return patch.reshape(out, f, out, f, 3).mean(axis=(1, 3))
    return _resize(patch, out)


def _paste(rng: np.random.Generator, bg: np.ndarray, digit: np.ndarray, size: int, ink: float = 1.0) -> np.ndarray:
    """Alpha-blend an upscaled digit in a colour that contrasts with the background under it (ink > 1 makes
    the strokes more opaque)."""
    alpha = np.clip(_resize(digit, size) * ink, 0.0, 1.0)[..., None]
    hw = bg.shape[0]
    y0, x0 = (int(v) for v in rng.integers(0, hw - size + 1, size=2))
    region = bg[y0:y0 + size, x0:x0 + size]
    base = 1.0 - region.mean(axis=(0, 1))  # opposite of the local mean colour
    colour = np.clip(base + rng.uniform(-0.25, 0.25, size=3), 0.0, 1.0).astype(np.float32)
    if np.abs(colour - region.mean(axis=(0, 1))).max() < 0.35:
        colour = np.float32(1.0) - np.round(region.mean(axis=(0, 1)))
    out = bg.copy()
    out[y0:y0 + size, x0:x0 + size] = region * (1 - alpha) + colour * alpha
    return out


def _row_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digit rows for (train, test, personal): pretraining rows split 80/20 at random, the rest personal."""
    rows = _rng(seed, 99).permutation(PRETRAIN_ROWS)
    cut = PRETRAIN_ROWS * 4 // 5
    return np.sort(rows[:cut]), np.sort(rows[cut:]), np.arange(PRETRAIN_ROWS, 1797)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _ic_split(seed: int, stream: int, n: int, rows: np.ndarray, photo: np.ndarray, cols: tuple[int, int],
              digits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, ...]:
    rng = _rng(seed, stream)
    pick = rows[np.arange(n) % rows.size]
    pick = pick[rng.permutation(n)]
    xs = []
    for r in pick:
        bg = _crop(rng, photo, cols, int(rng.choice([32, 64, 96])), 32)
        xs.append(_paste(rng, bg, digits[r], int(rng.integers(14, 27))))
    return _to_u8(np.stack(xs)), targets[pick], pick.astype(np.int64)


def ic_data(seed: int = 0, sizes: tuple[int, int, int] = (4000, 400, 500)) -> Arrays:
    """Digits on 32x32 photo crops, 10 classes; sizes = (train, test, personal). Group = sklearn digits row.
    x arrays are uint8 (use images_float)."""

    def gen() -> Arrays:
        photos, (digits, targets) = _photos(), _digits()
        r_tr, r_te, r_pe = _row_split(seed)
        china, flower = photos["china.jpg"], photos["flower.jpg"]
        x_tr, y_tr, g_tr = _ic_split(seed, 0, sizes[0], r_tr, china, TRAIN_REGION, digits, targets)
        x_te, y_te, g_te = _ic_split(seed, 1, sizes[1], r_te, china, TEST_REGION, digits, targets)
        x_pe, y_pe, g_pe = _ic_split(seed, 2, sizes[2], r_pe, flower, (0, flower.shape[1]), digits, targets)
        return {"x_train": x_tr, "y_train": y_tr, "g_train": g_tr, "x_test": x_te, "y_test": y_te, "g_test": g_te,
                "x_personal": x_pe, "y_personal": y_pe, "g_personal": g_pe}

    return cached("ic", seed, IMAGE_VERSION, gen, tag="x".join(map(str, sizes)))


def _vww_split(seed: int, stream: int, n: int, rows: np.ndarray, photo: np.ndarray, cols: tuple[int, int],
               digits: np.ndarray) -> tuple[np.ndarray, ...]:
    rng = _rng(seed, stream)
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    xs, groups = [], []
    width = cols[1] - cols[0]
    for lab in labels:
        img = _crop(rng, photo, cols, int(rng.integers(96, min(200, width, photo.shape[0]) + 1)), 96)
        if lab:
            r = int(rows[rng.integers(rows.size)])
            img = _paste(rng, img, digits[r], int(rng.integers(32, 65)), ink=2.0)
            groups.append(r)
        else:
            groups.append(-1)
        xs.append(img)
    return _to_u8(np.stack(xs)), labels.astype(np.int64), np.asarray(groups, np.int64)


def vww_data(seed: int = 0, sizes: tuple[int, int, int] = (1500, 250, 300)) -> Arrays:
    """'Is there a digit in this 96x96 photo crop', 2 classes; sizes = (train, test, personal). Group = digits
    row pasted (-1 for none). x arrays are uint8 (use images_float)."""

    def gen() -> Arrays:
        photos, (digits, _) = _photos(), _digits()
        r_tr, r_te, r_pe = _row_split(seed)
        china, flower = photos["china.jpg"], photos["flower.jpg"]
        x_tr, y_tr, g_tr = _vww_split(seed, 0, sizes[0], r_tr, china, TRAIN_REGION, digits)
        x_te, y_te, g_te = _vww_split(seed, 1, sizes[1], r_te, china, TEST_REGION, digits)
        x_pe, y_pe, g_pe = _vww_split(seed, 2, sizes[2], r_pe, flower, (0, flower.shape[1]), digits)
        return {"x_train": x_tr, "y_train": y_tr, "g_train": g_tr, "x_test": x_te, "y_test": y_te, "g_test": g_te,
                "x_personal": x_pe, "y_personal": y_pe, "g_personal": g_pe}

    return cached("vww", seed, IMAGE_VERSION, gen, tag="x".join(map(str, sizes)))


def images_float(x: np.ndarray) -> np.ndarray:
    """Cached uint8 images -> float32 in [0, 1]."""
    return x.astype(np.float32) / np.float32(255.0)


# ---------------------------------------------------------------- anomaly detection (machine sounds)

AD_VERSION = 1
AD_SECONDS = 2.0
AD_MELS, AD_FRAMES, AD_FFT, AD_HOP = 128, 5, 1024, 512
# machine -> (fundamental Hz, harmonic decay, amplitude-modulation Hz, noise level)
MACHINES = {"A": (118.0, 0.75, 6.0, 0.05), "B": (195.0, 0.6, 11.0, 0.08)}


def machine_sound(rng: np.random.Generator, machine: str, anomaly: int = 0) -> np.ndarray:
    """A 2 s clip of a synthetic machine; anomaly 0 none, 1 shifted partials, 2 extra partial, 3 clicks."""
    f0, decay, am_hz, noise = MACHINES[machine]
    n = int(AD_SECONDS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = f0 * rng.uniform(0.98, 1.02)
    shift = rng.uniform(1.04, 1.12) if anomaly == 1 else 1.0
    s = np.zeros(n)
    for k in range(1, 16):
        fk = k * f0 * (shift if k >= 3 else 1.0)
        if fk >= SAMPLE_RATE / 2:
            break
        s += decay ** (k - 1) * rng.uniform(0.85, 1.15) * np.sin(2 * np.pi * fk * t + rng.uniform(0, 2 * np.pi))
    s *= 1.0 + rng.uniform(0.2, 0.4) * np.sin(2 * np.pi * am_hz * rng.uniform(0.95, 1.05) * t)
    s += noise * rng.uniform(0.8, 1.25) * _noise(rng, n) * np.abs(s).max()
    if anomaly == 2:
        s += rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(1500, 6000) * t)
    elif anomaly == 3:
        period = int(SAMPLE_RATE / rng.uniform(8, 30))
        clicks = np.zeros(n)
        clicks[int(rng.integers(period))::period] = rng.uniform(1.0, 2.0)
        s += np.convolve(clicks, np.exp(-np.arange(64) / 8.0) * rng.standard_normal(64), mode="same")
    return (0.3 * s / (np.abs(s).max() + 1e-9)).astype(np.float32)


def log_mel_vectors(clips: np.ndarray) -> np.ndarray:
    """[N, samples] -> [N, vectors, 640]: 128-mel log power of 5 consecutive frames, as the MLPerf Tiny AD
    reference (DCASE 2020 baseline: n_fft 1024, hop 512, power 2, 10*log10)."""
    import tensorflow as tf

    stft = tf.signal.stft(tf.constant(clips, tf.float32), AD_FFT, AD_HOP, AD_FFT, window_fn=tf.signal.hann_window)
    power = tf.square(tf.abs(stft))
    mel_w = tf.signal.linear_to_mel_weight_matrix(AD_MELS, AD_FFT // 2 + 1, SAMPLE_RATE, 0.0, SAMPLE_RATE / 2)
    log_mel = (10.0 * tf.math.log(tf.tensordot(power, mel_w, 1) + 1e-10) / np.log(10.0)).numpy()
    frames = log_mel.shape[1] - AD_FRAMES + 1
    vec = np.concatenate([log_mel[:, i:i + frames] for i in range(AD_FRAMES)], axis=-1)
    return vec.astype(np.float32)


def _ad_split(seed: int, stream: int, machine: str, normal: int, anomalous: int, clip0: int) -> tuple[np.ndarray, ...]:
    rng = _rng(seed, stream)
    kinds = [0] * normal + [1 + i % 3 for i in range(anomalous)]
    clips = np.stack([machine_sound(rng, machine, k) for k in kinds])
    vec = log_mel_vectors(clips)
    per = vec.shape[1]
    y = np.repeat((np.asarray(kinds) > 0).astype(np.int64), per)
    groups = np.repeat(np.arange(clip0, clip0 + len(kinds), dtype=np.int64), per)
    return vec.reshape(-1, vec.shape[-1]), y, groups


def ad_data(seed: int = 0, clips: tuple[int, int, int] = (48, 12, 12)) -> Arrays:
    """640-value log-mel vectors; clips = (train normal clips, test normal = test anomalous clips, personal
    normal = personal anomalous clips). y 1 = anomalous; group = clip number."""

    def gen() -> Arrays:
        x_tr, y_tr, g_tr = _ad_split(seed, 0, "A", clips[0], 0, 0)
        x_te, y_te, g_te = _ad_split(seed, 1, "A", clips[1], clips[1], 10_000)
        x_pe, y_pe, g_pe = _ad_split(seed, 2, "B", clips[2], clips[2], 20_000)
        return {"x_train": x_tr, "y_train": y_tr, "g_train": g_tr, "x_test": x_te, "y_test": y_te, "g_test": g_te,
                "x_personal": x_pe, "y_personal": y_pe, "g_personal": g_pe}

    return cached("ad", seed, AD_VERSION, gen, tag="x".join(map(str, clips)))


def roc_auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of scores (higher = more anomalous) for 0/1 labels (ties count half)."""
    from converter.pipeline import roc_auc as auc

    return auc(scores, y)
