/* cortexm_board.c - the parts of octo_board.h that are the same on every
 * Cortex-M board: the CPUID register and the linker's memory-use symbols
 * (firmware/ld/octo_cortexm.ld). */
#include <stdint.h>

#include "octo/octo_board.h"

#define SCB_CPUID (*(volatile uint32_t *)0xE000ED00u)

extern uint32_t __flash_used__, __ram_used__;

uint32_t octo_board_cpuid(void) { return SCB_CPUID; }

void octo_board_memory_use(uint32_t *flash_used, uint32_t *ram_used) {
    *flash_used = (uint32_t)(uintptr_t)&__flash_used__;
    *ram_used = (uint32_t)(uintptr_t)&__ram_used__;
}
