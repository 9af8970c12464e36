/* SPDX-License-Identifier: MIT */
/*
 * What the three files of the remote-queue service share (remote.c: the
 * service, its links and outboxes; remote_proxy.c: the proxy queue type;
 * remote_home.c: the home side). Only broker/cluster/remote*.c include it.
 */
#ifndef WR_BROKER_CLUSTER_REMOTE_INTERNAL_H
#define WR_BROKER_CLUSTER_REMOTE_INTERNAL_H

#include "broker/cluster/remote.h"
#include "broker/cluster/remote_wire.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/map.h"

struct wr_remote_s {
    wr_remote_deps_t d;
    wr_list_t proxies;     /* the proxies' links (remote_proxy.c) */
    wr_list_t outs;        /* an outbox per peer that ever needed one (remote.c) */
    wr_list_t homes;       /* consumers of other nodes on local queues (remote_home.c) */
    wr_list_t home_confs;  /* forwarded publishes awaiting a local confirm */
    wr_list_t home_gets;   /* proxies' gets of local queues that answer later (remote_home.c) */
    wr_map_t *confirms;    /* publish seq -> the proxy's pending confirm */
    wr_map_t *consumers;   /* proxy consumer id -> the proxy's consumer */
    wr_map_t *gets;        /* get request id -> the proxy's pending get */
    wr_map_t *home_by_key; /* node and consumer id -> home consumer */
    uint64_t next_seq, next_id, next_get;
    size_t buffered;  /* deliveries held by proxies for busy local consumers */
    uint64_t pending; /* bytes in every outbox */
    wr_buf_t scratch;
};

/* A u64 as a map key (its bytes; the map copies them). */
static inline wr_bytes_t wr_remote_key(const uint64_t *v)
{
    return (wr_bytes_t){(const uint8_t *)v, sizeof(*v)};
}

/*
 * Sends m to node: at once when nothing waits for that link, else (and
 * when the link is above its high mark) copied to node's outbox, flushed in
 * order as the link drains. WR_OK; WR_ENOENT when node's link is down;
 * WR_ENOMEM.
 */
int wr_remote_send(wr_remote_t *r, const char *node, const wr_remote_msg_t *m);
/* Bytes waiting in node's outbox. */
size_t wr_remote_backlog(const wr_remote_t *r, const char *node);

/* remote_proxy.c: a message for the proxy side; node went down / came up;
 * the service is going (every proxy fails and forgets r). */
void wr_remote_proxy_recv(wr_remote_t *r, const char *node, const wr_remote_msg_t *m);
void wr_remote_proxy_down(wr_remote_t *r, const char *node);
void wr_remote_proxy_up(wr_remote_t *r, const char *node);
void wr_remote_proxy_free_all(wr_remote_t *r);

/* remote_home.c: a message for the home side; node went down (its
 * consumers go, their deliveries are requeued); node's link drained; the
 * service is going; the home side's figures. */
void wr_remote_home_recv(wr_remote_t *r, const char *node, const wr_remote_msg_t *m);
void wr_remote_home_down(wr_remote_t *r, const char *node);
void wr_remote_home_writable(wr_remote_t *r, const char *node);
void wr_remote_home_free_all(wr_remote_t *r);
void wr_remote_home_stats(const wr_remote_t *r, wr_remote_stats_t *out);

#endif
