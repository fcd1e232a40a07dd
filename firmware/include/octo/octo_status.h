/*
 * octo_status.h - status codes shared by every Octo firmware module.
 *
 * Convention (as in littlefs): 0 = success, negative = error, positive = a
 * count or "something is ready" where a function documents it. The numeric
 * values are part of the serial protocol (ERROR frames carry them), so they
 * never change once released; new codes are appended.
 */
#ifndef OCTO_STATUS_H
#define OCTO_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    OCTO_OK = 0,                /* success */
    OCTO_E_ARG = -1,            /* invalid argument (NULL pointer, bad size, bad enum) */
    OCTO_E_BUF = -2,            /* a caller-provided buffer is too small */
    OCTO_E_CRC = -3,            /* frame CRC-32 mismatch */
    OCTO_E_COBS = -4,           /* malformed COBS encoding */
    OCTO_E_FRAME_TOO_LONG = -5, /* frame longer than the receive buffer */
    OCTO_E_FRAME_SHORT = -6,    /* frame shorter than header + CRC */
    OCTO_E_FRAME_LENGTH = -7,   /* header length field disagrees with the frame */
    OCTO_E_VERSION = -8,        /* protocol version not supported */
    OCTO_E_UNSUPPORTED = -9,    /* unknown message type or feature */
    OCTO_E_PAYLOAD = -10,       /* payload malformed for its message type */
    OCTO_E_STATE = -11,         /* request not valid in the current state */
    OCTO_E_NOMEM = -12,         /* static memory plan cannot hold the request */
    OCTO_E_DIVERGED = -13       /* training diverged: loss, activations or gradients not finite */
} octo_status_t;

/* Functions returning a status are marked so ignoring it is a compile error
 * under -Werror (the nanopb `checkreturn` idea). */
#if defined(__GNUC__) || defined(__clang__)
#define OCTO_CHECK_RESULT __attribute__((warn_unused_result))
#else
#define OCTO_CHECK_RESULT
#endif

/* Short constant name of a status code ("OCTO_E_CRC"), never NULL. */
const char *octo_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_STATUS_H */
