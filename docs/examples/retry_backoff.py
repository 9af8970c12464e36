#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Retry with growing delays, built from dead-letter exchanges only.

A job that fails is rejected (requeue=false); its queue's dead-letter
exchange sends it to a delay queue whose x-message-ttl holds it back, and
whose own dead-letter exchange returns it to the work exchange when it
expires. Each delay queue hands the job back under a new routing key, which
chooses the next (longer) delay queue if it fails again. The worker reads
how often the job was retried from the x-death header. docs/QUEUES.md
explains the pattern.

    work exchange --job, job.r1, job.r2...--> work queue
        (reject) --DLX--> retry exchange --job--> delay.1 (TTL d1)
                                         --job.r1--> delay.2 (TTL d2) ...
        delay.N (expired) --DLX, routing key job.rN--> work exchange

Usage: retry_backoff.py [HOST:PORT] [--delays MS,MS,...]
The broker address defaults to $AMQP_ADDR, then 127.0.0.1:5672 (user and
password guest). The job fails until it has been retried once per delay,
then succeeds. A JSON report goes to stdout: each attempt with its retry
count and routing key, the delays between attempts, and the final x-death.
"""
import json
import os
import sys
import time
import uuid

import pika


def topology(ch, prefix, delays):
    """Declares the exchanges and queues; returns (work exchange, work queue)."""
    work_x, retry_x, work_q = prefix + ".work", prefix + ".retry", prefix + ".jobs"
    ch.exchange_declare(work_x, "direct")
    ch.exchange_declare(retry_x, "direct")
    ch.queue_declare(work_q, arguments={"x-dead-letter-exchange": retry_x})
    keys = ["job"] + ["job.r%d" % (i + 1) for i in range(len(delays))]
    for k in keys:
        ch.queue_bind(work_q, work_x, routing_key=k)
    for i, ms in enumerate(delays):
        delay_q = "%s.delay.%d" % (prefix, i + 1)
        ch.queue_declare(delay_q, arguments={"x-message-ttl": ms, "x-dead-letter-exchange": work_x,
                                             "x-dead-letter-routing-key": keys[i + 1]})
        ch.queue_bind(delay_q, retry_x, routing_key=keys[i])
    return work_x, work_q


def retries(props, work_q):
    """How often the job has been rejected from the work queue so far."""
    for death in (props.headers or {}).get("x-death", []):
        if death.get("queue") == work_q and death.get("reason") == "rejected":
            return int(death["count"])
    return 0


def run(addr, delays):
    host, _, port = addr.rpartition(":")
    params = pika.ConnectionParameters(host=host or "127.0.0.1", port=int(port),
                                       credentials=pika.PlainCredentials("guest", "guest"))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    prefix = "retry-demo-" + uuid.uuid4().hex[:8]
    work_x, work_q = topology(ch, prefix, delays)
    attempts = []
    final = {}

    def on_job(ch, method, props, body):
        n = retries(props, work_q)
        attempts.append({"retries": n, "routing_key": method.routing_key,
                         "at_ms": time.monotonic() * 1000.0})
        if n < len(delays):
            # The job failed: let the dead-letter exchange schedule a retry.
            ch.basic_reject(method.delivery_tag, requeue=False)
            return
        final["x-death"] = [{k: (str(v) if k == "time" else v) for k, v in d.items()}
                            for d in props.headers["x-death"]]
        ch.basic_ack(method.delivery_tag)
        ch.stop_consuming()

    ch.basic_consume(work_q, on_job)
    ch.basic_publish(work_x, "job", b"resize image 42")
    deadline = time.monotonic() + 10 + sum(delays) / 1000.0
    while "x-death" not in final:
        if time.monotonic() > deadline:
            raise SystemExit("the job did not come back in time: %r" % attempts)
        conn.process_data_events(time_limit=0.1)
    for i in range(len(delays)):
        ch.queue_delete("%s.delay.%d" % (prefix, i + 1))
    ch.queue_delete(work_q)
    ch.exchange_delete(work_x)
    ch.exchange_delete(prefix + ".retry")
    conn.close()
    gaps = [round(b["at_ms"] - a["at_ms"], 1) for a, b in zip(attempts, attempts[1:])]
    for a in attempts:
        del a["at_ms"]
    return {"prefix": prefix, "attempts": attempts, "delays_ms": gaps, "x-death": final["x-death"]}


def main(argv):
    addr = os.environ.get("AMQP_ADDR", "127.0.0.1:5672")
    delays = [100, 400, 1600]
    args = list(argv[1:])
    while args:
        a = args.pop(0)
        if a == "--delays" and args:
            delays = [int(x) for x in args.pop(0).split(",")]
        else:
            addr = a
    json.dump(run(addr, delays), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
