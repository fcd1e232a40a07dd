"""The training state blob (docs/TRAINING.md): its header and the weights in it, decoded in this one place.
The layout itself (offsets per layer) comes from the training plan, converter/train_plan.py."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from converter.ir import ConvertError
from converter.train_plan import HEADER_BYTES, NONE, STATE_MAGIC

STATE_HEADER = struct.Struct("<IIIIIIII6f8x")   # the 64-byte header: magic, fingerprint, config CRC, step, ...


def unpack_header(blob: bytes) -> tuple[int, int, int, int]:
    """(magic, fingerprint, config CRC, step) of a state blob, unchecked (the caller compares them)."""
    magic, fp, cfg, step = STATE_HEADER.unpack_from(blob)[:4]
    return int(magic), int(fp), int(cfg), int(step)


def blob_header(blob: bytes) -> dict[str, Any]:
    if len(blob) < HEADER_BYTES:
        raise ConvertError(f"state blob is {len(blob)} bytes, shorter than its {HEADER_BYTES}-byte header")
    magic, fp, cfg, step, prng, flags, init, seed = struct.unpack_from("<8I", blob, 0)
    lr, mom, wd, iscale, prc_k, lac_l2, tscale = struct.unpack_from("<7f", blob, 32)
    if magic != STATE_MAGIC:
        raise ConvertError(f"not an Octo training state (magic {magic:#x}, expected {STATE_MAGIC:#x})")
    return {"fingerprint": fp, "config_crc": cfg, "step": step, "prng": prng, "flags": flags, "init": init,
            "seed": seed, "lr": lr, "momentum": mom, "weight_decay": wd, "input_scale": iscale, "prc_k": prc_k,
            "lac_l2": lac_l2, "target_scale": tscale}  # target_scale: MSE with targets, else 0


def _flash_weights(model: bytes | None, plan: dict[str, Any]) -> dict[int, np.ndarray]:
    """Float weights of the layers whose frozen weights the plan put in flash, as the engine used them
    (recomputed from the model: they are not in the blob)."""
    if model is None or not any(la.get("w_in_flash") for la in plan["layers"]):
        return {}
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415
    from converter.train_plan import flash_weights, trainable_layers  # noqa: PLC0415

    int8 = plan["precision"] == "int8"
    out = {}
    for la in trainable_layers(parse_tflite(model, "model"), plan.get("split", "")):
        if la.has_weights:
            w, s = flash_weights(la, int8)
            out[la.op.index] = w.astype(np.float32) * np.float32(s) if int8 else w
    return out


def decode_weights(plan: dict[str, Any], blob: bytes,
                   model: bytes | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Float weights (TFLite layouts) and biases per IR op index, LAC folded in. Layers whose frozen weights
    stay in flash (not in the blob) take them from model (the converted .tflite); without it they are left
    out (the export keeps the model's own), unless LAC changed them."""
    if len(blob) != plan["state_bytes"]:
        raise ConvertError(f"state blob has {len(blob)} bytes; this training build expects {plan['state_bytes']}")
    hdr = blob_header(blob)
    if hdr["config_crc"] != plan["config_crc"]:
        raise ConvertError("the state blob belongs to another training configuration "
                           f"(config CRC {hdr['config_crc']:#010x}, plan {plan['config_crc']:#010x})")
    int8 = plan["precision"] == "int8"
    lac_on = int8 and bool(hdr["flags"] & 1)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    flash = _flash_weights(model, plan)
    for la in plan["layers"]:
        if la["w_shape"] is None:
            continue
        o = la["offsets"]
        shape = tuple(la["w_shape"])
        n = int(np.prod(shape))
        oc = la["oc"]
        wscale = struct.unpack_from("<f", blob, o["scal"])[0]
        if o["w"] == NONE:  # frozen in flash
            lac_here = lac_on and o["lac"] != NONE
            if int(la["op_index"]) not in flash:
                if lac_here:
                    raise ConvertError(f"{la['name']}: its frozen weights are in flash and LAC changed them: "
                                       "decoding needs the converted model (model.tflite)")
                continue
            w = flash[int(la["op_index"])]
        elif not int8:
            w = np.frombuffer(blob, np.float32, n, o["w"]).astype(np.float32)
        elif la["train_w"]:  # masters M = 256 * hi + lo
            hi = np.frombuffer(blob, np.int8, n, o["w"]).astype(np.int32)
            lo = np.frombuffer(blob, np.int8, n, o["w"] + n).astype(np.int32)
            w = (hi * 256 + lo).astype(np.float32) * np.float32(wscale)
        else:
            w = np.frombuffer(blob, np.int8, n, o["w"]).astype(np.float32) * np.float32(wscale)
        w = w.reshape(shape)
        b = np.frombuffer(blob, np.float32, oc, o["b"]).copy()
        if lac_on and o["lac"] != NONE:
            lac = np.frombuffer(blob, np.float32, 2 * oc, o["lac"])
            gain, beta = 1.0 + lac[:oc], lac[oc:]
            w = w * (gain.reshape(1, 1, 1, -1) if la["kind"] == "DEPTHWISE_CONV_2D"
                     else gain.reshape(-1, *([1] * (len(shape) - 1))))
            b = b * gain + beta
        if la["kind"] == "FULLY_CONNECTED":
            w = w.reshape(shape[0], shape[3])
        out[int(la["op_index"])] = (w.astype(np.float32), b.astype(np.float32))
    return out


def scale_weights(plan: dict[str, Any], blob: bytes, gains: dict[int, float]) -> bytes:
    """The blob with layer i's weights and bias multiplied by gains[i] (plan layer index), nothing else changed.
    FP32: every weight and bias times the gain (float32). INT8: the tensor's scale times the gain (masters or
    int8 weights and the momentum untouched), so both precisions start from the same real weights up to INT8's
    rounding. Layers whose weights stay in flash cannot be scaled (ConvertError)."""
    out = bytearray(blob)
    int8 = plan["precision"] == "int8"
    for i, g in sorted(gains.items()):
        la = plan["layers"][i]
        o = la["offsets"]
        if la["w_shape"] is None or o["w"] == NONE:
            raise ConvertError(f"{la['name']}: no weights in the state blob to scale")
        gf = np.float32(g)
        if int8:
            (s,) = struct.unpack_from("<f", out, o["scal"])
            struct.pack_into("<f", out, o["scal"], np.float32(s) * gf)
        else:
            n = int(np.prod(la["w_shape"]))
            w = np.frombuffer(out, np.float32, n, o["w"]) * gf
            out[o["w"]: o["w"] + 4 * n] = w.astype("<f4").tobytes()
        b = np.frombuffer(out, np.float32, la["oc"], o["b"]) * gf
        out[o["b"]: o["b"] + 4 * la["oc"]] = b.astype("<f4").tobytes()
    return bytes(out)
