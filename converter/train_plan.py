"""Training plans: a converted model's IR -> the layers the on-device trainer
runs (a graph: chains, residual shortcuts, tensors read by several layers), one
static memory plan, and the generated C (train_model.c).

A plan is one configuration: precision (int8 = Octo, fp32 = baseline) x batch x
update set ("all", "last:N" = the last N weight layers, "bias", or the explicit
"set:OP=W,..." that `--update auto` resolves to, converter/update_budget.py) x
loss (softmax cross-entropy for classifiers, mean squared error for autoencoders).
Frozen weight layers read their weights from flash (generated const arrays)
unless the configuration keeps them in RAM (random init needs that). Everything
training needs (weights, momentum, LAC, saved activations, gradients, kernel
scratch) lives in one arena whose layout is computed here; the first
state_bytes of it are the state blob (docs/TRAINING.md) that checkpoints hold.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from converter.codegen import layer_name
from converter.ir import ConvertError, Graph, Op

HEADER_BYTES = 64
STATE_MAGIC = 0x5354434F
NONE = 0xFFFFFFFF
SCALARS = 6  # per-layer floats in the state: w scale, v scale, fwd range, bwd range, next v scale, gradient shift
RT_FLOATS = 4                     # runtime floats per layer (not state)
STATE_LAYOUT = 3  # 3: frozen weights in flash, partial layers; 2: INT8 masters as hi/lo int8 planes, 6 scalars
# Weight-gradient buffer budget: CONV/FC layers whose gradients need more are trained in blocks of output
# channels (and their input gradient waits in a side buffer meanwhile).
GRAD_BLOCK_BYTES = 16 * 1024
KINDS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 2, "MAX_POOL_2D": 3, "AVERAGE_POOL_2D": 4, "ADD": 5}
INPUT = 0xFFFF  # _Layer.src: the model's input (the staged samples)
# How an input's gradient reaches its producer (octo_trainer.h OCTO_TRAIN_DX_*): the only reader sinks it
# through the producer's mask into its slot; with several readers, the last reader (backward runs in
# reverse) starts a partial sum, middle ones add to it, the first adds it and sinks the total.
DX_NONE, DX_SINK, DX_STORE, DX_ACCUM, DX_FINAL = range(5)
ACTS = {"NONE": 0, "RELU": 1, "RELU6": 2}
WEIGHT_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
TRAINABLE_CHAIN = ("CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, AVERAGE_POOL_2D, "
                   "MEAN over H and W, ADD of two tensors of one shape, RESHAPE, and a final SOFTMAX (or none, "
                   "for MSE)")
LOSSES = ("auto", "xent", "mse")   # auto: xent when the model ends in SOFTMAX, else mse
LOSS_IDS = {"xent": 0, "mse": 1}   # OCTO_TRAIN_LOSS_* of octo_trainer.h
MAX_CLASSES = 255                  # labels travel as u8
# Firmware RAM besides the training arena (protocol buffers, stack, board state), measured on virtual-m4.
FIRMWARE_RAM_BYTES = 32 * 1024
SET_RE = re.compile(r"set:\d+=(b|w|\d+)(,\d+=(b|w|\d+))*")  # the explicit update set (--update auto)
FP32_PAYLOAD_HEADER = 12  # split learning: the fp32 feature/gradient payload's header (host_tools/sgq/codec.py)
SGQ_HEADER = 18           # and the SGQ payload's fixed header (octo_sgq.h)


@dataclass(frozen=True)
class TrainConfig:
    precision: str = "int8"   # "int8" (Octo) or "fp32" (the baseline)
    batch: int = 16
    update: str = "all"       # "all", "last:N", "bias" or "set:OP=W,..." (update_spec_layers)
    split: str = ""           # split learning: the chain ends after this layer, the host supplies its gradient
    loss: str = "auto"        # "auto" (resolved by the model's head: resolve_loss), "xent", "mse"; split: "auto"
    frozen_in_ram: bool = False  # frozen weights in the state blob (random init) instead of flash
    targets: bool = False     # MSE against staged per-sample targets (regression) instead of the sample itself

    def __post_init__(self) -> None:
        if self.precision not in ("int8", "fp32"):
            raise ConvertError(f"precision must be int8 or fp32, got {self.precision!r}")
        if not 1 <= self.batch <= 255:
            raise ConvertError(f"batch must be 1..255, got {self.batch}")
        if self.update not in ("all", "bias") and not (
                self.update.startswith("last:") and self.update[5:].isdigit() and int(self.update[5:]) >= 1) \
                and not SET_RE.fullmatch(self.update):
            raise ConvertError(f"--update must be all, bias, last:N (N >= 1) or auto, got {self.update!r}")
        if self.split and self.precision != "int8":
            raise ConvertError("split learning runs the device half in INT8 (--precision int8)")
        if self.loss not in LOSSES:
            raise ConvertError(f"--loss must be auto, xent or mse, got {self.loss!r}")
        if self.split and self.loss != "auto":
            raise ConvertError("split learning takes its loss in the cloud; --loss does not apply")
        if self.targets and (self.split or self.loss == "xent"):
            raise ConvertError("per-sample float targets are an MSE option: they need --loss mse (or auto on a "
                               "model without SOFTMAX), not " + ("split learning" if self.split else "--loss xent"))

    @property
    def config_id(self) -> str:
        upd = self.update.replace(":", "")
        if self.loss == "auto" and not self.split:
            raise ValueError("config_id of an unresolved loss: TrainConfig.resolve_loss(graph) first")
        if self.update.startswith("set:"):  # an explicit per-layer set (--update auto): a short hash of it
            upd = f"set{zlib.crc32(self.update.encode()):08x}"
        return (f"{self.precision}-b{self.batch}-{upd}" + (f"-split-{self.split}" if self.split else "")
                + ("-ramw" if self.frozen_in_ram else "")
                + ("-mse" if self.loss == "mse" else "")  # cross-entropy keeps the ids of before
                + ("-y" if self.targets else ""))  # MSE against staged targets (regression)

    def resolve_loss(self, g: Graph) -> TrainConfig:
        """This configuration with loss "auto" made concrete by the model's head (xent when it ends in
        SOFTMAX, else mse); refuses, with the fix, a loss that does not fit the head."""
        if self.split:
            return self
        ops = list(g.ops)
        head = ops[-1] if ops else None
        softmax = head is not None and head.kind == "SOFTMAX"
        loss = self.loss if self.loss != "auto" else ("xent" if softmax else "mse")
        n_out = int(np.prod(g.tensor(head.outputs[0]).shape[1:])) if head is not None else 0
        n_in = int(np.prod(g.input.shape[1:]))
        what = head.kind if head is not None else "nothing"
        if self.targets and loss == "xent":
            raise ConvertError(f"per-sample float targets need an MSE model; this model ends in {what} (a "
                               "classifier), which takes one class index per sample in 'y' (one-hot labels? "
                               "store y = y.argmax(axis=1))")
        if loss == "mse" and softmax:
            raise ConvertError("--loss mse on a classifier: the model ends in SOFTMAX, whose outputs are class "
                               "probabilities; train it with --loss xent (or auto), or convert the model "
                               "without the SOFTMAX to regress its outputs")
        if loss == "xent" and not softmax:
            raise ConvertError(f"--loss xent needs a classifier ending in SOFTMAX; this model ends in {what} "
                               f"with {n_out} output values: train it with --loss mse (or auto)")
        if loss == "mse" and not self.targets and n_out != n_in:
            raise ConvertError(f"--loss mse without targets trains an autoencoder (the target is the sample "
                               f"itself), so the output must have as many values as the input: this model maps "
                               f"{n_in} input values to {n_out}; for regression give the data per-sample targets "
                               f"'y' shaped like the output ([N, {n_out}])")
        return dataclasses.replace(self, loss=loss)


@dataclass
class TrainBuild:
    dir: Path
    plan: dict[str, Any]
    config: TrainConfig
    update_choice: Any = None   # --update auto / --report: converter.update_budget.UpdateChoice


@dataclass
class _Layer:
    op: Op
    kind: str
    name: str
    act: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    w_shape: tuple[int, int, int, int] = (1, 1, 1, 1)
    conv: tuple[int, int, int, int] = (1, 1, 0, 0)            # stride_h, stride_w, pad_h, pad_w
    pool: tuple[int, int, int, int, int, int] = (1, 1, 0, 0, 1, 1)  # + filter_h, filter_w
    pool_exact: bool = False
    w_int8: np.ndarray | None = None
    w_scales: np.ndarray | None = None
    bias: np.ndarray | None = None
    train_w: bool = False
    train_b: bool = False
    need_dx: bool = False
    src: tuple[int, ...] = (INPUT,)   # producing layer of each input (INPUT: the samples); two for ADD
    dx_mode: tuple[int, ...] = (DX_NONE,)
    train_oc: int = 0           # train_w: output channels [0, train_oc) get weight updates (oc = all)
    w_in_ram: bool = True       # weights in the state blob; False: frozen, read from flash

    @property
    def partial(self) -> bool:
        return self.train_w and self.train_oc < self.oc

    @property
    def n_trained(self) -> int:
        return self.train_oc * (self.n_w // self.oc) if self.train_w else 0

    @property
    def has_weights(self) -> bool:
        return self.kind in WEIGHT_KINDS

    @property
    def oc(self) -> int:
        return self.w_shape[3] if self.kind == "DEPTHWISE_CONV_2D" else self.w_shape[0]

    @property
    def n_w(self) -> int:
        return int(np.prod(self.w_shape))

    @property
    def fan_in(self) -> int:
        if self.kind == "DEPTHWISE_CONV_2D":
            return self.w_shape[1] * self.w_shape[2]
        return self.w_shape[1] * self.w_shape[2] * self.w_shape[3]


def _hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    s = tuple(int(v) for v in shape)
    if len(s) == 4:
        return s[1], s[2], s[3]
    if len(s) == 2:
        return 1, 1, s[1]
    raise ConvertError(f"tensor shape {s} is not NHWC or [N, D]")


def _pad(in_size: int, out_size: int, k: int, stride: int, padding: str) -> int:
    if padding != "SAME":
        return 0
    return max((out_size - 1) * stride + k - in_size, 0) // 2


def _weights(g: Graph, op: Op) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 weights, per-output-channel float scales and float bias of a weight op."""
    w = g.tensor(op.inputs[1])
    if w.data is None or w.scale is None or w.dtype != "int8":
        raise ConvertError(f"{op.label(g)}: weights are not constant int8 (convert with `octo convert`)")
    x = g.tensor(op.inputs[0])
    sx = x.qparams()[0]
    oc = w.shape[3] if op.kind == "DEPTHWISE_CONV_2D" else w.shape[0]
    ws = np.broadcast_to(np.asarray(w.scale, np.float32).reshape(-1), (oc,)).astype(np.float32)
    bias = np.zeros(oc, np.float32)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = g.tensor(op.inputs[2])
        if b.data is not None:
            bias = (np.asarray(b.data, np.float64).reshape(-1) * sx * ws.astype(np.float64)).astype(np.float32)
    return np.asarray(w.data, np.int8), ws, bias


