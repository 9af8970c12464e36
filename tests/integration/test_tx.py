# SPDX-License-Identifier: MIT
# Transactions: tx.select/commit/rollback; publishes and acks buffered until
# commit, discarded on rollback or channel close; RabbitMQ's errors for
# commit without select and for mixing tx and confirm modes.
import signal

import pika

from helpers import channel_error, queue_counts


def count(ch, q):
    return queue_counts(ch, q)[0]


def test_commit_and_rollback_publishes(conn, ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.tx_select()  # again: harmless
    ch.basic_publish("", q, b"a")
    assert count(ch, q) == 0
    ch.tx_rollback()
    assert count(ch, q) == 0
    ch.basic_publish("", q, b"b")
    ch.basic_publish("", q, b"c", pika.BasicProperties(delivery_mode=2))
    ch.tx_commit()
    assert count(ch, q) == 2
    assert [ch.basic_get(q, auto_ack=True)[2] for _ in range(2)] == [b"b", b"c"]


def test_acks_buffered_until_commit(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    for body in (b"1", b"2", b"3"):
        ch.basic_publish("", q, body)
    ch.tx_select()
    ch.tx_commit()
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    ch.basic_ack(tags[0])
    ch.tx_rollback()
    # The ack was discarded: everything returns to the queue on recover.
    ch.basic_recover(requeue=True)
    assert count(ch, q) == 3
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    ch.basic_ack(tags[1], multiple=True)
    ch.basic_reject(tags[2], requeue=True)
    assert count(ch, q) == 0
    ch.tx_commit()
    assert count(ch, q) == 1
    m, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"3" and m.redelivered


def test_mandatory_return_at_commit(conn, ch):
    rets = []
    ch.add_on_return_callback(lambda _c, m, p, b: rets.append(b))
    ch.tx_select()
    ch.basic_publish("", "no-such-queue-for-tx", b"lost", mandatory=True)
    # A round trip: a return sent before the commit would be dispatched now.
    ch.exchange_declare("amq.direct", "direct", passive=True)
    conn.process_data_events(0)
    assert rets == []
    ch.tx_commit()
    conn.process_data_events(0)
    assert rets == [b"lost"]


def test_close_discards_pending(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"never")
    ch.close()
    ch = conn.channel()
    assert count(ch, q) == 0


def test_commit_without_select(ch):
    with channel_error(406, "PRECONDITION_FAILED - channel is not transactional"):
        ch.tx_commit()


def test_rollback_without_select(ch):
    with channel_error(406, "PRECONDITION_FAILED - channel is not transactional"):
        ch.tx_rollback()


def test_confirm_after_tx(ch):
    ch.tx_select()
    with channel_error(406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode"):
        ch.confirm_delivery()


def test_tx_after_confirm(ch):
    ch.confirm_delivery()
    with channel_error(406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode"):
        ch.tx_select()


def test_unknown_tag_refused_at_once(ch):
    ch.tx_select()
    with channel_error(406, "PRECONDITION_FAILED - unknown delivery tag 7"):
        ch.basic_ack(7)
        ch.tx_commit()


def test_refused_publish_fails_commit(conn, ch):
    """A queue that refuses a committed message (x-overflow reject-publish)
    makes the commit fail; what it accepted stays."""
    q = ch.queue_declare("", exclusive=True,
                         arguments={"x-max-length": 1, "x-overflow": "reject-publish"}).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"1")
    ch.basic_publish("", q, b"2")
    with channel_error(406, "PRECONDITION_FAILED - partial tx completion"):
        ch.tx_commit()
    assert count(conn.channel(), q) == 1


def test_persistent_commit_survives_restart(dedicated_broker, name):
    """commit-ok for a persistent message to a durable queue: it is on disk."""
    b = dedicated_broker()
    q = name("txq")
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(q, durable=True)
    ch.tx_select()
    for i in range(20):
        ch.basic_publish("", q, b"m%d" % i, pika.BasicProperties(delivery_mode=2))
    ch.tx_commit()
    c.close()
    b = dedicated_broker.restart(b, signal.SIGKILL)
    c = b.connect()
    try:
        ch = c.channel()
        assert [ch.basic_get(q, auto_ack=True)[2] for _ in range(20)] == [b"m%d" % i for i in range(20)]
    finally:
        c.close()
