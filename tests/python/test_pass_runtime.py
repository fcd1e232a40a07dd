"""PASS runtime (firmware/src/pass/octo_pass.c) and the box kernels it calls.

Random PASS chains (CONV_2D 3x3/1x1, stride 1/2, SAME/VALID, MAX/AVERAGE_POOL_2D 2x2/2 and 3x3/1 SAME,
gated or not, every requantization flavour) are generated here as one C file of static models and linked
with tests/c/pass_driver.c (ASan + UBSan). After every frame the driver checks in C that each layer's
output equals the dense kernel applied to its input (E if gated) over the whole tensor; this file mirrors
every integer decision of the runtime in NumPy (host_tools/video/ref.py: gates, candidates, scene cuts,
receptive-field masks, caches, statistics) and compares them with the C values exactly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter import firmware_sources as fws
from converter import qmath
from converter.lower.conv import conv_packed_tables, patch_len
from converter.ops import tflite_padding
from host_tools.video import ref as R

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
RUNTIME = fws.sources("pass", "pass_kernels", "status")
DRIVER = ROOT / "tests" / "c" / "pass_driver.c"
AUTO, DENSE, EXACT = 0, 1, 2
NEVER_CUT = 1001
E_ARG = -1

# -- chains --------------------------------------------------------------------------------------------


@dataclass
class Layer:
    kind: str                         # "conv", "max", "avg"
    in_shape: tuple[int, int, int]    # h, w, c
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    act: tuple[int, int]
    gate: dict[str, int] | None = None
    conv: dict[str, Any] = field(default_factory=dict)  # offsets, wpack, bias_full, mult, shift, merged


@dataclass
class Model:
    layers: list[Layer]
    cut_permille: int = NEVER_CUT

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.layers[0].in_shape


def random_gate(rng: np.random.Generator, *, always: bool = False) -> dict[str, int]:
    if always:  # every patch with a difference is "changed": S = 1 sees every byte
        return {"patch": int(rng.integers(1, 9)), "sample": 1, "a_mean": int(rng.integers(-3, 4)),
                "a_max": int(rng.integers(-3, 4)), "threshold": -(2**62)}
    g = {"patch": int(rng.integers(1, 9)), "sample": int(rng.integers(1, 3)), "a_mean": int(rng.integers(-1, 9)),
         "a_max": int(rng.integers(-1, 5)), "threshold": int(rng.integers(-1000, 6000))}
    if rng.random() < 0.3:  # on the boundary: max |d| == 1..3 scores exactly the threshold (not "changed")
        g.update(a_mean=0, a_max=1, threshold=256 * int(rng.integers(1, 4)))
    return g


def _out(n: int, k: int, s: int, padding: str) -> int:
    return -(-n // s) if padding == "same" else (n - k) // s + 1


def make_layer(rng: np.random.Generator, kind: str, in_shape: tuple[int, int, int], *, k: int, s: int,
               padding: str, oc: int = 0, gate: dict[str, int] | None = None) -> Layer:
    h, w, c = in_shape
    oh, ow = _out(h, k, s, padding), _out(w, k, s, padding)
    pad = (tflite_padding(padding, h, k, s, 1, oh), tflite_padding(padding, w, k, s, 1, ow))
    if kind != "conv":
        act = (-128, 127) if rng.random() < 0.7 else (int(rng.integers(-128, 0)), int(rng.integers(0, 128)))
        return Layer(kind, in_shape, (oh, ow, c), (k, k), (s, s), pad, act, gate)
    in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    wts = rng.integers(-127, 128, size=(oc, k, k, c)).astype(np.int8)
    bias = rng.integers(-20000, 20000, size=oc).astype(np.int32)
    wpack, bias_full = conv_packed_tables(wts, bias, -in_zp)
    flavour = str(rng.choice(["merged", "right", "general"]))
    eff = rng.uniform(0.3, 3.0, size=oc) * 0.0074 / np.sqrt(k * k * c)
    if flavour == "general":
        eff[0] = rng.uniform(1.0, 3.0)  # a left shift: no merged table, the general requantization
    mult, shift = qmath.conv_multipliers(1.0, eff.astype(np.float32), 1.0, oc)
    merged = qmath.merged_requant_table(shift) if flavour == "merged" else None
    act = (-128, 127) if rng.random() < 0.5 else (out_zp, 127)
    conv = {"input_offset": -in_zp, "output_offset": out_zp, "wpack": wpack, "bias_full": bias_full,
            "mult": mult, "shift": shift, "merged": merged}
    return Layer("conv", in_shape, (oh, ow, oc), (k, k), (s, s), pad, act, gate, conv)


LAYER_CHOICES = [("conv", 3, 1, "same"), ("conv", 3, 2, "same"), ("conv", 3, 1, "valid"), ("conv", 3, 2, "valid"),
                 ("conv", 1, 1, "valid"), ("conv", 1, 2, "same"), ("max", 2, 2, "valid"), ("avg", 2, 2, "valid"),
                 ("max", 3, 1, "same"), ("avg", 3, 1, "same"), ("avg", 2, 2, "same")]


def random_model(rng: np.random.Generator, *, gate_prob: float = 0.6, always: bool = False,
                 cut_permille: int = NEVER_CUT, first_gated: bool = False) -> Model:
    shape = (int(rng.integers(5, 17)), int(rng.integers(5, 17)), int(rng.integers(1, 17)))
    layers: list[Layer] = []
    for i in range(int(rng.integers(1, 5))):
        fits = [ch for ch in LAYER_CHOICES if ch[3] == "same" or min(shape[:2]) >= ch[1]]
        kind, k, s, padding = fits[int(rng.integers(len(fits)))]
        gated = (first_gated and i == 0) or rng.random() < gate_prob
        gate = random_gate(rng, always=always) if gated else None
        layer = make_layer(rng, kind, shape, k=k, s=s, padding=padding, oc=int(rng.integers(1, 21)), gate=gate)
        layers.append(layer)
        shape = layer.out_shape
    return Model(layers, cut_permille)


# -- C emission ----------------------------------------------------------------------------------------


def _arr(name: str, ctype: str, values: np.ndarray) -> str:
    flat = np.asarray(values).reshape(-1)
    return f"static const {ctype} {name}[{flat.size}] = {{{', '.join(str(int(v)) for v in flat)}}};"


def _dims(name: str, n: int, h: int, w: int, c: int) -> str:
    return f"static const octo_dims_t {name} = {{{n}, {h}, {w}, {c}}};"


def emit_models(models: list[Model]) -> str:
    """C text defining g_octo_pass_model (= models[0]), g_pass_models[] and g_pass_n_models."""
    out = ["/* generated by tests/python/test_pass_runtime.py */", "#include <stddef.h>", "#include <stdint.h>",
           '#include "octo/octo_conv_s8.h"', '#include "octo/octo_pass.h"', ""]
    names = []
    for mi, m in enumerate(models):
        p = f"m{mi}"
        h, w, c = m.in_shape
        out.append(f"static int8_t {p}_t0[{h * w * c}] __attribute__((aligned(4)));")
        convs = [patch_len(*ly.kernel, ly.in_shape[2]) for ly in m.layers if ly.kind == "conv"]
        if convs:
            out.append(f"static int8_t {p}_scratch[{max(convs)}] __attribute__((aligned(4)));")
        rows = []
        for i, ly in enumerate(m.layers):
            q = f"{p}_l{i}"
            ih, iw, ic = ly.in_shape
            oh, ow, oc = ly.out_shape
            out += [f"static int8_t {p}_t{i + 1}[{oh * ow * oc}] __attribute__((aligned(4)));",
                    f"static uint8_t {q}_mask[{oh * ow}];", _dims(f"{q}_in", 1, ih, iw, ic),
                    _dims(f"{q}_out", 1, oh, ow, oc)]
            f = {"kind": {"conv": "OCTO_PASS_CONV", "max": "OCTO_PASS_MAXPOOL", "avg": "OCTO_PASS_AVGPOOL"}[ly.kind],
                 "gate": "NULL", "params": f"&{q}_params", "rq": "NULL", "in_dims": f"&{q}_in",
                 "filter_dims": "NULL", "wpack": "NULL", "bias_full": "NULL", "out_dims": f"&{q}_out",
                 "in": f"{p}_t{i}", "out": f"{p}_t{i + 1}", "cache": "NULL", "out_mask": f"{q}_mask",
                 "gate_map": "NULL", "scratch": "NULL"}
            if ly.gate is not None:
                g = ly.gate
                gh, gw = R.grid(ih, iw, g["patch"])
                out += [f"static int8_t {q}_cache[{ih * iw * ic}];", f"static uint8_t {q}_gmap[{gh * gw}];",
                        f"static const octo_pass_gate_t {q}_gate = {{{g['patch']}u, {g['sample']}u, {g['a_mean']}, "
                        f"{g['a_max']}, INT64_C({g['threshold']})}};"]
                f.update(gate=f"&{q}_gate", cache=f"{q}_cache", gate_map=f"{q}_gmap")
            if ly.kind == "conv":
                cv = ly.conv
                out += [_dims(f"{q}_filter", oc, ly.kernel[0], ly.kernel[1], ic),
                        _arr(f"{q}_wpack", "int16_t", cv["wpack"]), _arr(f"{q}_bias", "int32_t", cv["bias_full"]),
                        _arr(f"{q}_mult", "int32_t", cv["mult"]), _arr(f"{q}_shift", "int32_t", cv["shift"])]
                merged = "NULL"
                if cv["merged"] is not None:
                    out.append(_arr(f"{q}_merged", "int32_t", cv["merged"]))
                    merged = f"{q}_merged"
                out += [f"static const octo_requant_t {q}_rq = {{{q}_mult, {q}_shift, {merged}}};",
                        f"static const octo_conv_params_t {q}_params = {{{cv['input_offset']}, {cv['output_offset']}, "
                        f"{ly.stride[0]}, {ly.stride[1]}, {ly.pad[0]}, {ly.pad[1]}, 1, 1, {ly.act[0]}, {ly.act[1]}}};"]
                f.update(rq=f"&{q}_rq", filter_dims=f"&{q}_filter", wpack=f"{q}_wpack", bias_full=f"{q}_bias",
                         scratch=f"{p}_scratch")
            else:
                out.append(f"static const octo_pool_params_t {q}_params = {{{ly.stride[0]}, {ly.stride[1]}, "
                           f"{ly.pad[0]}, {ly.pad[1]}, {ly.kernel[0]}, {ly.kernel[1]}, {ly.act[0]}, {ly.act[1]}}};")
            rows.append("    {" + ", ".join(f".{k} = {v}" for k, v in f.items()) + "},")
        out += [f"static const octo_pass_layer_t {p}_layers[{len(m.layers)}] = {{", *rows, "};"]
        n = len(m.layers)
        oh, ow, oc = m.layers[-1].out_shape
        name = "g_octo_pass_model" if mi == 0 else f"{p}_model"
        out += [f"{'' if mi == 0 else 'static '}const octo_pass_model_t {name} = {{.n_layers = {n}u, "
                f".layers = {p}_layers, .input = {p}_t0, .input_bytes = {h * w * c}u, .output = {p}_t{n}, "
                f".output_bytes = {oh * ow * oc}u, .cut_permille = {m.cut_permille}u, .name = \"{p}\"}};", ""]
        names.append(name)
    out += [f"const octo_pass_model_t *const g_pass_models[{len(models)}] = {{"
            + ", ".join(f"&{nm}" for nm in names) + "};",
            f"const uint32_t g_pass_n_models = {len(models)}u;", ""]
    return "\n".join(out)


# -- the driver ----------------------------------------------------------------------------------------


@dataclass
class LayerResult:
    out_pixels: int
    changed: int
    checked: int
    elements: int
    macs: int
    out: np.ndarray
    mask: np.ndarray
    cache: np.ndarray | None
    gmap: np.ndarray | None


@dataclass
class FrameResult:
    status: int
    dense: int
    bad: int
    valid: int
    frames: int
    layers: list[LayerResult]


def _bytes(text: str, dtype: type) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text), dtype=dtype)


def parse_frame(line: str, m: Model) -> FrameResult:
    head, *rest = line.split(";")
    word, status, dense, bad, valid, frames = head.split()
    assert word == "frame", line[:200]
    layers = []
    for ly, part in zip(m.layers, rest, strict=True):
        px, ch, ck, el, macs, out, mask, cache, gmap = part.split(",")
        gh_gw = R.grid(*ly.in_shape[:2], ly.gate["patch"]) if ly.gate else (0, 0)
        layers.append(LayerResult(int(px), int(ch), int(ck), int(el), int(macs),
                                  _bytes(out, np.int8).reshape(ly.out_shape),
                                  _bytes(mask, np.uint8).reshape(ly.out_shape[:2]),
                                  _bytes(cache, np.int8).reshape(ly.in_shape) if cache != "-" else None,
                                  _bytes(gmap, np.uint8).reshape(gh_gw) if gmap != "-" else None))
    return FrameResult(int(status), int(dense), int(bad), int(valid), int(frames), layers)


def run_driver(exe: Path, lines: list[str], timeout: float = 120) -> list[str]:
    proc = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    assert len(out) == len(lines), out[-3:]
    assert not [o for o in out if o.startswith("!bad")], [o for o in out if o.startswith("!bad")][:3]
    return out


def hexs(x: np.ndarray) -> str:
    return np.ascontiguousarray(x, np.int8).tobytes().hex()


@dataclass
class Step:
    """One driver command of a sequence: a frame in a mode, or a reset."""
    frame: np.ndarray | None
    mode: int = AUTO


def sequence_lines(mi: int, steps: list[Step]) -> list[str]:
    lines = []
    for s in steps:
        if s.frame is None:
            lines.append(f"reset {mi}")
        else:
            lines += [f"frame {mi} {s.mode} {hexs(s.frame)}", f"dense {mi} {hexs(s.frame)}"]
    return lines


# -- the NumPy mirror of a frame -----------------------------------------------------------------------


def exact_elements(cur: np.ndarray, cache: np.ndarray, patch: int, cand: np.ndarray) -> int:
    """EXACT mode's gate_elements: per candidate patch, the bytes of its rows up to the first that differs."""
    h, w, c = cur.shape
    rowdiff = np.any(cur != cache, axis=2)
    total = 0
    for py, px in zip(*np.nonzero(cand), strict=True):
        y0, x0 = py * patch, px * patch
        y1, x1 = min(y0 + patch, h), min(x0 + patch, w)
        rows = np.any(rowdiff[y0:y1, x0:x1], axis=1)
        n_rows = int(np.argmax(rows)) + 1 if rows.any() else y1 - y0
        total += n_rows * (x1 - x0) * c
    return total


