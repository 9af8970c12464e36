# SPDX-License-Identifier: MIT
# Length limits (issue #7): x-max-length and x-max-length-bytes with each
# x-overflow mode: drop-head (dead-lettered as "maxlen"), reject-publish
# (basic.nack to a confirming publisher, a silent drop otherwise, never a
# basic.return) and reject-publish-dlx; and policies putting limits,
# TTLs and dead-lettering on matching queues through the management API
# (PUT /api/policies), merged with arguments as RabbitMQ merges them.
import re

import pika
import pika.exceptions as pex
import pytest

import conftest
from conftest import quote
from helpers import drain, get_one, queue_counts, queue_exists, wait_for, wait_queue_count


@pytest.fixture
def ch(conn):
    """With confirms: each publish has reached its queues when it returns."""
    c = conn.channel()
    c.confirm_delivery()
    return c


def check_maxlen(p, src, keys):
    e = p.headers["x-death"][0]
    assert list(e.keys()) == ["count", "reason", "queue", "time", "exchange", "routing-keys"]
    assert (e["count"], e["reason"], e["queue"], e["exchange"], e["routing-keys"]) == (1, "maxlen", src, "", keys)
    assert p.headers["x-first-death-reason"] == "maxlen"


def test_max_length_drop_head(ch, name):
    q = name("len")
    ch.queue_declare(q, arguments={"x-max-length": 2})
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    assert queue_counts(ch, q)[0] == 2
    assert drain(ch, q) == [b"m3", b"m4"]
    ch.queue_delete(q)


def test_max_length_drop_head_dead_letters(ch, name):
    src, dlq = name("len-src"), name("len-dlq")
    ch.queue_declare(dlq)
    ch.queue_declare(src, arguments={"x-max-length": 1, "x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": dlq})
    for b in (b"a", b"b", b"c"):
        ch.basic_publish("", src, b)
    got = [get_one(ch, dlq), get_one(ch, dlq)]
    assert [b for _, _, b in got] == [b"a", b"b"]
    for _, p, _ in got:
        check_maxlen(p, src, [src])
    assert drain(ch, src) == [b"c"]
    ch.queue_delete(src)
    ch.queue_delete(dlq)


def test_max_length_bytes(ch, name):
    """Body bytes of ready messages: heads go until the rest fits."""
    q = name("bytes")
    ch.queue_declare(q, arguments={"x-max-length-bytes": 10})
    for b in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
        ch.basic_publish("", q, b)
    assert drain(ch, q) == [b"cccc", b"dddd"]
    # A body larger than the limit does not stay either.
    ch.basic_publish("", q, b"x" * 11)
    assert queue_counts(ch, q)[0] == 0
    ch.queue_delete(q)


def test_unacked_not_counted(ch, name):
    """The limits count ready messages; deliveries awaiting ack do not."""
    q = name("len")
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.basic_publish("", q, b"first")
    m, _, _ = ch.basic_get(q)
    ch.basic_publish("", q, b"second")
    ch.basic_ack(m.delivery_tag)
    assert drain(ch, q) == [b"second"]
    ch.queue_delete(q)


def test_reject_publish_nacks_confirms(ch, name):
    q = name("rej")
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.basic_publish("", q, b"in")
    with pytest.raises(pex.NackError):
        ch.basic_publish("", q, b"out")
    # Full is not unroutable: mandatory gets a nack, no basic.return.
    with pytest.raises(pex.NackError):
        ch.basic_publish("", q, b"out2", mandatory=True)
    assert queue_counts(ch, q)[0] == 1
    assert drain(ch, q) == [b"in"]
    ch.basic_publish("", q, b"room again")
    assert drain(ch, q) == [b"room again"]
    ch.queue_delete(q)


def test_reject_publish_without_confirms(conn, name):
    ch = conn.channel()
    q = name("rej")
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish("", q, b"in")
    ch.basic_publish("", q, b"dropped", mandatory=True)
    wait_queue_count(ch, q, 1)
    conn.process_data_events(time_limit=0)
    assert drain(ch, q) == [b"in"]
    assert returned == [] and ch.is_open
    ch.queue_delete(q)


