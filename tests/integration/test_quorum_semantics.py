# SPDX-License-Identifier: MIT
# Quorum-queue semantics (issue 15, docs/QUORUM.md "Behaviour, as RabbitMQ")
# as clients see them on a 3-node cluster: message TTL (per queue, per
# message), x-max-length / -bytes with drop-head and reject-publish (nacks to
# the confirming publisher, never a silent drop), dead-lettering by TTL,
# length and reject with RabbitMQ's x-death headers, single active consumer
# and its handover, consumer priorities, message priorities, purge, and
# at-least-once dead-lettering, policies on quorum queues (with RabbitMQ's
# precedence between argument and policy) and x-expires. Runs against a warren cluster (cluster.py) or
# an external one (WARREN_CLUSTER_BROKERS, as test_quorum.py; see
# scripts/test-rabbitmq-cluster); where RabbitMQ 3.10 differs from the 4.x
# behaviour warren follows, the case says so and skips.
import re
import time

import pika
import pika.exceptions as pex
import pytest

from helpers import Collector, channel_error, queue_counts, wait_for, wait_queue_count
from quorum_clients import DEADLINE, PERSISTENT, QUORUM
from test_quorum import needs_api, qc, queue  # noqa: F401  (fixtures)


@pytest.fixture
def dlq(qc, queue):
    """A quorum queue for queue's dead letters (reached through the default exchange)."""
    name = queue + "-dlq"
    qc.delete(name)
    qc.declare(name)
    yield name
    qc.delete(name)


def dlx_to(dlq, **more):
    return dict({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}, **more)


def publisher(qc, node=0):
    conn = qc.connect(node)
    ch = conn.channel()
    ch.confirm_delivery()
    return conn, ch


def publish_all(ch, queue, bodies, props=PERSISTENT):
    """Publishes each body with confirms; the list of outcomes, "ack" or "nack"."""
    out = []
    for b in bodies:
        try:
            ch.basic_publish("", queue, b, props)
            out.append("ack")
        except pex.NackError:
            out.append("nack")
    return out


def get_all(ch, queue, n):
    """n messages by basic.get with auto-ack, waiting for each; [(props, body)]."""
    out = []

    def one():
        m, p, b = ch.basic_get(queue, auto_ack=True)
        if m is not None:
            out.append((p, b))
        return len(out) == n
    wait_for(one, DEADLINE, "%d messages in %s" % (n, queue))
    return out


def assert_death(props, queue, reason, count=1):
    """RabbitMQ's headers on a message dead-lettered once from queue."""
    h = props.headers
    death = h["x-death"][0]
    assert (death["queue"], death["reason"], death["count"], death["exchange"]) == (queue, reason, count, "")
    assert death["routing-keys"] == [queue]
    assert (h["x-first-death-queue"], h["x-first-death-reason"], h["x-first-death-exchange"]) == \
        (queue, reason, "")


# ---- TTL ----

def test_queue_ttl_dead_letters_expired(qc, queue, dlq):
    qc.declare(queue, arguments=dlx_to(dlq, **{"x-message-ttl": 300}))
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"t0", b"t1", b"t2"]) == ["ack"] * 3
    got = get_all(ch, dlq, 3)
    assert [b for _, b in got] == [b"t0", b"t1", b"t2"]
    for p, _ in got:
        assert_death(p, queue, "expired")
        assert p.delivery_mode == 2
    wait_queue_count(ch, queue, 0)
    conn.close()


def test_per_message_ttl_expires_at_the_head(qc, queue, dlq):
    qc.declare(queue, arguments=dlx_to(dlq))
    conn, ch = publisher(qc)
    short = pika.BasicProperties(delivery_mode=2, expiration="200")
    assert publish_all(ch, queue, [b"short"], short) == ["ack"]
    assert publish_all(ch, queue, [b"keeps"]) == ["ack"]
    (p, b), = get_all(ch, dlq, 1)
    assert b == b"short"
    assert_death(p, queue, "expired")
    assert p.expiration is None and p.headers["x-death"][0]["original-expiration"] == "200"
    # The count comes from this node's member, which may apply the expiry after the leader's dead letter
    # arrived (seen once on a loaded machine: 2).
    wait_queue_count(ch, queue, 1)
    m, _, b = ch.basic_get(queue, auto_ack=True)
    assert b == b"keeps"
    conn.close()


