/* SPDX-License-Identifier: MIT */
/*
 * The classic queue type's rules for a new queue's x- arguments, with
 * RabbitMQ's texts (what rabbit_classic_queue and rabbit_amqqueue check and
 * print). Pure; broker/vhost/queue_args.c calls it through the type.
 */
#include "broker/queue/classic.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "protocol/methods.h"
#include "protocol/table.h"

/* What a classic queue accepts for each argument it validates. */
typedef enum {
    ARG_EXPIRES,   /* integer, not 0, a valid expiry */
    ARG_TTL,       /* integer, a valid expiry */
    ARG_NON_NEG,   /* integer >= 0 */
    ARG_PRIORITY,  /* integer 0..255 */
    ARG_BOOL,      /* bool */
    ARG_STRING,    /* longstr */
    ARG_DLX_KEY,   /* longstr, and only with x-dead-letter-exchange */
    ARG_OVERFLOW,  /* one of the overflow modes */
    ARG_MODE,      /* default or lazy */
    ARG_VERSION,   /* 1 or 2 */
    ARG_QUEUE_TYPE /* classic, quorum or stream */
} arg_rule_t;

/* In RabbitMQ's order: the first failing argument is the one reported. */
static const struct {
    const char *key;
    arg_rule_t rule;
} declare_args[] = {
    {"x-expires", ARG_EXPIRES},
    {"x-message-ttl", ARG_TTL},
    {"x-dead-letter-exchange", ARG_STRING},
    {"x-dead-letter-routing-key", ARG_DLX_KEY},
    {"x-max-length", ARG_NON_NEG},
    {"x-max-length-bytes", ARG_NON_NEG},
    {"x-max-priority", ARG_PRIORITY},
    {"x-overflow", ARG_OVERFLOW},
    {"x-queue-mode", ARG_MODE},
    {"x-queue-version", ARG_VERSION},
    {"x-single-active-consumer", ARG_BOOL},
    {"x-queue-type", ARG_QUEUE_TYPE},
    /* Only quorum queues have it in RabbitMQ; warren's queues do. */
    {"x-delivery-limit", ARG_NON_NEG},
    /* RabbitMQ 3.12's; 3.10 ignores it. */
    {"x-consumer-timeout", ARG_NON_NEG},
};

/* Arguments of quorum queues: accepted when x-queue-type is quorum (in a
 * cluster a quorum queue uses them; a single node makes a classic queue). */
static const char *const quorum_args[] = {
    "x-dead-letter-strategy",      "x-max-in-memory-length", "x-max-in-memory-bytes",
    "x-quorum-initial-group-size", "x-queue-leader-locator",
};

/* Arguments of other queue types, which a classic queue refuses. */
static const char *const foreign_args[] = {
    "x-dead-letter-strategy",          "x-max-in-memory-length", "x-max-in-memory-bytes",
    "x-quorum-initial-group-size",     "x-queue-leader-locator", "x-max-age",
    "x-stream-max-segment-size-bytes", "x-initial-cluster-size",
};

#define WR_MAX_EXPIRY 315360000000LL /* RabbitMQ: ten years in milliseconds */

static bool str_in(wr_bytes_t s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_bytes_eq_str(s, set[i]))
            return true;
    }
    return false;
}

/*
 * Checks one argument; on failure writes the reason as RabbitMQ prints it
 * (an Erlang term through ~p) into why and returns false.
 */
