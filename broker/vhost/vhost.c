/* SPDX-License-Identifier: MIT */
/*
 * Virtual hosts: the exchange and queue name tables, the standard exchanges,
 * deletion with its cascades (bindings, auto-delete exchanges, exclusive
 * queues of a closed connection), the libevent events that run the queue
 * dispatch scheduler once per loop iteration, and what queues ask of their
 * owner: limits from arguments and policies, timers, deferred dead-lettering
 * and deletion of queues past x-expires.
 */
#include "broker/vhost/vhost.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/vhost/deadletter.h"
#include "broker/base/log.h"
#include "broker/vhost/policy.h"
#include "broker/vhost/queue_args.h"
#include "core/map.h"
#include "core/status.h"
#include "protocol/table.h"

/* Deliveries per queue per scheduler run: fairness between queues, and a
 * bound on the time one loop iteration spends dispatching. */
#define WR_VHOST_DISPATCH_BATCH 256
/* Dead-lettered messages republished per callback: the rest wait for the
 * next loop iteration, after I/O. */
#define WR_VHOST_DEAD_LETTER_BATCH 256

/* An owned byte string that may be absent (a DLX may be "", not unset). */
typedef struct {
    uint8_t *data;
    size_t len;
    bool set;
} opt_bytes_t;

/* What the vhost keeps for each of its queues: the timer its type asks for
 * and where the queue's dead letters go. Found by the queue's address. */
typedef struct {
    wr_queue_t *q;
    struct event *timer;
    opt_bytes_t dlx;  /* x-dead-letter-exchange (argument or policy) */
    opt_bytes_t dlrk; /* x-dead-letter-routing-key */
} qslot_t;

/* A message waiting to be dead-lettered: the queue's name and its DLX as
 * they were when it left (the queue may be gone by the time it is sent). */
typedef struct dl_item_s {
    struct dl_item_s *next;
    wr_message_t *m;
    wr_confirm_t *conf; /* at-least-once: held until the copy is stored, or not */
    wr_deadletter_t d;  /* strings point after the struct */
} dl_item_t;

/* A queue past its x-expires, to delete from the deferred event. */
typedef struct expired_s {
    struct expired_s *next;
    wr_queue_t *q; /* a reference */
} expired_t;

/* The exclusive queues of one connection. */
typedef struct {
    wr_list_t queues;
    uint64_t conn_id;
} owner_t;

/* Tells the observer (the durable topology) of a change, if there is one. */
#define note(vh, what, ...)                                                                                  \
    do {                                                                                                     \
        if ((vh)->env->observer != NULL)                                                                     \
            (vh)->env->observer->what((vh)->env->observer_ud, (vh), __VA_ARGS__);                            \
    } while (0)

struct wr_vhost_s {
    const wr_vhost_env_t *env;
    char *name;
    wr_map_t *exchanges;
    wr_map_t *queues;
    wr_map_t *owners; /* conn id (8 bytes) -> owner_t */
    wr_exchange_t *default_exchange;
    wr_queue_sched_t sched;
    struct event *run_ev;
    wr_vhost_stats_t stats;
    wr_map_t *slots; /* queue address -> qslot_t */
    /* Dead letters and expired queues, handled by deferred_ev outside queue
     * code (queues must not be re-entered from their hooks). */
    struct event *deferred_ev;
    dl_item_t *dl_head;
    dl_item_t **dl_tail;
    expired_t *expired;
    wr_dest_set_t dl_route;
    wr_map_t *cycles_logged; /* queue names whose dead-letter cycle was logged */
    /* Exchanges that lost a binding as source during the current operation:
     * auto-delete candidates, each holding a reference. */
    wr_exchange_t **pending;
    size_t npending;
    size_t cap_pending;
};

static void run_dispatch(evutil_socket_t fd, short what, void *arg)
{
    wr_vhost_t *vh = arg;
    /* More work: run again on the next iteration, after polling I/O (an
     * event_active from inside the callback would run before it). */
    static const struct timeval next_iteration = {0, 0};

    if (wr_queue_sched_run(&vh->sched, WR_VHOST_DISPATCH_BATCH))
        event_add(vh->run_ev, &next_iteration);
}

static void wake_dispatch(void *ud)
{
    wr_vhost_t *vh = ud;

    event_active(vh->run_ev, 0, 0);
}

/* ---------------------------------------------------------------- queue hooks */

static wr_bytes_t slot_key(wr_queue_t *const *q)
{
    return (wr_bytes_t){(const uint8_t *)q, sizeof(*q)};
}

static qslot_t *slot_of(const wr_vhost_t *vh, wr_queue_t *q)
{
    return wr_map_get(vh->slots, slot_key(&q));
}

static void opt_bytes_free(opt_bytes_t *b)
{
    free(b->data);
    *b = (opt_bytes_t){0};
}