def test_reject_publish_dlx(ch, name):
    src, dlq = name("rej-src"), name("rej-dlq")
    ch.queue_declare(dlq)
    ch.queue_declare(src, arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                     "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    ch.basic_publish("", src, b"kept")
    with pytest.raises(pex.NackError):
        ch.basic_publish("", src, b"refused")
    _, p, body = get_one(ch, dlq)
    assert body == b"refused"
    check_maxlen(p, src, [src])
    assert drain(ch, src) == [b"kept"]
    ch.queue_delete(src)
    ch.queue_delete(dlq)


# ---------------------------------------------------------------- policies


@pytest.fixture
def policy(mgmt_broker, name):
    """put(definition) sets a policy matching the names this factory's
    prefix starts (queues only); it is deleted at the end."""
    prefix = name("pol") + "-"
    pname = name("p")

    def put(definition, priority=0):
        r = mgmt_broker.mgmt.put("/api/policies/%s/%s" % (quote("/"), pname),
                                 {"pattern": "^" + re.escape(prefix), "definition": definition,
                                  "apply-to": "queues", "priority": priority})
        assert r.status in (201, 204), r

    def delete():
        r = mgmt_broker.mgmt.delete("/api/policies/%s/%s" % (quote("/"), pname))
        assert r.status == 204, r

    put.prefix = prefix
    put.delete = delete
    yield put
    mgmt_broker.mgmt.delete("/api/policies/%s/%s" % (quote("/"), pname))


@pytest.fixture
def pch(mgmt_broker):
    c = mgmt_broker.connect()
    ch = c.channel()
    ch.confirm_delivery()
    yield ch
    if c.is_open:
        c.close()


def test_policy_max_length_on_existing_queue(pch, policy):
    q = policy.prefix + "q"
    pch.queue_declare(q)
    for i in range(5):
        pch.basic_publish("", q, b"m%d" % i)
    policy({"max-length": 2})
    wait_queue_count(pch, q, 2)
    assert drain(pch, q) == [b"m3", b"m4"]
    policy.delete()

    def grows():
        # Past 2 only once the limit is gone (RabbitMQ applies it asynchronously).
        pch.basic_publish("", q, b"n")
        return queue_counts(pch, q)[0] >= 3
    wait_for(grows, what="the limit to be lifted")
    pch.queue_delete(q)


@pytest.mark.parametrize("arg,pol,expect", [(3, 5, 3), (3, 1, 1), (None, 2, 2)])
def test_policy_max_length_smaller_wins(pch, policy, arg, pol, expect):
    policy({"max-length": pol})
    q = policy.prefix + "q"
    pch.queue_declare(q, arguments={"x-max-length": arg} if arg is not None else {})
    for i in range(6):
        pch.basic_publish("", q, b"m%d" % i)
    assert queue_counts(pch, q)[0] == expect
    pch.queue_delete(q)


def test_policy_ttl_and_dead_letter(pch, policy, name):
    dlq = name("pol-dlq")
    pch.queue_declare(dlq)
    policy({"message-ttl": 50, "dead-letter-exchange": "", "dead-letter-routing-key": dlq})
    q = policy.prefix + "q"
    pch.queue_declare(q)
    pch.basic_publish("", q, b"late")
    _, p, body = get_one(pch, dlq)
    assert body == b"late"
    e = p.headers["x-death"][0]
    assert (e["count"], e["reason"], e["queue"], e["exchange"], e["routing-keys"]) == (1, "expired", q, "", [q])
    pch.queue_delete(q)
    pch.queue_delete(dlq)


def test_policy_overflow_argument_wins(pch, policy):
    """overflow and the dead-letter settings: the argument wins over the policy."""
    policy({"max-length": 1, "overflow": "drop-head"})
    q = policy.prefix + "q"
    pch.queue_declare(q, arguments={"x-overflow": "reject-publish"})
    pch.basic_publish("", q, b"in")
    with pytest.raises(pex.NackError):
        pch.basic_publish("", q, b"out")
    assert drain(pch, q) == [b"in"]
    pch.queue_delete(q)


def test_policy_expires(mgmt_broker, pch, policy):
    policy({"expires": 100})
    q = policy.prefix + "q"
    pch.queue_declare(q)
    conn = mgmt_broker.connect()
    wait_for(lambda: not queue_exists(conn, q), step=0.05, what="queue %s to expire" % q)
    conn.close()


@pytest.mark.skipif(conftest._external() is not None,
                    reason="warren only: RabbitMQ 3.10 applies delivery-limit to quorum queues only")
def test_policy_delivery_limit(pch, policy, name):
    dlq = name("pol-dlq")
    pch.queue_declare(dlq)
    policy({"delivery-limit": 1, "dead-letter-exchange": "", "dead-letter-routing-key": dlq})
    q = policy.prefix + "q"
    pch.queue_declare(q)
    pch.basic_publish("", q, b"poison", pika.BasicProperties())
    for _ in range(2):
        m, _, _ = get_one(pch, q)
        pch.basic_nack(m.delivery_tag, requeue=True)
    _, p, _ = get_one(pch, dlq)
    assert p.headers["x-death"][0]["reason"] == "delivery_limit"
    pch.queue_delete(q)
    pch.queue_delete(dlq)


def test_limits_and_dead_letters_survive_restart(dedicated_broker, name):
    """A recovered durable queue gets its limits again, and a persistent
    message dead-lettered into a durable queue is stored like any other."""
    b = dedicated_broker()
    c = b.connect()
    ch = c.channel()
    ch.confirm_delivery()
    src, dlq = name("dur-src"), name("dur-dlq")
    persistent = pika.BasicProperties(delivery_mode=2)
    ch.queue_declare(dlq, durable=True)
    ch.queue_declare(src, durable=True, arguments={"x-max-length": 1, "x-dead-letter-exchange": "",
                                                   "x-dead-letter-routing-key": dlq})
    ch.basic_publish("", src, b"a", persistent)
    ch.basic_publish("", src, b"b", persistent)
    wait_queue_count(ch, dlq, 1)
    c.close()
    b = dedicated_broker.restart(b)
    c = b.connect()
    ch = c.channel()
    ch.confirm_delivery()
    _, p, body = get_one(ch, dlq)
    assert body == b"a" and p.delivery_mode == 2
    check_maxlen(p, src, [src])
    ch.basic_publish("", src, b"c", persistent)
    _, _, body = get_one(ch, dlq)
    assert body == b"b"
    assert drain(ch, src) == [b"c"]
    c.close()