def trainable_layers(g: Graph, split: str = "") -> list[_Layer]:
    """The model as the trainable engine's layers in op order, each naming the layers that produce its
    inputs (chains, residual ADDs, tensors read by several layers; the final SOFTMAX becomes the loss),
    or with split the layers up to and including the one named split (the device half of split learning)."""
    layers: list[_Layer] = []
    producer: dict[int, int] = {g.inputs[0]: INPUT}  # tensor -> layer index (INPUT: the samples)
    ops = list(g.ops)

    def source(op: Op, t: int) -> int:
        if t not in producer:
            raise ConvertError(f"{op.label(g)}: reads a tensor that no trainable layer produces (a constant or a "
                               "second model input); on-device training supports graphs of " + TRAINABLE_CHAIN)
        return producer[t]

    for i, op in enumerate(ops):
        if split and layers and layers[-1].name == split:
            break
        src = source(op, op.inputs[0])
        ins = _hwc(g.tensor(op.inputs[0]).shape)
        outs = _hwc(g.tensor(op.outputs[0]).shape)
        name = layer_name(g.tensor(op.outputs[0]).name, f"{op.kind.lower()}_{op.index}")
        act = str(op.options.get("activation", "NONE"))
        if act not in ACTS:
            raise ConvertError(f"{op.label(g)}: activation {act} cannot be trained (NONE, RELU, RELU6 can)")
        if op.kind == "RESHAPE":
            producer[op.outputs[0]] = src
            continue
        if op.kind == "SOFTMAX":
            if i != len(ops) - 1:
                raise ConvertError(f"{op.label(g)}: SOFTMAX must be the last op to train with cross-entropy")
            producer[op.outputs[0]] = src
            continue
        if op.kind == "ADD":
            other = source(op, op.inputs[1])
            if tuple(g.tensor(op.inputs[1]).shape) != tuple(g.tensor(op.inputs[0]).shape):
                raise ConvertError(f"{op.label(g)}: ADD of shapes {g.tensor(op.inputs[0]).shape} and "
                                   f"{g.tensor(op.inputs[1]).shape} cannot be trained (two tensors of one shape can)")
            if other == src:
                raise ConvertError(f"{op.label(g)}: ADD of a tensor to itself cannot be trained")
            layers.append(_Layer(op, op.kind, name, act, ins, outs, src=(src, other), dx_mode=(DX_NONE, DX_NONE)))
        elif op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if int(op.options.get("dilation_h", 1)) != 1 or int(op.options.get("dilation_w", 1)) != 1:
                raise ConvertError(f"{op.label(g)}: dilated convolutions cannot be trained on the board")
            w8, ws, b = _weights(g, op)
            wshape = tuple(int(v) for v in w8.shape)
            if op.kind == "DEPTHWISE_CONV_2D" and (wshape[3] < ins[2] or wshape[3] % ins[2]):
                raise ConvertError(f"{op.label(g)}: depthwise conv with {ins[2]} input and {wshape[3]} output "
                                   "channels cannot be trained (output channels must be a multiple of the input's)")
            sh, sw = int(op.options["stride_h"]), int(op.options["stride_w"])
            pad = str(op.options["padding"])
            conv = (sh, sw, _pad(ins[0], outs[0], wshape[1], sh, pad), _pad(ins[1], outs[1], wshape[2], sw, pad))
            layers.append(_Layer(op, op.kind, name, act, ins, outs, wshape, conv=conv,  # type: ignore[arg-type]
                                 w_int8=w8, w_scales=ws, bias=b))
        elif op.kind == "FULLY_CONNECTED":
            w8, ws, b = _weights(g, op)
            o, d = (int(v) for v in w8.shape)
            if d != ins[0] * ins[1] * ins[2]:
                raise ConvertError(f"{op.label(g)}: FC input has {ins[0] * ins[1] * ins[2]} values, weights expect {d}")
            layers.append(_Layer(op, op.kind, name, act, ins, (1, 1, o), (o, 1, 1, d), w_int8=w8, w_scales=ws, bias=b))
        elif op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            if act != "NONE":
                raise ConvertError(f"{op.label(g)}: pools with a fused activation cannot be trained")
            fh, fw = int(op.options["filter_h"]), int(op.options["filter_w"])
            sh, sw = int(op.options["stride_h"]), int(op.options["stride_w"])
            pad = str(op.options["padding"])
            pool = (sh, sw, _pad(ins[0], outs[0], fh, sh, pad), _pad(ins[1], outs[1], fw, sw, pad), fh, fw)
            exact = op.kind == "MAX_POOL_2D" and sh >= fh and sw >= fw
            layers.append(_Layer(op, op.kind, name, act, ins, outs, pool=pool, pool_exact=exact))
        elif op.kind == "MEAN":
            axes = g.tensor(op.inputs[1]).data if len(op.inputs) > 1 else None
            ax = sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) if axes is not None else []
            if ax != [1, 2]:
                raise ConvertError(f"{op.label(g)}: MEAN over axes {ax} cannot be trained (over H and W can)")
            pool = (1, 1, 0, 0, ins[0], ins[1])
            layers.append(_Layer(op, "AVERAGE_POOL_2D", name, "NONE", ins, (1, 1, ins[2]), pool=pool))
        else:
            raise ConvertError(f"{op.label(g)}: {op.kind} cannot be trained on the board; on-device training "
                               "supports graphs of " + TRAINABLE_CHAIN)
        if op.kind != "ADD":
            layers[-1].src = (src,)
            layers[-1].dx_mode = (DX_NONE,)
        producer[op.outputs[0]] = len(layers) - 1
    if split and not (layers and layers[-1].name == split):
        raise ConvertError(f"no layer named {split!r} to split at; layers: " + ", ".join(la.name for la in layers))
    if not layers or not any(layer.has_weights for layer in layers):
        raise ConvertError("the model has no weight layers to train")
    read = {s for la in layers for s in la.src}
    for i, la in enumerate(layers[:-1]):
        if i not in read:
            raise ConvertError(f"layer {la.name} ({la.kind}): its output is not read by the layers up to the "
                               f"{'split point' if split else 'loss'}; on-device training needs every layer on the "
                               "path to it (a graph with one output)")
    return layers


