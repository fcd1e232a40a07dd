"""`--update auto`: which layers, and within a layer which output channels, train under an SRAM budget.

Sparse update as in the Tiny Training Engine (Lin et al., "On-device training under 256KB memory") and
Deutel et al.: most of the gain comes from the biases plus a few layers near the end. The search is greedy
in that order, with the training plan's memory function (train_plan.plan_memory) as a black box per
candidate and a compute allowance in multiply-accumulates per training sample:

1. biases, from the last weight layer backwards, while the plan fits and the input gradients the deeper
   bias needs (through every later layer) cost at most BIAS_SHARE x the forward pass;
2. weights of the last layers, from the end backwards, while the plan fits and the whole backward pass
   (input and weight gradients, the optimizer) costs at most BACKWARD_SHARE x the forward pass;
3. the first layer whose weights do not fit whole gets the most output channels that fit (conv and fully
   connected layers: channels [0, k); depthwise layers train whole or not at all), and the search stops.

The choice resolves to the explicit set "set:OP=W,..." (TrainConfig.update; W = b, w or a channel count) so the
build, its folder (a short hash in the config id) and its checkpoints are those of that set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converter.ir import ConvertError
from converter.train_plan import FIRMWARE_RAM_BYTES, TrainConfig, _Layer, _mark_trainable, plan_memory

BIAS_SHARE = 0.25       # input gradients for deeper biases: at most this x the forward MACs
BACKWARD_SHARE = 0.5    # the whole backward pass and update: at most this x the forward MACs
UPDATE_MACS = 40        # optimizer cost of one trained weight per step, in MAC equivalents (INT8: ~45 instr)


@dataclass
class UpdateChoice:
    spec: str                               # "set:OP=W,..." for TrainConfig.update
    budget: int                             # bytes: arena + FIRMWARE_RAM_BYTES must fit
    arena_bytes: int
    macs: dict[str, float]                  # per training sample: forward, backward (estimated), full update's
    layers: list[dict[str, Any]] = field(default_factory=list)   # one row per weight layer (the report)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "sram_budget": self.budget, "arena_bytes": self.arena_bytes,
                "firmware_ram_bytes": FIRMWARE_RAM_BYTES, "macs_per_sample": self.macs,
                "bias_share": BIAS_SHARE, "backward_share": BACKWARD_SHARE, "layers": self.layers}


def parse_bytes(text: str) -> int:
    """"96k" (KiB), "1m" (MiB) or a byte count -> bytes."""
    t = text.strip().lower().removesuffix("b")
    mult = {"k": 1024, "m": 1024 * 1024}.get(t[-1:], 1)
    num = t[:-1] if mult > 1 else t
    if not num.isdigit() or int(num) <= 0:
        raise ValueError(f"{text!r}: use a byte count such as 262144, 96k or 1m")
    return int(num) * mult


def _fwd_macs(la: _Layer) -> int:
    pix = int(la.out_shape[0] * la.out_shape[1])
    if la.kind == "CONV_2D":
        return pix * la.n_w
    if la.kind == "DEPTHWISE_CONV_2D":
        return pix * la.n_w
    if la.kind == "FULLY_CONNECTED":
        return la.n_w
    return int(np.prod(la.in_shape))  # pools: one operation per input element


def _backward_macs(layers: list[_Layer], batch: int) -> float:
    """Estimated backward cost per sample of the marked layers: input gradients of every layer after the first
    trained one, weight gradients of the trained channels, bias sums, the optimizer (spread over the batch)."""
    total = 0.0
    for la in layers:
        if la.need_dx:
            total += _fwd_macs(la)
        if la.has_weights and la.train_w:
            total += _fwd_macs(la) * la.train_oc / la.oc + UPDATE_MACS * la.n_trained / batch
        if la.has_weights and la.train_b:
            total += int(np.prod(la.out_shape))
    return total


def _spec(sel: dict[int, str]) -> str:
    return "set:" + ",".join(f"{op}={w}" for op, w in sorted(sel.items()))


class _Search:
    def __init__(self, layers: list[_Layer], cfg: TrainConfig, input_elems: int, classes: int, budget: int):
        self.layers, self.cfg, self.input_elems, self.classes, self.budget = layers, cfg, input_elems, classes, budget
        self.fwd = float(sum(_fwd_macs(la) for la in layers))
        self.weight_layers = [la for la in layers if la.has_weights]

    def cost(self, sel: dict[int, str]) -> tuple[int, float]:
        """(arena bytes, backward MACs per sample) of a selection (empty: nothing trains, 0 bytes)."""
        if not sel:
            return 0, 0.0
        _mark_trainable(self.layers, _spec(sel), self.cfg.frozen_in_ram)
        mem = plan_memory(self.layers, self.cfg, self.input_elems, self.classes)
        return int(mem["arena_bytes"]), _backward_macs(self.layers, self.cfg.batch)

    def fits(self, arena: int) -> bool:
        return arena + FIRMWARE_RAM_BYTES <= self.budget


def _model_layers(model: bytes, cfg: TrainConfig, source: str) -> tuple[list[_Layer], int, int]:
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415
    from converter.train_plan import trainable_layers  # noqa: PLC0415

    g = parse_tflite(model, source)
    layers = trainable_layers(g, cfg.split)
    input_elems = int(np.prod([int(v) for v in g.input.shape[1:]]))
    classes = 0 if cfg.split else int(np.prod(layers[-1].out_shape))
    return layers, input_elems, classes


def choose_update(model: bytes, cfg: TrainConfig, budget: int, source: str = "model") -> UpdateChoice:
    """The update set for the SRAM budget (bytes, the firmware's ~32 KiB included); ConvertError naming the
    smallest budget that works when none fits. cfg.update is ignored (precision, batch, split count)."""
    layers, input_elems, classes = _model_layers(model, cfg, source)
    s = _Search(layers, cfg, input_elems, classes, budget)
    wl = s.weight_layers
    last = wl[-1]
    smallest, _ = s.cost({last.op.index: "b"})
    if not s.fits(smallest):
        raise ConvertError(
            f"--sram {budget:,} B is too small to train {source} ({cfg.precision}, batch {cfg.batch}): the smallest "
            f"update set, the bias of {last.name}, needs {smallest + FIRMWARE_RAM_BYTES:,} B (arena {smallest:,} + "
            f"~{FIRMWARE_RAM_BYTES // 1024} KiB firmware); use --sram {smallest + FIRMWARE_RAM_BYTES} or more, or a "
            "smaller --batch")
    why: dict[int, str] = {}
    sel: dict[int, str] = {}
    # 1. biases from the end backwards
    for la in reversed(wl):
        trial = {**sel, la.op.index: "b"}
        arena, bwd = s.cost(trial)  # biases only so far: bwd = the input gradients and bias sums
        if not s.fits(arena):
            why[la.op.index] = f"bias left out: the plan would need {arena + FIRMWARE_RAM_BYTES:,} B > budget"
            break
        if sel and bwd > BIAS_SHARE * s.fwd:
            why[la.op.index] = (f"bias left out: its input gradients cost {bwd / s.fwd:.2f}x the forward pass "
                                f"(> {BIAS_SHARE}x)")
            break
        sel = trial
    deepest = min(op for op in sel)
    # 2./3. weights of the last layers, whole or partial
    for la in reversed(wl):
        op = la.op.index
        if op < deepest:
            break
        trial = {**sel, op: "w"}
        arena, bwd = s.cost(trial)
        if s.fits(arena) and bwd <= BACKWARD_SHARE * s.fwd:
            sel = trial
            continue
        k = _most_channels(s, sel, la)
        reason = (f"whole weights need {arena + FIRMWARE_RAM_BYTES:,} B" if not s.fits(arena)
                  else f"whole weights make the backward pass {bwd / s.fwd:.2f}x the forward (> {BACKWARD_SHARE}x)")
        if k:
            sel = {**sel, op: str(k)}
            why[op] = f"{reason}: {k} of {la.oc} output channels fit"
        else:
            why[op] = f"weights left out: {reason}" + ("; depthwise layers train whole" if
                                                       la.kind == "DEPTHWISE_CONV_2D" else "; not even 1 channel fits")
        break
    arena, bwd = s.cost(sel)
    _, full_bwd = s.cost({la.op.index: "w" for la in wl})
    rows = _rows(s, sel, why)
    return UpdateChoice(_spec(sel), budget, arena, {"forward": s.fwd, "backward": round(bwd),
                                                    "full_update_backward": round(full_bwd)}, rows)


def _most_channels(s: _Search, sel: dict[int, str], la: _Layer) -> int:
    """The most output channels [0, k) of la whose weights fit memory and compute on top of sel (0: none)."""
    if la.kind == "DEPTHWISE_CONV_2D":
        return 0
    lo, hi = 0, la.oc - 1
    while lo < hi:  # memory and compute grow with k
        mid = (lo + hi + 1) // 2
        arena, bwd = s.cost({**sel, la.op.index: str(mid)})
        if s.fits(arena) and bwd <= BACKWARD_SHARE * s.fwd:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _rows(s: _Search, sel: dict[int, str], why: dict[int, str]) -> list[dict[str, Any]]:
    """One report row per weight layer: what trains, what each option costs on top of the chosen set (arena
    bytes, backward MACs per sample), and why an option was left out."""
    rows = []
    for la in s.weight_layers:
        op = la.op.index
        w = sel.get(op)
        without = {k: v for k, v in sel.items() if k != op}
        opts = {}
        for name, val in (("bias", "b"), ("weights", "w")):
            a_with, b_with = s.cost({**without, op: val})
            a_wo, b_wo = s.cost(without)  # nothing else trains: the option costs the whole plan
            opts[name] = {"bytes": a_with - a_wo, "macs": round(b_with - b_wo)}
        chosen = ("frozen" if w is None else "bias" if w == "b" else "weights" if w == "w"
                  else f"weights {w}/{la.oc}")
        reason = why.get(op) or ("chosen" if w not in (None, "b") else
                                 "bias chosen; weights not tried: the search stops at the first layer whose "
                                 "weights do not fit whole" if w == "b" else
                                 "left out: deeper than the layers the search kept (biases stop first)")
        rows.append({"op_index": op, "name": la.name, "kind": la.kind, "oc": la.oc, "chosen": chosen,
                     "train_oc": (la.oc if w == "w" else int(w) if w and w != "b" else 0),
                     "train_b": w is not None, "weights_in_flash": w is None or w == "b",
                     "option_bytes": opts, "why": reason})
    return rows


def report_lines(ch: UpdateChoice) -> list[str]:
    m = ch.macs
    out = [f"update auto: SRAM budget {ch.budget:,} B; training arena {ch.arena_bytes:,} B + ~"
           f"{FIRMWARE_RAM_BYTES // 1024} KiB firmware; backward ~{m['backward'] / m['forward']:.2f}x the forward "
           f"MACs per sample (full update ~{m['full_update_backward'] / m['forward']:.2f}x); set {ch.spec}"]
    for r in ch.layers:
        o = r["option_bytes"]
        out.append(f"  op {r['op_index']:<3} {r['name']:<12} {r['kind']:<18} {r['chosen']:<14} "
                   f"bias {o['bias']['bytes']:+,} B, weights {o['weights']['bytes']:+,} B / "
                   f"{o['weights']['macs']:,} MACs: {r['why']}")
    return out


def describe_update(model: bytes, cfg: TrainConfig, budget: int | None, source: str = "model") -> UpdateChoice:
    """The report rows of an explicit update set (all, bias, last:N, set:...)."""
    layers, input_elems, classes = _model_layers(model, cfg, source)
    _mark_trainable(layers, cfg.update, cfg.frozen_in_ram)
    sel = {la.op.index: ("w" if la.train_oc == la.oc else str(la.train_oc)) if la.train_w else "b"
           for la in layers if la.has_weights and (la.train_w or la.train_b)}
    s = _Search(layers, cfg, input_elems, classes, budget or 0)
    arena, bwd = s.cost(sel)
    _, full_bwd = s.cost({la.op.index: "w" for la in s.weight_layers})
    why = {la.op.index: f"--update {cfg.update}" for la in s.weight_layers}
    return UpdateChoice(_spec(sel), budget or 0, arena, {"forward": s.fwd, "backward": round(bwd),
                                                         "full_update_backward": round(full_bwd)}, _rows(s, sel, why))
