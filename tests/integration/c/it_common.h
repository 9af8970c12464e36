/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the librabbitmq (rabbitmq-c) integration clients: connect
 * and log in, check RPC replies (printing the broker's close code and text),
 * record failures, make unique names, poll a queue's ready count with a
 * deadline. Each client is `prog host port` and exits non-zero on failure.
 */
#ifndef WR_IT_COMMON_H
#define WR_IT_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

/* Number of failed checks so far; main returns non-zero when it is > 0. */
extern int it_failures;

void it_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records a failure (with location and message) unless cond holds. */
#define IT_CHECK(cond, ...)                                                                                  \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            it_fail(__FILE__, __LINE__, __VA_ARGS__);                                                        \
    } while (0)

/* Exits with status 2 on any failure to connect or log in. */
amqp_connection_state_t it_connect(const char *host, int port, int frame_max);
void it_close(amqp_connection_state_t conn);
/* Opens `channel`; exits on failure. */
void it_channel_open(amqp_connection_state_t conn, amqp_channel_t channel);
/* True when the last RPC succeeded; otherwise prints what and the reply. */
bool it_rpc_ok(amqp_connection_state_t conn, const char *what);
bool it_reply_ok(amqp_rpc_reply_t r, const char *what);
/* "prefix-<pid>-<counter>-<time>" into buf. */
void it_unique_name(const char *prefix, char *buf, size_t len);
/* Declares a non-durable, auto-delete queue named `name` on channel. */
void it_declare_queue(amqp_connection_state_t conn, amqp_channel_t channel, const char *name);
/* Ready-message count from a passive declare; -1 on error. */
long it_message_count(amqp_connection_state_t conn, amqp_channel_t channel, const char *name);
/* Polls it_message_count until it equals expected or timeout_ms passes. */
bool it_wait_message_count(amqp_connection_state_t conn, amqp_channel_t channel, const char *name,
                           long expected, int timeout_ms);
bool it_bytes_eq(amqp_bytes_t a, amqp_bytes_t b);
/* Parses argv (host port) or exits with usage. */
void it_args(int argc, char **argv, const char **host, int *port);
/* Prints PASS/FAIL and returns the process exit status. */
int it_finish(const char *prog);

#endif