static bool opt_bytes_set(opt_bytes_t *b, wr_bytes_t v)
{
    uint8_t *d = malloc(v.len ? v.len : 1);

    if (d == NULL)
        return false;
    if (v.len > 0)
        memcpy(d, v.data, v.len);
    free(b->data);
    *b = (opt_bytes_t){d, v.len, true};
    return true;
}

static uint64_t hook_now_ms(void *ud)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void deferred_wake(wr_vhost_t *vh)
{
    if (!event_pending(vh->deferred_ev, EV_TIMEOUT, NULL))
        event_active(vh->deferred_ev, 0, 0);
}

/* Queues m for q's dead-letter exchange; with conf, its hold (taken by the
 * caller) is released failed when m is dropped here. */
static void dl_push(wr_vhost_t *vh, wr_queue_t *q, wr_message_t *m, wr_dl_reason_t why, wr_confirm_t *conf)
{
    qslot_t *s = slot_of(vh, q);
    wr_bytes_t name = wr_queue_name(q);
    dl_item_t *it = NULL;
    uint8_t *p;

    if (s != NULL && s->dlx.set && (it = malloc(sizeof(*it) + name.len + s->dlx.len + s->dlrk.len)) == NULL)
        wr_log_warn("out of memory: message dead-lettered from queue '%.*s' in vhost '%s' dropped",
                    (int)name.len, (const char *)name.data, vh->name);
    if (it == NULL) {
        wr_message_unref(m);
        if (conf != NULL)
            wr_confirm_release(conf, false);
        return;
    }
    p = (uint8_t *)(it + 1);
    it->next = NULL;
    it->m = m;
    it->conf = conf;
    it->d = (wr_deadletter_t){.reason = why, .has_routing_key = s->dlrk.set};
    it->d.queue = (wr_bytes_t){p, name.len};
    if (name.len > 0)
        memcpy(p, name.data, name.len);
    p += name.len;
    it->d.dlx = (wr_bytes_t){p, s->dlx.len};
    if (s->dlx.len > 0)
        memcpy(p, s->dlx.data, s->dlx.len);
    p += s->dlx.len;
    it->d.routing_key = (wr_bytes_t){p, s->dlrk.len};
    if (s->dlrk.len > 0)
        memcpy(p, s->dlrk.data, s->dlrk.len);
    *vh->dl_tail = it;
    vh->dl_tail = &it->next;
    deferred_wake(vh);
}

static void hook_dead_letter(void *ud, wr_queue_t *q, wr_message_t *m, wr_dl_reason_t why)
{
    dl_push(ud, q, m, why, NULL);
}

static void hook_dead_letter_confirmed(void *ud, wr_queue_t *q, wr_message_t *m, wr_dl_reason_t why,
                                       wr_confirm_t *conf)
{
    conf->waiting++;
    dl_push(ud, q, m, why, conf);
}

static void on_queue_timer(evutil_socket_t fd, short what, void *arg)
{
    qslot_t *s = arg;

    wr_queue_tick(s->q);
}

static void hook_arm(void *ud, wr_queue_t *q, uint64_t due)
{
    wr_vhost_t *vh = ud;
    qslot_t *s = slot_of(vh, q);
    uint64_t now, delay;
    struct timeval tv;

    if (s == NULL)
        return;
    if (due == UINT64_MAX) {
        event_del(s->timer);
        return;
    }
    now = hook_now_ms(vh);
    delay = due > now ? due - now : 0;
    tv.tv_sec = (time_t)(delay / 1000);
    tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
    event_add(s->timer, &tv);
}

static void hook_expired(void *ud, wr_queue_t *q)
{
    wr_vhost_t *vh = ud;
    expired_t *e = malloc(sizeof(*e));

    if (e == NULL) {
        wr_log_warn("out of memory: expired queue '%.*s' in vhost '%s' kept", (int)wr_queue_name(q).len,
                    (const char *)wr_queue_name(q).data, vh->name);
        return;
    }
    e->q = wr_queue_ref(q);
    e->next = vh->expired;
    vh->expired = e;
    deferred_wake(vh);
}

static const wr_queue_hooks_t queue_hooks = {
    .now_ms = hook_now_ms,
    .dead_letter = hook_dead_letter,
    .arm = hook_arm,
    .expired = hook_expired,
    .dead_letter_confirmed = hook_dead_letter_confirmed,
};

/* RabbitMQ warns once per cycle; once per queue the cycle ends in is enough
 * to point at the misconfiguration. */
static void log_cycle(wr_vhost_t *vh, wr_queue_t *q)
{
    wr_bytes_t name = wr_queue_name(q);

    if (wr_map_get(vh->cycles_logged, name) != NULL || wr_map_put(vh->cycles_logged, name, vh) != WR_OK)
        return;
    wr_log_warn("vhost '%s': message dropped: dead-letter cycle back to queue '%.*s' without a "
                "rejection; not reported again for this queue",
                vh->name, (int)name.len, (const char *)name.data);
}

static void publish_to(wr_vhost_t *vh, wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf, size_t *routed);

