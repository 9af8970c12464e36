/* SPDX-License-Identifier: MIT */
/*
 * The event loop's priorities. Everything runs at WR_PRIO_DEFAULT
 * (libevent's default with WR_PRIO_LEVELS levels) except what should wait
 * until an iteration of the loop has nothing else to run. server.c creates
 * the loop with these levels.
 */
#ifndef WR_BROKER_LOOP_H
#define WR_BROKER_LOOP_H

#define WR_PRIO_LEVELS  3
#define WR_PRIO_DEFAULT 1
#define WR_PRIO_IDLE    2

#endif
