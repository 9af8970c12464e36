# SPDX-License-Identifier: MIT
# Queues: declare (server-named, passive, flags, exclusive, auto-delete),
# counts in declare-ok, bind/unbind, purge, delete (if-unused, if-empty), the
# empty name meaning "the last queue declared on this channel".
import pytest

from helpers import (Collector, channel_error, drain, wait_for, wait_queue_count,
                     wait_queue_gone)

LOCKED = ("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in vhost "
          "'/'. It could be originally declared on another connection or the exclusive "
          "property value does not match that of the original declaration.")


def no_queue(q):
    return "NOT_FOUND - no queue '%s' in vhost '/'" % q


def test_server_named(ch):
    names = set()
    for _ in range(5):
        ok = ch.queue_declare("", exclusive=True)
        q = ok.method.queue
        assert q.startswith("amq.gen-") and len(q) > len("amq.gen-") + 8, q
        assert (ok.method.message_count, ok.method.consumer_count) == (0, 0)
        names.add(q)
    assert len(names) == 5


def test_declare_ok_counts(conn, name):
    ch = conn.channel()
    q = name("q")
    ok = ch.queue_declare(q, auto_delete=False)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (q, 0, 0)
    for i in range(3):
        ch.basic_publish("", q, b"m%d" % i)
    cons = conn.channel()
    cons.basic_qos(prefetch_count=1)
    col = Collector()
    cons.basic_consume(q, col)
    col.wait(conn, 1)
    # one delivered (unacked), two ready; one consumer
    wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == 2,
             what="2 ready messages")
    ok = ch.queue_declare(q)          # active redeclare reports the same
    assert (ok.method.message_count, ok.method.consumer_count) == (2, 1)
    ch.queue_delete(q)


def test_passive_missing(ch, name):
    q = name("q")
    with channel_error(404, no_queue(q)):
        ch.queue_declare(q, passive=True)


def test_passive_ignores_flags(ch, name):
    q = name("q")
    ch.queue_declare(q, auto_delete=True)
    ok = ch.queue_declare(q, passive=True, durable=True, exclusive=False, auto_delete=False)
    assert ok.method.queue == q
    ch.queue_delete(q)


def test_passive_empty_name(ch):
    """passive with "" does not mean the last declared queue."""
    ch.queue_declare("", exclusive=True)
    with channel_error(404, no_queue("")):
        ch.queue_declare("", passive=True)


@pytest.mark.parametrize("first,second,arg,received,current", [
    (dict(durable=True), dict(durable=False), "durable", "false", "true"),
    (dict(durable=False), dict(durable=True), "durable", "true", "false"),
    (dict(auto_delete=False), dict(auto_delete=True), "auto_delete", "true", "false"),
    (dict(auto_delete=True), dict(auto_delete=False), "auto_delete", "false", "true"),
])
def test_inequivalent_redeclare(conn, name, first, second, arg, received, current):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q, **first)
    ch.queue_declare(q, **first)
    with channel_error(406, "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s' in "
                            "vhost '/': received '%s' but current is '%s'"
                            % (arg, q, received, current)):
        ch.queue_declare(q, **second)
    conn.channel().queue_delete(q)


def test_exclusive_flag_mismatch_same_connection(conn, name):
    q = name("q")
    conn.channel().queue_declare(q, exclusive=True)
    with channel_error(405, LOCKED % q):
        conn.channel().queue_declare(q, exclusive=False)
    q2 = name("q")
    conn.channel().queue_declare(q2, auto_delete=True)
    with channel_error(405, LOCKED % q2):
        conn.channel().queue_declare(q2, exclusive=True, auto_delete=True)
    conn.channel().queue_delete(q2)


@pytest.mark.parametrize("op", ["declare", "passive", "consume", "get", "purge", "delete",
                                "bind"])
def test_exclusive_locked_from_other_connection(broker, name, op):
    owner = broker.connect()
    och = owner.channel()
    q = name("q")
    och.queue_declare(q, exclusive=True)
    och.basic_publish("", q, b"mine")
    other = broker.connect()
    ch = other.channel()
    try:
        with channel_error(405, LOCKED % q):
            if op == "declare":
                ch.queue_declare(q, exclusive=True)
            elif op == "passive":
                ch.queue_declare(q, passive=True)
            elif op == "consume":
                ch.basic_consume(q, lambda *a: None)
            elif op == "get":
                ch.basic_get(q)
            elif op == "purge":
                ch.queue_purge(q)
            elif op == "delete":
                ch.queue_delete(q)
            else:
                ch.queue_bind(q, "amq.fanout", "")
        # same connection, another channel: fine
        och2 = owner.channel()
        wait_queue_count(och2, q, 1)
        assert och2.basic_get(q, auto_ack=True)[2] == b"mine"
    finally:
        other.close()
        owner.close()


def test_exclusive_deleted_when_owner_closes(broker, name):
    owner = broker.connect()
    q = name("q")
    owner.channel().queue_declare(q, exclusive=True)
    other = broker.connect()
    owner.close()
    wait_queue_gone(other, q)
    # the name is free again
    other.channel().queue_declare(q, exclusive=True)
    other.close()


def test_auto_delete_after_last_consumer(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q, auto_delete=True)
    ch.queue_declare(q, passive=True)           # no consumer yet: kept
    t1 = ch.basic_consume(q, lambda *a: None)
    t2 = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(t1)
    assert ch.queue_declare(q, passive=True).method.consumer_count == 1
    ch.basic_cancel(t2)
    wait_queue_gone(conn, q)


def test_auto_delete_when_consumer_channel_closes(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q, auto_delete=True)
    cch = conn.channel()
    cch.basic_consume(q, lambda *a: None)
    cch.close()
    wait_queue_gone(conn, q)