/* Sends one dead letter to its DLX, as RabbitMQ: a missing exchange drops
 * it, and queues it would reach in a fully automatic cycle are skipped. */
static void dead_letter_one(wr_vhost_t *vh, dl_item_t *it)
{
    wr_exchange_t *x = wr_vhost_exchange(vh, it->d.dlx);
    wr_message_t *copy;
    wr_bytes_t *keys = NULL;
    size_t nkeys = 0, routed = 0, cycles = 0;

    if (x == NULL) {
        wr_log_debug(
            "vhost '%s': dead-letter exchange '%.*s' of queue '%.*s' does not exist; message dropped",
            vh->name, (int)it->d.dlx.len, (const char *)it->d.dlx.data, (int)it->d.queue.len,
            (const char *)it->d.queue.data);
        return;
    }
    it->d.time = (uint64_t)time(NULL);
    copy = wr_deadletter_copy(it->m, &it->d);
    wr_dest_set_clear(&vh->dl_route);
    if (copy == NULL || !wr_deadletter_routing_keys(copy, &keys, &nkeys) ||
        !wr_exchange_route_keys(vh, x, keys, nkeys, copy, &vh->dl_route)) {
        wr_log_warn("out of memory: message dead-lettered from queue '%.*s' in vhost '%s' dropped",
                    (int)it->d.queue.len, (const char *)it->d.queue.data, vh->name);
        goto out;
    }
    for (size_t i = 0; i < vh->dl_route.count; i++) {
        wr_queue_t *q = vh->dl_route.items[i].ptr;

        if (vh->dl_route.items[i].kind != WR_DEST_QUEUE)
            continue;
        if (it->d.reason != WR_DL_REJECTED && wr_deadletter_is_cycle(copy, wr_queue_name(q))) {
            log_cycle(vh, q);
            cycles++;
            continue;
        }
        publish_to(vh, q, copy, it->conf, &routed);
    }
    /* At-least-once: stored somewhere, or only dropped as a cycle (settled, as RabbitMQ). */
    if (it->conf != NULL && (routed > 0 || cycles > 0)) {
        wr_confirm_release(it->conf, true);
        it->conf = NULL;
    }
out:
    free(keys);
    wr_message_unref(copy);
}

/* An at-least-once dead letter not stored (no exchange, no route, the vhost going) fails its confirm. */
static void dl_item_free(dl_item_t *it)
{
    if (it->conf != NULL)
        wr_confirm_release(it->conf, false);
    wr_message_unref(it->m);
    free(it);
}

/* Queues past x-expires are deleted (unless used again meanwhile), then a
 * bounded batch of dead letters is sent; more work runs on the next loop
 * iteration. Sending can dead-letter again (a full queue): those join the
 * end of the list. */
static void run_deferred(evutil_socket_t fd, short what, void *arg)
{
    static const struct timeval next_iteration = {0, 0};
    wr_vhost_t *vh = arg;

    while (vh->expired != NULL) {
        expired_t *e = vh->expired;
        wr_bytes_t name = wr_queue_name(e->q);

        vh->expired = e->next;
        if (!wr_queue_closed(e->q) && wr_vhost_queue(vh, name) == e->q &&
            wr_queue_consumer_count(e->q) == 0) {
            wr_log_info("queue '%.*s' in vhost '%s' unused for its x-expires: deleted", (int)name.len,
                        (const char *)name.data, vh->name);
            wr_vhost_queue_delete(vh, e->q);
        }
        wr_queue_unref(e->q);
        free(e);
    }
    for (size_t n = 0; n < WR_VHOST_DEAD_LETTER_BATCH && vh->dl_head != NULL; n++) {
        dl_item_t *it = vh->dl_head;

        vh->dl_head = it->next;
        if (vh->dl_head == NULL)
            vh->dl_tail = &vh->dl_head;
        dead_letter_one(vh, it);
        dl_item_free(it);
    }
    if (vh->dl_head != NULL)
        event_add(vh->deferred_ev, &next_iteration);
}

/* ---------------------------------------------------------------- limits */

static bool arg_int(wr_bytes_t args, const char *key, int64_t *out)
{
    wr_value_t v;

    return wr_table_get(args, key, &v) && wr_value_int(&v, out);
}

static bool arg_str(wr_bytes_t args, const char *key, wr_bytes_t *out)
{
    wr_value_t v;

    if (!wr_table_get(args, key, &v) || v.type != 'S')
        return false;
    *out = v.v.s;
    return true;
}

/* RabbitMQ's res_min: with both an argument and a policy value, the
 * smaller; otherwise whichever is set; -1 for neither. */
static int64_t min_limit(wr_bytes_t args, const char *key, int64_t policy)
{
    int64_t a;

    if (!arg_int(args, key, &a) || a < 0)
        return policy;
    return policy >= 0 && policy < a ? policy : a;
}

