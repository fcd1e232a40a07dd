"""Weight layout per layer under a flash budget (`octo convert --flash N`).

Every packed CONV_2D / FULLY_CONNECTED layer stores its weights at 1 byte each by default
(octo_conv_s8_packed8). On Cortex-M4/M7 (DSP) the 2-byte layout (int16 in SXTB16 lane order,
octo_conv_s8_packed) saves the SXTB16 of every weight word, so it runs faster (kernel_bench:
conv 3x3 16->16 1.23 instead of 1.63 instructions/MAC, FC 256->64 1.05 instead of 1.33), at
about twice the weight flash. With a budget of N bytes of constant data (weights, biases,
requantization tables: report.json's totals.weight_bytes; code not included), the layers with the
most MACs per extra byte (the most output pixels) get the 2-byte layout while it fits. On Helium
(virtual-m55) both layouts are the same int8 rows, so the choice only matters for DSP cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from converter.ir import ConvertError, Graph, Op
from converter.lower.conv import OC_BLOCK, patch_len, patch_len8


def _packed_geometry(g: Graph, op: Op) -> tuple[int, int, int] | None:
    """(out channels, kh*kw*in_c, output pixels) of a layer on the packed kernel, None for the others."""
    from converter.ops import lowering_for  # noqa: PLC0415

    if op.kind not in ("CONV_2D", "FULLY_CONNECTED"):
        return None
    low = lowering_for(g, op)
    if low.scratch(g, op) == 0:  # not packable: the reference kernel with plain int8 weights
        return None
    f = g.tensors[op.inputs[1]]
    o = g.tensors[op.outputs[0]]
    oc = int(f.shape[0])
    return oc, int(np.prod(f.shape[1:])), int(o.size // max(oc, 1))


def extra_bytes(oc: int, k: int) -> int:
    """Flash the 2-byte layout of an [oc, k] packed layer costs beyond the 1-byte one."""
    blocks = -(-oc // OC_BLOCK)
    return blocks * OC_BLOCK * (2 * patch_len(1, 1, k) - patch_len8(1, 1, k))


def choose_wide(g: Graph, weight_bytes_1: int, budget: int | None) -> tuple[set[int], dict[str, Any]]:
    """(ops to store at 2 bytes per weight, report.json's "weight_layout") for a model whose 1-byte weights take
    weight_bytes_1 bytes. ConvertError when they exceed the budget."""
    cands = []
    for op in g.ops:
        geo = _packed_geometry(g, op)
        if geo is not None:
            extra = extra_bytes(geo[0], geo[1])
            cands.append((geo[0] * geo[1] * geo[2] / extra, extra, op))  # MACs per extra byte
    doc: dict[str, Any] = {"default_bytes_per_weight": 1, "flash_budget": budget, "packed_layers": len(cands),
                           "two_byte_layers": [], "extra_bytes": 0}
    if budget is None:
        return set(), doc
    if weight_bytes_1 > budget:
        raise ConvertError(f"--flash {budget}: the model's weights take {weight_bytes_1:,} bytes even at 1 byte per "
                           "weight; raise the budget or use a smaller model")
    room = budget - weight_bytes_1
    wide: set[int] = set()
    for _, extra, op in sorted(cands, key=lambda c: (-c[0], c[1], c[2].index)):
        if extra <= room:
            wide.add(op.index)
            room -= extra
            doc["two_byte_layers"].append(op.index)
            doc["extra_bytes"] += extra
    doc["two_byte_layers"].sort()
    return wide, doc


def layout_line(doc: dict[str, Any]) -> str:
    """The one line `octo convert` says about the weight layout."""
    wide, n_packed = len(doc["two_byte_layers"]), doc["packed_layers"]
    if doc["flash_budget"] is None:
        return "weights: 1 byte each (--flash N lets the fastest layers use 2 bytes on DSP cores)"
    return (f"weights: 1 byte each, {wide} of {n_packed} packed layers at 2 bytes (+{doc['extra_bytes']:,} B, "
            f"faster on Cortex-M4/M7) under --flash {doc['flash_budget']:,}")