def test_ttl_without_dead_letter_exchange_drops(qc, queue, dlq):
    qc.declare(queue, arguments={"x-message-ttl": 100})
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"a", b"b"]) == ["ack"] * 2
    wait_queue_count(ch, queue, 0)
    assert queue_counts(ch, dlq)[0] == 0
    conn.close()


def test_ttl_zero_still_reaches_a_waiting_consumer(qc, queue):
    qc.declare(queue, arguments={"x-message-ttl": 0})
    cons = qc.connect(1)
    cch = cons.channel()
    col = Collector(ack=True)
    cch.basic_consume(queue, col)
    wait_for(lambda: queue_counts(cch, queue)[1] == 1, DEADLINE, "the consumer to register", conn=cons)
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"now"]) == ["ack"]
    col.wait(cons, 1)
    assert col.bodies == [b"now"]
    conn.close()
    cons.close()


# ---- length limits ----

def test_max_length_drop_head_dead_letters_the_oldest(qc, queue, dlq):
    qc.declare(queue, arguments=dlx_to(dlq, **{"x-max-length": 3}))
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"m%d" % i for i in range(5)]) == ["ack"] * 5
    got = get_all(ch, dlq, 2)
    assert [b for _, b in got] == [b"m0", b"m1"]
    for p, _ in got:
        assert_death(p, queue, "maxlen")
    assert [b for _, b in get_all(ch, queue, 3)] == [b"m2", b"m3", b"m4"]
    conn.close()


def test_max_length_bytes_drop_head(qc, queue):
    qc.declare(queue, arguments={"x-max-length-bytes": 10})
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"aaaa", b"bbbb", b"cccc", b"dddd"]) == ["ack"] * 4
    wait_queue_count(ch, queue, 2)
    assert [b for _, b in get_all(ch, queue, 2)] == [b"cccc", b"dddd"]
    conn.close()


def check_reject_publish(qc, queue, ch, outcomes, limit):
    """Every publish was confirmed or nacked, never dropped: the queue holds
    exactly the confirmed ones. RabbitMQ's quorum queues refuse publishes
    once over the limit (soft: the one that passes it is taken); warren is
    exact."""
    acked = outcomes.count("ack")
    assert outcomes[:limit] == ["ack"] * limit and outcomes[-1] == "nack", outcomes
    assert acked == limit or (qc.rabbitmq3 and acked == limit + 1), outcomes
    assert outcomes == sorted(outcomes), "a nack before an ack: %r" % outcomes
    wait_queue_count(ch, queue, acked)
    return acked


def test_max_length_reject_publish_nacks_the_publisher(qc, queue, dlq):
    qc.declare(queue, arguments=dlx_to(dlq, **{"x-max-length": 2, "x-overflow": "reject-publish"}))
    conn, ch = publisher(qc, node=1)
    outcomes = publish_all(ch, queue, [b"r%d" % i for i in range(5)])
    acked = check_reject_publish(qc, queue, ch, outcomes, 2)
    assert [b for _, b in get_all(ch, queue, acked)] == [b"r%d" % i for i in range(acked)]
    assert queue_counts(ch, dlq)[0] == 0, "a refused publish is not dead-lettered"
    assert publish_all(ch, queue, [b"room again"]) == ["ack"]
    conn.close()


def test_max_length_bytes_reject_publish(qc, queue):
    qc.declare(queue, arguments={"x-max-length-bytes": 8, "x-overflow": "reject-publish"})
    conn, ch = publisher(qc, node=2)
    outcomes = publish_all(ch, queue, [b"1234", b"5678", b"9abc", b"defg"])
    check_reject_publish(qc, queue, ch, outcomes, 2)
    conn.close()


# ---- dead-lettering ----