static wr_overflow_t overflow_of(wr_bytes_t s)
{
    if (wr_bytes_eq_str(s, "reject-publish"))
        return WR_OVERFLOW_REJECT_PUBLISH;
    if (wr_bytes_eq_str(s, "reject-publish-dlx"))
        return WR_OVERFLOW_REJECT_PUBLISH_DLX;
    return WR_OVERFLOW_DROP_HEAD;
}

/* An argument, else the policy's string, else unset (res_arg). */
static bool resolve_str(wr_bytes_t args, const char *key, const char *policy, opt_bytes_t *out)
{
    wr_bytes_t v;

    if (arg_str(args, key, &v))
        return opt_bytes_set(out, v);
    if (policy != NULL)
        return opt_bytes_set(out, wr_bytes_str(policy));
    opt_bytes_free(out);
    return true;
}

/* x-dead-letter-strategy, else the policy's (queue_arg_has_precedence). */
static wr_dl_strategy_t dl_strategy_of(wr_bytes_t args, const wr_policy_t *p)
{
    wr_bytes_t v;

    if (arg_str(args, "x-dead-letter-strategy", &v))
        return wr_bytes_eq_str(v, "at-least-once") ? WR_DL_AT_LEAST_ONCE : WR_DL_AT_MOST_ONCE;
    return p != NULL && p->dead_letter_strategy == WR_DL_AT_LEAST_ONCE ? WR_DL_AT_LEAST_ONCE
                                                                       : WR_DL_AT_MOST_ONCE;
}

/*
 * Puts in force the limits of s's queue: its arguments merged with the
 * policy matching it now, key by key as RabbitMQ's process_args_policy
 * (the smaller value for TTLs, expiry, lengths, the delivery limit and the
 * consumer timeout, which falls back to the node's consumer_timeout; the
 * argument for overflow and the dead-letter exchange and routing key).
 */
static void apply_limits(wr_vhost_t *vh, qslot_t *s)
{
    wr_bytes_t args = wr_queue_opts(s->q)->args, ov;
    const wr_policy_t *p = wr_policy_match(vh->env->policies, vh->name, wr_queue_name(s->q), true);
    wr_queue_limits_t l;

    wr_queue_limits_none(&l);
    l.message_ttl = min_limit(args, "x-message-ttl", p ? p->message_ttl : -1);
    l.expires = min_limit(args, "x-expires", p ? p->expires : -1);
    l.max_length = min_limit(args, "x-max-length", p ? p->max_length : -1);
    l.max_length_bytes = min_limit(args, "x-max-length-bytes", p ? p->max_length_bytes : -1);
    l.delivery_limit = min_limit(args, "x-delivery-limit", p ? p->delivery_limit : -1);
    /* RabbitMQ 3.12's order: the smaller of argument and policy, else the node's. */
    l.consumer_timeout = min_limit(args, "x-consumer-timeout", p ? p->consumer_timeout : -1);
    if (l.consumer_timeout < 0)
        l.consumer_timeout = vh->env->consumer_timeout;
    if (arg_str(args, "x-overflow", &ov))
        l.overflow = overflow_of(ov);
    else if (p != NULL && p->overflow >= 0)
        l.overflow = (wr_overflow_t)p->overflow;
    l.policy_overflow = p != NULL ? p->overflow : -1;
    l.dl_strategy = dl_strategy_of(args, p);
    if (!resolve_str(args, "x-dead-letter-exchange", p ? p->dead_letter_exchange : NULL, &s->dlx) ||
        !resolve_str(args, "x-dead-letter-routing-key", p ? p->dead_letter_routing_key : NULL, &s->dlrk))
        wr_log_warn("out of memory: dead-letter settings of queue '%.*s' in vhost '%s' not updated",
                    (int)wr_queue_name(s->q).len, (const char *)wr_queue_name(s->q).data, vh->name);
    l.dead_letter = s->dlx.set;
    wr_queue_set_limits(s->q, &l);
}

void wr_vhost_apply_policies(wr_vhost_t *vh)
{
    wr_map_iter_t it = {0};
    void *v;

    while (wr_map_next(vh->slots, &it, NULL, &v))
        apply_limits(vh, v);
    if (vh->env->observer != NULL)
        vh->env->observer->policies_changed(vh->env->observer_ud, vh);
}

static qslot_t *slot_new(wr_vhost_t *vh, wr_queue_t *q)
{
    qslot_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->q = q;
    s->timer = event_new(vh->env->base, -1, 0, on_queue_timer, s);
    if (s->timer == NULL || wr_map_put(vh->slots, slot_key(&s->q), s) != WR_OK) {
        if (s->timer != NULL)
            event_free(s->timer);
        free(s);
        return NULL;
    }
    return s;
}

static void slot_free(wr_vhost_t *vh, wr_queue_t *q)
{
    qslot_t *s = wr_map_del(vh->slots, slot_key(&q));

    if (s == NULL)
        return;
    event_free(s->timer);
    opt_bytes_free(&s->dlx);
    opt_bytes_free(&s->dlrk);
    free(s);
}

