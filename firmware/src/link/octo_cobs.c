/* octo_cobs.c - Consistent Overhead Byte Stuffing, buffer to buffer. */
#include "octo/octo_frame.h"

int octo_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *out_len) {
    if ((src == NULL && len > 0) || dst == NULL || out_len == NULL) {
        return OCTO_E_ARG;
    }
    if (cap < 1) {
        return OCTO_E_BUF;
    }
    size_t code_pos = 0; /* where the current block's code byte goes */
    size_t w = 1;        /* next write position */
    uint8_t code = 1;    /* 1 + data bytes in the current block */
    for (size_t i = 0; i < len; i++) {
        if (src[i] != 0) {
            if (w >= cap) {
                return OCTO_E_BUF;
            }
            dst[w++] = src[i];
            code++;
        }
        if (src[i] == 0 || code == 0xFF) {
            dst[code_pos] = code;
            /* A full block followed by the end of input needs no new block. */
            if (src[i] != 0 && i + 1 == len) {
                *out_len = w;
                return OCTO_OK;
            }
            if (w >= cap) {
                return OCTO_E_BUF;
            }
            code_pos = w++;
            code = 1;
        }
    }
    dst[code_pos] = code;
    *out_len = w;
    return OCTO_OK;
}

int octo_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *out_len) {
    if ((src == NULL && len > 0) || dst == NULL || out_len == NULL) {
        return OCTO_E_ARG;
    }
    size_t r = 0;
    size_t w = 0;
    while (r < len) {
        uint8_t code = src[r++];
        if (code == 0) {
            return OCTO_E_COBS;
        }
        size_t run = (size_t)code - 1u;
        if (run > len - r) {
            return OCTO_E_COBS;
        }
        if (run > cap - w) {
            return OCTO_E_BUF;
        }
        for (size_t k = 0; k < run; k++) {
            uint8_t b = src[r++];
            if (b == 0) {
                return OCTO_E_COBS;
            }
            dst[w++] = b;
        }
        /* A block shorter than 254 data bytes ends with an implied zero,
         * except the last block of the input. */
        if (code != 0xFF && r < len) {
            if (w >= cap) {
                return OCTO_E_BUF;
            }
            dst[w++] = 0;
        }
    }
    *out_len = w;
    return OCTO_OK;
}
