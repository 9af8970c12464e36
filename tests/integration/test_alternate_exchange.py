# SPDX-License-Identifier: MIT
# Alternate exchanges: the alternate-exchange argument (and policy key) takes
# what an exchange cannot route; chains and cycles, exchange-to-exchange
# bindings, a missing alternate, mandatory returns only when nothing at all
# took the message.
import pika

from helpers import channel_error


def returns_of(ch):
    out = []
    ch.add_on_return_callback(lambda _ch, method, props, body: out.append((method.routing_key, body)))
    return out


def get_body(ch, q):
    _, _, body = ch.basic_get(q, auto_ack=True)
    return body


def test_argument_takes_unroutable(conn, ch, name):
    ae, main = name("ae"), name("main")
    ch.exchange_declare(ae, "fanout", auto_delete=True)
    ch.exchange_declare(main, "direct", auto_delete=True, arguments={"alternate-exchange": ae})
    q_main = ch.queue_declare("", exclusive=True).method.queue
    q_ae = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q_main, main, "k")
    ch.queue_bind(q_ae, ae)
    rets = returns_of(ch)
    ch.basic_publish(main, "k", b"routed", mandatory=True)
    ch.basic_publish(main, "other", b"alternate", mandatory=True)
    assert get_body(ch, q_main) == b"routed"
    assert get_body(ch, q_ae) == b"alternate"
    assert get_body(ch, q_main) is None and get_body(ch, q_ae) is None
    # Returns would have arrived before the get replies: dispatch them.
    conn.process_data_events(0)
    assert rets == []


def test_chain_cycle_and_missing(conn, ch, name):
    """main -> ae2 -> main is a cycle: unroutable, returned once. Once a queue
    is bound to ae2 the chain delivers. An alternate that does not exist
    leaves the message unroutable."""
    main, ae2, miss = name("main"), name("ae2"), name("miss")
    ch.exchange_declare(ae2, "fanout", auto_delete=True, arguments={"alternate-exchange": main})
    ch.exchange_declare(main, "direct", auto_delete=True, arguments={"alternate-exchange": ae2})
    ch.exchange_declare(miss, "direct", auto_delete=True, arguments={"alternate-exchange": name("none")})
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, main, "k")
    rets = returns_of(ch)
    ch.basic_publish(main, "cycle", b"1", mandatory=True)
    ch.basic_publish(miss, "missing", b"2", mandatory=True)
    conn.process_data_events(0)
    qa = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(qa, ae2)
    ch.basic_publish(main, "via", b"3", mandatory=True)
    assert get_body(ch, qa) == b"3"
    assert get_body(ch, q) is None
    conn.process_data_events(0)
    assert sorted(rets) == [("cycle", b"1"), ("missing", b"2")]


def test_inner_exchange_alternate(ch, name):
    """Only the exchange that routes nowhere uses its alternate: e1 routes to
    e2 (so not e1's), e2 matches nothing (so e2's)."""
    e1, e2, ae1, ae2 = name("e1"), name("e2"), name("ae1"), name("ae2")
    ch.exchange_declare(e1, "fanout", auto_delete=True, arguments={"alternate-exchange": ae1})
    ch.exchange_declare(e2, "direct", auto_delete=True, arguments={"alternate-exchange": ae2})
    ch.exchange_declare(ae1, "fanout", auto_delete=True)
    ch.exchange_declare(ae2, "fanout", auto_delete=True)
    q1 = ch.queue_declare("", exclusive=True).method.queue
    q2 = ch.queue_declare("", exclusive=True).method.queue
    ch.exchange_bind(e2, e1)
    ch.queue_bind(q1, ae1)
    ch.queue_bind(q2, ae2)
    ch.basic_publish(e1, "k", b"m")
    assert get_body(ch, q2) == b"m"
    assert get_body(ch, q1) is None


def test_alternate_sees_cc(ch, name):
    """The alternate routes with the same keys, CC ones included."""
    ae, main = name("ae"), name("main")
    ch.exchange_declare(ae, "direct", auto_delete=True)
    ch.exchange_declare(main, "direct", auto_delete=True, arguments={"alternate-exchange": ae})
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, ae, "cc-key")
    ch.basic_publish(main, "k", b"m", pika.BasicProperties(headers={"CC": ["cc-key"]}))
    assert get_body(ch, q) == b"m"


def test_argument_must_be_longstr(ch, name):
    x = name("x")
    with channel_error(406, "PRECONDITION_FAILED - invalid type 'signedint' for arg "
                            "'alternate-exchange' in exchange '%s' in vhost '/'" % x):
        ch.exchange_declare(x, "direct", auto_delete=True, arguments={"alternate-exchange": 5})


def test_policy_alternate_argument_wins(mgmt_broker, name):
    """The policy key applies to exchanges without the argument; the argument
    wins over it."""
    pol, pae, aae = name("pol"), name("polae"), name("argae")
    prefix = name("pp")
    api = mgmt_broker.mgmt
    r = api.put("/api/policies/%2F/" + pol, {"pattern": "^" + prefix, "apply-to": "exchanges",
                                              "definition": {"alternate-exchange": pae}})
    assert r.status in (201, 204), r
    c = mgmt_broker.connect()
    try:
        ch = c.channel()
        ch.exchange_declare(pae, "fanout", auto_delete=True)
        ch.exchange_declare(aae, "fanout", auto_delete=True)
        ch.exchange_declare(prefix + "-a", "direct", auto_delete=True, arguments={"alternate-exchange": aae})
        ch.exchange_declare(prefix + "-b", "direct", auto_delete=True)
        q_pol = ch.queue_declare("", exclusive=True).method.queue
        q_arg = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q_pol, pae)
        ch.queue_bind(q_arg, aae)
        ch.basic_publish(prefix + "-a", "k", b"a")
        ch.basic_publish(prefix + "-b", "k", b"b")
        assert get_body(ch, q_arg) == b"a"
        assert get_body(ch, q_pol) == b"b"
        assert get_body(ch, q_pol) is None
    finally:
        c.close()
        api.delete("/api/policies/%2F/" + pol)