def test_reject_without_requeue_dead_letters_rejected(qc, queue, dlq):
    qc.declare(queue, arguments=dlx_to(dlq))
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"no", b"nope"]) == ["ack"] * 2
    cons = qc.connect(2)
    cch = cons.channel()
    col = Collector()
    cch.basic_consume(queue, col)
    col.wait(cons, 2)
    cch.basic_reject(col.deliveries[0][0].delivery_tag, requeue=False)
    cch.basic_nack(col.deliveries[1][0].delivery_tag, requeue=False)
    got = get_all(ch, dlq, 2)
    assert [b for _, b in got] == [b"no", b"nope"]
    for p, _ in got:
        assert_death(p, queue, "rejected")
    wait_for(lambda: queue_counts(ch, queue)[0] == 0, DEADLINE, "the source to be empty", conn=cons)
    conn.close()
    cons.close()


def test_purge_does_not_dead_letter(qc, queue, dlq):
    qc.declare(queue, arguments=dlx_to(dlq))
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"p0", b"p1", b"p2"]) == ["ack"] * 3
    assert ch.queue_purge(queue).method.message_count == 3
    assert publish_all(ch, dlq, [b"marker"]) == ["ack"]
    (_, b), = get_all(ch, dlq, 1)
    assert b == b"marker"
    assert queue_counts(ch, queue)[0] == 0
    conn.close()


# ---- consumers ----

def test_single_active_consumer_hands_over_on_cancel(qc, queue):
    qc.declare(queue, arguments={"x-single-active-consumer": True})
    first, second = qc.connect(1), qc.connect(2)
    fch, sch = first.channel(), second.channel()
    a, b = Collector(ack=True), Collector(ack=True)
    tag = fch.basic_consume(queue, a)
    wait_for(lambda: queue_counts(fch, queue)[1] == 1, DEADLINE, "the first consumer", conn=first)
    sch.basic_consume(queue, b)
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"s%d" % i for i in range(4)]) == ["ack"] * 4
    a.wait(first, 4)
    second.process_data_events(time_limit=0.2)
    assert (a.bodies, b.bodies) == ([b"s%d" % i for i in range(4)], [])
    fch.basic_cancel(tag)
    assert publish_all(ch, queue, [b"t0", b"t1"]) == ["ack"] * 2
    b.wait(second, 2)
    assert b.bodies == [b"t0", b"t1"] and len(a.deliveries) == 4
    for c in (conn, first, second):
        c.close()


def test_single_active_consumer_hands_unacked_over_when_its_channel_closes(qc, queue):
    qc.declare(queue, arguments={"x-single-active-consumer": True})
    first, second = qc.connect(1), qc.connect(2)
    fch, sch = first.channel(), second.channel()
    fch.basic_qos(prefetch_count=2)
    a, b = Collector(), Collector(ack=True)
    fch.basic_consume(queue, a)
    wait_for(lambda: queue_counts(fch, queue)[1] == 1, DEADLINE, "the first consumer", conn=first)
    sch.basic_consume(queue, b)
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"h%d" % i for i in range(4)]) == ["ack"] * 4
    a.wait(first, 2)
    wait_queue_count(ch, queue, 2)
    assert b.bodies == []
    # pika cancels its consumers before closing: the successor is active
    # from the cancel (h2, h3), and the unacked ones come back at the close.
    first.close()
    b.wait(second, 4)
    assert sorted(b.bodies) == [b"h0", b"h1", b"h2", b"h3"]
    assert {body: m.redelivered for m, _, body in b.deliveries} == \
        {b"h0": True, b"h1": True, b"h2": False, b"h3": False}
    conn.close()
    second.close()


def test_consumer_priorities(qc, queue):
    qc.declare(queue)
    hi_conn, lo_conn = qc.connect(1), qc.connect(2)
    hch, lch = hi_conn.channel(), lo_conn.channel()
    hch.basic_qos(prefetch_count=2)
    lch.basic_qos(prefetch_count=10)
    hi, lo = Collector(), Collector()
    lch.basic_consume(queue, lo, arguments={"x-priority": 0})
    hch.basic_consume(queue, hi, arguments={"x-priority": 10})
    conn, ch = publisher(qc)
    wait_for(lambda: queue_counts(ch, queue)[1] == 2, DEADLINE, "both consumers")
    assert publish_all(ch, queue, [b"c%d" % i for i in range(6)]) == ["ack"] * 6
    hi.wait(hi_conn, 2)
    lo.wait(lo_conn, 4)
    assert hi.bodies == [b"c0", b"c1"], "the high-priority consumer first, while it has credit"
    assert lo.bodies == [b"c2", b"c3", b"c4", b"c5"]
    for c in (conn, hi_conn, lo_conn):
        c.close()


