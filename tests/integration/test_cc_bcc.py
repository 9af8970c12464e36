# SPDX-License-Identifier: MIT
# Sender-selected distribution: the CC and BCC headers (arrays of longstr)
# add routing keys; consumers see CC but not BCC; each queue gets a message
# once; non-array values close the channel with RabbitMQ's text.
import pika

from helpers import channel_error


def get(ch, q):
    m, p, b = ch.basic_get(q, auto_ack=True)
    return (m, p, b) if m is not None else None


def test_cc_and_bcc_route_once_each(ch):
    q1, q2, q3 = (ch.queue_declare("", exclusive=True).method.queue for _ in range(3))
    headers = {"CC": [q2, q1], "BCC": [q3, q2], "other": 1}
    ch.basic_publish("", q1, b"x", pika.BasicProperties(headers=headers))
    for q in (q1, q2, q3):
        m, p, b = get(ch, q)
        assert b == b"x" and m.routing_key == q1 and m.exchange == ""
        assert p.headers == {"CC": [q2, q1], "other": 1}
        assert get(ch, q) is None


def test_many_keys(ch):
    """More CC and BCC keys than warren keeps inline: every queue still gets
    one copy, duplicates and non-strings included."""
    qs = [ch.queue_declare("", exclusive=True).method.queue for _ in range(12)]
    cc = qs[1:6] + [7]
    ch.basic_publish("", qs[0], b"many", pika.BasicProperties(headers={"CC": cc, "BCC": qs[6:] + qs[:2]}))
    for q in qs:
        m, p, b = get(ch, q)
        assert (b, m.routing_key, p.headers) == (b"many", qs[0], {"CC": cc})
        assert get(ch, q) is None


def test_cc_on_topic_exchange(ch, name):
    x = name("x")
    ch.exchange_declare(x, "topic", auto_delete=True)
    qa = ch.queue_declare("", exclusive=True).method.queue
    qb = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(qa, x, "a.*")
    ch.queue_bind(qb, x, "b.#")
    ch.basic_publish(x, "none", b"m", pika.BasicProperties(headers={"BCC": ["a.1", "b.2.3"]}))
    ma, pa, _ = get(ch, qa)
    mb, pb, _ = get(ch, qb)
    assert ma.routing_key == mb.routing_key == "none"
    # Only BCC: an empty headers table is left.
    assert pa.headers == {} and pb.headers == {}


def test_non_longstr_elements_ignored(conn, ch):
    q2 = ch.queue_declare("", exclusive=True).method.queue
    rets = []
    ch.add_on_return_callback(lambda *a: rets.append(a))
    ch.basic_publish("", "no-such-queue", b"m", pika.BasicProperties(headers={"CC": [1, q2, b"zz"]}),
                     mandatory=True)
    m, p, _ = get(ch, q2)
    assert m.routing_key == "no-such-queue"
    assert p.headers["CC"][1] == q2
    conn.process_data_events(0)
    assert rets == []


def test_cc_must_be_array(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_error(406, 'PRECONDITION_FAILED - invalid message: '
                            '{unacceptable_type_in_header,"CC",longstr}'):
        ch.basic_publish("", q, b"m", pika.BasicProperties(headers={"CC": "abc"}))
        ch.basic_get(q)


def test_bcc_must_be_array(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_error(406, 'PRECONDITION_FAILED - invalid message: '
                            '{unacceptable_type_in_header,"BCC",signedint}'):
        ch.basic_publish("", q, b"m", pika.BasicProperties(headers={"BCC": 5}))
        ch.basic_get(q)
