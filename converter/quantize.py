"""Full-integer INT8 post-training quantization with TFLite's converter."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from converter.ir import ConvertError


def quantize_keras(model: Any, calib: np.ndarray, *, max_samples: int = 300) -> bytes:
    """Keras model + float calibration samples -> INT8 .tflite bytes (int8 in/out, per-channel weights)."""
    import tensorflow as tf  # noqa: PLC0415

    in_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    _check_calib(calib, in_shape)
    return _full_int8(tf.lite.TFLiteConverter.from_keras_model(_batch_one(model)), calib[:max_samples], "the model")


def _batch_one(model: Any) -> Any:
    """The same model behind an Input(batch_size=1): a static batch of 1 (what runs on a
    microcontroller) lets TFLite fold the shape arithmetic Keras emits for Flatten and
    Reshape into constants instead of SHAPE/STRIDED_SLICE/PACK ops."""
    import keras  # noqa: PLC0415

    if model.inputs[0].shape[0] == 1:
        return model
    inp = keras.Input(tuple(model.inputs[0].shape[1:]), batch_size=1, name=model.inputs[0].name.split(":")[0])
    return keras.Model(inp, model(inp), name=model.name)


def quantize_saved_model(path: str, calib: np.ndarray, *, max_samples: int = 300) -> bytes:
    """SavedModel folder + float calibration samples -> INT8 .tflite bytes."""
    import tensorflow as tf  # noqa: PLC0415

    _check_calib(calib, None)
    return _full_int8(tf.lite.TFLiteConverter.from_saved_model(path), calib[:max_samples], path)


def _check_calib(calib: np.ndarray, in_shape: tuple[int, ...] | None) -> None:
    if calib.ndim < 2 or calib.shape[0] == 0:
        raise ConvertError("calibration data is empty: pass --calib with an .npz holding 'x' (float32, NHWC)")
    if in_shape is not None and tuple(calib.shape[1:]) != in_shape:
        raise ConvertError(f"calibration samples have shape {tuple(calib.shape[1:])}, the model expects {in_shape}")


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what native code writes to file descriptor 1 to descriptor 2 for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _full_int8(conv: Any, samples: np.ndarray, what: str) -> bytes:
    """Configure a TFLiteConverter for full-integer INT8 (int8 input/output) and run it."""
    import tensorflow as tf  # noqa: PLC0415

    samples = samples.astype(np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        for s in samples:
            yield [s[None, ...]]

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    try:
        with _stdout_to_stderr():  # the converter's C++ prints to fd 1, which would corrupt `--json -`
            return bytes(conv.convert())
    except Exception as exc:  # TF's converter errors are long; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvertError(f"TFLite could not quantize {what} to INT8: {first}") from None
