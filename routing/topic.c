/* SPDX-License-Identifier: MIT */
/*
 * The topic exchange type, matching RabbitMQ's rabbit_exchange_type_topic: a
 * key splits on '.' into words ("" is no words, "a." is "a" and ""), '*'
 * matches one word, '#' zero or more. Bindings hang off the trie node their
 * pattern ends at; unbinding prunes nodes left with no bindings and no children.
 */
#include "routing/topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

typedef struct topic_node_s {
    struct topic_node_s *parent;
    struct topic_node_s *star; /* child for the word '*' */
    struct topic_node_s *hash; /* child for the word '#' */
    wr_list_t bindings;        /* bindings whose pattern ends here, via type_link */
    size_t nchild;             /* children of every kind */
    size_t eklen;              /* length of ekey; 0 for the root and wildcard children */
    uint8_t ekey[];            /* this node's key in the edge map, kept so pruning never allocates */
} topic_node_t;

typedef struct {
    topic_node_t *root;
    wr_map_t *edges; /* (parent node, literal word) -> child node */
    size_t nodes;    /* below the root */
} topic_trie_t;

/* ---- words -------------------------------------------------------------- */

typedef struct {
    wr_bytes_t key;
    size_t pos;
    bool done;
} word_iter_t;

static void words_init(word_iter_t *it, wr_bytes_t key)
{
    it->key = key;
    it->pos = 0;
    it->done = key.len == 0; /* RabbitMQ: the empty key has no words at all */
}

static bool words_next(word_iter_t *it, wr_bytes_t *w)
{
    const uint8_t *start, *dot;

    if (it->done)
        return false;
    start = it->key.data + it->pos;
    dot = memchr(start, '.', it->key.len - it->pos);
    if (dot == NULL) {
        *w = (wr_bytes_t){start, it->key.len - it->pos};
        it->done = true;
    } else {
        *w = (wr_bytes_t){start, (size_t)(dot - start)};
        it->pos += w->len + 1;
    }
    return true;
}

/* ---- trie maintenance --------------------------------------------------- */

/* Where a wildcard child hangs, or NULL for a literal word. */
static topic_node_t **wild_slot(topic_node_t *n, wr_bytes_t w)
{
    if (wr_bytes_eq_str(w, "*"))
        return &n->star;
    if (wr_bytes_eq_str(w, "#"))
        return &n->hash;
    return NULL;
}

/* A node with no children, no bindings, and an edge key of eklen bytes. */
static topic_node_t *node_new(topic_node_t *parent, size_t eklen)
{
    topic_node_t *n = calloc(1, sizeof(*n) + eklen);

    if (n == NULL)
        return NULL;
    n->parent = parent;
    n->eklen = eklen;
    wr_list_init(&n->bindings);
    return n;
}

/* The child of n for word w, created if absent; NULL when out of memory. */
static topic_node_t *child_get(topic_trie_t *t, topic_node_t *n, wr_bytes_t w, wr_pkey_t *k)
{
    topic_node_t **slot = wild_slot(n, w);
    topic_node_t *c;
    wr_bytes_t ekey = {NULL, 0};

    if (slot != NULL) {
        if (*slot != NULL)
            return *slot;
    } else {
        ekey = wr_pkey_key(k, n, 0, w);
        c = wr_map_get(t->edges, ekey);
        if (c != NULL)
            return c;
    }
    c = node_new(n, ekey.len);
    if (c == NULL)
        return NULL;
    if (slot != NULL) {
        *slot = c;
    } else {
        memcpy(c->ekey, ekey.data, ekey.len);
        if (wr_map_put(t->edges, ekey, c) != WR_OK) {
            free(c);
            return NULL;
        }
    }
    n->nchild++;
    t->nodes++;
    return c;
}