static const struct {
    const char *name;
    const char *type;
    bool internal;
} standard_exchanges[] = {
    {"", "direct", false},
    {"amq.direct", "direct", false},
    {"amq.fanout", "fanout", false},
    {"amq.topic", "topic", false},
    {"amq.headers", "headers", false},
    {"amq.match", "headers", false},
    {"amq.rabbitmq.trace", "topic", true},
};

wr_vhost_t *wr_vhost_new(const wr_vhost_env_t *env, const char *name)
{
    wr_vhost_t *vh = calloc(1, sizeof(*vh));

    if (vh == NULL)
        return NULL;
    vh->env = env;
    vh->name = strdup(name);
    vh->exchanges = wr_map_new();
    vh->queues = wr_map_new();
    vh->owners = wr_map_new();
    vh->slots = wr_map_new();
    vh->cycles_logged = wr_map_new();
    vh->run_ev = event_new(env->base, -1, 0, run_dispatch, vh);
    vh->deferred_ev = event_new(env->base, -1, 0, run_deferred, vh);
    vh->dl_tail = &vh->dl_head;
    wr_dest_set_init(&vh->dl_route);
    if (vh->name == NULL || vh->exchanges == NULL || vh->queues == NULL || vh->owners == NULL ||
        vh->slots == NULL || vh->cycles_logged == NULL || vh->run_ev == NULL || vh->deferred_ev == NULL)
        goto err;
    wr_queue_sched_init(&vh->sched, wake_dispatch, vh);
    vh->sched.hooks = &queue_hooks;
    for (size_t i = 0; i < sizeof(standard_exchanges) / sizeof(standard_exchanges[0]); i++) {
        wr_exchange_opts_t o = {
            .type = wr_router_type_find(wr_bytes_str(standard_exchanges[i].type)),
            .durable = true,
            .internal = standard_exchanges[i].internal,
        };
        wr_exchange_t *x;

        if (wr_vhost_exchange_add(vh, wr_bytes_str(standard_exchanges[i].name), &o, &x) != WR_OK)
            goto err;
        if (i == 0)
            vh->default_exchange = x;
    }
    return vh;
err:
    wr_vhost_free(vh);
    return NULL;
}

static void unbind_all(wr_map_t *exchanges)
{
    wr_map_iter_t it = {0};
    void *v;

    while (wr_map_next(exchanges, &it, NULL, &v))
        wr_exchange_unbind_from(v);
}

void wr_vhost_free(wr_vhost_t *vh)
{
    wr_map_iter_t it = {0};
    void *v;

    if (vh == NULL)
        return;
    /* Connections are gone by now, so no consumer is left to tell. Unbinding
     * everything first means nothing below can cascade. */
    if (vh->exchanges != NULL) {
        unbind_all(vh->exchanges);
        while (wr_map_next(vh->exchanges, &it, NULL, &v)) {
            wr_exchange_mark_deleted(v);
            wr_exchange_unref(v);
        }
    }
    if (vh->queues != NULL) {
        it = (wr_map_iter_t){0};
        while (wr_map_next(vh->queues, &it, NULL, &v)) {
            wr_queue_close(v);
            wr_queue_unref(v);
        }
    }
    if (vh->owners != NULL) {
        it = (wr_map_iter_t){0};
        while (wr_map_next(vh->owners, &it, NULL, &v))
            free(v);
    }
    /* Closing queues may have dead-lettered or expired more: drop it all. */
    while (vh->dl_head != NULL) {
        dl_item_t *d = vh->dl_head;

        vh->dl_head = d->next;
        dl_item_free(d);
    }
    while (vh->expired != NULL) {
        expired_t *e = vh->expired;

        vh->expired = e->next;
        wr_queue_unref(e->q);
        free(e);
    }
    if (vh->slots != NULL) {
        it = (wr_map_iter_t){0};
        while (wr_map_next(vh->slots, &it, NULL, &v))
            slot_free(vh, ((qslot_t *)v)->q);
    }
    wr_map_free(vh->exchanges);
    wr_map_free(vh->queues);
    wr_map_free(vh->owners);
    wr_map_free(vh->slots);
    wr_map_free(vh->cycles_logged);
    wr_dest_set_free(&vh->dl_route);
    if (vh->run_ev != NULL)
        event_free(vh->run_ev);
    if (vh->deferred_ev != NULL)
        event_free(vh->deferred_ev);
    free(vh->pending);
    free(vh->name);
    free(vh);
}

const char *wr_vhost_name(const wr_vhost_t *vh)
{
    return vh->name;
}

const wr_vhost_env_t *wr_vhost_env(const wr_vhost_t *vh)
{
    return vh->env;
}

wr_exchange_t *wr_vhost_exchange(const wr_vhost_t *vh, wr_bytes_t name)
{
    return wr_map_get(vh->exchanges, name);
}

wr_queue_t *wr_vhost_queue(const wr_vhost_t *vh, wr_bytes_t name)
{
    return wr_map_get(vh->queues, name);
}

