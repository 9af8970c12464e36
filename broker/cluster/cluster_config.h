/* SPDX-License-Identifier: MIT */
/*
 * The "cluster" section of the configuration (docs/CLUSTERING.md): the
 * cluster's name, this node's name, the shared secret, where this node
 * accepts peer links and the seed members. Parsed and checked here; config.c
 * only hands the JSON over and keeps the result.
 */
#ifndef WR_BROKER_CLUSTER_CONFIG_H
#define WR_BROKER_CLUSTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

/* The shortest secret accepted, in bytes (after one trailing newline is stripped). */
#define WR_CLUSTER_SECRET_MIN 32
/* The longest: a secret file is read whole, so it is bounded. */
#define WR_CLUSTER_SECRET_MAX 4096

/* Room for the names this node learns at run time beyond its file (the Raft core's member limit). */
#define WR_CLUSTER_MAX_LEARNED 9

/* A member as this node's file lists it: where this node dials it. */
typedef struct {
    char *name;
    char *address; /* an IPv4 or IPv6 address or a host name; NULL: learned, never dialled */
    uint16_t port;
} wr_cluster_node_t;

typedef struct wr_cluster_config_s {
    char *name; /* the cluster_name */
    char *node; /* this node's name; nodes[self] is its entry */
    uint8_t *secret;
    size_t secret_len;
    char *listen_address;
    uint16_t listen_port;
    wr_cluster_node_t *nodes;
    size_t n_nodes;
    size_t self;
    bool tls; /* peer links over TLS with the "tls" section's certificate, key and CA */
    /* joins[i]: nodes[i] has "seed": false, so it is not a first member of a
     * new cluster but joins one later (warrenctl cluster join); NULL: none has. */
    bool *joins;
    size_t cap_nodes; /* room in nodes and joins for wr_cluster_config_learn; 0: none */
} wr_cluster_config_t;

/* Receives one problem: path ("cluster.nodes[1].port") and reason. */
typedef void (*wr_cluster_config_problem_fn)(void *ctx, const char *path, const char *reason);

/*
 * Parses the "cluster" value v and reads the secret file if it names one.
 * WR_OK with *out (the caller frees it); WR_ESYNTAX after reporting each
 * problem through problem (*out NULL); WR_ENOMEM.
 */
int wr_cluster_config_parse(const struct json_t *v, wr_cluster_config_problem_fn problem, void *ctx,
                            wr_cluster_config_t **out);

/* A node's Raft member id: CRC32C of its name, 0 mapped to 1 (the config refuses two names with one id). */
uint32_t wr_cluster_node_id(const char *name);

/*
 * Adds name (copied) to c's nodes as a member that joined through another
 * node: no address (this node never dials it, it dials this node), joins
 * true. Entries never move. WR_OK with *slot its index (added, or known
 * already); WR_EEXIST when another known name (this node's included) has
 * its Raft member id, *slot that one's index; WR_ETOOBIG when c has no room
 * left; WR_ENOMEM.
 */
int wr_cluster_config_learn(wr_cluster_config_t *c, const char *name, size_t *slot);

/* Frees c, wiping the secret. NULL is a no-op. */
void wr_cluster_config_free(wr_cluster_config_t *c);

#endif
