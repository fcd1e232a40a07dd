/* bare_semihost.h - what a bare-metal test program under QEMU -semihosting needs: console output, an exit
 * code for the host, and the two hooks firmware/boards/cortexm/startup_cortexm.c calls. Arm only. */
#ifndef TESTS_C_BARE_SEMIHOST_H
#define TESTS_C_BARE_SEMIHOST_H

#include <stdint.h>

static inline int semihost(int op, const void *arg) {
    register int r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static inline void say(const char *s) { (void)semihost(0x04 /* SYS_WRITE0 */, s); }

/* Ends QEMU with `code` as its exit status. */
static inline void board_exit(int code) {
    const uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    (void)semihost(0x20 /* SYS_EXIT_EXTENDED */, block);
    for (;;) {
    }
}

/* Defines the startup code's hooks: a fault prints "<name> fault" and exits 3; interrupts are ignored. */
#define BARE_SEMIHOST_HOOKS(name)                                                                             \
    void octo_board_fault(uint32_t code);                                                                     \
    void octo_board_irq(uint32_t n);                                                                          \
    void octo_board_fault(uint32_t code) {                                                                    \
        (void)code;                                                                                           \
        say(name " fault\n");                                                                                 \
        board_exit(3);                                                                                        \
    }                                                                                                         \
    void octo_board_irq(uint32_t n) { (void)n; }

#endif