def test_message_priorities_two_levels(qc, queue):
    if qc.rabbitmq3:
        pytest.skip("RabbitMQ 3.x quorum queues ignore message priority (4.0 added two levels)")
    qc.declare(queue)
    conn, ch = publisher(qc)
    lo = pika.BasicProperties(delivery_mode=2, priority=0)
    hi = pika.BasicProperties(delivery_mode=2, priority=9)
    assert publish_all(ch, queue, [b"lo%d" % i for i in range(4)], lo) == ["ack"] * 4
    assert publish_all(ch, queue, [b"hi%d" % i for i in range(4)], hi) == ["ack"] * 4
    got = [b for _, b in get_all(ch, queue, 8)]
    # RabbitMQ 4.0: priority 5 and up is high, served two to one with normal.
    assert got == [b"hi0", b"hi1", b"lo0", b"hi2", b"hi3", b"lo1", b"lo2", b"lo3"]
    conn.close()


# ---- at-least-once dead-lettering ----

AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def reject_all(qc, queue, n, node=2):
    """Consumes n messages on node and rejects each without requeue."""
    cons = qc.connect(node)
    ch = cons.channel()
    col = Collector()
    ch.basic_consume(queue, col)
    col.wait(cons, n)
    for m, _, _ in col.deliveries:
        ch.basic_reject(m.delivery_tag, requeue=False)
    return cons


def test_at_least_once_dead_letters_with_headers(qc, queue, dlq):
    qc.declare(queue, arguments=dlx_to(dlq, **AT_LEAST_ONCE))
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"a0", b"a1", b"a2"]) == ["ack"] * 3
    cons = reject_all(qc, queue, 3)
    got = get_all(ch, dlq, 3)
    assert sorted(b for _, b in got) == [b"a0", b"a1", b"a2"]
    for p, _ in got:
        assert_death(p, queue, "rejected")
    conn.close()
    cons.close()


def test_at_least_once_keeps_dead_letters_until_their_exchange_exists(qc, queue, dlq):
    if qc.rabbitmq3:
        pytest.skip("RabbitMQ retries a missing dead-letter exchange only after "
                    "dead_letter_worker_publisher_confirm_timeout (2 minutes)")
    dlx = queue + "-dlx"
    qc.attempt(0, lambda c: c.exchange_delete(dlx))
    qc.declare(queue, arguments=dict(AT_LEAST_ONCE, **{"x-dead-letter-exchange": dlx, "x-max-length": 2}))
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"w0", b"w1"]) == ["ack"] * 2
    cons = reject_all(qc, queue, 2)
    # The two wait in the source, counted by its length limit: a publish is refused.
    wait_for(lambda: queue_counts(ch, queue)[0] == 0, DEADLINE, "both rejected", conn=cons)
    assert publish_all(ch, queue, [b"refused"]) == ["nack"]
    ch.exchange_declare(dlx, "fanout", durable=True)
    ch.queue_bind(dlq, dlx)
    got = get_all(ch, dlq, 2)
    assert sorted(b for _, b in got) == [b"w0", b"w1"]
    wait_for(lambda: publish_all(ch, queue, [b"room"]) == ["ack"], DEADLINE, "the source to take a publish")
    ch.exchange_delete(dlx)
    conn.close()
    cons.close()


