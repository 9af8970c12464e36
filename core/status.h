/* SPDX-License-Identifier: MIT */
/*
 * One status type for the whole code base (nginx style): WR_OK is zero,
 * failures are negative, WR_AGAIN means "not enough input yet". AMQP reply
 * codes are data (see protocol/error.h), never return codes.
 */
#ifndef WR_CORE_STATUS_H
#define WR_CORE_STATUS_H

enum {
    WR_OK = 0,
    WR_AGAIN = -1,      /* need more input; try again later */
    WR_ENOMEM = -2,     /* allocation failed */
    WR_ESYNTAX = -3,    /* malformed input (bad length, bad tag, trailing bytes) */
    WR_ETOOBIG = -4,    /* input exceeds a configured or protocol limit */
    WR_EUNKNOWN = -5,   /* unknown class/method/type */
    WR_EEXIST = -6,     /* already present */
    WR_ENOENT = -7,     /* not present */
    WR_EDEPTH = -8,     /* nesting deeper than allowed */
    WR_EIO = -9,        /* system call failed; errno says why */
    WR_EFULL = -10,     /* a limit refuses it (a full queue with x-overflow reject-publish) */
    WR_ETIMEDOUT = -11, /* no outcome within the time allowed (it may still happen) */
};

#endif