def check_frame(m: Model, frame: np.ndarray, mode: int, res: FrameResult, prev: FrameResult | None,
                valid_before: bool) -> bool:
    """Asserts every integer the runtime reported for this frame; returns was_dense as mirrored."""
    assert (res.status, res.bad, res.valid) == (0, -1, 1), (res.status, res.bad, res.valid)
    dense = not valid_before or mode == DENSE
    cur = frame
    for i, (ly, lo) in enumerate(zip(m.layers, res.layers, strict=True)):
        h, w, c = ly.in_shape
        checked = elements = 0
        if ly.gate is not None:
            g = ly.gate
            gh, gw = R.grid(h, w, g["patch"])
            exp_map = np.ones((gh, gw), np.uint8)
            if not dense:
                assert prev is not None
                e_prev = prev.layers[i].cache
                assert e_prev is not None
                cand = exp_map if i == 0 else R.patch_any(res.layers[i - 1].mask, g["patch"])
                if mode == EXACT:
                    verdict = R.exact_map(cur, e_prev, g["patch"])
                    elements = exact_elements(cur, e_prev, g["patch"], cand)
                else:
                    at = res.frames - 1  # the sampling grid of the frame number before this frame
                    verdict = R.gate_map(cur, e_prev, g, at)
                    elements = int(R.gate_elements(h, w, c, g["patch"], g["sample"], at)[cand == 1].sum())
                exp_map = cand & verdict
                checked = int(cand.sum())
                if i == 0 and int(exp_map.sum()) * 1000 >= m.cut_permille * gh * gw:
                    dense = True  # scene cut
                    exp_map = np.ones((gh, gw), np.uint8)
                pix = R.expand_patches(exp_map, h, w, g["patch"])
                exp_cache = np.where(pix[:, :, None] == 1, cur, e_prev)
            else:
                exp_cache = cur
            assert lo.gmap is not None and lo.cache is not None
            assert np.array_equal(lo.gmap, exp_map), f"layer {i}: gate map"
            assert np.array_equal(lo.cache, exp_cache), f"layer {i}: cache E"
            assert (lo.changed, lo.checked, lo.elements) == (int(exp_map.sum()), checked, elements), f"layer {i}"
            changed_px = R.expand_patches(exp_map, h, w, g["patch"])
        else:
            assert (lo.changed, lo.checked, lo.elements, lo.gmap, lo.cache) == (0, 0, 0, None, None)
            changed_px = np.ones((h, w), np.uint8) if dense or i == 0 else res.layers[i - 1].mask
        oh, ow, oc = ly.out_shape
        exp_mask = (np.ones((oh, ow), np.uint8) if dense
                    else R.receptive_dilation(changed_px, (oh, ow), ly.kernel, ly.stride, ly.pad))
        assert np.array_equal(lo.mask, exp_mask), f"layer {i}: output mask"
        assert lo.out_pixels == int(exp_mask.sum())
        per_px = oc * ly.kernel[0] * ly.kernel[1] * (c if ly.kind == "conv" else 1)
        assert lo.macs == lo.out_pixels * per_px
        cur = lo.out
    assert res.dense == int(dense), "was_dense"
    return dense


