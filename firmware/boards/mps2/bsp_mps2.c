/* bsp_mps2.c - board support for QEMU's Arm MPS2 machines (mps2-an385 M3,
 * mps2-an386 M4F, mps2-an500 M7; also mps3-an547 M55 through firmware/boards/mps3): CMSDK UART0 with an interrupt-fed ring
 * buffer, SysTick as a 1 ms wake-up, CMSDK TIMER0 as a free-running 64-bit tick
 * counter, semihosting exit. */
#include <stdint.h>
#include <string.h>

#include "octo/octo_board.h"
#include "../common/octo_ring.h"

#ifndef OCTO_BOARD_NAME
#error "define OCTO_BOARD_NAME (e.g. \"virtual-m4\")"
#endif
#ifndef OCTO_BOARD_CPU
#error "define OCTO_BOARD_CPU (e.g. \"cortex-m4\")"
#endif

/* A board that shares this file (firmware/boards/mps3) defines its own clock, addresses and UART interrupts
 * before including it. */
#ifndef MPS2_SYSCLK_HZ
#define MPS2_SYSCLK_HZ 25000000u
#endif
#define TICKS_PER_MS (MPS2_SYSCLK_HZ / 1000u)

/* CMSDK APB UART0 */
#ifndef UART0_BASE
#define UART0_BASE 0x40004000u
#endif
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INTCLR (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TXEN (1u << 0)
#define UART_CTRL_RXEN (1u << 1)
#define UART_CTRL_RXIE (1u << 3)
#define UART_INT_RX (1u << 1)
#ifndef UART0_RX_IRQ
#define UART0_RX_IRQ 0u
#endif

/* CMSDK APB TIMER0: a 32-bit down-counter at the system clock, no interrupt */
#ifndef TIMER0_BASE
#define TIMER0_BASE 0x40000000u
#endif
#define TIMER0_CTRL (*(volatile uint32_t *)(TIMER0_BASE + 0x00u))
#define TIMER0_VALUE (*(volatile uint32_t *)(TIMER0_BASE + 0x04u))
#define TIMER0_RELOAD (*(volatile uint32_t *)(TIMER0_BASE + 0x08u))

#ifdef SSE_COUNTER_CTRL_BASE
/* Arm SSE-300 System Counter, control frame (Secure only) */
#define SSE_CNTCR (*(volatile uint32_t *)(SSE_COUNTER_CTRL_BASE + 0x000u))
#define SSE_CNTCV_LO (*(volatile uint32_t *)(SSE_COUNTER_CTRL_BASE + 0x008u))
#define SSE_CNTCV_HI (*(volatile uint32_t *)(SSE_COUNTER_CTRL_BASE + 0x00Cu))
#else
static uint32_t s_tick_last;
static uint64_t s_tick_high;
#endif

/* System control space */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define NVIC_ISER(n) (*(volatile uint32_t *)(0xE000E100u + 4u * ((n) / 32u)))

extern uint32_t __ram_budget__, __flash_budget__;

#define RX_RING_LEN 2048u /* power of two */
static volatile uint8_t s_rx_buf[RX_RING_LEN];
static octo_ring_t s_rx = {s_rx_buf, RX_RING_LEN, 0, 0, 0};


static octo_board_info_t s_info = {
    OCTO_BOARD_NAME, OCTO_BOARD_CPU, MPS2_SYSCLK_HZ, MPS2_SYSCLK_HZ, 0, 0,
    OCTO_FEAT_TIMER_ICOUNT | OCTO_FEAT_SEMIHOSTING
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        | OCTO_FEAT_DSP
#endif
#if defined(__ARM_FP)
        | OCTO_FEAT_FPU
#endif
#if defined(__ARM_FEATURE_MVE)
        | OCTO_FEAT_MVE
#endif
};

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }

