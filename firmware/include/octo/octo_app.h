/*
 * octo_app.h - the firmware application: protocol engine + message handlers
 * (HELLO, PING, TELEMETRY_CTRL) on top of the board-support interface.
 */
#ifndef OCTO_APP_H
#define OCTO_APP_H

#include "octo/octo_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCTO_FW_VERSION_MAJOR 0
#define OCTO_FW_VERSION_MINOR 1
#define OCTO_FW_VERSION_PATCH 0

/* HELLO response payload (little-endian), documented in docs/PROTOCOL.md. */
#define OCTO_HELLO_FIXED_LEN 40u

/* Initialise the application (buffers are static inside octo_app.c). */
int octo_app_init(void) OCTO_CHECK_RESULT;

/* One iteration of the main loop: drain UART bytes, handle requests, emit
 * due telemetry. Returns a negative status on a fatal link error. */
int octo_app_poll(void) OCTO_CHECK_RESULT;

/* Run forever (octo_app_poll + octo_board_wait when idle). */
void octo_app_run(void);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_APP_H */
