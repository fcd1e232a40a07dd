"""Weights on the wire and in the board's state blob.

- ``blob_weights`` / ``write_weights``: the float weights of a training build's trained tensors, read from and
  written into the state blob (docs/TRAINING.md "State blob"): INT8 trained weights as 16-bit masters
  ``M = 256 * hi + lo`` at a per-tensor scale chosen as octo_trainer_init does (max |M| = 28000), FP32 as float;
  biases float in both. Momentum, ranges and PRNG are left as the blob has them (fresh after TRAIN_INIT).
- ``encode_delta`` / ``decode_delta``: an update travels as ``q = round(delta / s)`` per element plus one
  float32 scale ``s = max|delta| / L`` per tensor (``KEY.q``, ``KEY.s``), ``L = 2**(bits-1) - 1``. At 8 bits
  ``KEY.q`` is int8; below 8, ``q + L`` is packed LSB first (``bits`` bits per element, host_tools/sgq pack_bits)
  into a uint8 array of ``ceil(n * bits / 8)`` bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from converter.train_plan import NONE

W_TARGET = 28000.0   # octo_trainer_internal.h: the masters' largest |M| after init or a rescale
W_LIMIT = 32639      # |M| bound (hi stays within int8)
Q_SUFFIX, S_SUFFIX = ".q", ".s"
UPLINK_BITS = (8, 4, 3, 2)  # delta widths offered (2 bits: -1, 0, +1 times the scale)


def tensor_layers(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's layers with weights whose weights live in the state blob (trained or frozen-in-RAM)."""
    return [la for la in plan["layers"] if la["w_shape"] is not None and la["offsets"]["w"] != NONE]


def tensor_names(plan: dict[str, Any]) -> list[str]:
    out = []
    for la in tensor_layers(plan):
        out += [f"{la['name']}.w", f"{la['name']}.b"]
    return out


def check_plan(plan: dict[str, Any]) -> None:
    """Fleet training ships every weight tensor: it needs a build that keeps them in the state blob."""
    from host_tools.errors import OctoError  # noqa: PLC0415

    missing = [la["name"] for la in plan["layers"] if la["w_shape"] is not None and la["offsets"]["w"] == NONE]
    if missing:
        raise OctoError(f"layers {', '.join(missing)} keep frozen weights in flash; a federation averages every "
                        "weight tensor", hint="use --update all")


def blob_weights(plan: dict[str, Any], blob: bytes) -> dict[str, np.ndarray]:
    """Float weights (flat, the blob's element order) and biases per tensor name, read from a state blob."""
    int8 = plan["precision"] == "int8"
    out: dict[str, np.ndarray] = {}
    for la in tensor_layers(plan):
        o = la["offsets"]
        n = int(np.prod(la["w_shape"]))
        scale = np.float32(struct.unpack_from("<f", blob, o["scal"])[0])
        if not int8:
            w = np.frombuffer(blob, np.float32, n, o["w"]).astype(np.float32)
        elif la["train_w"]:
            hi = np.frombuffer(blob, np.int8, n, o["w"]).astype(np.int32)
            lo = np.frombuffer(blob, np.int8, n, o["w"] + n).astype(np.int32)
            w = (hi * 256 + lo).astype(np.float32) * scale
        else:
            w = np.frombuffer(blob, np.int8, n, o["w"]).astype(np.float32) * scale
        out[f"{la['name']}.w"] = w
        out[f"{la['name']}.b"] = np.frombuffer(blob, np.float32, la["oc"], o["b"]).astype(np.float32)
    return out


