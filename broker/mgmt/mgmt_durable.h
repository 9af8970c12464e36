/* SPDX-License-Identifier: MIT */
/*
 * A management API reply held until the definitions changes made so far are
 * durable, as AMQP replies are (broker/amqp/conn.c): a client told 201 or 204
 * finds its vhost, user, permission, policy, exchange, queue or binding again
 * after a crash.
 */
#ifndef WR_BROKER_MGMT_DURABLE_H
#define WR_BROKER_MGMT_DURABLE_H

#include <event2/buffer.h>
#include <event2/http.h>

#include "broker/mgmt/mgmt_http.h"
#include "broker/node/durable.h"

/*
 * Sends req's reply (status, reason: a string constant, body: its contents
 * are taken; NULL for none) at once when every change recorded in d is
 * durable, when d is NULL or http is (no connection to watch); otherwise
 * once they are, or never if req's connection closes first.
 */
void wr_mgmt_send(wr_mgmt_http_t *http, wr_durable_t *d, struct evhttp_request *req, int status,
                  const char *reason, struct evbuffer *body);

#endif
