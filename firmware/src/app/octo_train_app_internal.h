/*
 * octo_train_app_internal.h - what the training service (octo_train_app.c) and
 * the split-learning service (octo_collab_app.c) share: the bound engine, its
 * profile counters, what the last COLLAB_FORWARD left in the arena (training
 * messages reset it), and two small helpers (static, as before the split, so
 * each file inlines them).
 */
#ifndef OCTO_TRAIN_APP_INTERNAL_H
#define OCTO_TRAIN_APP_INTERNAL_H

#include <string.h>

#include "octo/octo_board.h"
#include "octo/octo_train_app.h"

#ifndef OCTO_TRAIN_MAX_PROFILE_LAYERS
#define OCTO_TRAIN_MAX_PROFILE_LAYERS 64u
#endif

extern octo_trainer_t g_octo_app_trainer;
extern int g_octo_app_bound;
extern uint32_t g_octo_app_profile[OCTO_TRAIN_MAX_PROFILE_LAYERS * OCTO_TRAIN_PHASE_COUNT];
/* Split learning (COLLAB_*): what the last COLLAB_FORWARD left in the arena. */
typedef struct {
    uint32_t n;             /* samples of the last COLLAB_FORWARD (0: none) */
    uint32_t payload_len;   /* encoded feature bytes in the payload area (0: none, or overwritten) */
    const int8_t *features; /* the last forward's int8 output in the arena (NULL: none or overwritten) */
} octo_collab_state_t;
extern octo_collab_state_t g_octo_app_collab;

/* Binds the engine on first use; OCTO_OK or the bind status. */
__attribute__((unused)) static int trainer(octo_proto_t *p, octo_trainer_t **out) {
    if (!g_octo_app_bound) {
        const int st = octo_trainer_bind(&g_octo_app_trainer, &g_octo_train_model, g_octo_train_arena);
        if (st != OCTO_OK) {
            p->error_text = "training plan does not match the engine (rebuild with `octo train`)";
            return st;
        }
        if (g_octo_train_model.n_layers <= OCTO_TRAIN_MAX_PROFILE_LAYERS) {
            g_octo_app_trainer.clock = octo_board_ticks;
            g_octo_app_trainer.profile = g_octo_app_profile;
        }
        g_octo_app_bound = 1;
    }
    *out = &g_octo_app_trainer;
    return OCTO_OK;
}

__attribute__((unused)) static float get_f32(const uint8_t *b) {
    float f;
    memcpy(&f, b, 4);
    return f;
}

#endif /* OCTO_TRAIN_APP_INTERNAL_H */