static void uart0_rx_isr(void) {
    UART_INTCLR = UART_INT_RX; /* clear first: a byte arriving later re-raises */
    while (UART_STATE & UART_STATE_RXFULL) {
        octo_ring_push(&s_rx, (uint8_t)UART_DATA);
    }
}

void octo_board_irq(uint32_t n) {
    if (n == UART0_RX_IRQ) {
        uart0_rx_isr();
    }
}

/* Only wakes the main loop from WFI every millisecond (telemetry is due by time, not by input); the time
 * itself comes from TIMER0. */
void SysTick_Handler(void) {}

void octo_board_init(void) {
    s_info.sram_bytes = (uint32_t)(uintptr_t)&__ram_budget__;
    s_info.flash_bytes = (uint32_t)(uintptr_t)&__flash_budget__;
    UART_BAUDDIV = MPS2_SYSCLK_HZ / 115200u;
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN | UART_CTRL_RXIE;
    NVIC_ISER(UART0_RX_IRQ) = 1u << (UART0_RX_IRQ % 32u);
    SYST_RVR = TICKS_PER_MS - 1u;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* enable, interrupt, processor clock */
#ifdef SSE_COUNTER_CTRL_BASE
    SSE_CNTCR = 0x1u; /* enable, no scaling: +1 per system clock */
#else
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    TIMER0_CTRL = 0x1u; /* enable */
#endif
    irq_enable();
}

const octo_board_info_t *octo_board_info(void) { return &s_info; }

size_t octo_board_uart_read(uint8_t *buf, size_t cap) { return octo_ring_read(&s_rx, buf, cap); }

int octo_board_uart_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        while (UART_STATE & UART_STATE_TXFULL) {
        }
        UART_DATA = data[i];
    }
    return OCTO_OK;
}

/* Ticks from TIMER0, not from SysTick + the ms count: under QEMU's -icount the SysTick counter can read
 * as reloaded before its interrupt is pending, which made an interval now and then 1 ms (1M instructions)
 * short or long. TIMER0 wraps every 2^32 ticks (171 s at 25 MHz); callers read more often than that. */
#ifdef SSE_COUNTER_CTRL_BASE
/* The SSE-300's system counter: 64 bits at the system clock, never wraps in practice. */
uint64_t octo_board_ticks(void) {
    uint32_t hi, lo;
    do {
        hi = SSE_CNTCV_HI;
        lo = SSE_CNTCV_LO;
    } while (hi != SSE_CNTCV_HI);
    return ((uint64_t)hi << 32) | lo;
}
#else
uint64_t octo_board_ticks(void) {
    irq_disable();
    const uint32_t now = 0xFFFFFFFFu - TIMER0_VALUE; /* counts up */
    if (now < s_tick_last) {
        s_tick_high += 1ull << 32;
    }
    s_tick_last = now;
    const uint64_t t = s_tick_high | now;
    irq_enable();
    return t;
}
#endif

/* From the same timer as the ticks, so the two never disagree. */
uint32_t octo_board_millis(void) { return (uint32_t)(octo_board_ticks() / TICKS_PER_MS); }

void octo_board_wait(void) {
    irq_disable();
    if (octo_ring_empty(&s_rx)) {
        __asm volatile("wfi");
    }
    irq_enable();
}

/* Arm semihosting (BKPT 0xAB on M-profile). */
static int semihost(int op, const void *arg) {
    register int r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void octo_board_exit(int code) {
    const uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    (void)semihost(0x20 /* SYS_EXIT_EXTENDED */, block);
    for (;;) {
    }
}

void octo_board_fault(uint32_t code) {
    static const char hex[] = "0123456789abcdef";
    char msg[] = "octo: fatal fault 0x00000000\n";
    for (int i = 0; i < 8; i++) {
        msg[20 + i] = hex[(code >> (28 - 4 * i)) & 0xFu];
    }
    (void)semihost(0x04 /* SYS_WRITE0 */, msg);
    octo_board_exit(3);
}