def test_at_least_once_survives_target_down_and_source_leader_killed(qc, queue):
    """The DLX target's only member (n3) is down: the dead letters stay in
    the source (its length limit refuses publishes); the source's leader is
    kill -9ed and comes back; then the target's node returns, and every
    dead letter reaches it (at least once)."""
    c = getattr(qc, "cluster", None)
    if c is None:
        pytest.skip("kills nodes: a warren cluster started here only")
    n = 10
    dlq = queue + "-dlq"
    qc.delete(dlq)
    qc.declare(dlq, node=2, arguments={"x-quorum-initial-group-size": 1})
    qc.declare(queue, node=0, arguments=dlx_to(dlq, **AT_LEAST_ONCE, **{"x-max-length": n}))
    conn, ch = publisher(qc)
    bodies = [b"d%d" % i for i in range(n)]
    assert publish_all(ch, queue, bodies) == ["ack"] * n
    conn.close()
    c.kill("n3")
    cons = reject_all(qc, queue, n, node=1)
    conn, ch = publisher(qc, node=1)
    wait_for(lambda: queue_counts(ch, queue)[0] == 0, DEADLINE, "every message rejected", conn=cons)
    assert publish_all(ch, queue, [b"refused"]) == ["nack"], "the dead letters must still count in the source"
    cons.close()
    conn.close()
    c.kill("n1")
    c.start("n1")
    conn, ch = publisher(qc, node=1)
    wait_for(lambda: publish_all(ch, queue, [b"refused"]) == ["nack"], DEADLINE,
             "the source to lead again, its dead letters still pending")
    c.start("n3")
    c.wait_all_up()
    # Read on the target's own node: through n2's proxy the restarted home showed
    # nothing for 30 s (reported, not investigated here).
    home = qc.connect(2)
    hch, seen = home.channel(), set()

    def every_one():
        m, _, b = hch.basic_get(dlq, auto_ack=True)
        if m is not None:
            assert b in bodies, b
            seen.add(b)
        return len(seen) == n
    # At least once: a new leader sends again what its predecessor had not seen settled, so a dead
    # letter may come twice (seen once: the first 10 arrivals were d0-d4 twice); each one must come.
    wait_for(every_one, DEADLINE, "every dead letter in %s" % dlq)
    wait_for(lambda: publish_all(ch, queue, [b"room"]) == ["ack"], DEADLINE, "the dead letters settled")
    conn.close()
    home.close()
    qc.delete(dlq)


# ---- policies ----

@pytest.fixture
def policy(qc, queue):
    """set(definition) puts a policy matching only queue (through node 0's
    management API); it is deleted afterwards."""
    needs_api(qc)
    name = queue + "-pol"
    path = "/api/policies/%2F/" + name

    def change(method, body=None):
        def done():
            r = qc.http(0).request(method, path, body=body)
            assert r.status in (201, 204, 404, 503), r
            return r.status != 503  # again while the cluster elects its metadata leader
        wait_for(done, DEADLINE, "%s %s" % (method, path))

    def put(definition):
        change("PUT", {"pattern": "^%s$" % re.escape(queue), "apply-to": "queues", "definition": definition})
    put.delete = lambda: change("DELETE")
    yield put
    put.delete()


def publish_until_nacked(ch, queue, what):
    """Publishes with confirms until one is nacked (a limit with
    reject-publish in force); the number acked before it."""
    acked = [0]

    def nacked():
        if publish_all(ch, queue, [b"f%d" % acked[0]]) == ["nack"]:
            return True
        acked[0] += 1
        return False
    wait_for(nacked, DEADLINE, what)
    return acked[0]


@pytest.mark.parametrize("order", ["policy-first", "queue-first"])
def test_policy_dead_letter_strategy_at_least_once(qc, queue, policy, order):
    """dead-letter-strategy from a policy, on a new and on an existing queue:
    rejected messages whose dead-letter exchange is missing stay in the
    source at least once, counted by its length (a publish is nacked); at
    most once would drop them. Deleting the policy frees the queue."""
    args = {"x-dead-letter-exchange": queue + "-missing"}
    definition = {"dead-letter-strategy": "at-least-once", "overflow": "reject-publish", "max-length": 2}
    if order == "policy-first":
        policy(definition)
    qc.declare(queue, arguments=args)
    if order == "queue-first":
        policy(definition)
    conn, ch = publisher(qc)
    acked = publish_until_nacked(ch, queue, "the policy's length limit")
    cons = reject_all(qc, queue, acked)
    wait_for(lambda: queue_counts(ch, queue)[0] == 0, DEADLINE, "every message rejected", conn=cons)
    # RabbitMQ 3.10 (checked with scripts/test-rabbitmq-cluster) acks this
    # publish: its dead letters of a missing exchange do not hold the source
    # here (not investigated further; the at-least-once case with a missing
    # exchange above is skipped for 3.10 too); warren keeps them counted.
    cons.close()
    if qc.rabbitmq3:
        conn.close()
        return  # nor does 3.10 take publishes again once the policy goes (as in the overflow case below)
    assert publish_all(ch, queue, [b"refused"]) == ["nack"], "the dead letters must still count in the source"
    policy.delete()
    wait_for(lambda: publish_all(ch, queue, [b"free"]) == ["ack"], DEADLINE, "the policy's limit to go")
    conn.close()


