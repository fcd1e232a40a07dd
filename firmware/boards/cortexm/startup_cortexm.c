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
/* External interrupts 0..31; a board file overrides the ones it uses. */
#define IRQ(n) void IRQ##n##_Handler(void) __attribute__((weak, alias("Default_Handler")));
IRQ(0) IRQ(1) IRQ(2) IRQ(3) IRQ(4) IRQ(5) IRQ(6) IRQ(7) IRQ(8) IRQ(9) IRQ(10) IRQ(11) IRQ(12) IRQ(13)
IRQ(14) IRQ(15) IRQ(16) IRQ(17) IRQ(18) IRQ(19) IRQ(20) IRQ(21) IRQ(22) IRQ(23) IRQ(24) IRQ(25) IRQ(26)
IRQ(27) IRQ(28) IRQ(29) IRQ(30) IRQ(31)
#undef IRQ

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t g_octo_vectors[16 + 32] = {
    (vector_t)(uintptr_t)&__stack_top__,
    Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
    UsageFault_Handler, 0, 0, 0, 0, SVC_Handler, DebugMon_Handler, 0, PendSV_Handler, SysTick_Handler,
    IRQ0_Handler, IRQ1_Handler, IRQ2_Handler, IRQ3_Handler, IRQ4_Handler, IRQ5_Handler, IRQ6_Handler,
    IRQ7_Handler, IRQ8_Handler, IRQ9_Handler, IRQ10_Handler, IRQ11_Handler, IRQ12_Handler, IRQ13_Handler,
    IRQ14_Handler, IRQ15_Handler, IRQ16_Handler, IRQ17_Handler, IRQ18_Handler, IRQ19_Handler,
    IRQ20_Handler, IRQ21_Handler, IRQ22_Handler, IRQ23_Handler, IRQ24_Handler, IRQ25_Handler,
    IRQ26_Handler, IRQ27_Handler, IRQ28_Handler, IRQ29_Handler, IRQ30_Handler, IRQ31_Handler,
};

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

void Default_Handler(void) {
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    octo_board_fault(0xDEF00000u | ipsr);
}
