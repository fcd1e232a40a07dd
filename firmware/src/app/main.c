/* main.c - firmware entry point. */
#include "octo/octo_app.h"
#include "octo/octo_board.h"

int main(void) {
    octo_board_init();
    if (octo_app_init() != OCTO_OK) {
        octo_board_exit(1);
    }
    octo_app_run();
    return 0;
}
