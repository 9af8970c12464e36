/* SPDX-License-Identifier: MIT */
/*
 * The node's side of queue storage: the classic type's shared log state
 * (queue_log.c's wr_qlog_ctx) behind the calls the node makes, and the
 * naming of queue logs in the store.
 */
#include "broker/queue/queue_store.h"

#include <stdlib.h>
#include <string.h>

#include "broker/queue/queue_log.h"

wr_queue_store_t *wr_queue_store_new(wr_store_t *store, uint64_t memory_budget, void (*touch)(void *ud),
                                     void *ud)
{
    wr_queue_store_t *s = malloc(sizeof(*s));

    if (s != NULL)
        wr_qlog_ctx_init(s, store, memory_budget, touch, ud);
    return s;
}

void wr_queue_store_free(wr_queue_store_t *s)
{
    free(s);
}

void wr_queue_store_flush(wr_queue_store_t *s)
{
    wr_qlog_ctx_flush(s);
}

void wr_queue_store_set_budget(wr_queue_store_t *s, uint64_t memory_budget)
{
    s->memory_budget = memory_budget;
}

bool wr_queue_store_has_doomed(const wr_queue_store_t *s)
{
    return wr_qlog_ctx_has_doomed(s);
}

void wr_queue_store_bury(wr_queue_store_t *s)
{
    wr_qlog_ctx_bury(s);
}

/* A queue's log is "q" or "t" and 16 hex digits (queue_log.c names them). */
bool wr_queue_store_claim(wr_queue_store_t *s, const char *name)
{
    char *end;
    uint64_t id;

    if ((name[0] != 'q' && name[0] != 't') || strlen(name) != 17)
        return false;
    id = strtoull(name + 1, &end, 16);
    if (*end != '\0')
        return false;
    /* The upper half is the metadata group's (logs named by Raft index). */
    if (id >= s->next_id && id < UINT64_C(1) << 63)
        s->next_id = id + 1;
    return true;
}

void wr_queue_store_set_stored(wr_queue_store_t *s, const wr_map_t *names)
{
    s->stored = names;
}