def update_spec_layers(update: str) -> dict[int, str]:
    """The explicit update set "set:OP=W,..." as {op index: W}: W = "b" (bias only), "w" (weights of every
    output channel and bias) or a number k (weights of output channels [0, k) and every bias)."""
    return {int(k): v for k, v in (e.split("=") for e in update[4:].split(","))}


def _mark_trainable(layers: list[_Layer], update: str, frozen_in_ram: bool = False) -> None:
    weight_layers = [la for la in layers if la.has_weights]
    chans: dict[int, int] = {}   # op index -> trained output channels (whole layers: oc)
    biases: set[int] = set()
    if update == "all":
        chans = {la.op.index: la.oc for la in weight_layers}
    elif update == "bias":
        biases = {la.op.index for la in weight_layers}
    elif update.startswith("set:"):
        by_op = {la.op.index: la for la in weight_layers}
        for op, what in update_spec_layers(update).items():
            la = by_op.get(op)
            if la is None:
                raise ConvertError(f"update set: op {op} is not a weight layer of the model (weight layers: "
                                   + ", ".join(f"{x.op.index} {x.name}" for x in weight_layers) + ")")
            if what == "b":
                biases.add(op)
                continue
            k = la.oc if what == "w" else int(what)
            if not 1 <= k <= la.oc:
                raise ConvertError(f"update set: {la.name} has {la.oc} output channels, not {k}")
            if k < la.oc and la.kind == "DEPTHWISE_CONV_2D":
                raise ConvertError(f"update set: {la.name}: depthwise layers train all channels or bias only")
            chans[op] = k
    else:
        n = int(update[5:])
        if n > len(weight_layers):
            raise ConvertError(f"--update {update}: the model has only {len(weight_layers)} weight layers "
                               f"({', '.join(la.name for la in weight_layers)})")
        chans = {la.op.index: la.oc for la in weight_layers[-n:]}
    for la in weight_layers:
        la.train_w = la.op.index in chans
        la.train_oc = chans.get(la.op.index, la.oc)
        la.train_b = la.train_w or la.op.index in biases
        la.w_in_ram = la.train_w or frozen_in_ram
    _route_gradients(layers)


