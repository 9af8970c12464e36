/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the librabbitmq integration clients (see it_common.h).
 */
#include "it_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int it_failures;

void it_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    it_failures++;
}

bool it_reply_ok(amqp_rpc_reply_t r, const char *what)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return true;
    case AMQP_RESPONSE_NONE:
        fprintf(stderr, "%s: missing RPC reply\n", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        fprintf(stderr, "%s: library error: %s\n", what, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            fprintf(stderr, "%s: connection closed by broker: %u %.*s\n", what, m->reply_code,
                    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            fprintf(stderr, "%s: channel closed by broker: %u %.*s\n", what, m->reply_code,
                    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            fprintf(stderr, "%s: unexpected server method 0x%08x\n", what, r.reply.id);
        }
        break;
    }
    return false;
}

bool it_rpc_ok(amqp_connection_state_t conn, const char *what)
{
    return it_reply_ok(amqp_get_rpc_reply(conn), what);
}

amqp_connection_state_t it_connect(const char *host, int port, int frame_max)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = {10, 0};
    if (sock == NULL) {
        fprintf(stderr, "cannot create socket\n");
        exit(2);
    }
    int rc = amqp_socket_open_noblock(sock, host, port, &tv);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "cannot connect to %s:%d: %s\n", host, port, amqp_error_string2(rc));
        exit(2);
    }
    if (!it_reply_ok(amqp_login(conn, "/", 0, frame_max, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                     "login"))
        exit(2);
    return conn;
}

void it_close(amqp_connection_state_t conn)
{
    it_reply_ok(amqp_connection_close(conn, AMQP_REPLY_SUCCESS), "connection.close");
    amqp_destroy_connection(conn);
}

void it_channel_open(amqp_connection_state_t conn, amqp_channel_t channel)
{
    amqp_channel_open(conn, channel);
    if (!it_rpc_ok(conn, "channel.open"))
        exit(2);
}

void it_unique_name(const char *prefix, char *buf, size_t len)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, len, "%s-%ld-%u-%ld%09ld", prefix, (long)getpid(), counter++, (long)ts.tv_sec, ts.tv_nsec);
}

void it_declare_queue(amqp_connection_state_t conn, amqp_channel_t channel, const char *name)
{
    amqp_queue_declare(conn, channel, amqp_cstring_bytes(name), 0, 0, 0, 1, amqp_empty_table);
    if (!it_rpc_ok(conn, "queue.declare"))
        exit(2);
}

long it_message_count(amqp_connection_state_t conn, amqp_channel_t channel, const char *name)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, channel, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
    if (ok == NULL) {
        it_rpc_ok(conn, "queue.declare passive");
        return -1;
    }
    return (long)ok->message_count;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool it_wait_message_count(amqp_connection_state_t conn, amqp_channel_t channel, const char *name,
                           long expected, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        long n = it_message_count(conn, channel, name);
        if (n == expected)
            return true;
        if (n < 0 || now_ms() >= deadline) {
            fprintf(stderr, "queue %s: %ld ready messages, expected %ld\n", name, n, expected);
            return false;
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

bool it_bytes_eq(amqp_bytes_t a, amqp_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.bytes, b.bytes, a.len) == 0);
}

void it_args(int argc, char **argv, const char **host, int *port)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s host port\n", argv[0]);
        exit(2);
    }
    *host = argv[1];
    *port = atoi(argv[2]);
}

int it_finish(const char *prog)
{
    if (it_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", prog, it_failures);
        return 1;
    }
    printf("%s: all checks passed\n", prog);
    return 0;
}
