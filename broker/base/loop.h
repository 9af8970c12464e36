/* SPDX-License-Identifier: MIT */
/*
 * The event loop's priorities. Everything runs at WR_PRIO_DEFAULT
 * (libevent's default with WR_PRIO_LEVELS levels) except what should wait:
 * reading a connection that publishes into a queue whose consumers are far
 * behind (WR_PRIO_BEHIND: after the acks and deliveries that would let them
 * catch up), and what waits until an iteration of the loop has nothing else
 * to run (WR_PRIO_IDLE). server.c creates the loop with these levels.
 */
#ifndef WR_BROKER_LOOP_H
#define WR_BROKER_LOOP_H

#define WR_PRIO_LEVELS  5
#define WR_PRIO_DEFAULT 2
#define WR_PRIO_BEHIND  3
#define WR_PRIO_IDLE    4

#endif
