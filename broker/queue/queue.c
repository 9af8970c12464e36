/* SPDX-License-Identifier: MIT */
/*
 * What every queue type shares: the registry of types, the generic head,
 * consumers, and the scheduler that runs each runnable queue's dispatch once
 * per loop iteration. The types themselves live in their own files
 * (classic.c).
 */
#include "broker/queue/queue.h"

#include <stdlib.h>
#include <string.h>

#include "broker/queue/classic.h"

static const wr_queue_type_t *const types[] = {&wr_classic_queue_type, NULL};

const wr_queue_type_t *wr_queue_type_find(wr_bytes_t name)
{
    for (size_t i = 0; types[i] != NULL; i++) {
        if (wr_bytes_eq_str(name, types[i]->name))
            return types[i];
    }
    return NULL;
}

const wr_queue_type_t *wr_queue_type_default(void)
{
    return &wr_classic_queue_type;
}

const wr_queue_type_t *const *wr_queue_types(void)
{
    return types;
}

/* can_take only looks (the owner's state and flow), so asking it through a
 * const view of the consumer is safe. */
static bool window_open(const wr_consumer_t *c)
{
    return (c->no_ack || c->prefetch == 0 || c->unacked < c->prefetch) &&
           c->ops->can_take((wr_consumer_t *)c);
}

static void any_open(void *ud, const wr_consumer_t *c)
{
    bool *open = ud;

    *open = *open || window_open(c);
}

bool wr_queue_can_deliver(const wr_queue_t *q)
{
    const wr_consumer_t *active = wr_queue_active_consumer(q);
    bool open = false;

    if (q->opts.single_active)
        return active != NULL && window_open(active);
    wr_queue_foreach_consumer(q, any_open, &open);
    return open;
}

void wr_queue_limits_none(wr_queue_limits_t *l)
{
    *l = (wr_queue_limits_t){-1, -1, -1, -1, WR_OVERFLOW_DROP_HEAD, -1, false, -1, -1, WR_DL_AT_MOST_ONCE};
}

void wr_queue_head_init(wr_queue_t *q, const wr_queue_type_t *t, wr_bytes_t name, const wr_queue_opts_t *o,
                        wr_queue_sched_t *s, uint8_t *room)
{
    memset(q, 0, sizeof(*q));
    q->type = t;
    q->refs = 1;
    q->opts = *o;
    q->sched = s;
    if (name.len > 0)
        memcpy(room, name.data, name.len);
    q->name = (wr_bytes_t){room, name.len};
    if (o->args.len > 0)
        memcpy(room + name.len, o->args.data, o->args.len);
    q->opts.args = (wr_bytes_t){room + name.len, o->args.len};
    wr_queue_limits_none(&q->limits);
    wr_list_init(&q->run_node);
    wr_list_init(&q->sources);
    wr_list_init(&q->owner_link);
}

/* ---------------------------------------------------------------- scheduler */

void wr_queue_sched_init(wr_queue_sched_t *s, void (*wake)(void *ud), void *ud)
{
    wr_list_init(&s->runnable);
    s->running = false;
    s->wake = wake;
    s->ud = ud;
    s->hooks = NULL;
    s->behind = 0;
}

void wr_queue_sched_add(wr_queue_t *q)
{
    wr_queue_sched_t *s = q->sched;
    bool was_idle = wr_list_empty(&s->runnable);

    /* What arrives from here to the run is what the run must keep pace with. */
    q->publish_run = q->stats.publish;
    wr_list_insert_tail(&s->runnable, &q->run_node);
    if (was_idle && !s->running && s->wake != NULL)
        s->wake(s->ud);
}

bool wr_queue_sched_run(wr_queue_sched_t *s, size_t batch)
{
    wr_list_t now;

    wr_list_init(&now);
    if (!wr_list_empty(&s->runnable)) {
        /* Take the current list whole: queues woken while this runs wait for
         * the next iteration, so one busy queue cannot starve the loop. */
        now.next = s->runnable.next;
        now.prev = s->runnable.prev;
        now.next->prev = &now;
        now.prev->next = &now;
        wr_list_init(&s->runnable);
    }
    s->running = true;
    while (!wr_list_empty(&now)) {
        wr_queue_t *q = wr_list_entry(now.next, wr_queue_t, run_node);

        uint64_t arrived = q->stats.publish - q->publish_run;

        wr_list_remove(&q->run_node);
        wr_queue_ref(q);
        q->publish_run = q->stats.publish;
        if (q->type->dispatch(q, batch + (size_t)arrived) && !q->closed && wr_list_empty(&q->run_node))
            wr_list_insert_tail(&s->runnable, &q->run_node);
        wr_queue_unref(q);
    }
    s->running = false;
    return !wr_list_empty(&s->runnable);
}

/* ---------------------------------------------------------------- consumers */

wr_consumer_t *wr_consumer_new(wr_bytes_t tag, wr_bytes_t args, const wr_consumer_ops_t *ops, void *owner)
{
    wr_consumer_t *c = calloc(1, sizeof(*c) + tag.len + args.len);
    uint8_t *p;

    if (c == NULL)
        return NULL;
    p = (uint8_t *)(c + 1);
    if (tag.len > 0)
        memcpy(p, tag.data, tag.len);
    if (args.len > 0)
        memcpy(p + tag.len, args.data, args.len);
    c->tag = (wr_bytes_t){p, tag.len};
    c->args = (wr_bytes_t){p + tag.len, args.len};
    c->ops = ops;
    c->owner = owner;
    c->refs = 1;
    wr_list_init(&c->qnode);
    wr_list_init(&c->anode);
    return c;
}

void wr_consumer_unref(wr_consumer_t *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    free(c);
}
