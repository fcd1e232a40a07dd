"""Octo's model IR: tensors with quantization, ops with typed options.

Produced by converter/tflite_reader.py from a validated .tflite flatbuffer and
consumed by the planner, the code generator and the reports. Shapes are NHWC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "ADD",
    "RESHAPE",
    "PAD",
    "PADV2",
    "MEAN",
    "SOFTMAX",
)


class ConvertError(Exception):
    """A model the converter cannot accept; the message says what, where and what to do."""


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                              # "int8", "int32", "int16", "float32", ...
    scale: np.ndarray | None = None         # float32 per-tensor (1 value) or per-channel
    zero_point: np.ndarray | None = None    # int64, same length as scale
    quant_dim: int = 0                      # axis of per-channel quantization
    data: np.ndarray | None = None          # constant data (weights, bias, shapes), else None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        itemsize = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int64": 8}.get(self.dtype, 4)
        return self.size * itemsize

    @property
    def per_channel(self) -> bool:
        return self.scale is not None and self.scale.size > 1

    def qparams(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantized tensor."""
        if self.scale is None or self.zero_point is None or self.scale.size != 1:
            raise ConvertError(f"tensor {self.name!r} has no per-tensor quantization parameters")
        return float(self.scale[0]), int(self.zero_point[0])


@dataclass
class Op:
    index: int
    kind: str                       # builtin name, e.g. "CONV_2D"
    inputs: list[int]               # tensor indices (-1 = optional input absent)
    outputs: list[int]
    options: dict[str, object] = field(default_factory=dict)

    def label(self, graph: Graph) -> str:
        out = graph.tensors[self.outputs[0]].name if self.outputs else "?"
        return f"op {self.index} ({self.kind}, output {out!r})"


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str = ""

    def tensor(self, i: int) -> Tensor:
        return self.tensors[i]

    @property
    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> Tensor:
        return self.tensors[self.outputs[0]]
