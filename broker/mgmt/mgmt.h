/* SPDX-License-Identifier: MIT */
/*
 * The operations side of the broker: the RabbitMQ-compatible management HTTP
 * API (evhttp, JSON, basic auth against the broker's users), the Prometheus
 * endpoint and the statistics sampler both read. Started by the server after
 * its AMQP listeners; each part only when the configuration asks for it.
 */
#ifndef WR_BROKER_MGMT_H
#define WR_BROKER_MGMT_H

#include "broker/mgmt/mgmt_env.h"

typedef struct wr_mgmt_s wr_mgmt_t;

/*
 * Binds the configured HTTP listeners and starts sampling statistics.
 * *out is NULL when neither management nor prometheus is configured. WR_OK,
 * or WR_EIO / WR_ENOMEM (logged) with *out NULL.
 */
int wr_mgmt_start(const wr_mgmt_env_t *env, wr_mgmt_t **out);
/* Closes the listeners and their open HTTP connections. Call before the
 * vhosts are freed. NULL is a no-op. */
void wr_mgmt_free(wr_mgmt_t *m);

#endif
