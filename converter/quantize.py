"""Full-integer INT8 post-training quantization with TFLite's converter."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


# -- user models: op check first, then calibration in a child process ---------------------------------------
# TensorFlow's calibrator can crash the whole process (a Keras LSTM segfaults it): a model file the user gives
# is quantized by a child `python -m converter.quantize`, so a crash becomes one line, and ops Octo cannot run
# are refused, naming the layer, before any calibration starts.
UNSUPPORTED_KINDS = ("WHILE", "IF", "CALL_ONCE", "LSTM", "RNN", "GRU", "CUSTOM", "STABLEHLO")
WORKER_REFUSED = 3           # the child's exit code for a ConvertError (message on its stdout)
CALIBRATION_TIMEOUT_S = 1800.0
_ROOT = Path(__file__).resolve().parent.parent   # the checkout: the child imports converter from it


def _layer_of(tensor_name: str, layer_names: list[str]) -> str:
    """The Keras layer a TFLite tensor came from ("model/my_lstm_1/while" -> "my_lstm"), else the tensor."""
    for part in reversed(tensor_name.split(";", maxsplit=1)[0].split("/")):
        for name in sorted(layer_names, key=len, reverse=True):
            if part == name or (part.startswith(name + "_") and part[len(name) + 1:].isdigit()):
                return name
    return tensor_name


def check_float_ops(model: bytes, layer_names: list[str], what: str) -> None:
    """Refuse recurrent, control-flow and custom ops in a float .tflite, naming the layer they come from."""
    import tflite  # noqa: PLC0415

    from converter.ir import SUPPORTED_OPS  # noqa: PLC0415

    m = tflite.Model.GetRootAs(model, 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    sg = m.Subgraphs(0)
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if any(k in kind for k in UNSUPPORTED_KINDS):
            out = sg.Tensors(op.Outputs(0)).Name().decode("utf-8", "replace") if op.OutputsLength() else ""
            raise ConvertError(f"{what}: layer {_layer_of(out, layer_names)!r} becomes TFLite {kind}, which Octo "
                               f"cannot run on a microcontroller (supported: {', '.join(SUPPORTED_OPS)}, with "
                               "activations fused); replace the layer, e.g. an LSTM by 1-D convolutions")
    if m.SubgraphsLength() != 1:
        raise ConvertError(f"{what} has {m.SubgraphsLength()} subgraphs (control flow); Octo runs one")


def quantize_file(src: Path, calib: np.ndarray, *, max_samples: int = 300) -> bytes:
    """A .keras/.h5 file or SavedModel folder -> INT8 .tflite bytes, in a child process (see above)."""
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="octo-quantize-") as tmp:
        np.save(Path(tmp) / "calib.npy", calib[:max_samples].astype(np.float32))
        out = Path(tmp) / "model.tflite"
        try:
            cmd = [sys.executable, "-m", "converter.quantize", str(src.resolve()), str(Path(tmp) / "calib.npy"),
                   str(out)]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                  timeout=CALIBRATION_TIMEOUT_S, check=False, cwd=_ROOT)
        except subprocess.TimeoutExpired:
            raise ConvertError(f"TensorFlow's INT8 calibration of {src} took over {CALIBRATION_TIMEOUT_S:.0f} s; "
                               "pass fewer or smaller --calib samples") from None
        if proc.returncode == WORKER_REFUSED:
            last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else f"cannot quantize {src}"
            raise ConvertError(last)
        if proc.returncode < 0:
            import signal  # noqa: PLC0415

            sig = signal.Signals(-proc.returncode).name
            raise ConvertError(f"TensorFlow crashed ({sig}) while quantizing {src} to INT8; the model's ops passed "
                               "Octo's check, so please report it with the model (the tool log has TensorFlow's "
                               "last words)")
        if proc.returncode != 0 or not out.exists():
            raise ConvertError(f"quantizing {src} failed in the child process (exit code {proc.returncode}); "
                               "see the tool log")
        return out.read_bytes()


def _worker(src: Path, calib_path: Path, out: Path) -> int:
    """The child: load the model, check its float ops, calibrate, write the INT8 .tflite."""
    import tensorflow as tf  # noqa: PLC0415

    calib = np.load(calib_path)
    try:
        if src.is_dir():
            float_model = tf.lite.TFLiteConverter.from_saved_model(str(src)).convert()
            check_float_ops(bytes(float_model), [], str(src))
            data = quantize_saved_model(str(src), calib)
        else:
            import keras  # noqa: PLC0415

            try:
                model = keras.models.load_model(src, compile=False)
            except Exception as exc:  # keras raises many types for bad files
                raise ConvertError(f"cannot load Keras model {src}: {str(exc).splitlines()[0]}") from None
            in_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
            _check_calib(calib, in_shape)
            with _stdout_to_stderr():
                float_model = tf.lite.TFLiteConverter.from_keras_model(_batch_one(model)).convert()
            check_float_ops(bytes(float_model), [layer.name for layer in model.layers], str(src))
            data = _full_int8(tf.lite.TFLiteConverter.from_keras_model(_batch_one(model)), calib, "the model")
    except ConvertError as exc:
        print(str(exc), flush=True)
        return WORKER_REFUSED
    out.write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
