"""RESHAPE lowering (also Keras Flatten/Reshape): no kernel, the output aliases the input buffer.

TFLM's RESHAPE copies the raw bytes (no requantization), so sharing the buffer
is exact; the planner gives both tensors one arena slot.
"""

from __future__ import annotations

from converter.ir import ConvertError, Graph, Op
from converter.ops import EmitCtx, Lowering, act_tensor


def _check(g: Graph, op: Op) -> None:
    if not op.inputs or len(op.outputs) != 1:
        raise ConvertError(f"{op.label(g)}: RESHAPE needs an input and one output")
    a = act_tensor(g, op, op.inputs[0], "input")
    o = act_tensor(g, op, op.outputs[0], "output")
    if a.is_const:
        raise ConvertError(f"{op.label(g)}: RESHAPE of a constant tensor should have been folded by the "
                           "TFLite converter")
    if a.size != o.size:
        raise ConvertError(f"{op.label(g)}: RESHAPE from {a.shape} ({a.size} elements) to {o.shape} "
                           f"({o.size} elements)")


def _macs(g: Graph, op: Op) -> int:
    return 0


def _alias(g: Graph, op: Op) -> int:
    return op.inputs[0]


def _emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    # The arena reference keeps a model made only of RESHAPEs free of an unused-parameter warning.
    return "((void)arena, OCTO_OK) /* RESHAPE: output shares the input's buffer */"


LOWERINGS = {"RESHAPE": Lowering(_check, _macs, _emit, alias=_alias)}