/* Frees n and its ancestors for as long as they hold nothing. */
static void prune(topic_trie_t *t, topic_node_t *n)
{
    while (n != t->root && n->nchild == 0 && wr_list_empty(&n->bindings)) {
        topic_node_t *p = n->parent;
        if (p->star == n)
            p->star = NULL;
        else if (p->hash == n)
            p->hash = NULL;
        else
            wr_map_del(t->edges, (wr_bytes_t){n->ekey, n->eklen});
        p->nchild--;
        t->nodes--;
        free(n);
        n = p;
    }
}

static int topic_init(wr_router_t *r)
{
    topic_trie_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return WR_ENOMEM;
    t->root = node_new(NULL, 0);
    t->edges = wr_map_new();
    if (t->root == NULL || t->edges == NULL)
        goto err;
    r->state = t;
    return WR_OK;
err:
    free(t->root);
    wr_map_free(t->edges);
    free(t);
    return WR_ENOMEM;
}

static void topic_fini(wr_router_t *r)
{
    topic_trie_t *t = r->state;

    /* The router removed every binding first, so pruning left only the root. */
    free(t->root);
    wr_map_free(t->edges);
    free(t);
}

static int topic_add(wr_router_t *r, wr_binding_t *b)
{
    topic_trie_t *t = r->state;
    topic_node_t *n = t->root;
    word_iter_t it;
    wr_bytes_t w;
    wr_pkey_t k;

    if (!wr_pkey_init(&k, b->key.len))
        return WR_ENOMEM;
    words_init(&it, b->key);
    while (words_next(&it, &w)) {
        topic_node_t *c = child_get(t, n, w, &k);
        if (c == NULL) {
            prune(t, n);
            wr_pkey_done(&k);
            return WR_ENOMEM;
        }
        n = c;
    }
    wr_list_insert_tail(&n->bindings, &b->type_link);
    b->type_data = n;
    wr_pkey_done(&k);
    return WR_OK;
}

static void topic_remove(wr_router_t *r, wr_binding_t *b)
{
    wr_list_remove(&b->type_link);
    prune(r->state, b->type_data);
}

size_t wr_topic_node_count(const wr_router_t *r)
{
    const topic_trie_t *t = r->state;

    return t->nodes;
}

/* ---- routing ------------------------------------------------------------ */

/*
 * Walking the trie follows RabbitMQ's trie_match: at each node try the literal
 * word, '*', and '#' (which swallows every possible number of words). With
 * several '#' in a pattern the same ('#' node, start word) pair is reached by
 * many paths, so the walk records, per '#' node, the lowest start already
 * expanded: each (node, position) is then visited at most once, and a pattern
 * like "#.#.#.#" cannot make one publish cost words^4.
 */
typedef struct {
    const topic_node_t *node;
    size_t from;
} topic_memo_t;

typedef struct {
    const wr_bytes_t *words;
    size_t nwords;
    const topic_trie_t *t;
    wr_dest_set_t *out;
    wr_pkey_t k;
    topic_memo_t *memo; /* open addressing on node, memo_small until it outgrows it */
    size_t memo_cap;
    size_t memo_count;
    bool ok;
    topic_memo_t memo_small[16];
} topic_walk_t;

static size_t node_hash(const topic_node_t *n)
{
    return (size_t)wr_hash_mix((uint64_t)(uintptr_t)n);
}

static topic_memo_t *memo_slot(topic_memo_t *memo, size_t cap, const topic_node_t *n)
{
    size_t i = node_hash(n) & (cap - 1);

    while (memo[i].node != NULL && memo[i].node != n)
        i = (i + 1) & (cap - 1);
    return &memo[i];
}

static bool memo_grow(topic_walk_t *w)
{
    size_t cap = w->memo_cap * 2;
    topic_memo_t *memo = calloc(cap, sizeof(*memo));

    if (memo == NULL)
        return false;
    for (size_t i = 0; i < w->memo_cap; i++)
        if (w->memo[i].node != NULL)
            *memo_slot(memo, cap, w->memo[i].node) = w->memo[i];
    if (w->memo != w->memo_small)
        free(w->memo);
    w->memo = memo;
    w->memo_cap = cap;
    return true;
}

