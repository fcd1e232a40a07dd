/* octo_ram_storage.c - the storage hook of octo_board.h backed by RAM that
 * survives a warm reset (.noinit), for boards without a flash driver yet. It
 * does not survive power loss, so boards using it do not set OCTO_FEAT_STORAGE. */
#include <string.h>

#include "octo/octo_board.h"

#define STORAGE_LEN 4096u

#if defined(__arm__)
__attribute__((section(".noinit")))
#endif
static uint8_t s_storage[STORAGE_LEN];

int octo_board_storage_write(uint32_t offset, const uint8_t *data, size_t n) {
    if (data == NULL || offset > STORAGE_LEN || n > STORAGE_LEN - offset) {
        return OCTO_E_ARG;
    }
    memcpy(&s_storage[offset], data, n);
    return OCTO_OK;
}

int octo_board_storage_read(uint32_t offset, uint8_t *data, size_t n) {
    if (data == NULL || offset > STORAGE_LEN || n > STORAGE_LEN - offset) {
        return OCTO_E_ARG;
    }
    memcpy(data, &s_storage[offset], n);
    return OCTO_OK;
}
