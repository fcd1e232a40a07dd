"""Static activation-arena planning from tensor lifetimes.

Every non-constant tensor (graph input, intermediates, output) and every op's
scratch buffer gets an offset in one arena. A buffer is live from the op that
writes it to the last op that reads it (graph inputs from the start, outputs to
the end). Buffers are placed largest first at the lowest offset that does not
overlap any already-placed buffer whose lifetime intersects (the same greedy
strategy as TFLM's planner, so the comparison is like for like). RESHAPE
outputs alias their input (no copy, no second buffer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 16


@dataclass
class Buffer:
    key: str                    # "t<index>" for tensors, "s<op>" for scratch
    size: int
    first: int                  # first op index at which it is live
    last: int                   # last op index at which it is live
    offset: int = -1
    tensors: list[int] = field(default_factory=list)


@dataclass
class Plan:
    buffers: list[Buffer]
    tensor_offset: dict[int, int]
    scratch_offset: dict[int, int]
    arena_bytes: int

    def live_bytes_at(self, op_index: int) -> int:
        return sum(b.size for b in self.buffers if b.first <= op_index <= b.last)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_arena(n_ops: int, tensor_sizes: dict[int, int], producers: dict[int, int], consumers: dict[int, list[int]],
               graph_inputs: list[int], graph_outputs: list[int], aliases: dict[int, int],
               scratch: dict[int, int]) -> Plan:
    """aliases maps an output tensor to the input tensor whose buffer it reuses."""
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while t in aliases:
            t = aliases[t]
        return t

    buffers: dict[str, Buffer] = {}
    for t, size in tensor_sizes.items():
        r = find(t)
        root[t] = r
        first = -1 if t in graph_inputs else producers.get(t, 0)
        uses = consumers.get(t, [])
        last = n_ops if t in graph_outputs else (max(uses) if uses else first)
        key = f"t{r}"
        b = buffers.get(key)
        if b is None:
            buffers[key] = Buffer(key, _align(size), first, last, tensors=[t])
        else:
            b.size = max(b.size, _align(size))
            b.first = min(b.first, first)
            b.last = max(b.last, last)
            b.tensors.append(t)
    for op_i, size in scratch.items():
        if size > 0:
            buffers[f"s{op_i}"] = Buffer(f"s{op_i}", _align(size), op_i, op_i)

    placed: list[Buffer] = []
    for b in sorted(buffers.values(), key=lambda x: (-x.size, x.first, x.key)):
        conflicts = sorted((p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for p in conflicts:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, p.offset + p.size)
        b.offset = offset
        placed.append(b)
    arena = max((b.offset + b.size for b in placed), default=0)
    t_off = {t: buffers[f"t{root[t]}"].offset for t in tensor_sizes}
    s_off = {int(b.key[1:]): b.offset for b in placed if b.key.startswith("s")}
    return Plan(sorted(placed, key=lambda b: b.offset), t_off, s_off, arena)
