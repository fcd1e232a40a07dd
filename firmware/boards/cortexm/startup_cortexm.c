/* startup_cortexm.c - vector table and reset handler for Armv7-M/Armv8-M
 * boards built with arm-none-eabi-gcc and firmware/ld/octo_cortexm.ld. */
#include <stdint.h>
#include <string.h>

extern uint32_t __etext_data; /* load address of .data in flash */
extern uint32_t __data_start__, __data_end__;
extern uint32_t __bss_start__, __bss_end__;
extern uint32_t __stack_top__;

int main(void);
void octo_board_fault(uint32_t code);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void Irq_Handler(void);
/* Implemented by the board file: external interrupt n (0-based) fired. */
void octo_board_irq(uint32_t n);

/* External interrupts share one entry that dispatches on IPSR, so a board
 * with a hundred IRQs needs no per-IRQ boilerplate. */
#ifndef OCTO_NUM_IRQS
#define OCTO_NUM_IRQS 112
#endif

typedef void (*vector_t)(void);

#define V4(h) h, h, h, h
#define V16(h) V4(h), V4(h), V4(h), V4(h)
__attribute__((section(".isr_vector"), used)) const vector_t g_octo_vectors[16 + OCTO_NUM_IRQS] = {
    (vector_t)(uintptr_t)&__stack_top__,
    Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
    UsageFault_Handler, 0, 0, 0, 0, SVC_Handler, DebugMon_Handler, 0, PendSV_Handler, SysTick_Handler,
    V16(Irq_Handler), V16(Irq_Handler), V16(Irq_Handler), V16(Irq_Handler), V16(Irq_Handler),
    V16(Irq_Handler), V16(Irq_Handler),
};
#undef V16
#undef V4

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)

void Reset_Handler(void) {
    /* Plain word loops: memcpy/memset may not be safe before .data exists. */
    uint32_t *src = &__etext_data;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    SCB_VTOR = (uint32_t)(uintptr_t)g_octo_vectors;
#if defined(__ARM_FP)
    SCB_CPACR |= (0xFu << 20); /* full access to CP10/CP11 (the FPU) */
    __asm volatile("dsb\n isb" ::: "memory");
#endif
    SCB_CCR |= (1u << 4); /* trap divide by zero */
    (void)main();
    octo_board_fault(0xDEAD0000u);
}

void HardFault_Handler(void) { octo_board_fault(0xFA170000u); }

void Irq_Handler(void) {
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    octo_board_irq((ipsr & 0x1FFu) - 16u);
}

void Default_Handler(void) {
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    octo_board_fault(0xDEF00000u | ipsr);
}