def _route_gradients(layers: list[_Layer]) -> None:
    """Which inputs get a gradient (their producer, or a layer before it, trains) and how it reaches the
    producer (DX_*): a producer read by several layers gets a partial sum, started by its last reader and
    finished by its first. An ADD cannot add to a partial sum (it copies its gradient): it must be the
    last reader of a shared tensor."""
    up = [False] * len(layers)  # the layer or one before it (on a path to it) trains
    for i, la in enumerate(layers):
        up[i] = la.train_w or la.train_b or any(s != INPUT and up[s] for s in la.src)
    readers: dict[int, list[tuple[int, int]]] = {}
    for i, la in enumerate(layers):
        for j, s in enumerate(la.src):
            if s != INPUT and up[s]:
                readers.setdefault(s, []).append((i, j))
    modes = [[DX_NONE] * len(la.src) for la in layers]
    for p, rs in readers.items():
        for k, (i, j) in enumerate(rs):
            if len(rs) == 1:
                mode = DX_SINK
            else:
                mode = DX_FINAL if k == 0 else DX_STORE if k == len(rs) - 1 else DX_ACCUM
            if layers[i].kind == "ADD" and mode not in (DX_SINK, DX_STORE):
                raise ConvertError(f"layer {layers[p].name}: its output is read by several layers and by "
                                   f"{layers[i].name} (ADD) before the last of them; on-device training needs an "
                                   "ADD to be the last reader of a shared tensor (as in residual blocks)")
            modes[i][j] = mode
    for la, m in zip(layers, modes, strict=True):
        la.dx_mode = tuple(m)
        la.need_dx = m[0] != DX_NONE


