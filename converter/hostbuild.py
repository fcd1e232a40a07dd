"""Compile a generated model natively (gcc) and run it on a batch of inputs.

This is `--target host`: the same C as on the board, built for this machine,
used for fast experiments and as the first check against TFLM.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from converter import firmware_sources as fws
from converter.ir import ConvertError


def kernel_sources() -> list[Path]:
    """The inference kernels and the PASS runtime (no model needed)."""
    return fws.sources("kernels", "pass", "status")


class HostBuildError(Exception):
    """gcc failed; the message is the tail of its output."""


def compile_objects(sources: Sequence[Path], flags: list[str], cache_dir: Path, *,
                    hash_also: Sequence[Path] = ()) -> list[Path]:
    """gcc -c of each source into cache_dir/<stem>-<hash>.o, keyed on the flags, the source and the files in
    hash_also (headers): sources that do not depend on a build folder are compiled once and shared by every
    build (the native trainers of many plans). Missing objects are compiled in parallel, each appearing
    atomically."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    common = hashlib.sha256(" ".join(flags).encode())
    for p in hash_also:
        common.update(p.read_bytes())
    cache_dir.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in sources:
        h = common.copy()
        h.update(str(src.name).encode() + b"\0" + src.read_bytes())
        objs.append(cache_dir / f"{src.stem}-{h.hexdigest()[:16]}.o")

    def one(pair: tuple[Path, Path]) -> str | None:
        src, obj = pair
        if obj.exists():
            return None
        tmp = obj.with_name(f"{obj.name}.{os.getpid()}.{id(pair)}.tmp")
        proc = subprocess.run(["gcc", *flags, "-c", str(src), "-o", str(tmp)], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            return proc.stderr.strip()[-3000:]
        os.replace(tmp, obj)
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        errors = [e for e in pool.map(one, zip(sources, objs, strict=True)) if e]
    if errors:
        raise HostBuildError(errors[0])
    return objs


def compile_cached(sources: list[Path], flags: list[str], out_dir: Path, stem: str, *,
                   hash_also: Sequence[Path] = (), objects: Sequence[Path] = ()) -> Path:
    """gcc sources (+ prebuilt objects, named by their content hash) -> out_dir/<stem>-<hash>, rebuilt only when
    the flags, the sources, the objects or the files in hash_also (headers) change. The binary appears
    atomically, so concurrent builds never run a partial one."""
    h = hashlib.sha256(" ".join(flags).encode())
    for p in [*sources, *hash_also]:
        h.update(p.read_bytes())
    for o in objects:
        h.update(o.name.encode())
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / f"{stem}-{h.hexdigest()[:12]}"
    if exe.exists():
        return exe
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
    proc = subprocess.run(["gcc", *flags, *map(str, sources), *map(str, objects), "-o", str(tmp), "-lm"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise HostBuildError(proc.stderr.strip()[-3000:])
    os.replace(tmp, exe)
    return exe


def build_host_runner(model_dir: Path, *, sanitize: bool = False, extra_flags: list[str] | None = None) -> Path:
    """Build <model_dir>/host/octo_infer (cached on the sources' content)."""
    if shutil.which("gcc") is None:
        raise ConvertError("gcc not found; install it (`make setup`) to run models with --target host")
    fw = fws.firmware_dir()
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", *(extra_flags or [])]
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
    flags += [f"-I{fw / 'include'}"]
    try:  # the kernels do not read the model's config: their objects are shared by every model's runner
        objs = compile_objects(kernel_sources(), flags, fws.state_dir() / "host-objs", hash_also=fws.headers())
        return compile_cached([model_dir / "model.c", *fws.sources("infer_main")],
                              [*flags, f"-I{model_dir}", "-include", "octo_model_config.h"], model_dir / "host",
                              "octo_infer", hash_also=fws.headers(), objects=objs)
    except HostBuildError as exc:
        raise ConvertError(f"host build of {model_dir / 'model.c'} failed:\n{exc}") from None


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
