/* octo_app.c - firmware application: static buffers, handlers, main loop. */
#include "octo/octo_app.h"

#include <string.h>

#include "octo/octo_board.h"
#ifdef OCTO_WITH_MODEL
#include "octo/octo_infer.h"
#endif
#ifdef OCTO_WITH_TRAIN
#include "octo/octo_train_app.h"
#endif
#ifdef OCTO_WITH_PASS
#include "octo/octo_pass_app.h"
#endif

#ifndef OCTO_BUILD_ID
#define OCTO_BUILD_ID "dev"
#endif

static uint8_t s_rx[OCTO_PROTO_RX_LEN(OCTO_MAX_PAYLOAD)];
static uint8_t s_tx[OCTO_PROTO_TX_LEN(OCTO_MAX_PAYLOAD)];
static uint8_t s_payload[OCTO_MAX_PAYLOAD];
static uint8_t s_event[OCTO_PROTO_TX_LEN(OCTO_MAX_EVENT_PAYLOAD)];

static octo_proto_t s_proto;

static struct {
    uint32_t period_ms; /* 0 = telemetry off */
    uint32_t next_ms;
    uint32_t seq;
} s_tlm;

static int handle_hello(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
static int handle_ping(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
static int handle_tlm_ctrl(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                           size_t *resp_len);

static const octo_handler_t k_handlers[] = {
    {OCTO_MSG_HELLO, handle_hello},
    {OCTO_MSG_PING, handle_ping},
    {OCTO_MSG_TELEMETRY_CTRL, handle_tlm_ctrl},
#ifdef OCTO_WITH_MODEL
    {OCTO_MSG_MODEL_INFO, octo_infer_model_info},
    {OCTO_MSG_SET_INPUT, octo_infer_set_input},
    {OCTO_MSG_INVOKE, octo_infer_invoke},
    {OCTO_MSG_GET_OUTPUT, octo_infer_get_output},
    {OCTO_MSG_INFER, octo_infer_run},
#endif
#ifdef OCTO_WITH_TRAIN
    {OCTO_MSG_TRAIN_INFO, octo_train_info},
    {OCTO_MSG_TRAIN_INIT, octo_train_init_msg},
    {OCTO_MSG_TRAIN_LOAD, octo_train_load},
    {OCTO_MSG_TRAIN_STEP, octo_train_step_msg},
    {OCTO_MSG_EVAL, octo_train_eval_msg},
    {OCTO_MSG_GET_WEIGHTS, octo_train_get_weights},
    {OCTO_MSG_SET_WEIGHTS, octo_train_set_weights},
    {OCTO_MSG_COMMIT_WEIGHTS, octo_train_commit},
    {OCTO_MSG_TRAIN_PROFILE, octo_train_profile},
    {OCTO_MSG_TRAIN_LOAD_PART, octo_train_load_part},
    {OCTO_MSG_TRAIN_LOAD_TARGETS, octo_train_load_targets},
    {OCTO_MSG_COLLAB_FORWARD, octo_collab_forward},
    {OCTO_MSG_COLLAB_READ, octo_collab_read},
    {OCTO_MSG_COLLAB_WRITE, octo_collab_write},
    {OCTO_MSG_COLLAB_BACKWARD, octo_collab_backward},
#endif
#ifdef OCTO_WITH_PASS
    {OCTO_MSG_PASS_INFO, octo_pass_info},
    {OCTO_MSG_FRAME_DATA, octo_pass_frame_data},
    {OCTO_MSG_FRAME, octo_pass_frame_msg},
    {OCTO_MSG_FRAME_RESET, octo_pass_frame_reset},
#endif
};
#define N_HANDLERS (sizeof k_handlers / sizeof k_handlers[0])

static int handle_hello(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)req;
    const octo_board_info_t *info = octo_board_info();
    uint32_t flash_used = 0;
    uint32_t ram_used = 0;
    octo_board_memory_use(&flash_used, &ram_used);
    if (cap < OCTO_HELLO_FIXED_LEN + 3 * 256 + 1 + N_HANDLERS) {
        return OCTO_E_BUF;
    }
    memset(resp, 0, OCTO_HELLO_FIXED_LEN);
    resp[0] = (uint8_t)OCTO_PROTO_VERSION;
    resp[1] = OCTO_FW_VERSION_MAJOR;
    resp[2] = OCTO_FW_VERSION_MINOR;
    resp[3] = OCTO_FW_VERSION_PATCH;
    octo_put_u16(&resp[4], (uint16_t)p->max_payload);
    octo_put_u32(&resp[8], info->features);
    octo_put_u32(&resp[12], info->cpu_hz);
    octo_put_u32(&resp[16], info->timer_hz);
    octo_put_u32(&resp[20], info->sram_bytes);
    octo_put_u32(&resp[24], info->flash_bytes);
    octo_put_u32(&resp[28], ram_used);
    octo_put_u32(&resp[32], flash_used);
    octo_put_u32(&resp[36], octo_board_cpuid());
    size_t n = OCTO_HELLO_FIXED_LEN;
    n += octo_put_str(&resp[n], cap - n, info->name);
    n += octo_put_str(&resp[n], cap - n, info->cpu);
    n += octo_put_str(&resp[n], cap - n, OCTO_BUILD_ID);
    resp[n++] = (uint8_t)N_HANDLERS;
    for (size_t i = 0; i < N_HANDLERS; i++) {
        resp[n++] = k_handlers[i].type;
    }
    *resp_len = n;
    return OCTO_OK;
}

static int handle_ping(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    if (req->len > cap) {
        return OCTO_E_BUF;
    }
    memcpy(resp, req->payload, req->len);
    *resp_len = req->len;
    return OCTO_OK;
}

static int handle_tlm_ctrl(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                           size_t *resp_len) {
    (void)p;
    if (req->len != 4 || cap < 4) {
        return OCTO_E_PAYLOAD;
    }
    uint32_t period = octo_get_u32(req->payload);
    if (period != 0 && period < 10) {
        period = 10; /* bound the link load: at most 100 telemetry frames/s */
    }
    s_tlm.period_ms = period;
    s_tlm.next_ms = octo_board_millis();
    octo_put_u32(resp, period);
    *resp_len = 4;
    return OCTO_OK;
}

static int send_telemetry(void) {
    uint8_t buf[OCTO_MAX_EVENT_PAYLOAD];
    octo_tlm_writer_t w;
    const octo_link_stats_t *st = &s_proto.stats;
    octo_tlm_begin(&w, buf, sizeof buf, s_tlm.seq++);
    octo_tlm_u32(&w, "uptime_ms", octo_board_millis());
    octo_tlm_u32(&w, "ticks", (uint32_t)octo_board_ticks());
    octo_tlm_u32(&w, "rx_bytes", st->rx_bytes);
    octo_tlm_u32(&w, "rx_frames", st->rx_frames);
    octo_tlm_u32(&w, "rx_errors", st->rx_errors);
    octo_tlm_u32(&w, "rx_crc_errors", st->rx_crc_errors);
    octo_tlm_u32(&w, "tx_frames", st->tx_frames);
    octo_tlm_u32(&w, "duplicates", st->duplicates);
    octo_tlm_u32(&w, "executed", st->executed);
    if (w.overflow) {
        return OCTO_E_BUF;
    }
    return octo_proto_send_event(&s_proto, OCTO_MSG_TELEMETRY, buf, w.len);
}

int octo_app_init(void) {
    const octo_proto_buffers_t mem = {
        s_rx, sizeof s_rx, s_tx, sizeof s_tx, s_payload, sizeof s_payload, s_event, sizeof s_event,
    };
    memset(&s_tlm, 0, sizeof s_tlm);
    return octo_proto_init(&s_proto, &mem, OCTO_MAX_PAYLOAD, k_handlers, N_HANDLERS, octo_board_uart_write,
                           NULL, NULL);
}

int octo_app_poll(void) {
    uint8_t chunk[64];
    int work = 0;
    size_t n;
    while ((n = octo_board_uart_read(chunk, sizeof chunk)) > 0) {
        int st = octo_proto_feed(&s_proto, chunk, n);
        if (st < 0) {
            return st;
        }
        work = 1;
    }
    if (s_tlm.period_ms != 0 && (int32_t)(octo_board_millis() - s_tlm.next_ms) >= 0) {
        s_tlm.next_ms = octo_board_millis() + s_tlm.period_ms; /* no bursts after a stall */
        int st = send_telemetry();
        if (st < 0) {
            return st;
        }
        work = 1;
    }
    return work;
}

void octo_app_run(void) {
    for (;;) {
        int st = octo_app_poll();
        if (st < 0) {
            octo_board_exit(2);
        }
        if (st == 0) {
            octo_board_wait();
        }
    }
}
