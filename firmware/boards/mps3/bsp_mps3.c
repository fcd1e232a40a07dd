/* bsp_mps3.c - board support for QEMU's mps3-an547 (Arm Corstone SSE-300: Cortex-M55 with MVE/Helium).
 *
 * The same peripherals as the MPS2 boards (CMSDK UART0, SysTick, semihosting) at AN547's
 * addresses, so this file only names them and includes bsp_mps2.c. The core boots in the Secure state, so
 * the firmware runs from the Secure aliases (code 0x1xxxxxxx, data 0x3xxxxxxx, peripherals 0x5xxxxxxx;
 * firmware/ld/virtual-m55.ld), where the SSE-300's IDAU and the FPGA's PPCs admit Secure accesses without
 * any set-up. AN547 (QEMU hw/arm/mps2-tz.c): 32 MHz system clock, UART0 at 0x(4|5)9303000 with its RX
 * interrupt on IRQ 33. The SSE-300 has no CMSDK TIMER0 (its timers at 0x48000000 are Armv8-M system timers), so
 * the ticks come from the SSE's System Counter (control frame at 0x58100000, hw/arm/armsse.c): 64 bits, +1 per
 * system clock, which under QEMU -icount counts instructions like TIMER0 on the MPS2 boards. */
#define MPS2_SYSCLK_HZ 32000000u
#define UART0_BASE 0x59303000u
#define UART0_RX_IRQ 33u
#define SSE_COUNTER_CTRL_BASE 0x58100000u

#include "../mps2/bsp_mps2.c"
