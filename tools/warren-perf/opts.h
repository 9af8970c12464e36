/* SPDX-License-Identifier: MIT */
/*
 * warren-perf's command line, modelled on RabbitMQ's PerfTest so the same
 * scenario reads the same way against either broker. Parsing validates
 * everything up front: a run never starts with a combination that would stall.
 */
#ifndef WR_PERF_OPTS_H
#define WR_PERF_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One --queue-arg: an integer when the value parses as one, else a string. */
typedef struct {
    char *key;       /* owned; the value string lives in the same allocation */
    const char *str; /* NULL for an integer */
    int64_t num;
} wr_queue_arg_t;

typedef struct {
    char host[256];
    uint16_t port;
    char user[256];
    char pass[256];
    char vhost[256];

    uint32_t producers;
    uint32_t consumers;
    size_t body_size;
    const char *queue; /* base name; "<queue>-<i>" when nqueues > 1 */
    uint32_t nqueues;
    bool persistent;   /* delivery_mode 2, durable queues and exchange */
    uint32_t confirm;  /* max unconfirmed per producer; 0: no confirms */
    uint16_t prefetch; /* 0: unlimited */
    bool autoack;
    uint32_t multi_ack;          /* ack with multiple=true every N deliveries; <= 1: one by one */
    double seconds;              /* run length; 0: until the counts are done */
    double rate;                 /* per producer, msgs/s; 0: as fast as possible */
    uint64_t count;              /* per producer; 0: unlimited */
    const char *exchange;        /* "" is the default exchange */
    const char *type;            /* exchange type */
    const char *routing_key;     /* NULL: each producer uses its queue's name */
    uint32_t bindings;           /* 0: one binding per queue */
    const char *binding_pattern; /* "{i}" becomes the binding's index */
    wr_queue_arg_t *qargs;
    size_t nqargs;
    bool predeclared;
    bool json;
    pid_t pid;              /* broker to sample; 0: none */
    uint32_t idle_conns;    /* > 0: the idle-connections run instead */
    bool no_consume_during; /* publish everything first, then drain */
    bool unbatched;         /* one message or ack per write syscall */
} wr_opts_t;

/*
 * Parses argv into o (which needs no initialisation). Returns WR_OK, or
 * WR_ESYNTAX after printing the problem to stderr; WR_EEXIST means --help
 * was printed and the program should exit 0. Free with wr_opts_free.
 */
int wr_opts_parse(wr_opts_t *o, int argc, char **argv);
void wr_opts_free(wr_opts_t *o);

/* Name of queue i (0-based) into out; the name of the only queue when
 * nqueues is 1. */
void wr_opts_queue_name(const wr_opts_t *o, uint32_t i, char *out, size_t n);

#endif