static bool check_arg(arg_rule_t rule, const wr_value_t *v, wr_bytes_t args, char *why, size_t n)
{
    static const char *const overflow[] = {"drop-head", "reject-publish", "reject-publish-dlx"};
    static const char *const modes[] = {"default", "lazy"};
    static const char *const types[] = {"classic", "quorum", "stream"};
    const char *tname = wr_value_type_name(v->type);
    wr_value_t dlx;
    int64_t i;

    switch (rule) {
    case ARG_BOOL:
        if (v->type == 't')
            return true;
        snprintf(why, n, "{unacceptable_type,%s}", tname);
        return false;
    case ARG_STRING:
    case ARG_DLX_KEY:
    case ARG_OVERFLOW:
    case ARG_MODE:
    case ARG_QUEUE_TYPE:
        if (v->type != 'S') {
            snprintf(why, n, "{unacceptable_type,%s}", tname);
            return false;
        }
        if (rule == ARG_DLX_KEY && !wr_table_get(args, "x-dead-letter-exchange", &dlx)) {
            snprintf(why, n, "routing_key_but_no_dlx_defined");
            return false;
        }
        if (rule == ARG_OVERFLOW && !str_in(v->v.s, overflow, 3)) {
            snprintf(why, n, "invalid_overflow");
            return false;
        }
        if (rule == ARG_MODE && !str_in(v->v.s, modes, 2)) {
            snprintf(why, n, "\"unsupported queue mode '%.*s'\"", (int)v->v.s.len, (const char *)v->v.s.data);
            return false;
        }
        if (rule == ARG_QUEUE_TYPE && !str_in(v->v.s, types, 3)) {
            snprintf(why, n, "\"unsupported queue type '%.*s'\"", (int)v->v.s.len, (const char *)v->v.s.data);
            return false;
        }
        return true;
    default:
        break;
    }
    /* The integer rules: RabbitMQ's INTEGER_ARG_TYPES are our integer tags. */
    if (!wr_value_int(v, &i)) {
        snprintf(why, n, "\"expected integer, got %s\"", tname);
        return false;
    }
    switch (rule) {
    case ARG_EXPIRES:
    case ARG_TTL:
        if (rule == ARG_EXPIRES && i == 0)
            snprintf(why, n, "{value_zero,0}");
        else if (i < 0)
            snprintf(why, n, "{value_negative,%" PRId64 "}", i);
        else if (i > WR_MAX_EXPIRY)
            snprintf(why, n, "{value_too_large,%" PRId64 "}", i);
        else
            return true;
        return false;
    default:
        if (i < 0) {
            snprintf(why, n, "{value_negative,%" PRId64 "}", i);
            return false;
        }
        if (rule == ARG_PRIORITY && i > 255) {
            snprintf(why, n, "{max_value_exceeded,%" PRId64 "}", i);
            return false;
        }
        if (rule == ARG_VERSION && i != 1 && i != 2) {
            snprintf(why, n, "\"unsupported queue version '%" PRId64 "'\"", i);
            return false;
        }
        return true;
    }
}

bool wr_classic_validate_args(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err)
{
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t v;
    char why[160];
    bool quorum;

    for (size_t i = 0; i < sizeof(declare_args) / sizeof(declare_args[0]); i++) {
        if (wr_table_get(args, declare_args[i].key, &v) &&
            !check_arg(declare_args[i].rule, &v, args, why, sizeof(why))) {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DECLARE,
                              "invalid arg '%s' for queue '%.*s' in vhost '%s': %s", declare_args[i].key,
                              (int)name.len, (const char *)name.data, vhost, why);
            return false;
        }
    }
    quorum = wr_table_get(args, "x-queue-type", &v) && v.type == 'S' && wr_bytes_eq_str(v.v.s, "quorum");
    wr_table_iter_init(&it, args);
    while (wr_table_next(&it, &key, &v)) {
        if (quorum && str_in(key, quorum_args, sizeof(quorum_args) / sizeof(quorum_args[0])))
            continue;
        if (str_in(key, foreign_args, sizeof(foreign_args) / sizeof(foreign_args[0]))) {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DECLARE,
                              "invalid arg '%.*s' for queue '%.*s' in vhost '%s' of queue type "
                              "rabbit_classic_queue",
                              (int)key.len, (const char *)key.data, (int)name.len, (const char *)name.data,
                              vhost);
            return false;
        }
    }
    return true;
}
