"""A converted model folder (the output of `octo convert`): its report, fingerprint, input quantization, and
running it natively."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host_tools.errors import OctoError


@dataclass(frozen=True)
class LocalModel:
    """A folder written by `octo convert`."""

    path: Path
    report: dict
    fingerprint: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.report["input"]["shape"])

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.report["output"]["shape"]))

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (NHWC, model units) -> int8 with the model's input parameters."""
        from converter.datafile import check_samples  # noqa: PLC0415
        from converter.pipeline import quantize_inputs  # noqa: PLC0415

        want = tuple(self.input_shape[1:])
        x = check_samples(x, "inputs")
        if tuple(x.shape[1:]) != want:
            if x.ndim == len(want) and tuple(x.shape) == want:
                x = x[None, ...]
            else:
                raise OctoError(f"input has shape {tuple(x.shape)}; the model expects [N, {', '.join(map(str, want))}]")
        return quantize_inputs(x, self.report["input"]["scale"], self.report["input"]["zero_point"])

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        o = self.report["output"]
        return (y.astype(np.float32) - o["zero_point"]) * np.float32(o["scale"])


def load_local_model(path: Path) -> LocalModel:

    rep = path / "report.json"
    tfl = path / "model.tflite"
    if not rep.exists() or not tfl.exists() or not (path / "octo" / "model.c").exists():
        raise OctoError(f"{path} is not a converted model folder (needs report.json, model.tflite, octo/model.c)",
                        hint=f"run `octo convert <model> -o {path}`")
    return LocalModel(path, read_folder_json(rep), zlib.crc32(tfl.read_bytes()))


def read_folder_json(path: Path) -> dict:
    """A JSON file Octo wrote into a model folder (report.json, gates.json, pass_plan.json); a damaged one is a
    one-line error naming it and the command that rewrites it."""
    import json  # noqa: PLC0415

    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OctoError(f"{path} is damaged ({str(exc)[:100]})",
                        hint=f"run `octo convert` (or `octo pass-train`) again to rewrite {path.parent}") from None
    if not isinstance(doc, dict):
        raise OctoError(f"{path} is damaged (a JSON {type(doc).__name__}, not an object)",
                        hint=f"run `octo convert` (or `octo pass-train`) again to rewrite {path.parent}")
    return doc


def run_on_host(model: LocalModel, xq: np.ndarray) -> np.ndarray:
    from converter.hostbuild import build_host_runner, run_host  # noqa: PLC0415

    return run_host(build_host_runner(model.path / "octo"), xq, model.output_size)