def check_sequence(m: Model, steps: list[Step], out: list[str], *, output_is_dense: bool = False) -> dict[str, int]:
    """Mirrors a whole sequence; returns counters (dense frames, recomputed and total output pixels)."""
    it = iter(out)
    prev: FrameResult | None = None
    valid = False
    counts = {"frames": 0, "dense": 0, "pixels": 0, "sparse_pixels": 0, "sparse_total": 0}
    total = sum(ly.out_shape[0] * ly.out_shape[1] for ly in m.layers)
    for s in steps:
        if s.frame is None:
            assert next(it) == "reset ok"
            valid = False
            continue
        res = parse_frame(next(it), m)
        status, dense_hex = next(it).split()[1:]
        assert status == "0"
        dense = check_frame(m, s.frame, s.mode, res, prev, valid)
        if dense or output_is_dense:  # the chain's output is the dense model's on the raw frame
            assert res.layers[-1].out.tobytes().hex() == dense_hex, "output != dense model"
        pixels = sum(lo.out_pixels for lo in res.layers)
        counts["frames"] += 1
        counts["dense"] += dense
        counts["pixels"] += pixels
        if not dense:
            counts["sparse_pixels"] += pixels
            counts["sparse_total"] += total
        prev, valid = res, True
    return counts


# -- frames --------------------------------------------------------------------------------------------