def flash_weights(la: _Layer, int8: bool) -> tuple[np.ndarray, float]:
    """The frozen weights a layer reads from flash, exactly as octo_trainer_init would have computed them in
    RAM from the converted weights (float32 arithmetic as the C): FP32 w = q * scale[channel]; INT8 one
    per-tensor scale s = max|w| / 127 and round_sat(w / s) (round half away from zero)."""
    assert la.w_int8 is not None and la.w_scales is not None
    ch = (np.arange(la.n_w) % la.oc if la.kind == "DEPTHWISE_CONV_2D" else np.arange(la.n_w) // (la.n_w // la.oc))
    w = la.w_int8.reshape(-1).astype(np.float32) * la.w_scales.astype(np.float32)[ch]
    if not int8:
        return w, 1.0
    wmax = np.float32(np.max(np.abs(w))) if w.size else np.float32(0)
    if not wmax > 0:
        wmax = np.float32(1e-6)
    s8 = np.float32(wmax / np.float32(127.0))
    f = (w / s8).astype(np.float32)
    q = np.where(f >= 0, np.trunc(f + np.float32(0.5)), np.trunc(f - np.float32(0.5)))
    return np.clip(q, -127, 127).astype(np.int8), float(s8)


def _round_up(v: int, a: int = 8) -> int:
    return (v + a - 1) // a * a


def _s8_scratch(la: _Layer) -> int:
    """The INT8 kernels' scratch a layer's training step uses (octo_trainer_state.c layer_scratch): the
    forward's, the input gradient's when it computes one, the weight gradients' when its weights train."""
    return s8_scratch_bytes(la.kind, la.w_shape, bwd_input=la.need_dx, bwd_weight=la.train_w)


def s8_scratch_bytes(kind: str, w_shape: tuple[int, int, int, int], bwd_input: bool = True,
                     bwd_weight: bool = True) -> int:
    def r4(v: int) -> int:
        return _round_up(v, 4)

    def fit(budget: int, unit: int, most: int, least: int = 1) -> int:  # units of `unit` bytes within budget
        return max(least, min(budget // unit, most))

    oc, kh, kw, c = w_shape
    if kind == "CONV_2D":
        row, k4, oc4, c4, taps = r4(kw * c), r4(kh * kw * c), r4(oc), r4(c), kh * kw
        # forward: the pixel path (expanded fields, padded weight rows) or the segment path (a chunk of
        # expanded weights, at most 8 KiB or one block of four output channels)
        pad_rows = 2048 // k4 // 4 * 4
        pad_rows = 4 if pad_rows < 4 else min(pad_rows, oc4)
        blk = 8 * kh * row
        fwd = 4 * oc4 + 9 * k4 + pad_rows * k4
        if taps > 1 and (kw * c) % 4 == 0:  # 1x1 kernels and rows that are not whole words: pixels only
            fwd = max(fwd, 8 * oc4 + fit(8192, blk, oc4 // 4) * blk + kh * row)
        # input gradient: a chunk of expanded transposed weights (at most 8 KiB or one block of four input
        # channels), 2 KiB of expanded dy; out_c % 4 != 0 with kernels larger than 1x1: a chunk of the int8
        # transpose (at most 8 KiB or one input channel)
        blk = 8 * taps * oc4
        ch = fit(8192, blk, c4 // 4)
        bwd_in = ch * blk + 16 * ch + oc4 + 2048
        if oc % 4 != 0 and taps > 1:
            bwd_in = max(bwd_in, fit(8192, taps * oc, c) * taps * oc)
        bwd_w = 16 * (kh * kw * c + oc) + 2 * k4  # staged fields and dy rows, two fields assembled at the border
        return max(fwd, bwd_in if bwd_input else 0, bwd_w if bwd_weight else 0)
    if kind == "FULLY_CONNECTED":
        return max(oc * c if bwd_input else 0, 16 * (c + oc) if bwd_weight else 0)
    return 0


def _pixels(la: _Layer) -> int:
    return int(la.out_shape[0] * la.out_shape[1])


def chunk_channels(la: _Layer, batch: int, es: int) -> int:
    """Output channels per weight-gradient block: all of them unless a CONV/FC layer's trainable weight
    gradients exceed GRAD_BLOCK_BYTES; then the most that fit (a multiple of 4 when possible), when the
    blocks and their side buffers (output-gradient columns, the batch's input gradient) need less."""
    if not (la.has_weights and la.train_w) or la.kind == "DEPTHWISE_CONV_2D":
        return la.oc if la.has_weights else 0
    per = la.n_w // la.oc
    toc = la.train_oc  # partial layers: blocks of the trained channels
    if (toc * per + la.oc) * 4 <= GRAD_BLOCK_BYTES:
        return toc
    cb = max(1, GRAD_BLOCK_BYTES // ((per + 1) * 4 + batch * _pixels(la) * es))
    if cb >= 4:
        cb -= cb % 4
    if cb >= toc:
        return toc
    side = _round_up(batch * _pixels(la) * cb * es) + (batch * int(np.prod(la.in_shape)) * es if la.need_dx else 0)
    return cb if cb * (per + 1) * 4 + side < (toc * per + la.oc) * 4 else toc  # only when blocks need less


def _block_need(la: _Layer, cb: int, batch: int, es: int) -> tuple[int, int, int]:
    """Gradient-buffer bytes of a layer trained in blocks of cb output channels, or partially (cb = its trained
    channels): the block's weight gradients and bias sums (partial layers: every channel's bias), the block's
    output-gradient columns, and the side buffer of the input gradient (blocks of a layer only: a single
    partial block takes its gradients before the input gradient, as a whole layer does)."""
    per = la.n_w // la.oc
    g = cb * per * 4 + (la.oc if la.partial else cb) * 4
    side = batch * int(np.prod(la.in_shape)) * es if la.need_dx and cb < la.train_oc else 0
    return g, _round_up(batch * _pixels(la) * cb * es), side


class _Alloc:
    def __init__(self) -> None:
        self.size = 0

    def take(self, nbytes: int) -> int:
        off = self.size
        self.size = _round_up(off + max(nbytes, 0))
        return off


def plan_memory(layers: list[_Layer], cfg: TrainConfig, input_elems: int, classes: int) -> dict[str, Any]:
    """Offsets of every region; sizes by category. State first (the blob), then the rest."""
    int8 = cfg.precision == "int8"
    es = 1 if int8 else 4
    b = cfg.batch
    a = _Alloc()
    a.take(HEADER_BYTES)
    state: list[dict[str, int]] = []
    for la in layers:
        r: dict[str, int] = {"scal": a.take(SCALARS * 4)}
        if la.has_weights:
            n, oc = la.n_w, la.oc
            if int8:  # trainable: hi plane then lo plane (all channels: one per-tensor scale); frozen: int8 or flash
                r["w"] = a.take(n * (2 if la.train_w else 1)) if la.w_in_ram else NONE
                r["v"] = a.take(la.n_trained * 2) if la.train_w else NONE
                r["lac"] = a.take(oc * 16) if (la.train_w or la.train_b) else NONE
            else:
                r["w"] = a.take(n * 4) if la.w_in_ram else NONE
                r["v"] = a.take(la.n_trained * 4) if la.train_w else NONE
                r["lac"] = NONE
            r["b"] = a.take(oc * 4)
            r["vb"] = a.take(oc * 4) if la.train_b else NONE
        state.append(r)
    state_bytes = a.size
    weights_bytes = state_bytes
    working = 0  # INT8 kernels read the hi plane of the masters: no separate working copy
    rt_off = a.take(len(layers) * RT_FLOATS * 4)
    mark = a.size
    stage_off = a.take(b * input_elems)
    label_off = a.take(b * 4)
    target_off = a.take(b * classes) if cfg.targets else NONE  # MSE targets: int8 [batch][output values]
    input_off = stage_off if int8 else a.take(b * input_elems * 4)
    gp_off = [NONE] * len(layers)
    if is_chain(layers):
        first_saved = next(i for i, la in enumerate(layers) if la.train_w or la.train_b) - 1
        transient = [i for i in range(len(layers)) if i < first_saved]
        ping = [0, 0]
        for i in transient:
            ping[i % 2] = max(ping[i % 2], b * int(np.prod(layers[i].out_shape)) * es)
        pp = [a.take(ping[0]), a.take(ping[1])] if transient else [0, 0]
        y_off = []
        for i, la in enumerate(layers):
            y_off.append(pp[i % 2] if i in transient else a.take(b * int(np.prod(la.out_shape)) * es))
    else:
        y_off, gp_off = _graph_activations(a, layers, b, es)
    activations = a.size - mark
    mark = a.size
    per_sample = [int(np.prod(la.out_shape)) for la in layers] + [int(np.prod(la.in_shape)) for la in layers]
    tile_bytes = _round_up(max(max(per_sample) * 4, b * classes * es))  # + the loss gradient of the batch
    tile_off = a.take(tile_bytes)
    chunk = [chunk_channels(la, b, es) for la in layers]
    grad_need = [(la.n_w * la.train_w + la.oc) * 4 for la, cb in zip(layers, chunk, strict=True)
                 if la.has_weights and (la.train_w or la.train_b) and cb == la.oc]
    grad_need += [2 * la.out_shape[2] * 4 for la in layers]  # INT8 forward: per-channel multiplier and offset
    block_need = [_block_need(la, cb, b, es) for la, cb in zip(layers, chunk, strict=True)
                  if la.has_weights and cb < la.oc]
    grad_need += [sum(n) for n in block_need]
    grad_off = a.take(max(grad_need, default=0))
    dyb_off = [NONE] * len(layers)
    dxt_off = [NONE] * len(layers)
    for i, (la, cb) in enumerate(zip(layers, chunk, strict=True)):
        if la.has_weights and cb < la.oc:
            g_bytes, dyb_bytes, dxt_bytes = _block_need(la, cb, b, es)
            dyb_off[i] = grad_off + g_bytes
            dxt_off[i] = dyb_off[i] + dyb_bytes if dxt_bytes else NONE
    lac_need = [_round_up(la.oc, 2) * 4 + la.oc * 8 for la, r in zip(layers, state, strict=True)
                if r.get("lac", NONE) != NONE]
    lacsum_off = a.take(max(lac_need, default=0))
    # LAC sums: one buffer for a chain (a layer's sums are read right after they are taken); in a graph an
    # ADD fills two layers' sums at once and a shared tensor's sums wait for its first reader: one each.
    ls_off = [lacsum_off if r.get("lac", NONE) != NONE else NONE for r in state]
    if not is_chain(layers):
        ls_off = [a.take(_round_up(la.oc, 2) * 4 + la.oc * 8) if r.get("lac", NONE) != NONE else NONE
                  for la, r in zip(layers, state, strict=True)]
    gradients = a.size - mark
    scratch_bytes = max((_s8_scratch(la) for la in layers), default=0) if int8 else 0
    scratch_off = a.take(scratch_bytes)
    collab = _collab_regions(a, layers[-1], b) if cfg.split else None
    def slot(src: int) -> int:
        return input_off if src == INPUT else y_off[src]

    offsets = [{"x": slot(la.src[0]), "x2": slot(la.src[1]) if len(la.src) > 1 else NONE, "y": y_off[i],
                "dyb": dyb_off[i], "dxt": dxt_off[i], "gp": gp_off[i], "ls": ls_off[i], **state[i]}
               for i, la in enumerate(layers)]
    memory = {
        "weights_and_optimizer": weights_bytes,
        "working_weights": working,
        "activations": activations,
        "gradients": gradients,
        "scratch": scratch_bytes + len(layers) * RT_FLOATS * 4,
        **({"collab": collab["bytes"]} if collab else {}),
        "total": a.size,
    }
    return {"offsets": offsets, "state_bytes": state_bytes, "arena_bytes": a.size, "rt_off": rt_off,
            "stage_off": stage_off, "label_off": label_off, "target_off": target_off, "input_off": input_off,
            "tile_off": tile_off, "tile_bytes": tile_bytes, "grad_off": grad_off, "lacsum_off": lacsum_off,
            "scratch_off": scratch_off, "scratch_bytes": scratch_bytes, "chunk_oc": chunk, "collab": collab,
            "memory": memory}


def is_chain(layers: list[_Layer]) -> bool:
    """Every layer reads the one before it (the first reads the samples)."""
    return all(la.src == ((i - 1) if i else INPUT,) for i, la in enumerate(layers))


def _graph_activations(a: _Alloc, layers: list[_Layer], batch: int, es: int) -> tuple[list[int], list[int]]:
    """Saved outputs and partial gradient sums of a graph, placed by liveness. Time runs over the forward
    (layer i at i) then the backward (layer i at 2L-1-i). An output that gets a gradient lives until its
    layer's backward (the gradient replaces it); one that does not lives until its last reader's forward,
    or that reader's backward when it needs its input for weight gradients. A partial sum lives from its
    last reader's backward to its first reader's. Buffers whose lifetimes overlap never share bytes
    (first fit, largest first)."""
    n = len(layers)
    up = [False] * n
    for i, la in enumerate(layers):
        up[i] = la.train_w or la.train_b or any(s != INPUT and up[s] for s in la.src)
    back = [2 * n - 1 - i for i in range(n)]
    readers: dict[int, list[int]] = {}
    for i, la in enumerate(layers):
        for s in la.src:
            if s != INPUT:
                readers.setdefault(s, []).append(i)
    bufs: list[tuple[int, int, int]] = []  # (bytes, first, last time)
    for i, la in enumerate(layers):
        rs = readers.get(i, [])
        if up[i] or not rs:
            end = back[i]
        else:
            end = max(back[r] if layers[r].train_w else r for r in rs)
        bufs.append((batch * int(np.prod(la.out_shape)) * es, i, end))
    gp_of: dict[int, int] = {}
    for p, rs in readers.items():
        if up[p] and len(rs) > 1:
            gp_of[p] = len(bufs)
            bufs.append((batch * int(np.prod(layers[p].out_shape)) * es, back[max(rs)], back[min(rs)]))
    placed: list[tuple[int, int, int, int]] = []  # (offset, bytes, first, last)
    offs = [0] * len(bufs)
    for k in sorted(range(len(bufs)), key=lambda k: (-bufs[k][0], bufs[k][1])):
        size, first, last = _round_up(bufs[k][0]), bufs[k][1], bufs[k][2]
        off = 0
        for o, sz, _, _ in sorted(q for q in placed if not (q[3] < first or last < q[2])):
            if off + size <= o:
                break
            off = max(off, o + sz)
        offs[k] = off
        placed.append((off, size, first, last))
    base = a.take(max((o + sz for o, sz, _, _ in placed), default=0))
    y_off = [base + offs[i] for i in range(n)]
    gp_off = [base + offs[gp_of[i]] if i in gp_of else NONE for i in range(n)]
    return y_off, gp_off


def sgq_scratch_bytes(c: int, groups: int) -> int:
    """OCTO_SGQ_SCRATCH_LEN(c, groups) of octo_sgq.h: group ids, group sizes, the range coder's 256 u16
    probabilities, max(histogram, range entries)."""
    return _round_up(c, 4) + _round_up(2 * groups, 4) + 512 + max(8 * groups, 260)


def _collab_regions(a: _Alloc, last: _Layer, batch: int) -> dict[str, int]:
    """Split plans: the split-learning buffers of the COLLAB_* messages (docs/SGQ.md) after everything else.
    One payload area (encoded features out, then the gradient payload in) as large as the biggest payload
    the device accepts: the fp32 one (12-byte header + batch x elems float32) or, for tiny tensors, the worst
    SGQ one (header, a byte of map per channel, two range bytes and one code byte per value, G <= C);
    the decoded int8 output gradient; the SGQ scratch for any group count (G <= min(C, 255))."""
    elems = int(np.prod(last.out_shape))
    c = int(last.out_shape[2])
    payload = max(FP32_PAYLOAD_HEADER + 4 * batch * elems, SGQ_HEADER + c + 3 * batch * elems)
    dy = batch * elems
    sgq = sgq_scratch_bytes(c, min(c, 255))
    start = a.size
    r = {"payload_off": a.take(payload), "payload_bytes": payload, "dy_off": a.take(dy), "dy_bytes": dy,
         "sgq_off": a.take(sgq), "sgq_bytes": sgq}
    r["bytes"] = a.size - start
    return r


def _c_floats(v: np.ndarray) -> str:
    return ", ".join(f"{float(x):.9e}f" for x in np.asarray(v, np.float32).reshape(-1))


def _c_ints(v: np.ndarray) -> str:
    return ", ".join(str(int(x)) for x in np.asarray(v).reshape(-1))


def _dims(s: tuple[int, ...]) -> str:
    return "{" + ", ".join(str(int(v)) for v in s) + "}"


def generate_c(name: str, layers: list[_Layer], mem: dict[str, Any], cfg: TrainConfig, fingerprint: int,
               config_crc: int, input_elems: int, classes: int, split: bool = False) -> str:
    out = [f"/* generated by converter/train_plan.py for {name} ({cfg.config_id}) - do not edit */",
           '#include "octo/octo_train_app.h"', ""]
    flash_ws: dict[int, float] = {}
    for i, la in enumerate(layers):
        if la.has_weights:
            assert la.w_int8 is not None and la.w_scales is not None and la.bias is not None
            out.append(f"static const int8_t k_w{i}[] = {{{_c_ints(la.w_int8)}}};")
            out.append(f"static const float k_ws{i}[] = {{{_c_floats(la.w_scales)}}};")
            out.append(f"static const float k_b{i}[] = {{{_c_floats(la.bias)}}};")
        if la.has_weights and not la.w_in_ram:  # frozen: the engine's weights, computed here, stay in flash
            fw, flash_ws[i] = flash_weights(la, cfg.precision == "int8")
            out.append(f"static const int8_t k_fw{i}[] = {{{_c_ints(fw)}}};" if cfg.precision == "int8"
                       else f"static const float k_fw{i}[] = {{{_c_floats(fw)}}};")
    out.append("")
    out.append("static const octo_train_layer_t k_layers[] = {")
    for i, la in enumerate(layers):
        o = mem["offsets"][i]
        sh, sw, ph, pw = la.conv
        psh, psw, pph, ppw, fh, fw = la.pool
        w = la.has_weights
        bound = float(np.sqrt(6.0 / la.fan_in)) if w else 0.0
        out.append(
            f"    {{.kind = {KINDS[la.kind]}, .act = {ACTS[la.act]}, .train_w = {int(la.train_w)}, "
            f".train_b = {int(la.train_b)}, .need_dx = {int(la.need_dx)}, .pool_exact = {int(la.pool_exact)}, "
            f".op_index = {la.op.index}, .src = {{{', '.join(f'{v}u' for v in (*la.src, INPUT)[:2])}}}, "
            f".dx_mode = {{{', '.join(str(v) for v in (*la.dx_mode, DX_NONE)[:2])}}},\n"
            f"     .conv = {{{sh}, {sw}, {ph}, {pw}, 0}}, .pool = {{{psh}, {psw}, {pph}, {ppw}, {fh}, {fw}}},\n"
            f"     .in = {_dims((1, *la.in_shape))}, .w = {_dims(la.w_shape)}, .out = {_dims((1, *la.out_shape))},\n"
            f"     .x_off = {o['x']}u, .x2_off = {o['x2']}u, .y_off = {o['y']}u, .w_off = {o.get('w', NONE)}u, "
            f".v_off = {o.get('v', NONE)}u, "
            f".b_off = {o.get('b', NONE)}u, .vb_off = {o.get('vb', NONE)}u, .lac_off = {o.get('lac', NONE)}u, "
            f".scal_off = {o['scal']}u, .dyb_off = {o['dyb']}u, .dxt_off = {o['dxt']}u, "
            f".chunk_oc = {mem['chunk_oc'][i]}, .train_oc = {la.train_oc if w else 0}, .gp_off = {o['gp']}u, "
            f".ls_off = {o['ls']}u,\n"
            f"     .init_w = {f'k_w{i}' if w else 'NULL'}, .init_ws = {f'k_ws{i}' if w else 'NULL'}, "
            f".init_b = {f'k_b{i}' if w else 'NULL'}, .init_bound = {bound:.9e}f,\n"
            f"     .flash_w = {f'k_fw{i}' if i in flash_ws else 'NULL'}, "
            f".flash_ws = {flash_ws.get(i, 0.0):.9e}f}},")
    out.append("};")
    out.append("")
    out.append(f"uint8_t g_octo_train_arena[{mem['arena_bytes']}] __attribute__((aligned(8)));")
    out.append("")
    out.append("const octo_train_model_t g_octo_train_model = {")
    out.append(f'    .name = "{name}", .fingerprint = {fingerprint}u, .config_crc = {config_crc}u, '
               f".precision = {0 if cfg.precision == 'int8' else 1}, .n_layers = {len(layers)}, .batch = {cfg.batch}, "
               f".split = {int(split)},")
    out.append(f"    .input_elems = {input_elems}u, .classes = {classes}u, .loss = {LOSS_IDS.get(cfg.loss, 0)}, "
               f".state_bytes = {mem['state_bytes']}u, "
               f".arena_bytes = {mem['arena_bytes']}u,")
    out.append(f"    .targets = {int(cfg.targets)}, .target_off = {mem['target_off']}u,")
    out.append(f"    .stage_off = {mem['stage_off']}u, .label_off = {mem['label_off']}u, "
               f".input_off = {mem['input_off']}u, .tile_off = {mem['tile_off']}u, .tile_bytes = {mem['tile_bytes']}u,")
    out.append(f"    .grad_off = {mem['grad_off']}u, .lacsum_off = {mem['lacsum_off']}u, "
               f".scratch_off = {mem['scratch_off']}u, .scratch_bytes = {mem['scratch_bytes']}u, "
               f".rt_off = {mem['rt_off']}u,")
    out.append("    .layers = k_layers,")
    out.append("};")
    co = mem.get("collab") or {}
    out.append("")
    out.append("/* split learning (COLLAB_* messages): payload, int8 output gradient and SGQ scratch in the arena; "
               "zero = not a split build */")
    out.append("const octo_collab_mem_t g_octo_train_collab = {" + ", ".join(
        f".{k} = {int(co.get(k, 0))}u" for k in ("payload_off", "payload_bytes", "dy_off", "dy_bytes", "sgq_off",
                                                  "sgq_bytes")) + "};")
    return "\n".join(out) + "\n"


def make_plan(model: bytes, cfg: TrainConfig, source: str = "model") -> tuple[dict[str, Any], str]:
    """(train_plan.json contents, train_model.c) for a converted INT8 .tflite."""
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415

    g = parse_tflite(model, source)
    cfg = cfg.resolve_loss(g)
    layers = trainable_layers(g, cfg.split)
    _mark_trainable(layers, cfg.update, cfg.frozen_in_ram)
    inp = g.input
    input_shape = [int(v) for v in inp.shape[1:]]
    input_elems = int(np.prod(input_shape))
    # xent: classes; mse: values per sample of the output (the reconstruction)
    classes = 0 if cfg.split else int(np.prod(layers[-1].out_shape))
    if cfg.loss == "xent" and classes > MAX_CLASSES:
        raise ConvertError(f"training supports up to {MAX_CLASSES} classes; the model has {classes}")
    mem = plan_memory(layers, cfg, input_elems, classes)
    fingerprint = zlib.crc32(model)
    config = {"layout": STATE_LAYOUT, "precision": cfg.precision, "batch": cfg.batch, "update": cfg.update,
              "split": cfg.split, "loss": cfg.loss, "fingerprint": fingerprint,
              **({"targets": True} if cfg.targets else {}),  # absent without: autoencoder CRCs as before
              "layers": [[la.op.index, int(la.train_w), int(la.train_b)]
                         + ([la.train_oc, int(la.w_in_ram)] if la.has_weights else []) for la in layers],
              "state_bytes": mem["state_bytes"], "arena_bytes": mem["arena_bytes"]}
    config_crc = zlib.crc32(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    plan = {
        "name": g.name or source, "config_id": cfg.config_id, "config": config, "config_crc": config_crc,
        "fingerprint": fingerprint, "precision": cfg.precision, "batch": cfg.batch, "update": cfg.update,
        "input_shape": input_shape, "input_elems": input_elems, "classes": classes, "split": cfg.split,
        "loss": cfg.loss, "targets": cfg.targets,
        "split_shape": list(layers[-1].out_shape) if cfg.split else None,
        "collab": mem["collab"],
        "state_bytes": mem["state_bytes"], "arena_bytes": mem["arena_bytes"], "memory": mem["memory"],
        "trainable_params": int(sum(la.n_trained + la.oc * la.train_b for la in layers if la.has_weights)),
        "layers": [{"op_index": la.op.index, "name": la.name, "kind": la.kind, "act": la.act,
                    "train_w": la.train_w, "train_b": la.train_b, "need_dx": la.need_dx,
                    "src": [None if v == INPUT else v for v in la.src], "dx_mode": list(la.dx_mode),
                    "train_oc": la.train_oc if la.has_weights else 0,
                    "w_in_flash": la.has_weights and not la.w_in_ram,
                    "w_shape": list(la.w_shape) if la.has_weights else None, "oc": la.oc if la.has_weights else 0,
                    "in_shape": list(la.in_shape), "out_shape": list(la.out_shape),
                    "chunk_oc": mem["chunk_oc"][i], "offsets": mem["offsets"][i]} for i, la in enumerate(layers)],
    }
    code = generate_c(source, layers, mem, cfg, fingerprint, config_crc, input_elems, classes, bool(cfg.split))
    return plan, code


def check_fits(plan: dict[str, Any], board_name: str, sram_bytes: int) -> None:
    """ConvertError with the numbers when the plan cannot fit the board's SRAM."""
    need = plan["arena_bytes"] + FIRMWARE_RAM_BYTES
    if need <= sram_bytes:
        return
    m = plan["memory"]
    parts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m.items() if k != "total")
    raise ConvertError(
        f"training {plan['name']} ({plan['precision']}, batch {plan['batch']}, update {plan['update']}) needs "
        f"{plan['arena_bytes']:,} B of SRAM ({parts}) plus ~{FIRMWARE_RAM_BYTES // 1024} KiB for the firmware; "
        f"{board_name} has {sram_bytes:,} B. Use a smaller --batch, --update auto (or last:N, bias), "
        + ("--precision int8, " if plan["precision"] == "fp32" else "") + "or a board with more SRAM")


def fitting_batch(model_dir: Path, cfg: TrainConfig, sram_bytes: int, most: int, strict: bool = False) -> int:
    """The largest batch <= most whose plan fits sram_bytes (with the firmware's RAM); when none does, `most`
    (prepare_training then refuses it with the numbers), or 0 with strict."""
    model = (model_dir / "model.tflite").read_bytes() if (model_dir / "model.tflite").exists() else None
    if model is None:
        return most
    for b in range(most, 0, -1):
        plan, _ = make_plan(model, replace(cfg, batch=b), model_dir.name)
        if plan["arena_bytes"] + FIRMWARE_RAM_BYTES <= sram_bytes:
            return b
    return 0 if strict else most


def prepare_training(model_dir: Path, cfg: TrainConfig, board_name: str, *,
                     sram_bytes: int | None = None) -> TrainBuild:
    """Writes <model_dir>/train/<config-id>/{train_model.c, train_plan.json}; refuses, with the numbers, a plan
    that does not fit sram_bytes (the board's SRAM budget; None: no check, e.g. the native trainer or a
    benchmark that links a speed-only budget)."""
    model_path = model_dir / "model.tflite"
    if not model_path.exists():
        raise ConvertError(f"{model_dir} holds no converted model (no model.tflite); "
                           f"run `octo convert <model> -o {model_dir}` first")
    plan, code = make_plan(model_path.read_bytes(), cfg, model_dir.name)
    cfg = dataclasses.replace(cfg, loss=plan["loss"]) if not cfg.split else cfg
    if sram_bytes is not None:
        check_fits(plan, board_name, sram_bytes)
    out = model_dir / "train" / cfg.config_id
    out.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out / "train_model.c", code)
    _write_if_changed(out / "train_plan.json", json.dumps(plan, indent=1) + "\n")
    return TrainBuild(out, plan, cfg)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


# --- decoding a state blob ----------------------------------------------------------------------


