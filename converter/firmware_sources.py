"""The one list of firmware sources, by component, for every build, test and bench.

PlatformIO builds everything under ``firmware/src/`` (see ``firmware/platformio.ini``); native (gcc) and
bare-metal test builds take only the components they need from here, so a file moved or added inside the
firmware is picked up everywhere by editing this module alone.

The checkout is the one this package lives in, or ``$OCTO_ROOT``. This module is part of the converter
(the lowest layer): it imports nothing from ``host_tools``.
"""

from __future__ import annotations

import os
from pathlib import Path

# component -> paths under firmware/: a folder means every *.c in it, a glob pattern its matches, else a file
COMPONENTS: dict[str, tuple[str, ...]] = {
    "status": ("src/common/octo_status.c",),                 # octo_status_name(): every build needs it
    "framing": ("src/link/octo_crc32.c", "src/link/octo_cobs.c", "src/link/octo_frame.c",
                "src/common/octo_status.c"),                  # CRC-32, COBS, frame encode/decode (+ status names)
    "link": ("src/link", "src/common/octo_status.c"),         # framing + the request engine (+ status names)
    "app": ("src/app",),                                      # the services (HELLO ... PASS) and the main loop
    "kernels": ("src/kernels",),                              # INT8 inference kernels
    "pass": ("src/pass",),                                    # PASS runtime (patch skipping)
    "pass_kernels": ("src/kernels/octo_conv_s8_packed.c", "src/kernels/octo_maxpool_s8.c",
                     "src/kernels/octo_avgpool_s8.c"),         # the kernels the PASS runtime calls
    "train_kernels": ("src/train/octo_train_*.c",),           # training kernels (forward + backward)
    "trainer": ("src/train",),                                # the training engine with its kernels
    "sgq": ("src/sgq",),                                      # SGQ codec
    "bsp_host": ("boards/host/bsp_host.c", "boards/common/octo_ram_storage.c"),  # native "board"
    "startup": ("boards/cortexm/startup_cortexm.c",),         # bare-metal vector table and reset
    "infer_main": ("host/octo_infer_main.c",),                # native model runner (octo infer --target host)
    "tflm_main": ("tflm/octo_tflm_main.cc",),                 # C++ runner of a TFLM export (real TFLM + CMSIS-NN)
}
# private headers of components (public ones are include/octo/*.h): their *.h, and the *.inc parts a .c includes
PRIVATE_HEADERS: dict[str, tuple[str, ...]] = {"trainer": ("src/train",), "train_kernels": ("src/train",),
                                              "app": ("src/app",)}


def repo_root() -> Path:
    """The Octo checkout: $OCTO_ROOT, else the folder above this package."""
    env = os.environ.get("OCTO_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Run state (virtual boards' pid, port and log; native objects shared by builds); OCTO_STATE_DIR overrides,
    else ~/.cache/octo/run."""
    env = os.environ.get("OCTO_STATE_DIR")
    if env:
        path = Path(env)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(cache) / "octo" / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def firmware_dir() -> Path:
    return repo_root() / "firmware"


def include_dir() -> Path:
    """The public headers' root (-I for every build)."""
    return firmware_dir() / "include"


def board_sources(bsp: str) -> list[Path]:
    """A bare-metal board family's support files plus the shared Cortex-M ones (startup, storage)."""
    fw = firmware_dir()
    return [*sorted((fw / "boards" / "cortexm").glob("*.c")), *sorted((fw / "boards" / "common").glob("*.c")),
            *sorted((fw / "boards" / bsp).glob("*.c"))]


def _expand(spec: str) -> list[Path]:
    fw = firmware_dir()
    if any(ch in spec for ch in "*?["):
        return sorted(fw.glob(spec))
    p = fw / spec
    return sorted(p.glob("*.c")) if p.is_dir() else [p]


def sources(*components: str) -> list[Path]:
    """The .c files of the named components, each once, in a stable order."""
    out: list[Path] = []
    for name in components:
        if name not in COMPONENTS:
            raise KeyError(f"unknown firmware component {name!r}; known: {', '.join(COMPONENTS)}")
        for spec in COMPONENTS[name]:
            out += [p for p in _expand(spec) if p not in out]
    return out


def all_sources() -> list[Path]:
    """Every .c under firmware/src (what PlatformIO compiles for any board)."""
    return sorted((firmware_dir() / "src").rglob("*.c"))


def headers(*components: str) -> list[Path]:
    """Public headers plus the named components' private ones (for build caches keyed on content)."""
    fw = firmware_dir()
    out = sorted((include_dir() / "octo").glob("*.h"))
    for name in components:
        for spec in PRIVATE_HEADERS.get(name, ()):
            out += [p for pat in ("*.h", "*.inc") for p in sorted((fw / spec).glob(pat)) if p not in out]
    return out