def test_policy_overflow_wins_over_the_argument(qc, queue, policy):
    """For quorum queues the policy's overflow beats x-overflow (RabbitMQ's
    policy_has_precedence; classic queues do the opposite)."""
    qc.declare(queue, arguments={"x-overflow": "drop-head", "x-max-length": 2})
    policy({"overflow": "reject-publish"})
    conn, ch = publisher(qc, node=1)
    acked = publish_until_nacked(ch, queue, "the policy's reject-publish")
    assert acked == 2 or (qc.rabbitmq3 and acked == 3), acked
    if qc.rabbitmq3:
        return  # 3.10 keeps refusing the full queue after the policy goes (checked); warren drops the head
    policy.delete()
    wait_for(lambda: publish_all(ch, queue, [b"dropping"]) == ["ack"], DEADLINE, "drop-head again")
    wait_queue_count(ch, queue, 2)
    conn.close()


def test_policy_max_length_takes_the_smaller_of_argument_and_policy(qc, queue, policy):
    """max-length: the smaller of x-max-length and the policy's, changed on
    the running queue as the policy changes."""
    qc.declare(queue, arguments={"x-max-length": 3})
    conn, ch = publisher(qc, node=2)
    policy({"max-length": 1})
    wait_for(lambda: publish_all(ch, queue, [b"one"]) == ["ack"] and queue_counts(ch, queue)[0] == 1,
             DEADLINE, "the policy's max-length 1")
    policy({"max-length": 10})
    wait_for(lambda: publish_all(ch, queue, [b"three"]) == ["ack"] and queue_counts(ch, queue)[0] == 3,
             DEADLINE, "the argument's max-length 3")
    assert publish_all(ch, queue, [b"more"] * 3) == ["ack"] * 3
    wait_queue_count(ch, queue, 3)
    conn.close()


def test_policy_bad_dead_letter_strategy_is_refused(qc, queue):
    """RabbitMQ's validation reason (HTML-escaped, as its API sends it)."""
    needs_api(qc)
    for value, text in [("some", "&lt;&lt;\"some\"&gt;&gt; is not a valid dead letter strategy"),
                        (5, "5 is not a valid dead letter strategy")]:
        r = qc.http(0).put("/api/policies/%2F/" + queue + "-pol",
                           {"pattern": "^q$", "definition": {"dead-letter-strategy": value}})
        assert (r.status, r.json) == (400, {"error": "bad_request",
                                            "reason": "Validation failed\n\n%s\n" % text})


# ---- x-expires ----
# The leader's TICK finds the queue unused (RabbitMQ 3.10 ticks every 5 s,
# warren every second), so a queue goes some time after its x-expires; never
# before it.

def declare_expiring(qc, queue, expires, node=0, more=None):
    """Declares queue with x-expires on node (again while a warren cluster's
    metadata has no leader); the monotonic time of the declare-ok."""
    args = dict(QUORUM, **{"x-expires": expires}, **(more or {}))

    def declared():
        e = qc.attempt(node, lambda ch: ch.queue_declare(queue, durable=True, arguments=args))
        assert e is None or e.reply_code == 541, e
        return e is None
    wait_for(declared, DEADLINE, "the declare of %s" % queue)
    return time.monotonic()


def exists(qc, queue, node):
    e = qc.attempt(node, lambda ch: ch.queue_declare(queue, passive=True))
    assert e is None or e.reply_code == 404, e
    return e is None


def wait_gone(qc, queue, since, at_least, nodes=(0, 1, 2)):
    """Waits until no node in nodes knows queue; asserts it went no sooner
    than at_least seconds after since."""
    wait_for(lambda: not any(exists(qc, queue, i) for i in nodes), DEADLINE + at_least,
             "%s to expire" % queue, step=0.2)
    assert time.monotonic() - since >= at_least


