"""Compile a generated model natively (gcc) and run it on a batch of inputs.

This is `--target host`: the same C as on the board, built for this machine,
used for fast experiments and as the first check against TFLM.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from converter.ir import ConvertError
from host_tools.paths import firmware_dir

KERNEL_SOURCES = ("src/kernels", "src/common/octo_status.c")


def kernel_sources() -> list[Path]:
    fw = firmware_dir()
    out: list[Path] = []
    for s in KERNEL_SOURCES:
        p = fw / s
        out += sorted(p.glob("*.c")) if p.is_dir() else [p]
    return out


def build_host_runner(model_dir: Path, *, sanitize: bool = False, extra_flags: list[str] | None = None) -> Path:
    """Build <model_dir>/host/octo_infer (cached on the sources' content)."""
    if shutil.which("gcc") is None:
        raise ConvertError("gcc not found; install it (`make setup`) to run models with --target host")
    fw = firmware_dir()
    sources = [model_dir / "model.c", *kernel_sources(), fw / "host" / "octo_infer_main.c"]
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", *(extra_flags or [])]
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
    h = hashlib.sha256(" ".join(flags).encode())
    for s in sources:
        h.update(s.read_bytes())
    for hdr in sorted((fw / "include" / "octo").glob("*.h")):
        h.update(hdr.read_bytes())
    out_dir = model_dir / "host"
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / f"octo_infer-{h.hexdigest()[:12]}"
    if exe.exists():
        return exe
    cmd = ["gcc", *flags, f"-I{fw / 'include'}", f"-I{model_dir}", "-include", "octo_model_config.h",
           *map(str, sources), "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConvertError(f"host build of {model_dir / 'model.c'} failed:\n{proc.stderr.strip()[-3000:]}")
    return exe


def run_host(exe: Path, inputs_q: np.ndarray, output_size: int) -> np.ndarray:
    """inputs_q: int8 [N, ...] -> int8 [N, output_size]."""
    x = np.ascontiguousarray(inputs_q, dtype=np.int8)
    with tempfile.TemporaryDirectory(prefix="octo-infer-") as tmp:
        fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        fin.write_bytes(x.tobytes())
        proc = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ConvertError(f"host inference failed: {proc.stderr.strip()[-2000:]}")
        y = np.frombuffer(fout.read_bytes(), dtype=np.int8)
    return y.reshape(x.shape[0], output_size)
