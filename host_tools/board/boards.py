"""Known boards: the single source of truth.

PlatformIO board manifests (firmware/platform/boards/*.json) and the envs in
firmware/platformio.ini are generated from this table by
``python -m host_tools.board.gen_pio``; a test checks the committed copies match.
"""

from __future__ import annotations

from dataclasses import dataclass

from host_tools.errors import OctoError

KIB = 1024


@dataclass(frozen=True)
class Board:
    name: str                  # CLI name, e.g. "virtual-m4"
    kind: str                  # "virtual" (QEMU) or "real"
    cpu: str                   # -mcpu value, e.g. "cortex-m4"
    cpu_hz: int                # core clock
    sram_bytes: int            # SRAM budget the linker enforces
    flash_bytes: int           # flash budget the linker enforces
    fpu: str | None            # -mfpu value, None for soft float
    dsp: bool                  # SMLAD/SXTB16 (__ARM_FEATURE_DSP)
    description: str
    qemu_machine: str | None = None  # -machine for virtual boards
    bsp: str = "mps2"                # firmware/boards/<bsp>
    pio_platform: str = "octo"       # "octo" = firmware/platform (offline); else a registry platform
    pio_board: str | None = None     # registry board id for real boards
    flash_origin: int = 0x00000000
    ram_origin: int = 0x20000000
    default_port: str | None = None  # typical serial device for real boards
    mve: bool = False                # M-profile vector extension, Helium (__ARM_FEATURE_MVE)

    @property
    def virtual(self) -> bool:
        return self.kind == "virtual"

    @property
    def buildable_offline(self) -> bool:
        return self.pio_platform == "octo"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "cpu": self.cpu,
            "cpu_hz": self.cpu_hz,
            "sram_bytes": self.sram_bytes,
            "flash_bytes": self.flash_bytes,
            "fpu": self.fpu,
            "dsp": self.dsp,
            "mve": self.mve,
            "qemu_machine": self.qemu_machine,
            "buildable_offline": self.buildable_offline,
            "description": self.description,
        }


BOARDS: dict[str, Board] = {
    b.name: b
    for b in [
        Board("virtual-m4", "virtual", "cortex-m4", 25_000_000, 256 * KIB, 1024 * KIB, "fpv4-sp-d16", True,
              "QEMU mps2-an386, Cortex-M4F with DSP; budget of an STM32F4-class part",
              qemu_machine="mps2-an386"),
        Board("virtual-m7", "virtual", "cortex-m7", 25_000_000, 320 * KIB, 1024 * KIB, "fpv5-d16", True,
              "QEMU mps2-an500, Cortex-M7 with DSP; budget of an STM32F746",
              qemu_machine="mps2-an500"),
        Board("virtual-m3", "virtual", "cortex-m3", 25_000_000, 128 * KIB, 512 * KIB, None, False,
              "QEMU mps2-an385, Cortex-M3 without DSP or FPU: the portable C path",
              qemu_machine="mps2-an385"),
        Board("virtual-m55", "virtual", "cortex-m55", 32_000_000, 512 * KIB, 2048 * KIB, "auto", True,
              "QEMU mps3-an547, Cortex-M55 with MVE (Helium) and DSP; budget of an M55 MCU core (512 KiB SRAM)",
              qemu_machine="mps3-an547", bsp="mps3", flash_origin=0x11000000, ram_origin=0x30000000, mve=True),
        Board("nucleo-f746zg", "real", "cortex-m7", 216_000_000, 320 * KIB, 1024 * KIB, "fpv5-sp-d16", True,
              "ST NUCLEO-F746ZG (STM32F746ZG); ST-LINK virtual COM port on USART3",
              bsp="stm32f7", pio_platform="ststm32", pio_board="nucleo_f746zg",
              flash_origin=0x08000000, default_port="/dev/ttyACM0"),
    ]
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        known = ", ".join(BOARDS)
        raise OctoError(f"unknown board {name!r}; known boards: {known} (see `octo boards`)") from None


def sram_budget(name: str) -> int | None:
    """The SRAM a training or model build must fit on this target; None for "host" (the native process)."""
    return None if name == "host" else get_board(name).sram_bytes
