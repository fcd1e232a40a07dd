"""Full-integer INT8 post-training quantization with TFLite's converter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from converter.ir import ConvertError


def quantize_keras(model: Any, calib: np.ndarray, *, max_samples: int = 300) -> bytes:
    """Keras model + float calibration samples -> INT8 .tflite bytes (int8 in/out, per-channel weights)."""
    import tensorflow as tf  # noqa: PLC0415

    if calib.ndim < 2 or calib.shape[0] == 0:
        raise ConvertError("calibration data is empty: pass --calib with an .npz holding 'x' (float32, NHWC)")
    in_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if tuple(calib.shape[1:]) != in_shape:
        raise ConvertError(f"calibration samples have shape {tuple(calib.shape[1:])}, the model expects {in_shape}")
    samples = calib[:max_samples].astype(np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        for s in samples:
            yield [s[None, ...]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    try:
        return bytes(conv.convert())
    except Exception as exc:  # TF's converter errors are long; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvertError(f"TFLite could not quantize the model to INT8: {first}") from None