static bool binding_durable(const wr_exchange_t *x, wr_dest_t d)
{
    if (!wr_exchange_opts(x)->durable)
        return false;
    return d.kind == WR_DEST_QUEUE ? wr_queue_opts(d.ptr)->durable : wr_exchange_opts(d.ptr)->durable;
}

int wr_vhost_exchange_add(wr_vhost_t *vh, wr_bytes_t name, const wr_exchange_opts_t *o, wr_exchange_t **out)
{
    wr_exchange_t *x = wr_exchange_new(name, o);
    int rc;

    if (x == NULL)
        return WR_ENOMEM;
    rc = wr_map_put(vh->exchanges, wr_exchange_name(x), x);
    if (rc != WR_OK) {
        wr_exchange_unref(x);
        return rc;
    }
    if (o->durable)
        note(vh, exchange_declared, x);
    *out = x;
    return WR_OK;
}

static wr_bytes_t owner_key(const uint64_t *conn_id)
{
    return (wr_bytes_t){(const uint8_t *)conn_id, sizeof(*conn_id)};
}

/* A new queue, with a log in the node's store (the stored one, logname, of a
 * recovered durable queue). */
static int queue_add(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, const char *logname,
                     wr_queue_t **out, char *err, size_t errlen)
{
    wr_queue_store_t *qlogs = vh->env->qlogs;
    wr_queue_opts_t oa = *o;
    wr_queue_t *q;
    owner_t *ow = NULL;
    qslot_t *s;
    char what[320];
    int64_t prio;
    wr_value_t v;
    int rc;

    /* rabbit_priority_queue: any integer, capped at 255. */
    oa.max_priority = 0;
    if (arg_int(o->args, "x-max-priority", &prio) && prio > 0)
        oa.max_priority = prio > 255 ? 255 : (uint8_t)prio;
    oa.single_active = wr_table_get(o->args, "x-single-active-consumer", &v) && v.type == 't' && v.v.b;
    q = wr_queue_new(wr_queue_args_type(o->args), name, &oa, &vh->sched);
    if (q == NULL)
        return WR_ENOMEM;
    s = slot_new(vh, q);
    if (s == NULL) {
        wr_queue_unref(q);
        return WR_ENOMEM;
    }
    if (qlogs != NULL) {
        snprintf(what, sizeof(what), "queue '%.*s' in vhost '%s'", (int)name.len, (const char *)name.data,
                 vh->name);
        rc = wr_queue_open_store(q, qlogs, logname, what, err, errlen);
        if (rc != WR_OK)
            goto err;
    }
    if (o->exclusive) {
        ow = wr_map_get(vh->owners, owner_key(&o->owner));
        if (ow == NULL) {
            ow = malloc(sizeof(*ow));
            if (ow == NULL) {
                rc = WR_ENOMEM;
                goto err;
            }
            ow->conn_id = o->owner;
            wr_list_init(&ow->queues);
            rc = wr_map_put(vh->owners, owner_key(&ow->conn_id), ow);
            if (rc != WR_OK) {
                free(ow);
                goto err;
            }
        }
    }
    rc = wr_map_put(vh->queues, wr_queue_name(q), q);
    if (rc != WR_OK)
        goto err_owner;
    if (ow != NULL)
        wr_list_insert_tail(&ow->queues, wr_queue_owner_link(q));
    if (o->durable)
        note(vh, queue_declared, q);
    apply_limits(vh, s);
    *out = q;
    return WR_OK;
err_owner:
    if (ow != NULL && wr_list_empty(&ow->queues)) {
        wr_map_del(vh->owners, owner_key(&ow->conn_id));
        free(ow);
    }
err:
    slot_free(vh, q);
    wr_queue_unref(q);
    return rc;
}

int wr_vhost_queue_add(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_t **out)
{
    char err[512];
    int rc = queue_add(vh, name, o, NULL, out, err, sizeof(err));

    vh->stats.queues_created += rc == WR_OK;
    /* Without a log name nothing is opened: only memory can run out. */
    return rc == WR_OK ? WR_OK : WR_ENOMEM;
}

int wr_vhost_queue_attach(wr_vhost_t *vh, wr_queue_t *q)
{
    qslot_t *s;

    if (wr_map_get(vh->queues, wr_queue_name(q)) != NULL)
        return WR_EEXIST;
    s = slot_new(vh, q);
    if (s == NULL)
        return WR_ENOMEM;
    if (wr_map_put(vh->queues, wr_queue_name(q), q) != WR_OK) {
        slot_free(vh, q);
        return WR_ENOMEM;
    }
    apply_limits(vh, s);
    return WR_OK;
}

wr_queue_sched_t *wr_vhost_sched(wr_vhost_t *vh)
{
    return &vh->sched;
}

int wr_vhost_queue_recover(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, const char *logname,
                           wr_queue_t **out, char *err, size_t errlen)
{
    return queue_add(vh, name, o, logname, out, err, errlen);
}

