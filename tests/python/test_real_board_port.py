"""The NUCLEO-F746ZG port (firmware/boards/stm32f7) keeps building with the Debian toolchain.

Its PlatformIO env needs the ststm32 platform from the registry, which CI cannot download,
so this test compiles and links the same sources directly with arm-none-eabi-gcc, with the
board's linker script and budget, and checks the image's vector table and memory use.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from converter import firmware_sources as fws
from host_tools.board.boards import get_board
from host_tools.board.pio import elf_memory_use

FW = Path(__file__).resolve().parent.parent.parent / "firmware"


def test_nucleo_f746zg_image_links_within_budget(tmp_path: Path) -> None:
    board = get_board("nucleo-f746zg")
    sources = [*fws.all_sources(), *fws.board_sources("stm32f7")]
    elf = tmp_path / "nucleo.elf"
    cmd = ["arm-none-eabi-gcc", "-std=c99", f"-mcpu={board.cpu}", "-mthumb", "-mfloat-abi=hard",
           f"-mfpu={board.fpu}", "-O2", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections",
           f"-I{FW / 'include'}", f'-DOCTO_BOARD_NAME="{board.name}"', f'-DOCTO_BOARD_CPU="{board.cpu}"',
           *map(str, sources), f"-L{FW / 'ld'}", f"-T{board.name}.ld", "-nostartfiles", "--specs=nano.specs",
           "--specs=nosys.specs", "-Wl,--gc-sections", "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    flash, ram = elf_memory_use(elf)
    assert 0 < flash < board.flash_bytes and 0 < ram < board.sram_bytes
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    assert " g_octo_vectors" in nm and " Reset_Handler" in nm and " octo_board_irq" in nm
    # The vector table sits at the start of flash (0x08000000 on STM32F7).
    addr = next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(" g_octo_vectors"))
    assert addr == 0x08000000
