/* octo_status.c - names of status codes, for logs and ERROR frames. */
#include "octo/octo_status.h"

const char *octo_status_name(int status) {
    switch (status) {
    case OCTO_OK: return "OCTO_OK";
    case OCTO_E_ARG: return "OCTO_E_ARG";
    case OCTO_E_BUF: return "OCTO_E_BUF";
    case OCTO_E_CRC: return "OCTO_E_CRC";
    case OCTO_E_COBS: return "OCTO_E_COBS";
    case OCTO_E_FRAME_TOO_LONG: return "OCTO_E_FRAME_TOO_LONG";
    case OCTO_E_FRAME_SHORT: return "OCTO_E_FRAME_SHORT";
    case OCTO_E_FRAME_LENGTH: return "OCTO_E_FRAME_LENGTH";
    case OCTO_E_VERSION: return "OCTO_E_VERSION";
    case OCTO_E_UNSUPPORTED: return "OCTO_E_UNSUPPORTED";
    case OCTO_E_PAYLOAD: return "OCTO_E_PAYLOAD";
    case OCTO_E_STATE: return "OCTO_E_STATE";
    case OCTO_E_NOMEM: return "OCTO_E_NOMEM";
    case OCTO_E_DIVERGED: return "OCTO_E_DIVERGED";
    default: return status > 0 ? "OCTO_COUNT" : "OCTO_E_UNKNOWN";
    }
}
