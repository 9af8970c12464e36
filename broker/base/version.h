/* SPDX-License-Identifier: MIT */
/*
 * The broker's version, as connection.start's server properties, the
 * management API and the metrics show it.
 */
#ifndef WR_BROKER_VERSION_H
#define WR_BROKER_VERSION_H

#define WR_VERSION "0.1.0"

#endif
