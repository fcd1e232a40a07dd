"""SGQ (stripe-wise group quantization) codec and its baselines; wire format in docs/SGQ.md.

The numeric core is integer: a payload carries an int8 tensor ``q`` [N,H,W,C] and one float32
per-tensor scale (real value = q * scale). Channels are grouped by similarity (max |q| per channel,
ranked and cut into equal groups); each group is quantized stripe by stripe (a stripe is a tile of
``stripe_h`` x ``stripe_w`` pixels) with its own 1-byte range (2 bytes for signed features) at 2, 4
or 8 bits. Everything after the float -> int8 step is integer arithmetic, so this module and
firmware/src/sgq/octo_sgq.c produce the same bytes for the same int8 input, and decode a payload to
the same int8 tensor (tests/python/test_sgq.py proves it).

Layers:
  * ``quantize_int8`` - float -> (int8, scale), symmetric per tensor, round to nearest (as the
    Octo training kernels' ``octo_train_quantize_s8``).
  * ``encode`` / ``decode`` / ``parse_header`` - the SGQ wire format on int8 tensors; with
    ``SgqParams(entropy=True)`` the codes go through ``rc_encode`` (an adaptive binary range coder, format
    version 2) when that is shorter, lossless.
  * ``make_codec(name, bits)`` - one small interface (``TensorCodec``) over "sgq", "uniform"
    (per-tensor range at the same bits, same wire format) and "fp32" (raw float32), so a training
    loop can swap them.

Malformed payloads raise ``SgqFormatError`` (a ValueError) whose ``status`` is the same negative
code the C decoder returns for the same bytes; nothing else escapes the decoders.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# -- format constants (octo_sgq.h) ---------------------------------------------------------------
MAGIC = 0x53                 # 'S'
FORMAT_VERSION = 1           # fixed-width codes; what the encoder writes unless the codes are range-coded
FORMAT_VERSION_RC = 2        # version 2 adds mode bit 5: the codes are range-coded (docs/SGQ.md)
MODE_RC = 0x20               # mode byte bit 5 (version 2 only)
HEADER_LEN = 18
MAX_DIM = 65535              # N, H, W, C are u16
MAX_GROUPS = 255
MAX_STRIPE = 255
MAX_ELEMS = (1 << 28) - 1    # format limit on N*H*W*C (keeps every count in 32-bit arithmetic)
DEFAULT_MAX_ELEMS = 1 << 24  # what decode() accepts unless told otherwise (a payload of zero ranges is tiny)

FP32_MAGIC = 0x46            # 'F'
FP32_VERSION = 1
FP32_HEADER_LEN = 12

RANGE_UNSIGNED = 0    # 1 byte per stripe: hi in [0, 127], range [0, hi] (features after ReLU)
RANGE_ASYMMETRIC = 1  # 2 bytes per stripe: lo, hi (int8), lo <= hi (signed features)
RANGE_SYMMETRIC = 2   # 1 byte per stripe: m in [0, 127], range [-m, m], zero exact (gradients)
RANGE_AUTO = 3        # encoder only: UNSIGNED if no value is negative, else ASYMMETRIC
RANGE_NAMES = {RANGE_UNSIGNED: "unsigned", RANGE_ASYMMETRIC: "asymmetric", RANGE_SYMMETRIC: "symmetric"}

ROUND_NEAREST = 0
ROUND_STOCHASTIC = 1

CLIP_MIN, CLIP_MAX = 8, 255  # SgqParams.clip: alpha in eighths (1.0 .. 31.875), 0 = off
CLIP_MAX_VALUES = 1 << 23    # with clipping: (N if shared else 1) * stripe_h * stripe_w * C at most this
CLIP_ALPHA8 = {2: 18, 4: 40, 8: 0}  # the measured alpha per bit width, in eighths (docs/SGQ.md), 0 = off

GROUP_AUTO = 0         # INTERLEAVED for 2-bit SYMMETRIC payloads, else CONTIGUOUS (docs/SGQ.md has the numbers)
GROUP_CONTIGUOUS = 1   # group = rank * G // C: channels of similar magnitude together
GROUP_INTERLEAVED = 2  # group = rank % G: every group spans all magnitudes

BITS_CODES = {2: 0, 4: 1, 8: 2}
CODE_BITS = {v: k for k, v in BITS_CODES.items()}

# -- status codes: the C decoder's (octo_status.h / octo_sgq.h) -----------------------------------
E_ARG = -1
E_BUF = -2
E_SHORT = -32    # shorter than the fixed header
E_MAGIC = -33    # first byte is not the SGQ magic
E_VERSION = -34  # format version not supported
E_HEADER = -35   # a header field is invalid (reserved bits, bits/range code, zero dim, groups, stripes, scale)
E_SHAPE = -36    # N*H*W*C above the format limit
E_LENGTH = -37   # length does not add up (truncated or trailing bytes)
E_GROUPS = -38   # group map: id >= groups, empty group, or non-zero padding bits
E_RANGE = -39    # a stripe range outside its mode's bounds
E_CODE = -40     # a code outside the levels (symmetric 2^b - 1) or non-zero padding bits
STATUS_NAMES = {
    E_ARG: "OCTO_E_ARG", E_BUF: "OCTO_E_BUF", E_SHORT: "OCTO_SGQ_E_SHORT", E_MAGIC: "OCTO_SGQ_E_MAGIC",
    E_VERSION: "OCTO_SGQ_E_VERSION", E_HEADER: "OCTO_SGQ_E_HEADER", E_SHAPE: "OCTO_SGQ_E_SHAPE",
    E_LENGTH: "OCTO_SGQ_E_LENGTH", E_GROUPS: "OCTO_SGQ_E_GROUPS", E_RANGE: "OCTO_SGQ_E_RANGE",
    E_CODE: "OCTO_SGQ_E_CODE",
}


class SgqFormatError(ValueError):
    """A payload the decoder rejects; ``status`` is the C decoder's code for the same bytes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{STATUS_NAMES.get(status, status)}: {message}")
        self.status = status

    @property
    def name(self) -> str:
        return STATUS_NAMES.get(self.status, str(self.status))