def write_weights(plan: dict[str, Any], blob: bytes, weights: dict[str, np.ndarray]) -> bytes:
    """The blob with the given float weights written in (same names and shapes as blob_weights)."""
    int8 = plan["precision"] == "int8"
    b = bytearray(blob)
    for la in tensor_layers(plan):
        o = la["offsets"]
        n = int(np.prod(la["w_shape"]))
        w = np.asarray(weights[f"{la['name']}.w"], np.float32).reshape(-1)
        bias = np.asarray(weights[f"{la['name']}.b"], np.float32).reshape(-1)
        if w.size != n or bias.size != la["oc"]:
            raise ValueError(f"{la['name']}: got {w.size} weights / {bias.size} biases, the plan has {n} / {la['oc']}")
        if not int8:
            b[o["w"] : o["w"] + 4 * n] = w.astype("<f4").tobytes()
        else:
            wmax = np.float32(np.max(np.abs(w))) if n else np.float32(0)
            if not wmax > 0:
                wmax = np.float32(1e-6)
            if la["train_w"]:
                s = np.float32(wmax / np.float32(W_TARGET))
                m = np.clip(np.rint(w / s), -W_LIMIT, W_LIMIT).astype(np.int32)
                hi = (m + 128) >> 8
                lo = m - hi * 256
                b[o["w"] : o["w"] + n] = hi.astype(np.int8).tobytes()
                b[o["w"] + n : o["w"] + 2 * n] = lo.astype(np.int8).tobytes()
            else:
                s = np.float32(wmax / np.float32(127.0))
                b[o["w"] : o["w"] + n] = np.clip(np.rint(w / s), -127, 127).astype(np.int8).tobytes()
            struct.pack_into("<f", b, o["scal"], float(s))
        b[o["b"] : o["b"] + 4 * la["oc"]] = bias.astype("<f4").tobytes()
    return bytes(b)


def encode_delta(new: dict[str, np.ndarray], base: dict[str, np.ndarray],
                 rng: np.random.Generator | None = None, bits: int = 8) -> dict[str, np.ndarray]:
    """The delta per tensor at `bits` bits: KEY.q and KEY.s float32[1] (s = max|d| / L). rng: stochastic rounding
    (unbiased), else round to nearest."""
    from host_tools.sgq.codec import pack_bits  # noqa: PLC0415

    if bits not in UPLINK_BITS:
        raise ValueError(f"delta width {bits} bits is not one of {UPLINK_BITS}")
    lim = (1 << (bits - 1)) - 1
    out: dict[str, np.ndarray] = {}
    for k, w in new.items():
        d = np.asarray(w, np.float32) - np.asarray(base[k], np.float32).reshape(np.shape(w))
        amax = float(np.max(np.abs(d))) if d.size else 0.0
        s = np.float32(amax / lim) if amax > 0 else np.float32(1.0)
        f = d / s
        f = np.floor(f + rng.random(f.shape, dtype=np.float32)) if rng is not None else np.rint(f)
        q = np.clip(f, -lim, lim).astype(np.int8)
        out[k + Q_SUFFIX] = q if bits == 8 else np.frombuffer(pack_bits((q + lim).astype(np.uint8), bits), np.uint8)
        out[k + S_SUFFIX] = np.array([s], np.float32)
    return out


def decode_delta(payload: dict[str, np.ndarray], base: dict[str, np.ndarray], bits: int = 8) -> dict[str, np.ndarray]:
    """The weights base + q * s of an encode_delta payload. A payload whose sizes do not fit base raises
    ValueError naming the tensor."""
    from host_tools.sgq.codec import unpack_bits  # noqa: PLC0415

    lim = (1 << (bits - 1)) - 1
    out = {}
    for k, w in base.items():
        if k + Q_SUFFIX not in payload or k + S_SUFFIX not in payload:
            raise ValueError(f"update has no {k}{Q_SUFFIX} / {k}{S_SUFFIX}")
        q, s = np.asarray(payload[k + Q_SUFFIX]), np.asarray(payload[k + S_SUFFIX], np.float32).reshape(-1)
        n = int(np.size(w))
        want = n if bits == 8 else (n * bits + 7) // 8
        if q.size != want or s.size != 1 or not np.isfinite(s[0]):
            raise ValueError(f"{k}: update holds {q.size} bytes and {s.size} scale(s); a {bits}-bit delta of "
                             f"{n} values needs {want} and 1 finite scale")
        if bits == 8:
            qv = q.astype(np.int8).astype(np.float32)
        else:
            u, _ = unpack_bits(q.astype(np.uint8).tobytes(), n, bits)
            qv = u.astype(np.float32) - np.float32(lim)
        out[k] = np.asarray(w, np.float32) + qv.reshape(np.shape(w)) * s[0]
    return out


def payload_bytes(arrays: dict[str, np.ndarray]) -> int:
    """Bytes of the tensors' data (what an update costs on the wire, without framing)."""
    return int(sum(np.asarray(a).nbytes for a in arrays.values()))