static void lost_source(void *ud, wr_exchange_t *source)
{
    wr_vhost_t *vh = ud;

    if (!wr_exchange_opts(source)->auto_delete || wr_exchange_deleted(source))
        return;
    if (vh->npending == vh->cap_pending) {
        size_t ncap = vh->cap_pending ? vh->cap_pending * 2 : 8;
        wr_exchange_t **n = realloc(vh->pending, ncap * sizeof(*n));

        if (n == NULL) {
            wr_log_warn("vhost '%s': out of memory; auto-delete exchange kept", vh->name);
            return;
        }
        vh->pending = n;
        vh->cap_pending = ncap;
    }
    vh->pending[vh->npending++] = wr_exchange_ref(source);
}

static void exchange_remove(wr_vhost_t *vh, wr_exchange_t *x)
{
    if (wr_exchange_opts(x)->durable)
        note(vh, exchange_deleted, x);
    wr_map_del(vh->exchanges, wr_exchange_name(x));
    wr_exchange_mark_deleted(x);
    wr_exchange_unbind_from(x);
    wr_exchange_unbind_to((wr_dest_t){x, WR_DEST_EXCHANGE}, lost_source, vh);
    wr_exchange_unref(x);
}

/* Deletes the auto-delete exchanges that lost their last binding; deleting
 * one can leave others without bindings, which join the same list. */
static void run_pending(wr_vhost_t *vh)
{
    while (vh->npending > 0) {
        wr_exchange_t *x = vh->pending[--vh->npending];

        if (!wr_exchange_deleted(x) && wr_exchange_binding_count(x) == 0)
            exchange_remove(vh, x);
        wr_exchange_unref(x);
    }
}

void wr_vhost_exchange_delete(wr_vhost_t *vh, wr_exchange_t *x)
{
    exchange_remove(vh, x);
    run_pending(vh);
}

static void stats_add(wr_queue_stats_t *to, const wr_queue_stats_t *s)
{
    to->publish += s->publish;
    to->deliver += s->deliver;
    to->deliver_no_ack += s->deliver_no_ack;
    to->get += s->get;
    to->get_no_ack += s->get_no_ack;
    to->redeliver += s->redeliver;
    to->ack += s->ack;
}

size_t wr_vhost_queue_delete(wr_vhost_t *vh, wr_queue_t *q)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);
    size_t ready;

    wr_map_del(vh->queues, wr_queue_name(q));
    if (o->durable)
        note(vh, queue_deleted, q);
    if (vh->env->queue_deleted != NULL)
        vh->env->queue_deleted(vh->env->queue_deleted_ud, vh, q);
    stats_add(&vh->stats.retired, wr_queue_stats(q));
    vh->stats.queues_deleted++;
    if (o->exclusive) {
        owner_t *ow = wr_map_get(vh->owners, owner_key(&o->owner));

        wr_list_remove(wr_queue_owner_link(q));
        if (wr_list_empty(&ow->queues)) {
            wr_map_del(vh->owners, owner_key(&ow->conn_id));
            free(ow);
        }
    }
    ready = wr_queue_close(q);
    slot_free(vh, q);
    wr_exchange_unbind_to((wr_dest_t){q, WR_DEST_QUEUE}, lost_source, vh);
    run_pending(vh);
    wr_queue_unref(q);
    return ready;
}

int wr_vhost_bind(wr_vhost_t *vh, wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    int rc = wr_exchange_bind(x, d, key, args);

    if (rc == WR_OK && binding_durable(x, d))
        note(vh, binding_changed, x, d, key, args, true);
    return rc;
}

int wr_vhost_unbind(wr_vhost_t *vh, wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    int rc = wr_exchange_unbind(x, d, key, args);

    if (rc == WR_OK && binding_durable(x, d))
        note(vh, binding_changed, x, d, key, args, false);
    if (rc == WR_OK && wr_exchange_binding_count(x) == 0) {
        lost_source(vh, x);
        run_pending(vh);
    }
    return rc;
}

/* Appends m to q. A full queue refusing it (x-overflow reject-publish)
 * still counts as routed (no basic.return) but nacks a confirm; without one
 * the message is silently dropped, as RabbitMQ does. */
static void publish_to(wr_vhost_t *vh, wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf, size_t *routed)
{
    int rc = wr_queue_publish(q, m, conf);

    if (rc == WR_OK || rc == WR_EFULL)
        (*routed)++;
    if (rc == WR_OK)
        return;
    /* Not taken: its publisher gets a nack. A write error is logged by the queue's log. */
    if (conf != NULL)
        conf->failed = true;
    if (rc == WR_ENOMEM)
        wr_log_warn("out of memory: message to queue '%.*s' in vhost '%s' dropped", (int)wr_queue_name(q).len,
                    (const char *)wr_queue_name(q).data, vh->name);
}

/* Routing keys kept without allocating: the key and a few CC/BCC ones. */
#define INLINE_KEYS 8

