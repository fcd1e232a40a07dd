/*
 * octo_board.h - the board-support interface. A port to a new board is one
 * C file implementing these functions plus a linker memory file (see
 * firmware/boards/). Implementations: boards/mps2 (QEMU virtual boards),
 * boards/stm32f7 (NUCLEO-F746ZG), boards/host (native build for tests).
 */
#ifndef OCTO_BOARD_H
#define OCTO_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "octo/octo_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Feature bits reported in HELLO. */
enum {
    OCTO_FEAT_DSP = 1u << 0,         /* SMLAD/SXTB16 available (__ARM_FEATURE_DSP) */
    OCTO_FEAT_FPU = 1u << 1,         /* hardware single-precision FPU */
    OCTO_FEAT_MVE = 1u << 2,         /* Helium (M-profile vector extension) */
    OCTO_FEAT_TIMER_ICOUNT = 1u << 3, /* timer counts QEMU -icount time, not cycles */
    OCTO_FEAT_SEMIHOSTING = 1u << 4, /* octo_board_exit() ends the emulator */
    OCTO_FEAT_STORAGE = 1u << 5      /* persistent storage hook is backed */
};

typedef struct {
    const char *name;     /* board name as in `octo boards`, e.g. "virtual-m4" */
    const char *cpu;      /* "cortex-m4" */
    uint32_t cpu_hz;      /* core clock in Hz */
    uint32_t timer_hz;    /* rate of octo_board_ticks() */
    uint32_t sram_bytes;  /* SRAM budget (linker script) */
    uint32_t flash_bytes; /* flash budget (linker script) */
    uint32_t features;    /* OCTO_FEAT_* */
} octo_board_info_t;

/* Bring up clocks, FPU, UART, timer and interrupts. */
void octo_board_init(void);

/* Static description of this board. */
const octo_board_info_t *octo_board_info(void);

/* Core identification register (SCB->CPUID), 0 where there is none. */
uint32_t octo_board_cpuid(void);

/* Static memory use of this image (from linker symbols): bytes of flash
 * (code + rodata + data initialisers) and of RAM (data + bss + stack). */
void octo_board_memory_use(uint32_t *flash_used, uint32_t *ram_used);

/* Copy up to cap received bytes into buf without blocking; returns count. */
size_t octo_board_uart_read(uint8_t *buf, size_t cap);

/* Send n bytes, blocking until all are queued to the UART. */
int octo_board_uart_write(void *ctx, const uint8_t *data, size_t n);

/* Free-running 64-bit timer in units of info->timer_hz: CPU cycles (DWT
 * CYCCNT) on real boards, CMSDK TIMER0 ticks on QEMU (instructions under -icount
 * shift=0 are ticks * 1e9 / timer_hz). */
uint64_t octo_board_ticks(void);

/* Milliseconds since boot. */
uint32_t octo_board_millis(void);

/* Sleep until an interrupt (UART byte, timer tick) may have work for us. */
void octo_board_wait(void);

/* Persistent storage hook (checkpoints). Returns OCTO_OK, or
 * OCTO_E_UNSUPPORTED where the board has none. */
int octo_board_storage_write(uint32_t offset, const uint8_t *data, size_t n) OCTO_CHECK_RESULT;
int octo_board_storage_read(uint32_t offset, uint8_t *data, size_t n) OCTO_CHECK_RESULT;

/* End the run: semihosting exit on virtual boards, reset on real ones. */
void octo_board_exit(int code);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_BOARD_H */