def test_bind_unbind(ch, name):
    q = name("q")
    x = name("x")
    ch.queue_declare(q, exclusive=True)
    ch.exchange_declare(x, "direct", auto_delete=True)
    ch.queue_bind(q, x, "k1")
    ch.queue_bind(q, x, "k2")
    ch.basic_publish(x, "k1", b"1")
    ch.basic_publish(x, "k2", b"2")
    ch.basic_publish(x, "k3", b"3")
    assert drain(ch, q) == [b"1", b"2"]
    ch.queue_unbind(q, x, "k1")
    ch.basic_publish(x, "k1", b"1")
    ch.basic_publish(x, "k2", b"2")
    assert drain(ch, q) == [b"2"]


def test_bind_with_arguments_distinct(ch, name):
    """Bindings differing only by arguments are distinct; unbind must name
    the arguments."""
    q = name("q")
    x = name("x")
    ch.queue_declare(q, exclusive=True)
    ch.exchange_declare(x, "headers", auto_delete=True)
    ch.queue_bind(q, x, "", arguments={"x-match": "all", "a": "1"})
    ch.queue_bind(q, x, "", arguments={"x-match": "all", "b": "1"})
    ch.queue_unbind(q, x, "", arguments={"x-match": "all", "a": "1"})
    import pika
    ch.basic_publish(x, "", b"a", pika.BasicProperties(headers={"a": "1"}))
    ch.basic_publish(x, "", b"b", pika.BasicProperties(headers={"b": "1"}))
    assert drain(ch, q) == [b"b"]


def test_purge(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    for i in range(7):
        ch.basic_publish("", q, b"%d" % i)
    # two delivered and unacked: purge leaves them alone
    m1 = ch.basic_get(q)[0]
    m2 = ch.basic_get(q)[0]
    ok = ch.queue_purge(q)
    assert ok.method.message_count == 5
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.basic_nack(m2.delivery_tag, multiple=True, requeue=True)
    assert m1.delivery_tag < m2.delivery_tag
    # nack is asynchronous (no reply): wait for the requeue to land
    wait_queue_count(ch, q, 2)
    assert ch.queue_purge(q).method.message_count == 2
    assert ch.queue_purge(q).method.message_count == 0


def test_purge_missing(ch, name):
    q = name("q")
    with channel_error(404, no_queue(q)):
        ch.queue_purge(q)


def test_delete_count(ch, name):
    q = name("q")
    ch.queue_declare(q)
    for i in range(4):
        ch.basic_publish("", q, b"%d" % i)
    assert ch.queue_delete(q).method.message_count == 4
    with channel_error(404, no_queue(q)):
        ch.queue_declare(q, passive=True)


def test_delete_missing_is_ok(ch, name):
    """Deleting a queue that does not exist: delete-ok with message_count 0."""
    assert ch.queue_delete(name("q")).method.message_count == 0


def test_delete_if_unused(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q)
    tag = ch.basic_consume(q, lambda *a: None)
    with channel_error(406, "PRECONDITION_FAILED - queue '%s' in vhost '/' in use" % q):
        conn.channel().queue_delete(q, if_unused=True)
    ch.basic_cancel(tag)
    assert ch.queue_delete(q, if_unused=True).method.message_count == 0


def test_delete_if_empty(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"x")
    with channel_error(406, "PRECONDITION_FAILED - queue '%s' in vhost '/' not empty" % q):
        conn.channel().queue_delete(q, if_empty=True)
    drain(ch, q)
    assert ch.queue_delete(q, if_empty=True).method.message_count == 0


def test_delete_with_consumer_and_unacked(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q)
    for i in range(3):
        ch.basic_publish("", q, b"%d" % i)
    m = ch.basic_get(q)[0]
    # ready messages are counted; the unacked one is not
    assert ch.queue_delete(q).method.message_count == 2
    # acking a delivery from a deleted queue is not an error
    ch.basic_ack(m.delivery_tag)
    ch.queue_declare("", exclusive=True)


def test_empty_name_means_last_declared(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    m, _, body = ch.basic_get("", auto_ack=True)
    assert body == b"x" and m.routing_key == q
    ch.queue_bind("", "amq.direct", q)
    ch.basic_publish("amq.direct", q, b"y")
    assert ch.queue_purge("").method.message_count == 1
    assert ch.queue_delete("").method.message_count == 0


@pytest.mark.parametrize("op", ["get", "purge", "bind", "consume"])
def test_empty_name_without_previous_declare(conn, op):
    ch = conn.channel()
    with channel_error(404, "NOT_FOUND - no previously declared queue"):
        if op == "get":
            ch.basic_get("")
        elif op == "purge":
            ch.queue_purge("")
        elif op == "bind":
            ch.queue_bind("", "amq.direct", "k")
        else:
            ch.basic_consume("", lambda *a: None)


def test_reserved_prefix(ch):
    with channel_error(403, "ACCESS_REFUSED - queue name 'amq.it-nope' contains reserved "
                            "prefix 'amq.*'"):
        ch.queue_declare("amq.it-nope")


def test_reserved_prefix_passive_missing(ch):
    with channel_error(404, no_queue("amq.it-nope")):
        ch.queue_declare("amq.it-nope", passive=True)


def test_server_named_queue_redeclare(conn):
    """A server-named queue can be found with a passive declare, but an
    active declare of its amq.gen- name hits the reserved-prefix rule even
    though the queue exists."""
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    assert conn.channel().queue_declare(q, passive=True).method.queue == q
    with channel_error(403, "ACCESS_REFUSED - queue name '%s' contains reserved prefix "
                            "'amq.*'" % q):
        ch.queue_declare(q, exclusive=True)
