"""TensorFlow Lite Micro + CMSIS-NN, built with TFLM's own Makefile, for side-by-side runs on virtual boards.

    python -m host_tools.board.tflm_build [--arch cortex-m4+fp] [--jobs 2]     (= make tflm)

The TFLM tree is ``$TFLM_DIR``, else ``../shared/third_party/tflm`` beside the checkout (an offline snapshot
with CMSIS-NN; see its README.txt). It is only read: TFLM's ``GENDIR`` points into ``~/.cache/octo/tflm/<key>/``
(``$TFLM_BUILD_DIR`` overrides it), shared by every checkout on the machine. The key hashes the tree's content
(every file but ``gen/`` and
``.git/``), the make variables, the compiler's version and this module's recipe version, so a changed tree or
flag builds anew and an unchanged one is reused (a ``done.json`` stamp marks a finished build). A lock beside the
cache folder serialises concurrent builds of one key.

Needs the Debian packages ``libstdc++-arm-none-eabi-dev`` (C++ headers: nothing compiles without them) and
``libstdc++-arm-none-eabi-newlib`` (to link C++ applications); ``make tflm`` installs them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from host_tools.errors import OctoError
from host_tools.paths import repo_root

RECIPE_VERSION = 1  # bump when the make command below changes in a way the key does not see
DEB_PACKAGES = ("libstdc++-arm-none-eabi-dev", "libstdc++-arm-none-eabi-newlib")
DEFAULT_ARCH = "cortex-m4+fp"
LIB_NAME = "libtensorflow-microlite.a"
# What an application must be compiled with to match the library (TFLM README.txt of the snapshot).
DEFINES = ("-DTF_LITE_STATIC_MEMORY", "-DCMSIS_NN", "-DTF_LITE_STRIP_ERROR_STRINGS", "-DNDEBUG")
CXX_FLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
ARCH_FLAGS = {
    "cortex-m4+fp": ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
    "cortex-m4": ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"),
}
BOARD_ARCH = {"virtual-m4": "cortex-m4+fp"}  # boards a TFLM firmware is built for


class TflmMissing(OctoError):
    """No TFLM tree, or the packages to build against it are missing."""


def tflm_dir() -> Path:
    """$TFLM_DIR, else ../shared/third_party/tflm relative to the checkout (it may not exist)."""
    env = os.environ.get("TFLM_DIR")
    return Path(env).resolve() if env else (repo_root().parent / "shared" / "third_party" / "tflm").resolve()


def _makefile(tree: Path) -> Path:
    return tree / "tensorflow" / "lite" / "micro" / "tools" / "make" / "Makefile"


def skip_reason() -> str | None:
    """One line saying why TFLM runs cannot happen here (no tree), or None when the tree is there."""
    tree = tflm_dir()
    if not _makefile(tree).is_file():
        return f"no TFLM tree at {tree} (set TFLM_DIR to a tflite-micro checkout with CMSIS-NN downloads)"
    return None


def missing_packages() -> list[str]:
    """The Debian packages (see DEB_PACKAGES) whose files arm-none-eabi-g++ cannot find, [] when all are there."""
    gxx = shutil.which("arm-none-eabi-g++")
    if gxx is None:
        return ["gcc-arm-none-eabi", *DEB_PACKAGES]
    missing = []
    head = subprocess.run([gxx, "-mcpu=cortex-m4", "-mthumb", "-x", "c++", "-E", "-o", os.devnull, "-"],
                          input="#include <cstddef>\n", capture_output=True, text=True, check=False)
    if head.returncode != 0:
        missing.append(DEB_PACKAGES[0])
    lib = subprocess.run([gxx, *ARCH_FLAGS[DEFAULT_ARCH], "-print-file-name=libstdc++_nano.a"],
                         capture_output=True, text=True, check=False).stdout.strip()
    if not os.path.isabs(lib):  # gcc echoes the bare name when no multilib folder has the file
        missing.append(DEB_PACKAGES[1])
    return missing


def require_tools() -> Path:
    """The TFLM tree, after checking the tree and the packages exist; one-line TflmMissing otherwise."""
    reason = skip_reason()
    if reason:
        raise TflmMissing(reason)
    missing = missing_packages()
    if missing:
        raise TflmMissing(f"missing Debian packages for TFLM builds: {' '.join(missing)}", hint="run `make tflm`")
    return tflm_dir()


def _tree_digest(tree: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree)
        if rel.parts[0] in ("gen", ".git") or not path.is_file():
            continue
        h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _make_vars(arch: str) -> dict[str, str]:
    return {"TARGET": "cortex_m_generic", "TARGET_ARCH": arch, "OPTIMIZED_KERNEL_DIR": "cmsis_nn",
            "BUILD_TYPE": "release", "TARGET_TOOLCHAIN_ROOT": "", "MICROLITE_TEST_SRCS": ""}


def _compiler_version() -> str:
    out = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


@dataclass(frozen=True)
class TflmLibrary:
    """A built libtensorflow-microlite.a and what an application needs to compile against it."""

    tree: Path
    lib: Path
    arch: str
    key: str
    build_seconds: float

    def include_flags(self) -> list[str]:
        downloads = self.tree / "tensorflow" / "lite" / "micro" / "tools" / "make" / "downloads"
        return [f"-I{self.tree}", *(f"-I{downloads / d}" for d in ("flatbuffers/include", "gemmlowp", "ruy"))]

    def cxx_flags(self) -> list[str]:
        return [*ARCH_FLAGS[self.arch], *DEFINES, *CXX_FLAGS, *self.include_flags()]


def cache_root() -> Path:
    """$TFLM_BUILD_DIR, else the user's cache (~/.cache/octo/tflm): the library depends only on the key, so every
    checkout on the machine (a CI clone included) shares one build instead of paying ~8 minutes each."""
    env = os.environ.get("TFLM_BUILD_DIR")
    if env:
        return Path(env).resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "octo" / "tflm"


def cache_key(tree: Path, arch: str) -> str:
    recipe = json.dumps({"tree": _tree_digest(tree), "vars": _make_vars(arch), "cc": _compiler_version(),
                         "recipe": RECIPE_VERSION}, sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _cached(folder: Path, tree: Path, arch: str, key: str) -> TflmLibrary | None:
    stamp = folder / "done.json"
    lib = folder / "gen" / "lib" / LIB_NAME
    if not (stamp.is_file() and lib.is_file()):
        return None
    info = json.loads(stamp.read_text())
    return TflmLibrary(tree, lib, arch, key, float(info.get("build_seconds", 0.0)))


def build_library(arch: str = DEFAULT_ARCH, jobs: int = 2, nice: int = 10, quiet: bool = False) -> TflmLibrary:
    """libtensorflow-microlite.a (CMSIS-NN kernels) for arch, from the cache or built once (~8 min on 2 cores)."""
    if arch not in ARCH_FLAGS:
        raise OctoError(f"unknown TFLM arch {arch!r}; known: {', '.join(ARCH_FLAGS)}")
    tree = require_tools()
    key = cache_key(tree, arch)
    folder = cache_root() / f"{arch}-{key}"
    hit = _cached(folder, tree, arch, key)
    if hit:
        return hit
    from host_tools.board import lock  # noqa: PLC0415

    with lock.exclusive(folder.parent / f".{folder.name}.lock"):
        hit = _cached(folder, tree, arch, key)  # another process may have built it while we waited
        if hit:
            return hit
        folder.mkdir(parents=True, exist_ok=True)  # an interrupted build resumes: make redoes what is missing
        gendir = folder / "gen"
        cmd = ["nice", "-n", str(nice), "make", "-f", str(_makefile(tree).relative_to(tree)),
               *(f"{k}={v}" for k, v in _make_vars(arch).items()), f"GENDIR={gendir}/", "microlite", f"-j{jobs}"]
        if not quiet:
            print(f"building TFLM + CMSIS-NN for {arch} into {folder} (once; about 8 min on 2 cores)",
                  file=sys.stderr, flush=True)
        t0 = time.monotonic()
        log = folder / "build.log"
        with log.open("w") as fh:
            proc = subprocess.run(cmd, cwd=tree, stdout=fh, stderr=subprocess.STDOUT, check=False)
        seconds = round(time.monotonic() - t0, 1)
        lib = gendir / "lib" / LIB_NAME
        if proc.returncode != 0 or not lib.is_file():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise OctoError(f"TFLM library build failed (rc {proc.returncode}); log: {log}\n{tail}")
        (folder / "done.json").write_text(json.dumps(
            {"tree": str(tree), "arch": arch, "key": key, "make": cmd[3:], "compiler": _compiler_version(),
             "build_seconds": seconds, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1) + "\n")
        if not quiet:
            print(f"built {lib} in {seconds:.0f} s", file=sys.stderr)
        return TflmLibrary(tree, lib, arch, key, seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host_tools.board.tflm_build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCH_FLAGS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="exit 0 if the TFLM tree exists, 1 (with a note) if not")
    args = ap.parse_args(argv)
    reason = skip_reason()
    if args.check:
        if reason:
            print(f"octo: note: {reason}; skipping TFLM", file=sys.stderr)
        return 1 if reason else 0
    if reason:
        print(f"octo: note: {reason}; nothing to build", file=sys.stderr)
        return 0
    try:
        lib = build_library(args.arch, jobs=args.jobs)
    except OctoError as exc:
        print(f"octo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(lib.lib)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