/* The memo entry for '#' node n, created with nothing expanded; NULL when out of memory. */
static topic_memo_t *memo_get(topic_walk_t *w, const topic_node_t *n)
{
    topic_memo_t *m;

    if ((w->memo_count + 1) * 2 > w->memo_cap && !memo_grow(w))
        return NULL;
    m = memo_slot(w->memo, w->memo_cap, n);
    if (m->node == NULL) {
        m->node = n;
        m->from = SIZE_MAX;
        w->memo_count++;
    }
    return m;
}

static void walk_match(topic_walk_t *w, const topic_node_t *n, size_t pos);

/* '#' node h matches words [pos, pos+i) for every i: continue from each. */
static void walk_skip(topic_walk_t *w, const topic_node_t *h, size_t pos)
{
    topic_memo_t *m = memo_get(w, h);
    size_t end;

    if (m == NULL) {
        w->ok = false;
        return;
    }
    if (pos >= m->from)
        return;
    end = m->from < w->nwords + 1 ? m->from : w->nwords + 1;
    m->from = pos;
    for (size_t q = pos; q < end && w->ok; q++)
        walk_match(w, h, q);
}

static void walk_match(topic_walk_t *w, const topic_node_t *n, size_t pos)
{
    size_t nliteral = n->nchild - (n->star != NULL) - (n->hash != NULL);

    if (pos == w->nwords) {
        const wr_list_t *it;
        for (it = n->bindings.next; it != &n->bindings; it = it->next) {
            if (!wr_dest_set_add(w->out, wr_list_entry(it, wr_binding_t, type_link)->dest)) {
                w->ok = false;
                return;
            }
        }
        if (n->hash != NULL)
            walk_skip(w, n->hash, pos);
        return;
    }
    if (nliteral > 0) {
        const topic_node_t *c = wr_map_get(w->t->edges, wr_pkey_key(&w->k, n, 0, w->words[pos]));
        if (c != NULL)
            walk_match(w, c, pos + 1);
    }
    if (n->star != NULL && w->ok)
        walk_match(w, n->star, pos + 1);
    if (n->hash != NULL && w->ok)
        walk_skip(w, n->hash, pos);
}

static bool topic_route(const wr_router_t *r, wr_bytes_t key, wr_bytes_t headers, wr_dest_set_t *out)
{
    wr_bytes_t small[64], *words = small;
    topic_walk_t w;
    word_iter_t it;
    size_t n = 0;

    if (key.len > 0) {
        n = 1;
        for (size_t i = 0; i < key.len; i++)
            n += key.data[i] == '.';
    }
    if (n > sizeof(small) / sizeof(small[0])) {
        words = malloc(n * sizeof(*words));
        if (words == NULL)
            return false;
    }
    if (!wr_pkey_init(&w.k, key.len)) {
        if (words != small)
            free(words);
        return false;
    }
    words_init(&it, key);
    for (size_t i = 0; i < n; i++)
        words_next(&it, &words[i]);
    w.words = words;
    w.nwords = n;
    w.t = r->state;
    w.out = out;
    w.memo = w.memo_small;
    w.memo_cap = sizeof(w.memo_small) / sizeof(w.memo_small[0]);
    w.memo_count = 0;
    w.ok = true;
    memset(w.memo_small, 0, sizeof(w.memo_small));
    walk_match(&w, w.t->root, 0);
    if (w.memo != w.memo_small)
        free(w.memo);
    wr_pkey_done(&w.k);
    if (words != small)
        free(words);
    return w.ok;
}

const wr_router_type_t wr_topic_type = {
    .name = "topic",
    .init = topic_init,
    .fini = topic_fini,
    .add = topic_add,
    .remove = topic_remove,
    .route = topic_route,
};
