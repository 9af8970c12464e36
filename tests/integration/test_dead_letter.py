# SPDX-License-Identifier: MIT
# Dead-lettering (issue #7): reject/nack without requeue (reason rejected),
# x-dead-letter-exchange and -routing-key, the x-death header and the
# x-first-death-* headers exactly as RabbitMQ 3.10 builds them (entries per
# queue and reason, counted; the first entry in insertion order, later ones
# key-sorted; headers key-sorted), cycles dropped unless a client rejected on
# the way, a missing DLX, and x-delivery-limit (warren only: RabbitMQ 3.10
# has it on quorum queues only). Expired and maxlen deaths are in
# test_ttl.py and test_queue_length.py.
import datetime

import pika
import pytest

import conftest
from helpers import channel_error, get_one, queue_counts, wait_queue_count

warren_only = pytest.mark.skipif(conftest._external() is not None,
                                 reason="warren only: RabbitMQ 3.10 classic queues have no x-delivery-limit")

# The keys of an x-death entry as RabbitMQ writes the first one (insertion
# order) and every later new or updated one (sorted).
FIRST_ORDER = ["count", "reason", "queue", "time", "exchange", "routing-keys"]
SORTED_ORDER = ["count", "exchange", "queue", "reason", "routing-keys", "time"]


# RabbitMQ 3.13's x-last-death-* headers, which warren adds and 3.10 (the
# reference these tests also run against) does not.
LAST_DEATH = [] if conftest._external() is not None else \
    ["x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"]


def check_last_death(p, reason, queue, exchange):
    if LAST_DEATH:
        assert (p.headers["x-last-death-reason"], p.headers["x-last-death-queue"],
                p.headers["x-last-death-exchange"]) == (reason, queue, exchange)


def check_entry(e, count, reason, queue, exchange, keys, order, original_expiration=None):
    """One x-death entry: every field exact except time (a timestamp close
    to now), and the key order RabbitMQ leaves."""
    want = list(order)
    if original_expiration is not None:
        want.insert(want.index("routing-keys") + 1 if order is FIRST_ORDER else 2, "original-expiration")
    assert list(e.keys()) == want, e
    assert isinstance(e["count"], int) and e["count"] == count
    assert e["reason"] == reason
    assert e["queue"] == queue
    assert e["exchange"] == exchange
    assert e["routing-keys"] == keys
    assert isinstance(e["time"], datetime.datetime)
    assert abs((e["time"] - datetime.datetime.utcnow()).total_seconds()) < 120
    if original_expiration is not None:
        assert e["original-expiration"] == original_expiration


def declare_dl(ch, queue, dlx="", rk=None, **extra):
    args = {"x-dead-letter-exchange": dlx}
    if rk is not None:
        args["x-dead-letter-routing-key"] = rk
    args.update(extra)
    ch.queue_declare(queue, arguments=args)


def cleanup(ch, *queues):
    for q in queues:
        ch.queue_delete(q)


def test_reject_dead_letters_with_x_death(ch, name):
    src, dlq = name("dl-src"), name("dl-q")
    ch.queue_declare(dlq)
    declare_dl(ch, src, rk=dlq)
    ch.queue_bind(src, "amq.direct", routing_key=src)
    props = pika.BasicProperties(content_type="text/plain", headers={"zz": 1, "aa": "s"}, priority=3,
                                 correlation_id="c1", expiration="60000", delivery_mode=1)
    ch.basic_publish("amq.direct", src, b"body-1", props)
    m, _, _ = get_one(ch, src)
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, p, body = get_one(ch, dlq)
    assert body == b"body-1"
    assert m.exchange == "" and m.routing_key == dlq and not m.redelivered
    # Every property but expiration survives; headers come back key-sorted.
    assert p.content_type == "text/plain" and p.priority == 3 and p.correlation_id == "c1"
    assert p.delivery_mode == 1 and p.expiration is None
    assert list(p.headers.keys()) == ["aa", "x-death", "x-first-death-exchange", "x-first-death-queue",
                                      "x-first-death-reason"] + LAST_DEATH + ["zz"]
    check_last_death(p, "rejected", src, "amq.direct")
    assert p.headers["x-first-death-reason"] == "rejected"
    assert p.headers["x-first-death-queue"] == src
    assert p.headers["x-first-death-exchange"] == "amq.direct"
    assert len(p.headers["x-death"]) == 1
    check_entry(p.headers["x-death"][0], 1, "rejected", src, "amq.direct", [src], FIRST_ORDER,
                original_expiration="60000")
    ch.basic_ack(m.delivery_tag)
    cleanup(ch, src, dlq)


