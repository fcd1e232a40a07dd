/*
 * octo_ring.h - single-producer (UART RX interrupt) / single-consumer (main
 * loop) byte ring shared by the board files. len must be a power of two;
 * head and tail run freely and wrap modulo 2^32.
 */
#ifndef OCTO_RING_H
#define OCTO_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    volatile uint8_t *buf;   /* len bytes */
    uint32_t len;            /* a power of two */
    volatile uint32_t head;  /* written by the interrupt */
    volatile uint32_t tail;  /* written by the main loop */
    volatile uint32_t dropped; /* bytes lost to a full ring (the frame CRC catches them) */
} octo_ring_t;

/* Interrupt side: store one byte, or count it as dropped. */
static inline void octo_ring_push(octo_ring_t *r, uint8_t b) {
    uint32_t head = r->head;
    if (head - r->tail < r->len) {
        r->buf[head & (r->len - 1u)] = b;
        r->head = head + 1u;
    } else {
        r->dropped++;
    }
}

/* Main-loop side: take up to cap bytes; returns how many. */
static inline size_t octo_ring_read(octo_ring_t *r, uint8_t *out, size_t cap) {
    size_t n = 0;
    uint32_t tail = r->tail;
    const uint32_t head = r->head;
    while (n < cap && tail != head) {
        out[n++] = r->buf[tail & (r->len - 1u)];
        tail++;
    }
    r->tail = tail;
    return n;
}

static inline int octo_ring_empty(const octo_ring_t *r) { return r->head == r->tail; }

#endif /* OCTO_RING_H */