def local_changes(rng: np.random.Generator, x: np.ndarray, n_rects: int) -> np.ndarray:
    y = x.copy()
    h, w, c = y.shape
    for _ in range(n_rects):
        rh, rw = int(rng.integers(1, max(2, h // 3))), int(rng.integers(1, max(2, w // 3)))
        y0, x0 = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        y[y0 : y0 + rh, x0 : x0 + rw] = rng.integers(-128, 128, size=(rh, rw, c))
    return y


def noisy(rng: np.random.Generator, x: np.ndarray, p: float = 0.1, amp: int = 4) -> np.ndarray:
    d = rng.integers(-amp, amp + 1, size=x.shape) * (rng.random(x.shape) < p)
    return np.clip(x.astype(np.int32) + d, -128, 127).astype(np.int8)


def rand_frame(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


# -- fixtures ------------------------------------------------------------------------------------------


@dataclass
class Suite:
    models: list[Model]
    groups: dict[str, list[int]]   # purpose -> model indices
    exe: Path


@pytest.fixture(scope="module")
def suite(host_cc: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Suite:
    rng = np.random.default_rng(20261124)
    models: list[Model] = []
    groups: dict[str, list[int]] = {}

    def add(purpose: str, ms: list[Model]) -> None:
        groups[purpose] = list(range(len(models), len(models) + len(ms)))
        models.extend(ms)

    add("exact", [random_model(rng) for _ in range(14)])
    add("auto", [random_model(rng, gate_prob=0.8) for _ in range(14)])
    add("always", [random_model(rng, gate_prob=0.7, always=True) for _ in range(8)])
    cut = [random_model(rng, cut_permille=int(c), first_gated=True) for c in (500, 0, 900, 1000)]
    for m in cut:  # layer 0: "changed" iff a sampled byte differs
        m.layers[0].gate = {**random_gate(rng), "a_mean": 0, "a_max": 1, "threshold": 0}
    add("cut", cut)
    add("ungated", [random_model(rng, gate_prob=0.0) for _ in range(3)])
    src = tmp_path_factory.mktemp("pass") / "pass_models.c"
    src.write_text(emit_models(models))
    return Suite(models, groups, host_cc("pass_driver", [*RUNTIME, DRIVER, src]))


def run_sequences(s: Suite, seqs: dict[int, list[Step]], **kw: bool) -> dict[int, dict[str, int]]:
    lines: list[str] = []
    for mi, steps in seqs.items():
        lines += [f"reset {mi}", *sequence_lines(mi, steps)]
    out = run_driver(s.exe, lines)
    res, pos = {}, 0
    for mi, steps in seqs.items():
        n = 1 + sum(2 if st.frame is not None else 1 for st in steps)
        assert out[pos] == "reset ok"
        res[mi] = check_sequence(s.models[mi], steps, out[pos + 1 : pos + n], **kw)
        pos += n
    return res


# -- 1. EXACT: lossless, and skips work ----------------------------------------------------------------


def test_exact_mode_equals_dense_chain_and_skips_work(suite: Suite) -> None:
    rng = np.random.default_rng(1)
    seqs = {}
    for mi in suite.groups["exact"] + suite.groups["ungated"]:
        x = rand_frame(rng, suite.models[mi].in_shape)
        steps = [Step(x, EXACT)]
        for t in range(7):
            x = x.copy() if t == 3 else local_changes(rng, x, int(rng.integers(1, 3)))  # t=3: identical frame
            steps.append(Step(x, EXACT))
        seqs[mi] = steps
    counts = run_sequences(suite, seqs, output_is_dense=True)
    for c in counts.values():
        assert c["dense"] == 1  # only the first frame
    skipped = sum(c["sparse_total"] - c["sparse_pixels"] for c in counts.values())
    total = sum(c["sparse_total"] for c in counts.values())
    assert 0.1 * total < skipped < total, (skipped, total)


# -- 2. AUTO: learned gates as the header's integer formula --------------------------------------------


def test_auto_mode_gates_match_the_numpy_mirror(suite: Suite) -> None:
    rng = np.random.default_rng(2)
    seqs = {}
    for mi in suite.groups["auto"]:
        x = rand_frame(rng, suite.models[mi].in_shape)
        steps = [Step(x)]
        for t in range(9):
            x = noisy(rng, x, p=float(rng.uniform(0.02, 0.3)), amp=int(rng.integers(1, 12)))
            if t % 3 == 1:
                x = local_changes(rng, x, 1)
            steps.append(Step(x, EXACT if t == 5 else AUTO))
        seqs[mi] = steps
    counts = run_sequences(suite, seqs)
    assert sum(c["sparse_total"] - c["sparse_pixels"] for c in counts.values()) > 0


def test_gate_mirror_edge_cases() -> None:
    """pass_ref on hand-computed patches: clipped edge patches, sampling, mx = 0, the threshold boundary."""
    cur = np.zeros((5, 5, 2), np.int8)
    cache = cur.copy()
    cur[0, 0, 0], cur[3, 3, 1], cur[1, 0, 0], cur[4, 4, 0] = 10, -128, 100, 9  # (1, 0), (4, 4) unsampled at S = 2
    cache[3, 3, 1] = 127
    mean_q8, mx = R.gate_stats(cur, cache, patch=3, sample=2)
    # patch (0,0): sampled rows 0,2 x cols 0,2 x 2 channels = 8 elements, sum 10; patch (1,1): 1 x 1 x 2, 255
    assert mx.tolist() == [[10, 0], [0, 255]]
    assert mean_q8.tolist() == [[10 * 256 // 8, 0], [0, 255 * 256 // 2]]
    assert R.gate_elements(5, 5, 2, 3, 2).tolist() == [[8, 4], [4, 2]]
    # the grid moves every frame (phase = frame mod S*S): frame 3 reads row and column 1 of each patch, so only
    # (1, 1) of the first patch and (4, 4) of the short corner patch, 1 x 1 x 2 elements each
    assert R.gate_stats(cur, cache, 3, 2, frame=3)[1].tolist() == [[0, 0], [0, 9]]
    assert R.gate_elements(5, 5, 2, 3, 2, frame=3).tolist() == [[2, 2], [2, 2]]
    assert R.gate_stats(cur, cache, 3, 2, frame=6)[1].tolist() == [[100, 0], [0, 0]]  # phase 2: row 1, columns 0, 2
    g = {"patch": 3, "sample": 2, "a_mean": 1, "a_max": 0, "threshold": 320}
    assert R.gate_map(cur, cache, g).tolist() == [[0, 0], [0, 1]]  # 320 is not > 320
    assert R.gate_map(cur, cache, {**g, "threshold": 319}).tolist() == [[1, 0], [0, 1]]
    assert R.gate_map(cur, cache, {**g, "threshold": -10}).tolist() == [[1, 0], [0, 1]]  # mx = 0: unchanged
    assert R.exact_map(cur, cache, 3).tolist() == [[1, 0], [0, 1]]
    assert R.receptive_dilation(np.eye(4, dtype=np.uint8), (2, 2), (2, 2), (2, 2), (0, 0)).tolist() == [[1, 0], [0, 1]]


# -- 3. dense frames: first, DENSE mode, scene cuts, reset ---------------------------------------------


def test_dense_frames_scene_cuts_and_reset(suite: Suite) -> None:
    rng = np.random.default_rng(3)
    seqs = {}
    for mi in suite.groups["cut"]:
        shape = suite.models[mi].in_shape
        x = rand_frame(rng, shape)
        y = local_changes(rng, x, 1)
        z = ((y.astype(np.int32) + rng.integers(1, 256, size=shape)) % 256).astype(np.uint8).view(np.int8)
        # z: a new scene, every byte differs from y
        seqs[mi] = [Step(x), Step(y), Step(z), Step(noisy(rng, z, 0.05, 2)), Step(z, DENSE), Step(z),
                    Step(None), Step(local_changes(rng, z, 1), EXACT), Step(local_changes(rng, z, 1), EXACT)]
    out = run_sequences(suite, seqs)
    by_cut = {suite.models[mi].cut_permille: c for mi, c in out.items()}
    assert by_cut[0]["dense"] == 8  # cut_permille 0: every frame is a scene cut
    assert by_cut[500]["dense"] >= 4  # first, the new scene, DENSE mode, after the reset
    assert by_cut[1000]["dense"] >= 4  # every patch of layer 0 changes at z: even 1000 permille cuts


# -- 4. gates that always say "changed": the dense model bit for bit ------------------------------------


def test_always_changed_gates_equal_the_dense_model(suite: Suite) -> None:
    rng = np.random.default_rng(4)
    seqs = {}
    for mi in suite.groups["always"]:
        x = rand_frame(rng, suite.models[mi].in_shape)
        steps = [Step(x)]
        for t in range(6):
            x = noisy(rng, x, 0.05, 3) if t % 2 else local_changes(rng, x, 1)
            steps.append(Step(x))
        seqs[mi] = steps
    counts = run_sequences(suite, seqs, output_is_dense=True)
    assert all(c["dense"] == 1 for c in counts.values())


# -- 5. malformed models -------------------------------------------------------------------------------

BAD_CASES = ["null_model", "mode3", "n_layers0", "layers_null", "input_mismatch", "input_bytes", "output_mismatch",
             "output_bytes", "chain_dims", "chain_ptr", "batch2", "width0", "huge_dims", "window_out", "null_in",
             "null_out", "null_mask", "null_params", "kind", "stride0", "pad_ge_k", "gate_patch0", "gate_sample0",
             "gate_null_cache", "gate_null_map", "conv_null_wpack", "conv_null_bias", "conv_null_rq",
             "conv_null_mult", "conv_null_scratch", "conv_null_filter", "conv_filter_c", "conv_filter_n",
             "conv_dilation"]


def test_malformed_models_are_refused_and_reset_the_state(suite: Suite) -> None:
    models = suite.groups["auto"][:6] + suite.groups["ungated"][:1]
    lines = [f"bad {mi} {case}" for mi in models for case in ["none", "null_state", *BAD_CASES]]
    out = run_driver(suite.exe, lines)
    applied = set()
    for line, got in zip(lines, out, strict=True):
        case = line.split()[2]
        if got == "bad na":
            continue
        applied.add(case)
        expect = {"none": "bad 0 1", "null_state": f"bad {E_ARG} 1"}.get(case, f"bad {E_ARG} 0")
        assert got == expect, f"{line}: {got}"
    assert applied == {"none", "null_state", *BAD_CASES}


# -- 6. box kernels: host and virtual boards -----------------------------------------------------------


def test_box_kernels_equal_the_full_kernels_in_the_box(suite: Suite) -> None:
    out = run_driver(suite.exe, ["box 7 3000", "box 8 3000"])
    for line in out:
        assert re.fullmatch(r"box 0 [0-9a-f]{8}", line), line


BENCH_LD = """/* test-only memory budget: QEMU's mps2 machines have 4 MiB of SRAM */
MEMORY
{
    FLASH (rx)  : ORIGIN = 0x00000000, LENGTH = 4096K
    RAM   (rwx) : ORIGIN = 0x20000000, LENGTH = 4096K
}
OCTO_STACK_SIZE = 16K;
INCLUDE octo_cortexm.ld
"""

QEMU_BOARDS = {  # board: (gcc machine flags, QEMU machine)
    "virtual-m4": (["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "mps2-an386"),
    "virtual-m3": (["-mcpu=cortex-m3", "-mfloat-abi=soft"], "mps2-an385"),
}


def bench_models() -> list[Model]:
    """A camera-like chain (model 0, timed on the boards) and random ones, most of them all gated (the DSP
    gate's sums and maxima must give the host's decisions)."""
    rng = np.random.default_rng(5)
    g0 = {"patch": 4, "sample": 2, "a_mean": 1, "a_max": 0, "threshold": 256}  # mean |d| > 1 of the sampled
    g2 = {"patch": 2, "sample": 1, "a_mean": 1, "a_max": 1, "threshold": 1024}
    l0 = make_layer(rng, "conv", (32, 32, 3), k=3, s=1, padding="same", oc=8, gate=g0)
    l1 = make_layer(rng, "max", l0.out_shape, k=2, s=2, padding="valid")
    l2 = make_layer(rng, "conv", l1.out_shape, k=3, s=1, padding="same", oc=16, gate=g2)
    l3 = make_layer(rng, "conv", l2.out_shape, k=3, s=2, padding="same", oc=16)
    l4 = make_layer(rng, "avg", l3.out_shape, k=3, s=1, padding="same")
    return [Model([l0, l1, l2, l3, l4], cut_permille=700), random_model(rng),
            *[random_model(rng, gate_prob=1.0) for _ in range(5)]]


@pytest.mark.qemu
def test_runtime_and_box_kernels_identical_on_virtual_boards(host_cc: Callable[..., Path], tmp_path: Path) -> None:
    """pass_driver.c built bare-metal (-DPASS_BARE): the M4 (SXTB16/SMLAD dot products) and the M3 (portable C)
    print the same box-kernel and frame-sequence hashes as the host (ASan), and the PASS cost lines."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm (make setup)")
    src = tmp_path / "pass_bench_models.c"
    src.write_text(emit_models(bench_models()))
    host = run_driver(host_cc("pass_driver_bench", [*RUNTIME, DRIVER, src]), ["box 1 400", "selftest 1 24"])
    assert host[0].startswith("box 0 ") and " bad=0 " in host[1], host
    (tmp_path / "bench.ld").write_text(BENCH_LD)
    for board, (flags, machine) in QEMU_BOARDS.items():
        elf = tmp_path / f"{board}.elf"
        cmd = ["arm-none-eabi-gcc", *flags, "-mthumb", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow",
               "-Wconversion", "-Wno-sign-conversion", "-DPASS_BARE", f"-I{FW / 'include'}", "-ffunction-sections",
               "-fdata-sections", "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
               f"-L{FW / 'ld'}", f"-L{tmp_path}", "-Tbench.ld", str(FW / "boards" / "cortexm" / "startup_cortexm.c"),
               *map(str, RUNTIME), str(DRIVER), str(src), "-o", str(elf)]
        build = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert build.returncode == 0, build.stderr
        run = subprocess.run(["qemu-system-arm", "-machine", machine, "-nodefaults", "-display", "none", "-monitor",
                              "none", "-nic", "none", "-kernel", str(elf), "-icount", "shift=0",
                              "-semihosting-config", "enable=on,target=native"],
                             capture_output=True, text=True, timeout=120, check=False)
        text = run.stdout + run.stderr  # semihosting output lands on QEMU's stderr
        assert run.returncode == 0, f"{board}: rc {run.returncode}\n{text}"
        lines = text.splitlines()
        assert [ln for ln in lines if ln.startswith(("box ", "pass-selftest"))] == host, f"{board}: {text}"
        cost = next(ln for ln in lines if ln.startswith("pass-cost"))
        assert cost.endswith(" ok"), cost
        t = {k: (int(g), int(ly), int(px)) for k, g, ly, px in re.findall(r"(\w+)=(\d+)\+(\d+)/(\d+)", cost)}
        dense = sum(t["dense"][:2])
        # an unchanged frame costs the gates and the masks only: a small fraction of a dense frame
        assert sum(t["same_auto"][:2]) < 0.15 * dense and t["same_auto"][2] == 0, (board, cost)
        assert sum(t["square_exact"][:2]) < 0.6 * dense, (board, cost)
        print(board, cost)
