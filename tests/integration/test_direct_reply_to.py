# SPDX-License-Identifier: MIT
# Direct reply-to: a no-ack consumer on the pseudo-queue amq.rabbitmq.reply-to,
# reply_to rewritten to the channel's own name, replies published to that name
# delivered straight to the consumer from any connection, RabbitMQ's errors.
import pika

from helpers import channel_error, wait_for

RT = "amq.rabbitmq.reply-to"


def test_round_trip(broker, conn, ch):
    got = []
    tag = ch.basic_consume(RT, lambda _c, m, p, b: got.append((m, p, b)), auto_ack=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"req", pika.BasicProperties(reply_to=RT, correlation_id="c1"))
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert b == b"req" and p.correlation_id == "c1"
    assert p.reply_to.startswith(RT + ".") and len(p.reply_to) > len(RT) + 16
    get_tag = m.delivery_tag

    c2 = broker.connect()
    try:
        ch2 = c2.channel()
        rets = []
        ch2.add_on_return_callback(lambda _c, m, p, b: rets.append((m.reply_code, m.routing_key, b)))
        ch2.basic_publish("", p.reply_to, b"reply", pika.BasicProperties(correlation_id="c1"))
        ch2.basic_publish("", p.reply_to + "x", b"bad", mandatory=True)
        ch2.basic_publish("", RT + ".nosuchname", b"bad2", mandatory=True)
        ch2.basic_publish("", RT, b"bad3", mandatory=True)

        def reply_and_returns():
            c2.process_data_events(time_limit=0)
            return got and len(rets) == 3
        wait_for(reply_and_returns, conn=conn, what="the reply and 3 returns")
        m, rp, body = got[0]
        assert body == b"reply" and rp.correlation_id == "c1"
        assert m.consumer_tag == tag and m.exchange == "" and m.routing_key == p.reply_to
        assert m.delivery_tag == get_tag + 1 and not m.redelivered
        assert sorted(rets) == sorted([(312, p.reply_to + "x", b"bad"), (312, RT + ".nosuchname", b"bad2"),
                                       (312, RT, b"bad3")])
        # Once cancelled the name routes nowhere.
        ch.basic_cancel(tag)
        ch2.basic_publish("", p.reply_to, b"late", mandatory=True)
        wait_for(lambda: len(rets) == 4, conn=c2, what="the late reply returned")
        assert rets[3] == (312, p.reply_to, b"late")
        conn.process_data_events(0)
        assert len(got) == 1
    finally:
        c2.close()


def test_consumer_must_not_ack(ch):
    with channel_error(406, "PRECONDITION_FAILED - reply consumer cannot acknowledge"):
        ch.basic_consume(RT, lambda *a: None, auto_ack=False)


def test_one_reply_consumer_per_channel(ch):
    ch.basic_consume(RT, lambda *a: None, auto_ack=True, consumer_tag="mine")
    with channel_error(406, "PRECONDITION_FAILED - reply consumer already set"):
        ch.basic_consume(RT, lambda *a: None, auto_ack=True)


def test_publish_without_consumer(ch):
    with channel_error(406, "PRECONDITION_FAILED - fast reply consumer does not exist"):
        ch.basic_publish("", "anything", b"", pika.BasicProperties(reply_to=RT))
        ch.queue_declare("", exclusive=True)


def test_get_is_not_found(ch):
    with channel_error(404, "NOT_FOUND - no queue 'amq.rabbitmq.reply-to' in vhost '/'"):
        ch.basic_get(RT)


def test_declare_pseudo_queue(ch):
    for passive in (True, False):
        ok = ch.queue_declare(RT, passive=passive).method
        assert (ok.queue, ok.message_count, ok.consumer_count) == (RT, 0, 1)


def test_declare_sets_last_queue(ch):
    """The pseudo-queue becomes the channel's "" queue, which get then
    cannot find."""
    ch.queue_declare(RT)
    with channel_error(404, "NOT_FOUND - no queue 'amq.rabbitmq.reply-to' in vhost '/'"):
        ch.basic_get("")


def test_delete_pseudo_queue(ch):
    assert ch.queue_delete(RT).method.message_count == 0