def test_nack_multiple_dead_letters_each(ch, name):
    src, dlq = name("dl-src"), name("dl-q")
    ch.queue_declare(dlq)
    declare_dl(ch, src, rk=dlq)
    for i in range(3):
        ch.basic_publish("", src, b"m%d" % i)
    tags = [get_one(ch, src)[0].delivery_tag for _ in range(3)]
    ch.basic_nack(tags[-1], multiple=True, requeue=False)
    got = [get_one(ch, dlq) for _ in range(3)]
    assert [b for _, _, b in got] == [b"m0", b"m1", b"m2"]
    for _, p, _ in got:
        check_entry(p.headers["x-death"][0], 1, "rejected", src, "", [src], FIRST_ORDER)
    # Requeued ones are not dead-lettered.
    ch.basic_publish("", src, b"again")
    m, _, _ = get_one(ch, src)
    ch.basic_nack(m.delivery_tag, requeue=True)
    wait_queue_count(ch, src, 1)
    assert queue_counts(ch, dlq)[0] == 0
    cleanup(ch, src, dlq)


def test_routing_keys_and_cc(ch, name):
    """Without x-dead-letter-routing-key the copy keeps its routing keys
    (publish key and CC) and the CC header; with one, CC is removed."""
    x = name("dl-x")
    keep, rk, cc, fixed = name("dl-keep"), name("dl-rk"), name("dl-cc"), name("dl-fixed")
    ch.exchange_declare(x, "direct")
    for q in (rk, cc, fixed):
        ch.queue_declare(q)
    ch.queue_bind(rk, x, routing_key="k1")
    ch.queue_bind(cc, x, routing_key="k2")
    ch.queue_bind(fixed, x, routing_key="fixed")
    declare_dl(ch, keep, dlx=x)
    src2 = name("dl-src2")
    declare_dl(ch, src2, dlx=x, rk="fixed")
    ch.queue_bind(keep, "amq.direct", routing_key="k1")
    ch.queue_bind(src2, "amq.direct", routing_key="k1")
    ch.basic_publish("amq.direct", "k1", b"cc", pika.BasicProperties(headers={"CC": ["k2"]}))
    for q in (keep, src2):
        m, _, _ = get_one(ch, q)
        ch.basic_reject(m.delivery_tag, requeue=False)
    # keep -> x with k1 and k2: rk and cc; src2 -> x with "fixed" only.
    got = {}
    for q in (rk, cc):
        m, p, _ = get_one(ch, q)
        got[q] = p
        assert m.routing_key == "k1" and m.exchange == x
    fixed_msgs = [get_one(ch, fixed)]
    for q in (rk, cc):
        p = got[q]
        assert p.headers["CC"] == ["k2"]
        check_entry(p.headers["x-death"][0], 1, "rejected", keep, "amq.direct", ["k1", "k2"], FIRST_ORDER)
    m, p, _ = fixed_msgs[0]
    assert m.routing_key == "fixed"
    assert "CC" not in p.headers
    check_entry(p.headers["x-death"][0], 1, "rejected", src2, "amq.direct", ["k1", "k2"], FIRST_ORDER)
    assert queue_counts(ch, rk)[0] == 0 and queue_counts(ch, cc)[0] == 0
    cleanup(ch, keep, src2, rk, cc, fixed)
    ch.exchange_delete(x)


