/* SPDX-License-Identifier: MIT */
/*
 * Intrusive circular doubly-linked list (nginx's ngx_queue_t idea): embed a
 * wr_list_t in the element, O(1) insert and remove with no allocation. An
 * element whose node is self-linked (after wr_list_init) is "not on a list".
 */
#ifndef WR_CORE_LIST_H
#define WR_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct wr_list_s {
    struct wr_list_s *prev;
    struct wr_list_s *next;
} wr_list_t;

#define wr_list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

#define wr_list_foreach_safe(pos, tmp, head)                                                                 \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

static inline void wr_list_init(wr_list_t *l)
{
    l->prev = l->next = l;
}

static inline bool wr_list_empty(const wr_list_t *l)
{
    return l->next == l;
}

static inline void wr_list_insert_tail(wr_list_t *head, wr_list_t *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Unlinks n and leaves it self-linked, so removing twice is harmless. */
static inline void wr_list_remove(wr_list_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#endif
