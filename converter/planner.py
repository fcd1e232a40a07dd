"""Static activation-arena planning from tensor lifetimes.

Every non-constant tensor (graph input, intermediates, output) and every op's
scratch buffer gets an offset in one arena. A buffer is live from the op that
writes it to the last op that reads it (graph inputs from the start, outputs to
the end). Buffers are placed largest first at the lowest offset that does not
overlap any already-placed buffer whose lifetime intersects (the same greedy
strategy as TFLM's planner, so the comparison is like for like).

Tensors may also share a buffer at fixed relative offsets:
  - RESHAPE outputs alias their input (offset 0: no copy, no second buffer);
  - raster-order kernels may write their output over the part of their input
    they no longer need (converter/inplace.py): the input sits D bytes above
    the output. Chains of such ops (conv -> depthwise -> pointwise ...) end up
    in one buffer, each tensor shifted by the lags before it.
A sharing is accepted only if every two tensors of the group that overlap both
in time and in memory are one of the declared (input, output) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 16


@dataclass
class Buffer:
    key: str                    # "t<root tensor>" for tensor groups, "s<op>" for scratch
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


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class _Groups:
    """Union of tensors with relative byte offsets inside a shared buffer."""

    def __init__(self, sizes: dict[int, int], life: dict[int, tuple[int, int]]) -> None:
        self.sizes = sizes
        self.life = life
        self.group: dict[int, int] = {t: t for t in sizes}        # tensor -> group id
        self.members: dict[int, dict[int, int]] = {t: {t: 0} for t in sizes}  # group -> {tensor: rel}
        self.allowed: set[frozenset[int]] = set()

    def try_join(self, t_in: int, t_out: int, lag: int) -> bool:
        """Place t_in `lag` bytes above t_out in one group, if nothing else then collides."""
        gi, go = self.group[t_in], self.group[t_out]
        if gi == go:
            return self.members[gi][t_in] - self.members[go][t_out] == lag
        a, b = self.members[gi], self.members[go]
        delta = b[t_out] + lag - a[t_in]
        merged = dict(b)
        merged.update({t: rel + delta for t, rel in a.items()})
        allowed = self.allowed | {frozenset((t_in, t_out))}
        if not self._consistent(merged, allowed):
            return False
        self.allowed = allowed
        self.members[go] = merged
        del self.members[gi]
        for t in a:
            self.group[t] = go
        return True

    def _consistent(self, members: dict[int, int], allowed: set[frozenset[int]]) -> bool:
        items = list(members.items())
        for i, (t1, r1) in enumerate(items):
            f1, l1 = self.life[t1]
            for t2, r2 in items[i + 1 :]:
                f2, l2 = self.life[t2]
                in_time = f1 <= l2 and f2 <= l1
                in_space = r1 < r2 + self.sizes[t2] and r2 < r1 + self.sizes[t1]
                if in_time and in_space and frozenset((t1, t2)) not in allowed:
                    return False
        return True


def plan_arena(n_ops: int, tensor_sizes: dict[int, int], producers: dict[int, int], consumers: dict[int, list[int]],
               graph_inputs: list[int], graph_outputs: list[int], aliases: dict[int, int],
               scratch: dict[int, int], lagged: dict[int, tuple[int, int]] | None = None) -> Plan:
    """aliases: output tensor -> input tensor whose buffer it reuses (same offset).
    lagged: input tensor -> (output tensor, D) for ops that may run in place (converter/inplace.py)."""
    life: dict[int, tuple[int, int]] = {}
    for t in tensor_sizes:
        first = -1 if t in graph_inputs else producers.get(t, 0)
        uses = consumers.get(t, [])
        last = n_ops if t in graph_outputs else (max(uses) if uses else first)
        life[t] = (first, last)
    sizes = {t: _align(s) for t, s in tensor_sizes.items()}
    groups = _Groups(sizes, life)
    for t_out, t_in in aliases.items():
        groups.try_join(t_in, t_out, 0)
    for t_in, (t_out, lag) in (lagged or {}).items():
        groups.try_join(t_in, t_out, lag)

    buffers: dict[str, Buffer] = {}
    rel_base: dict[int, int] = {}
    for gid, members in groups.members.items():
        lo = min(members.values())
        hi = max(rel + sizes[t] for t, rel in members.items())
        first = min(life[t][0] for t in members)
        last = max(life[t][1] for t in members)
        buffers[f"t{gid}"] = Buffer(f"t{gid}", hi - lo, first, last, tensors=sorted(members))
        rel_base[gid] = lo
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
    t_off = {}
    for t in tensor_sizes:
        gid = groups.group[t]
        t_off[t] = buffers[f"t{gid}"].offset + groups.members[gid][t] - rel_base[gid]
    s_off = {int(b.key[1:]): b.offset for b in placed if b.key.startswith("s")}
    return Plan(sorted(placed, key=lambda b: b.offset), t_off, s_off, arena)


def plan_best(n_ops: int, tensor_sizes: dict[int, int], producers: dict[int, int], consumers: dict[int, list[int]],
              graph_inputs: list[int], graph_outputs: list[int], aliases: dict[int, int],
              scratch: dict[int, int], candidates: dict[int, tuple[int, int]]) -> Plan:
    """plan_arena with the subset of in-place candidates that gives the smallest arena found.

    Sharing shortens some lifetimes but can lengthen others, and a chain of in-place ops
    may only pay off once all of it shares one buffer. Two greedy searches, keeping the
    better: add candidates one by one while the arena does not grow; and start from all
    of them, dropping each whose removal does not grow it. Plans cost milliseconds.
    """
    def plan(chosen: dict[int, tuple[int, int]]) -> Plan:
        return plan_arena(n_ops, tensor_sizes, producers, consumers, graph_inputs, graph_outputs, aliases,
                          scratch, chosen)

    chosen: dict[int, tuple[int, int]] = {}
    grow = plan(chosen)
    for t_in, pair in candidates.items():
        trial = plan({**chosen, t_in: pair})
        if trial.arena_bytes <= grow.arena_bytes:
            chosen[t_in] = pair
            grow = trial
    kept = dict(candidates)
    shrink = plan(kept)
    for t_in in list(candidates):
        trial_set = {k: v for k, v in kept.items() if k != t_in}
        trial = plan(trial_set)
        if trial.arena_bytes <= shrink.arena_bytes:
            kept = trial_set
            shrink = trial
    return min(grow, shrink, key=lambda p: p.arena_bytes)