def test_three_queue_rejection_cycle(ch, name):
    """a -> b -> c -> a by rejection, twice round: counts grow, and the
    entries are regrouped as RabbitMQ 3.10 does (which reverses the older
    ones each time)."""
    a, b, c = name("dl-a"), name("dl-b"), name("dl-c")
    declare_dl(ch, a, rk=b)
    declare_dl(ch, b, rk=c)
    declare_dl(ch, c, rk=a)
    ch.basic_publish("", a, b"x", pika.BasicProperties(headers={"CC": ["nowhere"]}, expiration="60000"))
    seen = []
    for q in [a, b, c, a, b, c, a]:
        m, p, _ = get_one(ch, q)
        seen.append(p.headers.get("x-death", []))
        ch.basic_reject(m.delivery_tag, requeue=False)

    def summary(deaths):
        return [(d["queue"], d["count"], list(d.keys()) == SORTED_ORDER) for d in deaths]
    assert summary(seen[1]) == [(a, 1, False)]
    assert summary(seen[2]) == [(b, 1, True), (a, 1, False)]
    assert summary(seen[3]) == [(c, 1, True), (a, 1, False), (b, 1, True)]
    assert summary(seen[4]) == [(a, 2, False), (b, 1, True), (c, 1, True)]
    assert summary(seen[5]) == [(b, 2, True), (c, 1, True), (a, 2, False)]
    assert summary(seen[6]) == [(c, 2, True), (a, 2, False), (b, 2, True)]
    # a's entry keeps its first routing keys and original expiration, sorted once updated.
    e = seen[4][0]
    assert list(e.keys()) == ["count", "exchange", "original-expiration", "queue", "reason", "routing-keys",
                              "time"]
    assert e["routing-keys"] == [a, "nowhere"] and e["original-expiration"] == "60000"
    check_entry(seen[2][0], 1, "rejected", b, "", [b], SORTED_ORDER)
    # The first death stays first, the last one follows the message round.
    m, p, _ = get_one(ch, b)
    assert p.headers["x-first-death-queue"] == a
    check_last_death(p, "rejected", a, "")
    ch.basic_nack(m.delivery_tag, requeue=True)
    wait_queue_count(ch, b, 1)
    cleanup(ch, a, b, c)


def test_automatic_cycle_dropped(ch, name):
    """a -> b -> a by expiry alone: the copy for a is dropped, while a
    witness bound to the same DLX gets its copy. The first hop expires by
    the message's own expiration and a has no TTL, so a copy wrongly
    delivered to a would stay there."""
    a, b, witness = name("dl-a"), name("dl-b"), name("dl-w")
    x = name("dl-fan")
    ch.exchange_declare(x, "fanout")
    ch.queue_declare(witness)
    ch.queue_bind(witness, x)
    declare_dl(ch, a, rk=b)
    declare_dl(ch, b, dlx=x, **{"x-message-ttl": 50})
    ch.queue_bind(a, x)
    ch.basic_publish("", a, b"loop", pika.BasicProperties(expiration="50"))
    m, p, _ = get_one(ch, witness)
    deaths = p.headers["x-death"]
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == [(b, "expired", 1), (a, "expired", 1)]
    assert deaths[1]["original-expiration"] == "50"
    assert queue_counts(ch, a)[0] == 0 and queue_counts(ch, b)[0] == 0
    # A queue that is its own DLX: the expired message is not put back.
    ch.queue_unbind(a, x)
    self_q = name("dl-self")
    ch.queue_declare(self_q, arguments={"x-dead-letter-exchange": x})
    ch.queue_bind(self_q, x)
    ch.basic_publish("", self_q, b"self", pika.BasicProperties(expiration="50"))
    m, p, body = get_one(ch, witness)
    assert body == b"self"
    assert [(d["queue"], d["reason"]) for d in p.headers["x-death"]] == [(self_q, "expired")]
    assert queue_counts(ch, self_q)[0] == 0
    cleanup(ch, a, b, witness, self_q)
    ch.exchange_delete(x)


def test_rejection_breaks_cycle(ch, name):
    """work (rejected) -> delay (TTL) -> work: not a cycle, since a client
    rejected on the way; counts go up each round."""
    work, delay = name("dl-work"), name("dl-delay")
    declare_dl(ch, work, rk=delay)
    declare_dl(ch, delay, rk=work, **{"x-message-ttl": 50})
    ch.basic_publish("", work, b"job")
    for n in (1, 2, 3):
        m, p, _ = get_one(ch, work)
        if n == 1:
            assert p.headers is None
        else:
            deaths = p.headers["x-death"]
            assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == \
                [(delay, "expired", n - 1), (work, "rejected", n - 1)]
            check_entry(deaths[0], n - 1, "expired", delay, "", [delay], SORTED_ORDER)
            check_entry(deaths[1], n - 1, "rejected", work, "", [work], FIRST_ORDER if n == 2 else SORTED_ORDER)
            assert p.headers["x-first-death-queue"] == work
            assert p.headers["x-first-death-reason"] == "rejected"
        ch.basic_reject(m.delivery_tag, requeue=False)
    cleanup(ch, work, delay)


