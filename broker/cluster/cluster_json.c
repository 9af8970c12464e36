/* SPDX-License-Identifier: MIT */
/*
 * /api/nodes' view of the peer links (cluster_json.h). RabbitMQ lists the
 * distribution links of a node under "cluster_links" with their addresses
 * and byte counts, and every cluster member as a node with "running".
 */
#include "broker/cluster/cluster_json.h"

#include <jansson.h>

static json_t *link_json(const wr_peer_status_t *st)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:i, s:I, s:I, s:{s:I, s:I}}", "name", st->name, "peer_addr",
                     st->peer_addr, "peer_port", st->peer_port, "sock_addr", st->sock_addr, "sock_port",
                     st->sock_port, "send_bytes", (json_int_t)st->send_bytes, "recv_bytes",
                     (json_int_t)st->recv_bytes, "stats", "send_bytes", (json_int_t)st->send_bytes,
                     "recv_bytes", (json_int_t)st->recv_bytes);
}

json_t *wr_cluster_json_links(const wr_peer_links_t *l)
{
    json_t *arr = json_array();
    wr_peer_status_t st;

    for (size_t i = 0; arr && i < wr_peer_count(l); i++) {
        wr_peer_status(l, i, &st);
        if (st.up && json_array_append_new(arr, link_json(&st)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *wr_cluster_json_node(const wr_peer_links_t *l, size_t i)
{
    wr_peer_status_t st;

    wr_peer_status(l, i, &st);
    return json_pack("{s:s, s:s, s:b}", "name", st.name, "type", "disc", "running", st.up);
}
