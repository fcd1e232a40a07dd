"""PlatformIO, offline: seed its core package from PyPI's SCons, build firmware.

PlatformIO 6.2 runs every build through its core package ``tool-scons``
(``<core>/packages/tool-scons/scons.py``), which it would normally download.
``seed_scons()`` builds that package from the SCons installed in this virtualenv
(PyPI ``scons==4.11.1`` = PlatformIO's ``4.41101.0``), so builds never touch the
network. ``python -m host_tools.board.pio seed`` is what ``make`` runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from host_tools.board.boards import Board
from host_tools.errors import OctoError
from host_tools.paths import firmware_dir, pio_core_dir, repo_root

SCONS_PIO_VERSION = "4.41101.0"  # PlatformIO's encoding of SCons 4.11.1
SCONS_PYPI_VERSION = "4.11.1"

SCONS_LAUNCHER = '''"""tool-scons launcher seeded by Octo from PyPI scons (see host_tools/board/pio.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine"))
from SCons.Script import main  # noqa: E402

main()
'''


def seed_scons(core_dir: Path | None = None) -> Path:
    """Create <core>/packages/tool-scons from the installed SCons; idempotent."""
    import SCons  # noqa: PLC0415  (only needed here)

    core = core_dir or pio_core_dir()
    pkg = core / "packages" / "tool-scons"
    manifest = pkg / "package.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("version") == SCONS_PIO_VERSION:
        return pkg
    if getattr(SCons, "__version__", SCONS_PYPI_VERSION) != SCONS_PYPI_VERSION:
        raise OctoError(
            f"SCons {SCons.__version__} is installed but PlatformIO needs {SCONS_PYPI_VERSION}",
            hint="run `make setup` to reinstall the pinned Python dependencies",
        )
    if pkg.exists():
        shutil.rmtree(pkg)
    (pkg / "engine").mkdir(parents=True)
    shutil.copytree(Path(SCons.__file__).parent, pkg / "engine" / "SCons",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "scons.py").write_text(SCONS_LAUNCHER)
    manifest.write_text(json.dumps({"name": "tool-scons", "version": SCONS_PIO_VERSION,
                                    "description": "SCons seeded offline from PyPI"}, indent=2))
    meta = {
        "type": "tool",
        "name": "tool-scons",
        "version": SCONS_PIO_VERSION,
        "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None},
    }
    (pkg / ".piopm").write_text(json.dumps(meta))
    return pkg


def pio_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PLATFORMIO_CORE_DIR"] = str(pio_core_dir())
    env.setdefault("PLATFORMIO_NO_ANSI", "true")
    # Never phone home: no telemetry, no update checks.
    env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] = "No"
    env["PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL"] = "36500"
    env["PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD"] = "0"
    # The upload target calls `python -m host_tools.cli`; make it importable.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root()), env.get("PYTHONPATH")]))
    return env


def pio_executable() -> list[str]:
    return [sys.executable, "-m", "platformio"]


@dataclass(frozen=True)
class BuildResult:
    board: str
    elf: Path
    flash_used: int
    ram_used: int
    flash_budget: int
    ram_budget: int
    log: str

    def as_dict(self) -> dict[str, object]:
        return {
            "board": self.board,
            "elf": str(self.elf),
            "flash_used": self.flash_used,
            "flash_budget": self.flash_budget,
            "ram_used": self.ram_used,
            "ram_budget": self.ram_budget,
        }


_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")


def build_dir(board: Board, model_dir: Path | None = None, train_dir: Path | None = None) -> Path:
    """Where the ELF lands: firmware/.pio/build/<board>, or <dir>/fw/<board> for a model or training build."""
    if train_dir is not None:
        return train_dir.resolve() / "fw" / board.name
    if model_dir is not None:
        return model_dir.resolve() / "fw" / board.name
    return firmware_dir() / ".pio" / "build" / board.name


def _check_layout(gen: Path, model_dir: Path, mve: bool) -> None:
    """Generated C in a weight layout the kernels no longer read: packed conv/FC weights without the int8 rows a
    Helium board reads (emitted under __ARM_FEATURE_MVE, docs/CONVERTER.md), or depthwise weights in the int16
    layout of before the 1-byte depthwise kernel. Either would fail to compile or be misread."""
    for name in ("model.c", "pass_model.c"):
        path = gen / name
        if path.exists():
            text = path.read_text()
            if "_dwpack[" in text:
                raise OctoError(f"{model_dir} was converted before depthwise weights took 1 byte",
                                hint=f"convert it again (`octo convert ... -o {model_dir}`)")
            if mve and "_wpack[" in text and "__ARM_FEATURE_MVE" not in text:
                raise OctoError(f"{model_dir} was converted before the Helium (MVE) weight layout existed",
                                hint=f"convert it again (`octo convert ... -o {model_dir}`) for a board with MVE")


def build_firmware(board: Board, *, extra_flags: list[str] | None = None, verbose: bool = False,
                   model_dir: Path | None = None, train_dir: Path | None = None,
                   ldscript: Path | None = None) -> BuildResult:
    """`pio run -e <board>` in firmware/; one-line errors for the usual failures.

    model_dir: a converted model folder (the output of `octo convert`); its generated C
    (model_dir/octo/model.c) is linked in and the build goes to model_dir/fw/<board>.
    """
    if not board.buildable_offline:
        raise OctoError(
            f"board {board.name} builds with PlatformIO's {board.pio_platform} platform, which must be "
            "downloaded from the PlatformIO registry",
            hint=f"on a machine with network access run `pio run -d firmware -e {board.name}`",
        )
    if shutil.which("arm-none-eabi-gcc") is None:
        raise OctoError("arm-none-eabi-gcc not found", hint="run `make setup` (installs gcc-arm-none-eabi)")
    seed_scons()
    env = pio_env()
    if extra_flags:
        env["PLATFORMIO_BUILD_FLAGS"] = " ".join(extra_flags)
    if model_dir is not None:
        gen = model_dir.resolve() / "octo"
        if not (gen / "model.c").exists() and not (gen / "pass_model.c").exists():
            raise OctoError(f"{model_dir} holds no converted model (no octo/model.c or octo/pass_model.c)",
                            hint=f"run `octo convert <model> -o {model_dir}` first")
        _check_layout(gen, model_dir, board.mve)
        env["OCTO_MODEL_DIR"] = str(gen)
        env["PLATFORMIO_BUILD_DIR"] = str(model_dir.resolve() / "fw")
    if train_dir is not None:
        if not (train_dir / "train_model.c").exists():
            raise OctoError(f"{train_dir} holds no training build (no train_model.c)")
        env["OCTO_TRAIN_DIR"] = str(train_dir.resolve())
        env["PLATFORMIO_BUILD_DIR"] = str(train_dir.resolve() / "fw")
    if ldscript is not None:  # benchmarks only: a larger memory budget than the board's
        env["OCTO_LDSCRIPT"] = str(ldscript.resolve())
    cmd = [*pio_executable(), "run", "-d", str(firmware_dir()), "-e", board.name]
    from host_tools.board import lock  # noqa: PLC0415

    out = build_dir(board, model_dir, train_dir)
    with lock.exclusive(out.parent / f".{out.name}.lock"):  # concurrent commands, one build folder
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    log = proc.stdout + proc.stderr
    if verbose:
        sys.stderr.write(log)
    if proc.returncode != 0:
        m = _OVERFLOW.search(log)
        if m:
            region, over = m.group(1), int(m.group(2))
            budget = board.sram_bytes if region == "RAM" else board.flash_bytes
            what = ("firmware with this training build" if train_dir is not None
                    else "firmware with this model" if model_dir is not None else "firmware")
            raise OctoError(
                f"{what} does not fit {board.name}: {region} budget is {budget} bytes "
                f"({budget // 1024} KiB) and the image needs {over} bytes more",
                hint="use a smaller model or a board with more memory (`octo boards`; `octo report` shows "
                     "where the memory goes)",
            )
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise OctoError(f"PlatformIO build for {board.name} failed:\n{tail}")
    elf = build_dir(board, model_dir, train_dir) / "firmware.elf"
    flash_used, ram_used = elf_memory_use(elf)
    return BuildResult(board.name, elf, flash_used, ram_used, board.flash_bytes, board.sram_bytes, log)


def elf_memory_use(elf: Path) -> tuple[int, int]:
    """(flash bytes, RAM bytes) from the linker's __flash_used__/__ram_used__."""
    from elftools.elf.elffile import ELFFile  # noqa: PLC0415
    from elftools.elf.sections import SymbolTableSection  # noqa: PLC0415

    with elf.open("rb") as fh:
        ef = ELFFile(fh)
        symtab = ef.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise OctoError(f"{elf} has no symbol table; rebuild it with `octo build`")
        values = {}
        for name in ("__flash_used__", "__ram_used__"):
            syms = symtab.get_symbol_by_name(name)
            if not syms:
                raise OctoError(f"{elf} was not linked with Octo's linker script (no {name})")
            values[name] = int(syms[0]["st_value"])
    return values["__flash_used__"], values["__ram_used__"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["seed"]:
        print("usage: python -m host_tools.board.pio seed", file=sys.stderr)
        return 2
    print(f"tool-scons ready at {seed_scons()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