def stays(qc, queue, seconds, act=lambda: None):
    """queue is still there on every node for `seconds` while act() runs
    now and then: absence of an event, so this one waits out its time."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        act()
        assert all(exists(qc, queue, i) for i in range(3)), "%s expired while in use" % queue
        time.sleep(0.25)


def test_expires_deletes_an_unused_queue_on_every_node(qc, queue):
    t0 = declare_expiring(qc, queue, 2000, more={"x-quorum-initial-group-size": 3})
    conn, ch = publisher(qc, node=1)
    assert publish_all(ch, queue, [b"kept"]) == ["ack"], "a message is no use"
    conn.close()
    wait_gone(qc, queue, t0, 2.0)


def test_expires_consumer_keeps_the_queue_until_it_leaves(qc, queue):
    declare_expiring(qc, queue, 1000)
    conn = qc.connect(1)
    ch = conn.channel()
    ch.basic_consume(queue, lambda *a: None)
    stays(qc, queue, 7, lambda: conn.process_data_events(0))
    conn.close()
    wait_gone(qc, queue, time.monotonic(), 1.0)


def test_expires_basic_get_keeps_the_queue(qc, queue):
    declare_expiring(qc, queue, 2000)
    conn = qc.connect(2)
    ch = conn.channel()
    last = [0.0]

    def get():
        last[0] = time.monotonic()  # before the get: the leader stamps it later
        ch.basic_get(queue, auto_ack=True)
    stays(qc, queue, 8, get)
    conn.close()
    wait_gone(qc, queue, last[0], 2.0)


def test_expires_redeclare_is_no_use(qc, queue):
    """As RabbitMQ's quorum queues (checked on 3.10): a redeclaration does not
    restart x-expires (a classic queue's would). The first queue holds a
    message; a redeclaration answering 0 messages made a new one."""
    args = dict(QUORUM, **{"x-expires": 2000})
    t0 = declare_expiring(qc, queue, 2000)
    conn, ch = publisher(qc)
    assert publish_all(ch, queue, [b"marker"]) == ["ack"]
    wait_for(lambda: ch.queue_declare(queue, durable=True, arguments=args).method.message_count == 0,
             DEADLINE, "the redeclared queue to expire all the same", step=0.3)
    assert time.monotonic() - t0 >= 2.0
    conn.close()


def test_expires_from_a_policy_on_an_existing_queue(qc, queue, policy):
    """The smaller of x-expires and the policy's expires."""
    declare_expiring(qc, queue, 3600000)
    t0 = time.monotonic()
    policy({"expires": 1500})
    wait_gone(qc, queue, t0, 1.5)


def test_expires_survives_the_leaders_death(qc, queue):
    """The leader is kill -9ed: a new leader deletes the queue in time (the
    expiry is the machine's, counted by the leaders' clocks)."""
    c = getattr(qc, "cluster", None)
    if c is None:
        pytest.skip("kills a node: a warren cluster started here only")
    t0 = declare_expiring(qc, queue, 4000, node=0)
    name = wait_for(lambda: (qc.queue_info(0, queue) or {}).get("leader"), DEADLINE, "the queue's leader")
    leader = next(n for n in c.nodes.values() if n.name in name)
    c.kill(leader.name)
    others = [i for i, n in enumerate(c.nodes.values()) if n is not leader]
    wait_gone(qc, queue, t0, 4.0, nodes=others)
    c.start(leader.name)
    c.wait_all_up()
    back = list(c.nodes.values()).index(leader)
    wait_for(lambda: not exists(qc, queue, back), DEADLINE, "the deletion to reach the restarted node")


@pytest.mark.parametrize("value,why", [
    (0, "{value_zero,0}"),
    (-5, "{value_negative,-5}"),
    ("x", '"expected integer, got longstr"'),
    (315360000001, "{value_too_large,315360000001}"),
], ids=["zero", "negative", "string", "too-large"])
def test_expires_bad_values_are_refused(qc, queue, value, why):
    with qc.connect(0) as c:
        with channel_error(406, "PRECONDITION_FAILED - invalid arg 'x-expires' for queue '%s' in vhost '/': %s"
                           % (queue, why)):
            c.channel().queue_declare(queue, durable=True, arguments=dict(QUORUM, **{"x-expires": value}))