def test_missing_dlx_drops(ch, name):
    src = name("dl-src")
    declare_dl(ch, src, dlx=name("no-such-x"))
    ch.basic_publish("", src, b"gone")
    m, _, _ = get_one(ch, src)
    ch.basic_reject(m.delivery_tag, requeue=False)
    # The channel and queue carry on.
    ch.basic_publish("", src, b"next")
    m, _, body = get_one(ch, src)
    assert body == b"next"
    ch.basic_ack(m.delivery_tag)
    assert queue_counts(ch, src)[0] == 0
    cleanup(ch, src)


def test_invalid_x_death_reset(ch, name):
    """An x-death that is not an array (a client re-published it
    converted) is replaced by a new array; no x-first-death-* is added."""
    src, dlq = name("dl-src"), name("dl-q")
    ch.queue_declare(dlq)
    declare_dl(ch, src, rk=dlq)
    ch.basic_publish("", src, b"x", pika.BasicProperties(headers={"x-death": "flattened", "b": 1}))
    m, _, _ = get_one(ch, src)
    ch.basic_reject(m.delivery_tag, requeue=False)
    _, p, _ = get_one(ch, dlq)
    assert list(p.headers.keys()) == ["b", "x-death"] + LAST_DEATH
    check_entry(p.headers["x-death"][0], 1, "rejected", src, "", [src], FIRST_ORDER)
    cleanup(ch, src, dlq)


@warren_only
def test_delivery_limit(ch, name):
    """x-delivery-limit N: the (N+1)th return dead-letters (delivery_limit)."""
    src, dlq = name("dl-src"), name("dl-q")
    ch.queue_declare(dlq)
    declare_dl(ch, src, rk=dlq, **{"x-delivery-limit": 2})
    ch.basic_publish("", src, b"poison")
    deliveries = 0
    for _ in range(3):
        m, _, _ = get_one(ch, src)
        deliveries += 1
        assert m.redelivered == (deliveries > 1)
        ch.basic_nack(m.delivery_tag, requeue=True)
    _, p, body = get_one(ch, dlq)
    assert body == b"poison" and deliveries == 3
    check_entry(p.headers["x-death"][0], 1, "delivery_limit", src, "", [src], FIRST_ORDER)
    assert p.headers["x-first-death-reason"] == "delivery_limit"
    assert queue_counts(ch, src)[0] == 0
    # Limit 0: the first return dead-letters; a reject without requeue is still "rejected".
    zero = name("dl-zero")
    declare_dl(ch, zero, rk=dlq, **{"x-delivery-limit": 0})
    ch.basic_publish("", zero, b"z")
    m, _, _ = get_one(ch, zero)
    ch.basic_reject(m.delivery_tag, requeue=True)
    _, p, _ = get_one(ch, dlq)
    assert p.headers["x-death"][0]["reason"] == "delivery_limit"
    cleanup(ch, src, dlq, zero)


@warren_only
def test_delivery_limit_validated(conn, name):
    ch = conn.channel()
    q = name("dl-lim")
    with channel_error(406, "PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue '%s' in vhost "
                            "'/': {value_negative,-1}" % q):
        ch.queue_declare(q, arguments={"x-delivery-limit": -1})
    ch = conn.channel()
    ch.queue_declare(q, arguments={"x-delivery-limit": 3})
    with channel_error(406, "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue '%s' in "
                            "vhost '/': received '4' but current is '3'" % q):
        ch.queue_declare(q, arguments={"x-delivery-limit": 4})
    conn.channel().queue_delete(q)


def test_dlx_must_be_a_string(conn, name):
    """RabbitMQ's rabbit_channel checks the type of x-dead-letter-exchange
    before the argument rules, with its own text (checked against 3.10)."""
    q = name("dlx-type")
    with channel_error(406, "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' "
                            "in queue '%s' in vhost '/'" % q):
        conn.channel().queue_declare(q, arguments={"x-dead-letter-exchange": 1})