/*
 * m's routing key, then the longstr elements of its CC and BCC arrays
 * (others are ignored, as RabbitMQ does); *bcc tells whether it has a BCC
 * header. *keys is inline or, when more are needed, allocated (the caller
 * frees it unless it is inline). False on ENOMEM.
 */
static bool route_keys(wr_message_t *m, wr_bytes_t *inline_keys, wr_bytes_t **keys, size_t *n, bool *bcc)
{
    const wr_props_t *p = wr_message_props(m);
    wr_bytes_t arrays[2];
    size_t narrays = 0, count = 1;
    wr_table_iter_t it;
    wr_value_t v;

    *keys = inline_keys;
    *n = 1;
    *bcc = false;
    for (size_t i = 0; (p->flags & WR_PROP_HEADERS) && i < 2; i++) {
        if (!wr_table_get(p->headers, i == 0 ? "CC" : "BCC", &v))
            continue;
        arrays[narrays++] = v.v.s;
        *bcc = i == 1;
        for (wr_table_iter_init(&it, v.v.s); wr_array_next(&it, &v);)
            count += v.type == 'S';
    }
    if (count > INLINE_KEYS && (*keys = malloc(count * sizeof(**keys))) == NULL)
        return false;
    (*keys)[0] = m->routing_key;
    for (size_t i = 0; i < narrays; i++) {
        for (wr_table_iter_init(&it, arrays[i]); wr_array_next(&it, &v);) {
            if (v.type == 'S')
                (*keys)[(*n)++] = v.v.s;
        }
    }
    return true;
}

/* A copy of m, which has a BCC header, without it: the message consumers
 * see. NULL on ENOMEM. */
static wr_message_t *without_bcc(wr_message_t *m)
{
    wr_props_t p = *wr_message_props(m);
    wr_buf_t h = WR_BUF_INIT;
    wr_table_iter_t it;
    wr_message_t *out = NULL;
    wr_bytes_t key;
    wr_value_t v;

    /* The other fields are copied as they are on the wire. */
    wr_table_iter_init(&it, p.headers);
    for (const uint8_t *at = it.c.pos; wr_table_next(&it, &key, &v); at = it.c.pos) {
        if (!wr_bytes_eq_str(key, "BCC"))
            wr_buf_put(&h, at, (size_t)(it.c.pos - at));
    }
    if (wr_buf_ok(&h)) {
        p.headers = (wr_bytes_t){h.data, h.len};
        out = wr_message_with_props(m, &p);
    }
    wr_buf_free(&h);
    return out;
}

bool wr_vhost_publish(wr_vhost_t *vh, wr_exchange_t *x, wr_message_t *m, wr_dest_set_t *scratch,
                      wr_confirm_t *conf, size_t *routed, wr_message_t **sent)
{
    wr_bytes_t inline_keys[INLINE_KEYS], *keys;
    wr_message_t *out = NULL;
    size_t nkeys;
    bool ok = false, bcc;

    *routed = 0;
    if (!route_keys(m, inline_keys, &keys, &nkeys, &bcc) ||
        (out = bcc ? without_bcc(m) : wr_message_ref(m)) == NULL)
        goto done;
    for (size_t i = 0; x == vh->default_exchange && i < nkeys; i++) {
        if (wr_bytes_has_prefix(keys[i], WR_REPLY_TO_PREFIX))
            vh->env->reply_to(vh->env->reply_to_ud, keys[i], out);
    }
    wr_dest_set_clear(scratch);
    /* A transaction's exchange may have gone before the commit. */
    if (!wr_exchange_deleted(x) && !wr_exchange_route_keys(vh, x, keys, nkeys, out, scratch))
        goto done;
    for (size_t i = 0; i < scratch->count; i++) {
        if (scratch->items[i].kind == WR_DEST_QUEUE)
            publish_to(vh, scratch->items[i].ptr, out, conf, routed);
    }
    vh->stats.publish++;
    vh->stats.unroutable += *routed == 0;
    ok = true;
    if (sent != NULL) {
        *sent = out;
        out = NULL;
    }
done:
    if (keys != inline_keys)
        free(keys);
    wr_message_unref(out);
    return ok;
}

const wr_map_t *wr_vhost_exchanges(const wr_vhost_t *vh)
{
    return vh->exchanges;
}

const wr_map_t *wr_vhost_queues(const wr_vhost_t *vh)
{
    return vh->queues;
}

const wr_vhost_stats_t *wr_vhost_stats(const wr_vhost_t *vh)
{
    return &vh->stats;
}

void wr_vhost_conn_closed(wr_vhost_t *vh, uint64_t id)
{
    owner_t *ow = wr_map_get(vh->owners, owner_key(&id));

    /* Deleting the last queue frees ow, so test emptiness before that. */
    while (ow != NULL) {
        wr_queue_t *q = wr_queue_from_owner_link(ow->queues.next);
        bool last = ow->queues.next->next == &ow->queues;

        wr_vhost_queue_delete(vh, q);
        if (last)
            break;
    }
}