# -- parameters and header ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SgqParams:
    """Encoder settings. ``stripe_w = 0`` means the full width (a row band); ``group_map`` (one group
    id per channel) replaces the similarity grouping, e.g. to keep one grouping across payloads."""

    bits: int = 4
    groups: int = 4
    stripe_h: int = 2
    stripe_w: int = 0
    range_mode: int = RANGE_AUTO
    shared: bool = False            # one range per (tile, group) for the whole batch instead of per sample
    rounding: int = ROUND_NEAREST
    seed: int = 0                   # stochastic rounding: xorshift32 seeded as octo_train_prng_seed
    grouping: int = GROUP_AUTO      # ignored when group_map is given
    group_map: tuple[int, ...] | None = None
    clip: int = 0                   # 0: ranges = max; 8..255: clipped at ceil(clip/8 * mean|v|) (docs/SGQ.md)
    entropy: bool = False           # range-code the codes when that is shorter (lossless; format version 2)


@dataclass(frozen=True)
class SgqInfo:
    """A parsed, validated header plus the section sizes it implies."""

    version: int
    bits: int
    range_mode: int
    shared: bool
    entropy: bool       # the codes are range-coded (version 2, mode bit 5)
    groups: int
    shape: tuple[int, int, int, int]  # N, H, W, C
    stripe_h: int
    stripe_w: int
    scale: float
    map_len: int        # bytes of the packed group map (0 when groups == 1)
    n_ranges: int
    ranges_len: int     # bytes of the range section
    head_len: int       # header + map + ranges

    @property
    def elems(self) -> int:
        n, h, w, c = self.shape
        return n * h * w * c

    @property
    def tiles(self) -> tuple[int, int]:
        return -(-self.shape[1] // self.stripe_h), -(-self.shape[2] // self.stripe_w)


@dataclass(frozen=True)
class SgqTensor:
    """A decoded payload: int8 values, the tensor scale (real = q * scale) and the header."""

    q: np.ndarray
    scale: float
    info: SgqInfo

    def values(self) -> np.ndarray:
        return self.q.astype(np.float32) * np.float32(self.scale)


def map_bits(groups: int) -> int:
    """Bits per channel in the group map: 0 (one group), 1, 2, 4 or 8."""
    if groups <= 1:
        return 0
    for b in (1, 2, 4, 8):
        if groups <= 1 << b:
            return b
    raise ValueError(f"groups {groups} > {MAX_GROUPS}")


def _section_sizes(shape: tuple[int, int, int, int], groups: int, stripe_h: int, stripe_w: int,
                   shared: bool, range_mode: int) -> tuple[int, int, int]:
    n, h, w, c = shape
    map_len = (c * map_bits(groups) + 7) // 8
    n_ranges = (1 if shared else n) * (-(-h // stripe_h)) * (-(-w // stripe_w)) * groups
    ranges_len = n_ranges * (2 if range_mode == RANGE_ASYMMETRIC else 1)
    return map_len, n_ranges, ranges_len


def encoded_max_len(shape: tuple[int, int, int, int], params: SgqParams) -> int:
    """Upper bound of len(encode(q, scale, params)) for q of this shape (OCTO_SGQ_MAX_LEN)."""
    if not all(1 <= d <= MAX_DIM for d in shape) or math.prod(shape) > MAX_ELEMS:
        raise ValueError(f"shape {shape}: each dim must be 1..{MAX_DIM}, at most {MAX_ELEMS} values")
    p = resolve_params(shape, params)
    mode = RANGE_ASYMMETRIC if p.range_mode == RANGE_AUTO else p.range_mode
    map_len, _, ranges_len = _section_sizes(shape, p.groups, p.stripe_h, p.stripe_w, p.shared, mode)
    n, h, w, c = shape
    return HEADER_LEN + map_len + ranges_len + (n * h * w * c * p.bits + 7) // 8


def _scale_bits_ok(bits: int) -> bool:
    return (bits & 0x80000000) == 0 and (bits & 0x7F800000) != 0x7F800000 and bits != 0


def parse_header(payload: bytes | bytearray | memoryview) -> SgqInfo:
    """Validate the fixed header (magic, version, fields, shape limit) and return the section sizes.

    Raises SgqFormatError with E_SHORT, E_MAGIC, E_VERSION, E_HEADER or E_SHAPE, checked in that order.
    The map, ranges, length and codes are checked by decode()."""
    b = bytes(payload)
    if len(b) < HEADER_LEN:
        raise SgqFormatError(E_SHORT, f"{len(b)} bytes, the header alone is {HEADER_LEN}")
    if b[0] != MAGIC:
        raise SgqFormatError(E_MAGIC, f"magic 0x{b[0]:02x}, expected 0x{MAGIC:02x}")
    if b[1] not in (FORMAT_VERSION, FORMAT_VERSION_RC):
        raise SgqFormatError(E_VERSION, f"format version {b[1]}, this decoder reads {FORMAT_VERSION} and "
                             f"{FORMAT_VERSION_RC}")
    mode_byte, groups = b[2], b[3]
    n, h, w, c = struct.unpack_from("<4H", b, 4)
    sh, sw = b[12], b[13]
    scale_bits = struct.unpack_from("<I", b, 14)[0]
    bits_code, range_mode, shared = mode_byte & 3, (mode_byte >> 2) & 3, (mode_byte >> 4) & 1
    problems = []
    if mode_byte & (0xC0 if b[1] == FORMAT_VERSION_RC else 0xE0):
        problems.append(f"reserved mode bits set (0x{mode_byte:02x}, version {b[1]})")
    if bits_code == 3:
        problems.append("bits code 3")
    if range_mode == 3:
        problems.append("range mode 3")
    if 0 in (n, h, w, c):
        problems.append(f"empty shape {(n, h, w, c)}")
    if not 1 <= groups <= c:
        problems.append(f"{groups} groups for {c} channels")
    if not (1 <= sh <= h and 1 <= sw <= w):
        problems.append(f"stripe {sh}x{sw} for {h}x{w}")
    if not _scale_bits_ok(scale_bits):
        problems.append(f"scale bits 0x{scale_bits:08x} (must be finite and > 0)")
    if problems:
        raise SgqFormatError(E_HEADER, "; ".join(problems))
    if n * h * w * c > MAX_ELEMS:
        raise SgqFormatError(E_SHAPE, f"{n}x{h}x{w}x{c} = {n * h * w * c} values > {MAX_ELEMS}")
    shape = (n, h, w, c)
    map_len, n_ranges, ranges_len = _section_sizes(shape, groups, sh, sw, bool(shared), range_mode)
    scale = float(np.frombuffer(b[14:18], dtype="<f4")[0])
    return SgqInfo(version=b[1], bits=CODE_BITS[bits_code], range_mode=range_mode, shared=bool(shared),
                   entropy=bool(mode_byte & MODE_RC),
                   groups=groups, shape=shape, stripe_h=sh, stripe_w=sw, scale=scale, map_len=map_len,
                   n_ranges=n_ranges, ranges_len=ranges_len, head_len=HEADER_LEN + map_len + ranges_len)


# -- bit packing (LSB first: the first value sits in the lowest bits of the first byte) -------------
def pack_bits(values: np.ndarray, bits: int) -> bytes:
    v = np.asarray(values, dtype=np.uint8).ravel()
    if bits == 8 or v.size == 0:
        return v.tobytes()
    planes = (v[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


def unpack_bits(data: bytes, count: int, bits: int) -> tuple[np.ndarray, bool]:
    """The first `count` values of `bits` bits each, and whether the padding bits after them are zero."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        return raw[:count].copy(), True
    flat = np.unpackbits(raw, bitorder="little")
    planes = flat[: count * bits].reshape(count, bits).astype(np.uint8)
    vals = (planes << np.arange(bits, dtype=np.uint8)).sum(axis=1, dtype=np.uint8)
    return vals, not flat[count * bits:].any()


# -- PRNG: xorshift32 (13/17/5), seeded like octo_train_prng_seed ---------------------------------
def prng_seed(seed: int) -> int:
    z = (seed + 0x9E3779B9) & 0xFFFFFFFF
    z ^= z >> 16
    z = (z * 0x85EBCA6B) & 0xFFFFFFFF
    z ^= z >> 13
    z = (z * 0xC2B2AE35) & 0xFFFFFFFF
    z ^= z >> 16
    return z if z != 0 else 0x6D2B79F5


_BLOCK = 4096
_basis_cache: list[np.ndarray] = []


def _xorshift_basis() -> np.ndarray:
    """[32, _BLOCK]: the draws from each one-bit start state. xorshift is linear over GF(2), so the draws
    from any state are the XOR of the rows of its set bits (a vectorised, bit-exact stream)."""
    if not _basis_cache:
        x = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
        out = np.empty((32, _BLOCK), dtype=np.uint32)
        for k in range(_BLOCK):
            x = x ^ (x << np.uint32(13))
            x = x ^ (x >> np.uint32(17))
            x = x ^ (x << np.uint32(5))
            out[:, k] = x
        _basis_cache.append(out)
    return _basis_cache[0]


def prng_draws(seed: int, count: int) -> np.ndarray:
    """The first `count` draws (uint32) of the xorshift32 stream seeded with `seed`."""
    basis = _xorshift_basis()
    state = prng_seed(seed & 0xFFFFFFFF)
    out = np.empty(count, dtype=np.uint32)
    for start in range(0, count, _BLOCK):
        block = np.zeros(_BLOCK, dtype=np.uint32)
        for j in range(32):
            if state >> j & 1:
                block ^= basis[j]
        take = min(_BLOCK, count - start)
        out[start:start + take] = block[:take]
        state = int(block[-1])
    return out


# -- entropy stage: adaptive binary range coder over the codes (docs/SGQ.md, "Range-coded codes") ----------
RC_PROB_BITS = 11            # a probability is P(bit = 0) in 1/2048
RC_PROB_INIT = 1 << 10       # every probability starts at 1/2
RC_ADAPT_SHIFT = 5           # after each bit the probability moves 1/32 of the way towards it
RC_TOP = 1 << 24             # renormalise (shift a byte out / in) while the range is below this


def rc_encode(codes: np.ndarray, bits: int, limit: int) -> bytes | None:
    """Range-code `bits`-bit codes: each code is coded MSB first as a path through a binary tree of
    2^bits - 1 adaptive probabilities (node m = 1, then 2m + bit). Returns None as soon as the stream would
    exceed `limit` bytes (the encoder then keeps the fixed-width codes). Carries propagate into the bytes
    already written; the stream ends with the 4 bytes of `low`, most significant first."""
    probs = [RC_PROB_INIT] * (1 << bits)
    out = bytearray()
    low, rng = 0, 0xFFFFFFFF
    top = 1 << (bits - 1)
    for s in codes.tolist():
        m, t = 1, top
        while t:
            p = probs[m]
            bound = (rng >> RC_PROB_BITS) * p
            if s & t:
                low += bound
                rng -= bound
                probs[m] = p - (p >> RC_ADAPT_SHIFT)
                m = 2 * m + 1
                if low > 0xFFFFFFFF:  # carry into the bytes already out (never past the first one)
                    low &= 0xFFFFFFFF
                    j = len(out) - 1
                    while out[j] == 0xFF:
                        out[j] = 0
                        j -= 1
                    out[j] += 1
            else:
                rng = bound
                probs[m] = p + (((1 << RC_PROB_BITS) - p) >> RC_ADAPT_SHIFT)
                m = 2 * m
            while rng < RC_TOP:
                out.append(low >> 24)
                low = (low << 8) & 0xFFFFFFFF
                rng <<= 8
            t >>= 1
        if len(out) + 4 > limit:
            return None
    return bytes(out) + low.to_bytes(4, "big")


def rc_decode(data: bytes, count: int, bits: int, max_code: int) -> np.ndarray:
    """Decode `count` codes from exactly `data` (rc_encode's stream), checking in the C decoder's order:
    fewer than 4 bytes or a byte needed past the end -> E_LENGTH; a code above `max_code` -> E_CODE as soon
    as it is complete; bytes left over -> E_LENGTH; a stream that does not end exactly on `low` (the final
    code register is not 0) -> E_CODE."""
    n = len(data)
    if n < 4:
        raise SgqFormatError(E_LENGTH, f"range-coded codes need at least 4 bytes, got {n}")
    probs = [RC_PROB_INIT] * (1 << bits)
    code = int.from_bytes(data[:4], "big")
    pos, rng = 4, 0xFFFFFFFF
    out = [0] * count
    sub = 1 << bits
    for i in range(count):
        m = 1
        while m < sub:
            p = probs[m]
            bound = (rng >> RC_PROB_BITS) * p
            if code < bound:
                rng = bound
                probs[m] = p + (((1 << RC_PROB_BITS) - p) >> RC_ADAPT_SHIFT)
                m = 2 * m
            else:
                code -= bound
                rng -= bound
                probs[m] = p - (p >> RC_ADAPT_SHIFT)
                m = 2 * m + 1
            if rng < RC_TOP:
                if pos >= n:
                    raise SgqFormatError(E_LENGTH, f"range-coded codes end after {n} bytes, inside code {i} "
                                         f"of {count}")
                code = ((code << 8) | data[pos]) & 0xFFFFFFFF
                pos += 1
                rng <<= 8
        if m - sub > max_code:
            raise SgqFormatError(E_CODE, f"code {i} is {m - sub} (unused in symmetric mode)")
        out[i] = m - sub
    if pos != n:
        raise SgqFormatError(E_LENGTH, f"{n - pos} bytes after the last range-coded code")
    if code != 0:
        raise SgqFormatError(E_CODE, "the range-coded stream does not end on its final interval")
    return np.asarray(out, dtype=np.int64)


# -- encoder -----------------------------------------------------------------------------------------
def resolve_params(shape: tuple[int, int, int, int], params: SgqParams) -> SgqParams:
    """Check the settings against a shape; fill stripe_w = 0 with the full width (at most 255)."""
    _, h, w, c = shape
    if params.bits not in BITS_CODES:
        raise ValueError(f"bits must be 2, 4 or 8, not {params.bits}")
    if not 1 <= params.groups <= min(c, MAX_GROUPS):
        raise ValueError(f"groups must be 1..{min(c, MAX_GROUPS)} for {c} channels, not {params.groups}")
    sw = params.stripe_w or min(w, MAX_STRIPE)
    if not (1 <= params.stripe_h <= min(h, MAX_STRIPE) and 1 <= sw <= min(w, MAX_STRIPE)):
        raise ValueError(f"stripe {params.stripe_h}x{sw} does not fit {h}x{w} (each side 1..min(dim, 255))")
    if params.range_mode not in (RANGE_UNSIGNED, RANGE_ASYMMETRIC, RANGE_SYMMETRIC, RANGE_AUTO):
        raise ValueError(f"unknown range mode {params.range_mode}")
    if params.rounding not in (ROUND_NEAREST, ROUND_STOCHASTIC):
        raise ValueError(f"unknown rounding {params.rounding}")
    if params.grouping not in (GROUP_AUTO, GROUP_CONTIGUOUS, GROUP_INTERLEAVED):
        raise ValueError(f"unknown grouping {params.grouping}")
    if params.clip != 0 and not CLIP_MIN <= params.clip <= CLIP_MAX:
        raise ValueError(f"clip must be 0 (off) or {CLIP_MIN}..{CLIP_MAX} (alpha in eighths), not {params.clip}")
    if params.clip != 0 and (shape[0] if params.shared else 1) * params.stripe_h * sw * c > CLIP_MAX_VALUES:
        raise ValueError(f"clipped ranges take at most {CLIP_MAX_VALUES} values per range "
                         "((N if shared else 1) * stripe_h * stripe_w * C)")
    if params.group_map is not None:
        gm = np.asarray(params.group_map)
        if gm.shape != (c,) or gm.min() < 0 or gm.max() >= params.groups or \
                len(np.unique(gm)) != params.groups:
            raise ValueError(f"group_map needs {c} ids covering 0..{params.groups - 1}, each used")
    return SgqParams(bits=params.bits, groups=params.groups, stripe_h=params.stripe_h, stripe_w=sw,
                     range_mode=params.range_mode, shared=params.shared, rounding=params.rounding,
                     seed=params.seed & 0xFFFFFFFF, grouping=params.grouping, group_map=params.group_map,
                     clip=params.clip, entropy=params.entropy)


def group_channels(v: np.ndarray, groups: int, interleaved: bool = False) -> np.ndarray:
    """Group id per channel: rank channels by max |v| over N,H,W (ties by index), then cut the ranking
    into `groups` equal runs (rank * groups // C) or deal it out (rank % groups, interleaved).
    v is the int8 tensor after the range mode's clamp."""
    c = v.shape[-1]
    if groups == 1:
        return np.zeros(c, dtype=np.int64)
    stat = np.abs(v.astype(np.int16)).reshape(-1, c).max(axis=0)
    order = np.lexsort((np.arange(c), stat))  # sort by stat, then channel index
    rank = np.arange(c)
    gmap = np.empty(c, dtype=np.int64)
    gmap[order] = rank % groups if interleaved else rank * groups // c
    return gmap


def clip_bounds(flat: np.ndarray, ri: np.ndarray, n_ranges: int, clip: int) -> np.ndarray:
    """Clipping bound per range: ceil(clip * S / (8 * n)) with S the sum of |v| and n the number of non-zero
    values of the range (v after the range mode's clamp; 0 for an all-zero range), in exact integer
    arithmetic, as the C encoder computes it (S < 2^31: at most 2^24 values per range)."""
    a = np.abs(flat)
    s = np.bincount(ri, weights=a, minlength=n_ranges).astype(np.int64)  # exact: sums < 2^53
    n = np.bincount(ri, weights=a != 0, minlength=n_ranges).astype(np.int64)
    return np.where(n > 0, (clip * s + 8 * n - 1) // np.maximum(8 * n, 1), 0)


def _range_index(shape: tuple[int, int, int, int], p: SgqParams, gmap: np.ndarray) -> np.ndarray:
    n, h, w, _ = shape
    th, tw = -(-h // p.stripe_h), -(-w // p.stripe_w)
    nn = np.zeros(n, dtype=np.int64) if p.shared else np.arange(n, dtype=np.int64)
    tile = (nn[:, None, None] * th + (np.arange(h) // p.stripe_h)[None, :, None]) * tw \
        + (np.arange(w) // p.stripe_w)[None, None, :]
    return tile[..., None] * p.groups + gmap[None, None, None, :]


def encode(q: np.ndarray, scale: float, params: SgqParams | None = None) -> bytes:
    """SGQ-encode an int8 tensor [N,H,W,C] with its per-tensor scale (real value = q * scale)."""
    params = params or SgqParams()
    q = np.asarray(q)
    if q.dtype != np.int8 or q.ndim != 4:
        raise ValueError(f"need an int8 tensor [N,H,W,C], got {q.dtype} {q.shape}")
    shape = tuple(int(d) for d in q.shape)
    if not all(1 <= d <= MAX_DIM for d in shape) or q.size > MAX_ELEMS:
        raise ValueError(f"shape {shape}: each dim must be 1..{MAX_DIM}, at most {MAX_ELEMS} values")
    shape4: tuple[int, int, int, int] = (shape[0], shape[1], shape[2], shape[3])
    scale_bits = struct.unpack("<I", struct.pack("<f", scale))[0]
    if not _scale_bits_ok(scale_bits):
        raise ValueError(f"scale {scale} must be finite and > 0")
    p = resolve_params(shape4, params)
    mode = p.range_mode
    v = q.astype(np.int64)
    if mode == RANGE_AUTO:
        mode = RANGE_UNSIGNED if v.min() >= 0 else RANGE_ASYMMETRIC
    if mode == RANGE_UNSIGNED and v.min() < 0:
        raise ValueError("range mode unsigned needs a tensor without negative values")
    if mode == RANGE_SYMMETRIC:
        v = np.maximum(v, -127)
    if p.group_map is not None:
        gmap = np.asarray(p.group_map, dtype=np.int64)
    else:
        interleaved = p.grouping == GROUP_INTERLEAVED or (
            p.grouping == GROUP_AUTO and mode == RANGE_SYMMETRIC and p.bits == 2)
        gmap = group_channels(v, p.groups, interleaved)
    _, n_ranges, _ = _section_sizes(shape4, p.groups, p.stripe_h, p.stripe_w, p.shared, mode)
    ri = _range_index(shape4, p, gmap).ravel()
    flat = v.ravel()
    if mode == RANGE_SYMMETRIC:
        hi = np.zeros(n_ranges, dtype=np.int64)
        np.maximum.at(hi, ri, np.abs(flat))
        lo = np.zeros(n_ranges, dtype=np.int64)
    else:
        hi = np.full(n_ranges, -128 if mode == RANGE_ASYMMETRIC else 0, dtype=np.int64)
        np.maximum.at(hi, ri, flat)
        lo = np.zeros(n_ranges, dtype=np.int64)
        if mode == RANGE_ASYMMETRIC:
            lo = np.full(n_ranges, 127, dtype=np.int64)
            np.minimum.at(lo, ri, flat)
    if p.clip:
        bound = clip_bounds(flat, ri, n_ranges, p.clip)
        hi = np.minimum(hi, bound)
        if mode == RANGE_ASYMMETRIC:
            lo = np.maximum(lo, -bound)
    if mode == RANGE_ASYMMETRIC:
        range_bytes = np.stack([lo, hi], axis=1).astype(np.int8).tobytes()
    else:
        range_bytes = hi.astype(np.uint8).tobytes()
    width = hi - lo
    coded = width[ri] > 0
    idx = ri[coded]
    d = width[idx]
    if p.rounding == ROUND_STOCHASTIC:
        rnd = (prng_draws(p.seed, int(coded.sum())) >> np.uint32(16)).astype(np.int64)
    else:
        rnd = np.int64(0x8000)
    if mode == RANGE_SYMMETRIC:
        k = (1 << (p.bits - 1)) - 1
        x = flat[coded]
        mag_codes = np.minimum((np.abs(x) * ((k << 16) // d) + rnd) >> 16, k)  # a clipped value: the top level
        codes = k + np.sign(x) * mag_codes
    else:
        l1 = (1 << p.bits) - 1
        x = flat[coded] - lo[idx]  # < 0 only below a clipped lo: the bottom level
        codes = np.where(x > 0, np.minimum((np.maximum(x, 0) * ((l1 << 16) // d) + rnd) >> 16, l1), 0)
    code_bytes = pack_bits(codes, p.bits)
    version, mode_byte = FORMAT_VERSION, BITS_CODES[p.bits] | mode << 2 | int(p.shared) << 4
    if p.entropy and codes.size:
        coded_bytes = rc_encode(codes, p.bits, len(code_bytes) - 1)
        if coded_bytes is not None:  # only when strictly shorter than the fixed-width codes
            version, mode_byte, code_bytes = FORMAT_VERSION_RC, mode_byte | MODE_RC, coded_bytes
    header = struct.pack("<BBBB4HBBI", MAGIC, version, mode_byte, p.groups, *shape4, p.stripe_h, p.stripe_w,
                         scale_bits)
    gmap_bytes = pack_bits(gmap, map_bits(p.groups)) if p.groups > 1 else b""
    return header + gmap_bytes + range_bytes + code_bytes


# -- decoder -----------------------------------------------------------------------------------------
def decode(payload: bytes | bytearray | memoryview, max_elems: int = DEFAULT_MAX_ELEMS) -> SgqTensor:
    """Decode and fully validate an SGQ payload. Raises SgqFormatError (and nothing else) on bad bytes.

    Checks, in the C decoder's order: header (parse_header), N*H*W*C <= max_elems (E_BUF, the C
    decoder's output capacity), length >= header + map + ranges (E_LENGTH), group map (E_GROUPS),
    ranges (E_RANGE), exact length (E_LENGTH), codes and padding (E_CODE)."""
    b = bytes(payload)
    info = parse_header(b)
    if info.elems > max_elems:
        raise SgqFormatError(E_BUF, f"{info.elems} values > this decoder's limit {max_elems}")
    if len(b) < info.head_len:
        raise SgqFormatError(E_LENGTH, f"{len(b)} bytes, header + map + ranges need {info.head_len}")
    n, h, w, c = info.shape
    pos = HEADER_LEN
    if info.groups > 1:
        gmap8, pad_ok = unpack_bits(b[pos:pos + info.map_len], c, map_bits(info.groups))
        gmap = gmap8.astype(np.int64)
        if not pad_ok or gmap.max() >= info.groups or \
                np.bincount(gmap, minlength=info.groups).min() == 0:
            raise SgqFormatError(E_GROUPS, "group map has an id >= groups, an empty group or padding bits set")
    else:
        gmap = np.zeros(c, dtype=np.int64)
    pos += info.map_len
    raw = np.frombuffer(b[pos:pos + info.ranges_len], dtype=np.uint8)
    if info.range_mode == RANGE_ASYMMETRIC:
        pairs = raw.view(np.int8).astype(np.int64).reshape(-1, 2)
        lo, hi = pairs[:, 0], pairs[:, 1]
        if (lo > hi).any():
            raise SgqFormatError(E_RANGE, "a stripe range has lo > hi")
    else:
        hi = raw.astype(np.int64)
        lo = np.zeros_like(hi)
        if (hi > 127).any():
            raise SgqFormatError(E_RANGE, "a stripe range is above 127")
    pos += info.ranges_len
    width = hi - lo
    p = SgqParams(bits=info.bits, groups=info.groups, stripe_h=info.stripe_h, stripe_w=info.stripe_w,
                  shared=info.shared)
    ri = _range_index(info.shape, p, gmap).ravel()
    coded = width[ri] > 0
    count = int(coded.sum())
    k = (1 << (info.bits - 1)) - 1
    sym = info.range_mode == RANGE_SYMMETRIC
    if info.entropy:
        codes = rc_decode(b[pos:], count, info.bits, 2 * k if sym else (1 << info.bits) - 1)
        pad_ok = True
    else:
        code_len = (count * info.bits + 7) // 8
        if len(b) != pos + code_len:
            raise SgqFormatError(E_LENGTH, f"{len(b)} bytes, the ranges imply {pos + code_len}")
        codes8, pad_ok = unpack_bits(b[pos:], count, info.bits)
        codes = codes8.astype(np.int64)
    idx = ri[coded]
    d = width[idx]
    out = lo[ri].copy()
    if sym:
        if not pad_ok or (codes > 2 * k).any():
            raise SgqFormatError(E_CODE, f"a code is {2 * k + 1} (unused in symmetric mode) or padding bits set")
        s = codes - k
        out[coded] = np.sign(s) * ((np.abs(s) * (((d << 17) + k) // (2 * k)) + 0x8000) >> 16)
    else:
        if not pad_ok:
            raise SgqFormatError(E_CODE, "padding bits after the last code are set")
        l1 = (1 << info.bits) - 1
        out[coded] = lo[idx] + ((codes * (((d << 17) + l1) // (2 * l1)) + 0x8000) >> 16)
    return SgqTensor(out.astype(np.int8).reshape(n, h, w, c), info.scale, info)


# -- float <-> int8 ------------------------------------------------------------------------------------
def quantize_int8(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8: scale = max|x| / 127 (1 for an all-zero tensor), q = floor(x * (127 /
    max|x|) + 1/2) clamped to [-127, 127], in float32 (octo_train_quantize_s8 with round to nearest)."""
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("tensor has inf or NaN values")
    m = np.float32(np.abs(x).max()) if x.size else np.float32(0)
    rng = m if m > 0 else np.float32(127)
    inv = np.float32(127) / rng
    v = np.clip(x * inv, np.float32(-127), np.float32(127))
    q = np.minimum(np.floor(v + np.float32(0.5)), np.float32(127)).astype(np.int8)
    return q, float(rng / np.float32(127))


# -- fp32 baseline wire format: 'F', version, 2 reserved zero bytes, N,H,W,C (u16), float32 LE values --
def fp32_encode(x: np.ndarray) -> bytes:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or not all(1 <= d <= MAX_DIM for d in x.shape):
        raise ValueError(f"need a float tensor [N,H,W,C] with dims 1..{MAX_DIM}, got {x.shape}")
    return struct.pack("<BBBB4H", FP32_MAGIC, FP32_VERSION, 0, 0, *x.shape) + x.astype("<f4").tobytes()


def fp32_decode(payload: bytes | bytearray | memoryview, max_elems: int = DEFAULT_MAX_ELEMS) -> np.ndarray:
    b = bytes(payload)
    if len(b) < FP32_HEADER_LEN:
        raise SgqFormatError(E_SHORT, f"{len(b)} bytes, the fp32 header alone is {FP32_HEADER_LEN}")
    if b[0] != FP32_MAGIC:
        raise SgqFormatError(E_MAGIC, f"magic 0x{b[0]:02x}, expected 0x{FP32_MAGIC:02x}")
    if b[1] != FP32_VERSION:
        raise SgqFormatError(E_VERSION, f"fp32 format version {b[1]}")
    shape = struct.unpack_from("<4H", b, 4)
    if b[2] or b[3] or 0 in shape:
        raise SgqFormatError(E_HEADER, "reserved bytes set or an empty shape")
    elems = shape[0] * shape[1] * shape[2] * shape[3]
    if elems > max_elems:
        raise SgqFormatError(E_BUF, f"{elems} values > this decoder's limit {max_elems}")
    if len(b) != FP32_HEADER_LEN + 4 * elems:
        raise SgqFormatError(E_LENGTH, f"{len(b)} bytes, the shape implies {FP32_HEADER_LEN + 4 * elems}")
    return np.frombuffer(b, dtype="<f4", offset=FP32_HEADER_LEN).astype(np.float32).reshape(shape)


# -- one interface for the training loop ----------------------------------------------------------------
class TensorCodec(Protocol):
    """What a split-learning loop needs: features go device -> cloud, gradients cloud -> device.
    encode_* take float [N,H,W,C]; decode_* return float32 [N,H,W,C]. A payload is self-describing."""

    name: str
    bits: int

    def encode_features(self, x: np.ndarray) -> bytes: ...
    def decode_features(self, payload: bytes) -> np.ndarray: ...
    def encode_gradients(self, g: np.ndarray) -> bytes: ...
    def decode_gradients(self, payload: bytes) -> np.ndarray: ...


@dataclass
class Fp32Codec:
    """Raw float32, little-endian, after a 12-byte header: the uncompressed baseline."""

    name: str = "fp32"
    bits: int = 32

    def encode_features(self, x: np.ndarray) -> bytes:
        return fp32_encode(x)

    def decode_features(self, payload: bytes) -> np.ndarray:
        return fp32_decode(payload)

    encode_gradients = encode_features
    decode_gradients = decode_features


@dataclass
class SgqCodec:
    """float -> int8 (quantize_int8) -> SGQ. Features use RANGE_AUTO and round to nearest; gradients use
    RANGE_SYMMETRIC and `gradient_rounding`. Stochastic rounding seeds call k of encode_gradients with
    seed + k, so a run is reproducible and successive payloads draw differently. `clip` clips the ranges
    in both directions with the measured alpha of the bit width (CLIP_ALPHA8; none at 8 bits). `entropy`
    range-codes the codes of every payload where that is shorter (lossless: the same decoded values)."""

    name: str = "sgq"
    bits: int = 4
    groups: int = 4
    stripe_h: int = 2
    stripe_w: int = 0
    shared: bool = False
    gradient_rounding: int = ROUND_NEAREST
    seed: int = 0
    clip: bool = False
    entropy: bool = False
    _calls: int = field(default=0, repr=False)

    def params(self, shape: tuple[int, ...], range_mode: int, rounding: int, seed: int) -> SgqParams:
        _, h, w, c = shape
        return SgqParams(bits=self.bits, groups=min(self.groups, c, MAX_GROUPS),
                         stripe_h=min(self.stripe_h or h, h, MAX_STRIPE),
                         stripe_w=min(self.stripe_w or w, w, MAX_STRIPE), range_mode=range_mode,
                         shared=self.shared, rounding=rounding, seed=seed,
                         clip=CLIP_ALPHA8[self.bits] if self.clip else 0, entropy=self.entropy)

    def encode_int8(self, q: np.ndarray, scale: float, gradients: bool = False) -> bytes:
        """The device's view: an int8 tensor and its scale."""
        if gradients:
            seed = (self.seed + self._calls) & 0xFFFFFFFF
            self._calls += 1
            return encode(q, scale, self.params(q.shape, RANGE_SYMMETRIC, self.gradient_rounding, seed))
        return encode(q, scale, self.params(q.shape, RANGE_AUTO, ROUND_NEAREST, 0))

    def encode_features(self, x: np.ndarray) -> bytes:
        q, scale = quantize_int8(x)
        return self.encode_int8(q, scale)

    def encode_gradients(self, g: np.ndarray) -> bytes:
        q, scale = quantize_int8(g)
        return self.encode_int8(q, scale, gradients=True)

    def decode_features(self, payload: bytes) -> np.ndarray:
        return decode(payload).values()

    decode_gradients = decode_features


CODECS = ("sgq", "uniform", "fp32")


def make_codec(name: str, bits: int = 4, *, groups: int = 4, stripe: tuple[int, int] = (2, 0),
               gradient_rounding: str = "nearest", seed: int = 0, clip: bool = False,
               entropy: bool = False) -> Fp32Codec | SgqCodec:
    """A TensorCodec by name:
      "sgq"     - `groups` similarity groups, `stripe` = (rows, cols) tiles (0 = the full height/width);
      "uniform" - the same wire format with one group and one range for the whole payload (per-tensor
                  uniform quantization at `bits`), the baseline SGQ must beat at equal bits;
      "fp32"    - raw float32 (bits and clip are ignored).
    `clip`: clipped ranges with the bit width's measured alpha (CLIP_ALPHA8), see docs/SGQ.md.
    `entropy`: range-coded codes where shorter (format version 2; sgq and uniform)."""
    if gradient_rounding not in ("nearest", "stochastic"):
        raise ValueError(f"gradient_rounding must be nearest or stochastic, not {gradient_rounding!r}")
    rounding = ROUND_STOCHASTIC if gradient_rounding == "stochastic" else ROUND_NEAREST
    if name == "fp32":
        return Fp32Codec()
    if bits not in BITS_CODES:
        raise ValueError(f"bits must be 2, 4 or 8, not {bits}")
    if name == "sgq":
        return SgqCodec(name="sgq", bits=bits, groups=groups, stripe_h=stripe[0], stripe_w=stripe[1],
                        gradient_rounding=rounding, seed=seed, clip=clip, entropy=entropy)
    if name == "uniform":
        return SgqCodec(name="uniform", bits=bits, groups=1, stripe_h=0, stripe_w=0, shared=True,
                        gradient_rounding=rounding, seed=seed, clip=clip, entropy=entropy)
    raise ValueError(f"unknown codec {name!r} (known: {', '.join(CODECS)})")
