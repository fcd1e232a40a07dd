/* bsp_stm32f7.c - board support for ST NUCLEO-F746ZG (STM32F746ZG, Cortex-M7).
 *
 * Register-level (no HAL) so it builds with any arm-none-eabi-gcc:
 *   clock   16 MHz HSI straight after reset (PLL set-up to 216 MHz is not done
 *           yet; cycle counts are in core cycles either way)
 *   serial  USART3 on PD8 (TX) / PD9 (RX), AF7 = the ST-LINK virtual COM port,
 *           115200 8N1, RX interrupt into a ring buffer
 *   timer   DWT CYCCNT (core cycles) extended to 64 bits; SysTick 1 ms tick
 *   exit    system reset
 * Not built in CI (the ststm32 PlatformIO platform needs network); a host test
 * compiles it with arm-none-eabi-gcc so it cannot rot.
 */
#include <stdint.h>
#include <string.h>

#include "octo/octo_board.h"
#include "../common/octo_ring.h"

#define HSI_HZ 16000000u
#define BAUD 115200u

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define GPIOD_MODER REG(0x40020C00u)
#define GPIOD_AFRH REG(0x40020C24u)
#define USART3_CR1 REG(0x40004800u)
#define USART3_BRR REG(0x4000480Cu)
#define USART3_ISR REG(0x4000481Cu)
#define USART3_ICR REG(0x40004820u)
#define USART3_RDR REG(0x40004824u)
#define USART3_TDR REG(0x40004828u)
#define USART3_IRQ 39u
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TXE (1u << 7)

#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))
#define SCB_AIRCR REG(0xE000ED0Cu)
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DWT_LAR REG(0xE0001FB0u)

extern uint32_t __ram_budget__, __flash_budget__;

#define RX_RING_LEN 2048u /* power of two */
static volatile uint8_t s_rx_buf[RX_RING_LEN];
static octo_ring_t s_rx = {s_rx_buf, RX_RING_LEN, 0, 0, 0};
static volatile uint32_t s_ms;
static uint32_t s_cyc_last;
static uint64_t s_cyc_high;


static octo_board_info_t s_info = {
    OCTO_BOARD_NAME, OCTO_BOARD_CPU, HSI_HZ, HSI_HZ, 0, 0, OCTO_FEAT_DSP | OCTO_FEAT_FPU,
};

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }

void octo_board_irq(uint32_t n) {
    if (n != USART3_IRQ) {
        return;
    }
    uint32_t isr = USART3_ISR;
    if (isr & USART_ISR_ORE) {
        USART3_ICR = USART_ISR_ORE; /* lost bytes: the frame CRC catches it */
    }
    while (USART3_ISR & USART_ISR_RXNE) {
        octo_ring_push(&s_rx, (uint8_t)USART3_RDR);
    }
}

void SysTick_Handler(void) { s_ms++; }

void octo_board_init(void) {
    s_info.sram_bytes = (uint32_t)(uintptr_t)&__ram_budget__;
    s_info.flash_bytes = (uint32_t)(uintptr_t)&__flash_budget__;
    RCC_AHB1ENR |= 1u << 3;  /* GPIOD */
    RCC_APB1ENR |= 1u << 18; /* USART3 */
    (void)RCC_APB1ENR;       /* read back: clock is on before first access */
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16); /* PD8, PD9 alternate function */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                 /* AF7 = USART3 */
    USART3_BRR = (HSI_HZ + BAUD / 2u) / BAUD;
    USART3_CR1 = USART_CR1_UE | USART_CR1_RE | USART_CR1_TE | USART_CR1_RXNEIE;
    NVIC_ISER(USART3_IRQ / 32u) = 1u << (USART3_IRQ % 32u);
    DWT_LAR = 0xC5ACCE55u;
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;
    SYST_RVR = HSI_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 0x7u;
    irq_enable();
}

const octo_board_info_t *octo_board_info(void) { return &s_info; }

size_t octo_board_uart_read(uint8_t *buf, size_t cap) { return octo_ring_read(&s_rx, buf, cap); }

int octo_board_uart_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        while (!(USART3_ISR & USART_ISR_TXE)) {
        }
        USART3_TDR = data[i];
    }
    return OCTO_OK;
}

uint64_t octo_board_ticks(void) {
    irq_disable();
    uint32_t now = DWT_CYCCNT;
    if (now < s_cyc_last) {
        s_cyc_high += 1ull << 32; /* callers read at least once per wrap (268 s at 16 MHz) */
    }
    s_cyc_last = now;
    uint64_t t = s_cyc_high | now;
    irq_enable();
    return t;
}

uint32_t octo_board_millis(void) { return s_ms; }

void octo_board_wait(void) {
    irq_disable();
    if (octo_ring_empty(&s_rx)) {
        __asm volatile("wfi");
    }
    irq_enable();
}

void octo_board_exit(int code) {
    (void)code;
    SCB_AIRCR = 0x05FA0004u; /* SYSRESETREQ */
    for (;;) {
    }
}

void octo_board_fault(uint32_t code) {
    (void)code;
    octo_board_exit(3);
}
