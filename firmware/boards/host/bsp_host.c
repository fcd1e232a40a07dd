/* bsp_host.c - board support for a native Linux/POSIX build (`--target host`).
 *
 * The firmware runs as an ordinary process. Its "UART" is a TCP server on
 * 127.0.0.1: the port comes from OCTO_HOST_PORT (unset or 0 = any free port)
 * and is announced as the line "OCTO_HOST_PORT=<n>" on stdout once listening.
 * One client is served at a time; while none is connected, reads return no
 * bytes and writes are dropped (like a UART with no cable attached), and the
 * next client is accepted when the current one disconnects.
 *
 * Timer: CLOCK_MONOTONIC in nanoseconds. Storage: a 4 KiB RAM array (lost at
 * exit). SIGTERM/SIGINT end the process through exit(0) so that sanitizer
 * leak checks and atexit handlers run.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "octo/octo_board.h"

#ifndef OCTO_BOARD_NAME
#define OCTO_BOARD_NAME "host"
#endif
#ifndef OCTO_BOARD_CPU
#define OCTO_BOARD_CPU "host"
#endif

#define HOST_TIMER_HZ 1000000000u
#define HOST_WAIT_MS 10       /* longest octo_board_wait() sleep */
#define HOST_SEND_TIMEOUT_S 5 /* a client that stops reading is dropped */

static const octo_board_info_t s_info = {
    OCTO_BOARD_NAME, OCTO_BOARD_CPU, 0 /* cpu_hz: unknown */, HOST_TIMER_HZ, 0, 0, 0,
};

static int s_listen_fd = -1;
static int s_client_fd = -1;
static uint64_t s_t0_ns;
static volatile sig_atomic_t s_stop;

static void die(const char *what) {
    fprintf(stderr, "octo host board: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_stop_signal(int sig) {
    (void)sig;
    s_stop = 1;
}

static void close_fd(int *fd) {
    if (*fd >= 0) {
        (void)close(*fd);
        *fd = -1;
    }
}

static int set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) {
        return -1;
    }
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}

static uint16_t port_from_env(void) {
    const char *s = getenv("OCTO_HOST_PORT");
    if (s == NULL || s[0] == '\0') {
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535) {
        fprintf(stderr, "octo host board: OCTO_HOST_PORT=%s is not a port number (0-65535)\n", s);
        exit(1);
    }
    return (uint16_t)v;
}

static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: poll() returns EINTR */
    (void)sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        die("sigaction");
    }
    sa.sa_handler = SIG_IGN; /* a vanished client must not kill the board */
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        die("sigaction");
    }
}

static void open_listener(uint16_t port) {
    s_listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s_listen_fd < 0) {
        die("socket");
    }
    int one = 1;
    if (setsockopt(s_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        die("setsockopt(SO_REUSEADDR)");
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s_listen_fd, (const struct sockaddr *)&addr, sizeof addr) != 0) {
        die("bind to 127.0.0.1");
    }
    if (listen(s_listen_fd, 1) != 0) {
        die("listen");
    }
    if (set_nonblocking(s_listen_fd, 1) != 0) {
        die("fcntl(O_NONBLOCK)");
    }
    socklen_t alen = sizeof addr;
    if (getsockname(s_listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
        die("getsockname");
    }
    printf("OCTO_HOST_PORT=%u\n", (unsigned)ntohs(addr.sin_port));
    (void)fflush(stdout);
}

/* Leave the run loop on SIGTERM/SIGINT (checked wherever the loop idles). */
static void check_stop(void) {
    if (s_stop) {
        octo_board_exit(0);
    }
}

/* Accept a waiting client if none is connected; never blocks. */
static void try_accept(void) {
    if (s_client_fd >= 0 || s_listen_fd < 0) {
        return;
    }
    int fd = accept(s_listen_fd, NULL, NULL);
    if (fd < 0) {
        return; /* EAGAIN (nobody waiting) or a client that already left */
    }
    int one = 1;
    struct timeval tv;
    memset(&tv, 0, sizeof tv);
    tv.tv_sec = HOST_SEND_TIMEOUT_S;
    if (set_nonblocking(fd, 0) != 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        (void)close(fd);
        return;
    }
    s_client_fd = fd;
}

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void octo_board_init(void) {
    s_t0_ns = monotonic_ns();
    install_signal_handlers();
    open_listener(port_from_env());
}

const octo_board_info_t *octo_board_info(void) { return &s_info; }

uint32_t octo_board_cpuid(void) { return 0; }

void octo_board_memory_use(uint32_t *flash_used, uint32_t *ram_used) {
    if (flash_used != NULL) {
        *flash_used = 0;
    }
    if (ram_used != NULL) {
        *ram_used = 0;
    }
}

size_t octo_board_uart_read(uint8_t *buf, size_t cap) {
    check_stop();
    if (buf == NULL || cap == 0) {
        return 0;
    }
    try_accept();
    if (s_client_fd < 0) {
        return 0;
    }
    ssize_t n = recv(s_client_fd, buf, cap, MSG_DONTWAIT);
    if (n > 0) {
        return (size_t)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return 0;
    }
    close_fd(&s_client_fd); /* orderly disconnect (0) or a reset: wait for the next client */
    return 0;
}

int octo_board_uart_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    if (data == NULL && n > 0) {
        return OCTO_E_ARG;
    }
    size_t off = 0;
    while (off < n && s_client_fd >= 0) {
        ssize_t w = send(s_client_fd, data + off, n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            close_fd(&s_client_fd); /* gone or not reading: drop the rest, keep running */
        }
    }
    return OCTO_OK;
}

uint64_t octo_board_ticks(void) { return monotonic_ns(); }

uint32_t octo_board_millis(void) { return (uint32_t)((monotonic_ns() - s_t0_ns) / 1000000u); }

void octo_board_wait(void) {
    check_stop();
    struct pollfd pfd;
    pfd.fd = s_client_fd >= 0 ? s_client_fd : s_listen_fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    (void)poll(&pfd, 1, HOST_WAIT_MS); /* EINTR just ends the wait early */
    check_stop();
}

void octo_board_exit(int code) {
    close_fd(&s_client_fd);
    close_fd(&s_listen_fd);
    (void)fflush(stdout);
    exit(code);
}
