"""Graph rewrites applied to the IR before validation and lowering (converter/codegen.py compile_graph).

Both patterns come from .tflite files converted with a dynamic batch dimension
(converter/quantize.py converts Keras models with a static batch of 1, where
TFLite folds them itself; files from elsewhere often keep batch None):

1. Static RESHAPE shapes. Keras' Flatten/Reshape make the TFLite converter
   compute the target shape at run time (SHAPE -> STRIDED_SLICE -> PACK ->
   RESHAPE). Octo runs batch 1 with static shapes and RESHAPE is a buffer
   alias, so the shape input is dropped and the int32 shape arithmetic that
   fed only it is removed.
2. Dilated convolutions. TFLite emits SPACE_TO_BATCH_ND -> CONV_2D /
   DEPTHWISE_CONV_2D (VALID, stride 1) -> BATCH_TO_SPACE_ND. When the three are
   exactly one dilated convolution (see _fuse_dilated_conv) they are replaced
   by that convolution with dilation_h/w = block shape. The result equals TFLM
   on the batch-1 conversion of the same model (one dilated conv, same
   quantization). TFLM on the three-op graph itself is no reference: the
   stored shapes have batch 1 instead of block_h * block_w, so it computes one
   phase only, and its int8 SPACE_TO_BATCH_ND pads with 0, not the zero point.

Ops are renumbered 0..n-1 afterwards (the planner uses op indices as time).
"""

from __future__ import annotations

import numpy as np

from converter.ir import Graph, Op
from converter.ops import tflite_padding

# Ops that only compute int32 shape vectors; removed when nothing reads their output.
_SHAPE_OPS = frozenset({"SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "GATHER", "SLICE", "CAST", "SQUEEZE",
                        "EXPAND_DIMS", "REDUCE_PROD", "MUL", "FILL"})


def rewrite_graph(g: Graph) -> Graph:
    """Apply every rewrite in place; returns g."""
    _static_reshapes(g)
    i = 0
    while i < len(g.ops):
        if not _fuse_dilated_conv(g, i):
            i += 1
    for n, op in enumerate(g.ops):
        op.index = n
    return g


def _consumers(g: Graph) -> dict[int, list[Op]]:
    cons: dict[int, list[Op]] = {}
    for op in g.ops:
        for t in op.inputs:
            if t >= 0:
                cons.setdefault(t, []).append(op)
    return cons


def _static_reshapes(g: Graph) -> None:
    changed = False
    for op in g.ops:
        if op.kind == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1] >= 0 and not g.tensors[op.inputs[1]].is_const:
            op.inputs = op.inputs[:1]
            changed = True
    while changed:
        changed = False
        cons = _consumers(g)
        for op in list(g.ops):
            dead = all(t not in cons and t not in g.outputs for t in op.outputs)
            int_only = all(g.tensors[t].dtype in ("int32", "int64") for t in op.outputs)
            if dead and int_only and op.kind in _SHAPE_OPS:
                g.ops.remove(op)
                changed = True


def _const_ints(g: Graph, op: Op, pos: int, shape: tuple[int, ...]) -> np.ndarray | None:
    if pos >= len(op.inputs) or op.inputs[pos] < 0:
        return None
    t = g.tensors[op.inputs[pos]]
    if t.data is None or t.dtype not in ("int32", "int64") or tuple(t.data.shape) != shape:
        return None
    return np.asarray(t.data, np.int64)


def _same_quant(g: Graph, a: int, b: int) -> bool:
    ta, tb = g.tensors[a], g.tensors[b]
    if ta.scale is None or tb.scale is None or ta.scale.size != 1 or tb.scale.size != 1:
        return False
    return ta.qparams() == tb.qparams() and ta.dtype == tb.dtype


def _fuse_dilated_conv(g: Graph, i: int) -> bool:
    """Fuse g.ops[i] (SPACE_TO_BATCH_ND) with the conv and BATCH_TO_SPACE_ND after it, if exact."""
    s2b = g.ops[i]
    if s2b.kind != "SPACE_TO_BATCH_ND" or len(s2b.inputs) != 3 or len(s2b.outputs) != 1:
        return False
    cons = _consumers(g)
    mid = s2b.outputs[0]
    conv_users = cons.get(mid, [])
    if len(conv_users) != 1 or mid in g.outputs:
        return False
    conv = conv_users[0]
    if conv.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D") or conv.inputs[0] != mid or len(conv.outputs) != 1:
        return False
    conv_out = conv.outputs[0]
    b2s_users = cons.get(conv_out, [])
    if len(b2s_users) != 1 or conv_out in g.outputs:
        return False
    b2s = b2s_users[0]
    if b2s.kind != "BATCH_TO_SPACE_ND" or len(b2s.inputs) != 3 or b2s.inputs[0] != conv_out:
        return False
    block = _const_ints(g, s2b, 1, (2,))
    pads = _const_ints(g, s2b, 2, (2, 2))
    block2 = _const_ints(g, b2s, 1, (2,))
    crops = _const_ints(g, b2s, 2, (2, 2))
    if block is None or pads is None or block2 is None or crops is None or not np.array_equal(block, block2):
        return False
    if np.any(block < 1) or np.any(pads < 0) or np.any(crops < 0):
        return False
    opt = conv.options
    if (opt.get("padding") != "VALID" or int(opt.get("stride_h", 0)) != 1 or int(opt.get("stride_w", 0)) != 1
            or int(opt.get("dilation_h", 1)) != 1 or int(opt.get("dilation_w", 1)) != 1):
        return False
    x, y = s2b.inputs[0], b2s.outputs[0]
    # SPACE_TO_BATCH_ND pads with the zero point and both reshuffles copy raw bytes, so the conv's
    # implicit zero padding reproduces them only when quantization is unchanged along the chain.
    if not (_same_quant(g, x, mid) and _same_quant(g, conv_out, y)):
        return False
    xs, ys = g.tensors[x].shape, g.tensors[y].shape
    filt = g.tensors[conv.inputs[1]].shape
    if len(xs) != 4 or len(ys) != 4 or len(filt) != 4 or xs[0] != 1 or ys[0] != 1:
        return False
    fused: dict[str, object] = {}
    valid = True
    for axis, (name, k) in enumerate((("h", filt[1]), ("w", filt[2]))):
        d = int(block[axis])
        in_size, out_size = xs[1 + axis], ys[1 + axis]
        padded = in_size + int(pads[axis].sum())
        eff = (k - 1) * d + 1
        lead = int(pads[axis, 0] - crops[axis, 0])
        # Exactly one dilated stride-1 conv over x with `lead` rows of zero-point padding on top, cropped to
        # out_size, and the lowering's padding formula must give that same `lead`.
        if padded % d != 0 or out_size != padded - eff + 1 - int(crops[axis].sum()):
            return False
        if lead != tflite_padding("SAME", in_size, k, 1, d, out_size):
            return False
        valid = valid and lead == 0 and out_size == in_size - eff + 1
        fused[f"dilation_{name}"] = d
    padding = "VALID" if valid else "SAME"
    conv.options = {**opt, "padding": padding, **fused}
    conv.inputs = [x, *conv.inputs[1:]]
    conv.outputs = [y]
    g.ops.remove(s2b)
    g.ops.remove(b2s)
    return True
