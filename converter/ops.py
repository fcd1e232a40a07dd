"""Lowering of each supported TFLite op to a call of an Octo C kernel.

One ``Lowering`` per op kind: ``check`` validates (clear ConvertError naming the
op), ``macs`` counts nominal multiply-accumulates (padding taps included),
``scratch`` returns the kernel's scratch bytes, ``alias`` says whether the
output may share the input's buffer, ``emit`` writes the C: constant arrays
(weights, requantization tables, parameter structs) and the kernel call.
All parameter math is in converter/qmath.py and mirrors TFLM's Prepare().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from converter.ir import ConvertError, Graph, Op, Tensor


@dataclass
class EmitCtx:
    """Collects C declarations; gives kernels pointers into the arena."""

    graph: Graph
    tensor_offset: dict[int, int]
    scratch_offset: dict[int, int]
    decls: list[str] = field(default_factory=list)

    def array(self, name: str, ctype: str, values: np.ndarray, per_line: int = 16) -> str:
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0:
            flat = np.zeros(1, flat.dtype)
        rows = [", ".join(str(int(v)) for v in flat[i : i + per_line]) for i in range(0, flat.size, per_line)]
        body = ",\n    ".join(rows)
        self.decls.append(f"static const {ctype} {name}[{flat.size}] __attribute__((aligned(4))) = {{\n    {body}\n}};")
        return name

    def struct(self, ctype: str, name: str, fields: dict[str, object]) -> str:
        inits = ", ".join(f".{k} = {v}" for k, v in fields.items())
        self.decls.append(f"static const {ctype} {name} = {{{inits}}};")
        return name

    def dims(self, name: str, shape: tuple[int, ...]) -> str:
        n, h, w, c = to_nhwc(shape)
        return self.struct("octo_dims_t", name, {"n": n, "h": h, "w": w, "c": c})

    def ptr(self, tensor: int, ctype: str = "int8_t") -> str:
        return f"(({ctype} *)(arena + {self.tensor_offset[tensor]}u))"

    def scratch(self, op_index: int, ctype: str = "int16_t") -> str:
        return f"(({ctype} *)(arena + {self.scratch_offset[op_index]}u))"


def to_nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) == 4:
        return shape[0], shape[1], shape[2], shape[3]
    if len(shape) == 3:
        return shape[0], 1, shape[1], shape[2]
    if len(shape) == 2:
        return shape[0], 1, 1, shape[1]
    if len(shape) == 1:
        return 1, 1, 1, shape[0]
    return 1, 1, 1, 1


def act_tensor(g: Graph, op: Op, ti: int, role: str) -> Tensor:
    """An int8 per-tensor-quantized activation tensor, or a clear error."""
    if ti < 0:
        raise ConvertError(f"{op.label(g)}: missing {role} tensor")
    t = g.tensors[ti]
    if t.dtype != "int8":
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} is {t.dtype}; Octo runs full-integer INT8 "
                           "models only (convert with an int8 representative dataset and int8 input/output)")
    if t.scale is None or t.scale.size != 1:
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} lacks per-tensor quantization parameters")
    return t


def const_tensor(g: Graph, op: Op, ti: int, role: str, dtype: str) -> Tensor:
    if ti < 0:
        raise ConvertError(f"{op.label(g)}: missing {role} tensor")
    t = g.tensors[ti]
    if not t.is_const:
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} must be a constant")
    if t.dtype != dtype:
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} is {t.dtype}, expected {dtype} "
                           "(hybrid or float models are not supported: quantize to full INT8)")
    return t


def check_activation(g: Graph, op: Op, out: Tensor) -> None:
    """The op's fused activation must be one TFLM supports for int8 (a ConvertError naming the op)."""
    from converter import qmath  # noqa: PLC0415

    act = str(op.options.get("activation", "NONE"))
    try:
        qmath.activation_range(act, *out.qparams())
    except ConvertError:
        raise ConvertError(f"{op.label(g)}: fused activation {act} is not supported (NONE, RELU, RELU6, "
                           "RELU_N1_TO_1)") from None


def tflite_padding(padding: str, in_size: int, filt: int, stride: int, dilation: int, out_size: int) -> int:
    """Leading padding as TFLite's ComputePaddingWithOffset (same formula for SAME and VALID)."""
    eff = (filt - 1) * dilation + 1
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2


@dataclass(frozen=True)
class Lowering:
    check: Callable[[Graph, Op], None]
    macs: Callable[[Graph, Op], int]
    emit: Callable[[EmitCtx, Graph, Op], str]
    scratch: Callable[[Graph, Op], int] = lambda g, op: 0
    alias: Callable[[Graph, Op], int | None] = lambda g, op: None
    # In-place: bytes D by which the output may trail its (first) input in one shared
    # buffer (converter/inplace.py), or None when the kernel cannot run in place.
    inplace_lag: Callable[[Graph, Op], int | None] = lambda g, op: None


def all_lowerings() -> dict[str, Lowering]:
    """Every op's lowering; each module under converter/lower/ exports LOWERINGS."""
    from converter.lower import add, conv, depthwise_conv, fully_connected, mean, pad, pool, reshape, softmax  # noqa: PLC0415

    table: dict[str, Lowering] = {}
    for mod in (conv, depthwise_conv, fully_connected, pool, mean, add, reshape, pad, softmax):
        table.update(mod.LOWERINGS)
    return table


def spatial_lag(g: Graph, op: Op, stride: tuple[int, int], pad: tuple[int, int], gathers_own_pixel: bool) -> int:
    """inplace_lag for a 4-D NHWC raster-order op: see converter/inplace.py."""
    from converter.inplace import raster_lag  # noqa: PLC0415

    a, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    _, ih, iw, ic = to_nhwc(a.shape)
    _, oh, ow, oc = to_nhwc(o.shape)
    return raster_lag((ih, iw), ic, (oh, ow), oc, stride, pad, gathers_own_pixel)


def lowering_for(g: Graph, op: Op) -> Lowering:
    from converter.ir import SUPPORTED_OPS  # noqa: PLC0415

    low = all_lowerings().get(op.kind)
    if low is None:
        supported = ", ".join(SUPPORTED_OPS)
        if op.kind in SUPPORTED_OPS:
            raise ConvertError(f"{op.label(g)}: {op.kind} is on Octo's list but has no kernel in this build")
        raise ConvertError(f"{op.label(g)}: unsupported op {op.kind}. Supported: {supported}. "
                           "Replace the layer or express it with supported ops.")
    return low
