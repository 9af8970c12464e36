# SPDX-License-Identifier: MIT
# A real warren cluster for the integration tests: separate warrend processes
# on loopback, each with its own data directory kept across restarts, and
# optionally a fault-injecting TCP proxy on every peer link (each node's file
# lists its peers at their proxies, as the cluster config allows), so a test
# can kill -9, SIGSTOP, restart and partition nodes. Every wait is a
# condition with a deadline.
import os
import selectors
import signal
import socket
import threading

import pika.exceptions as pex

from conftest import Http, start_warrend
from helpers import connect, free_port_below_ephemeral, wait_for

SECRET = b"correct horse battery staple, 32+ bytes"
# Ports handed to nodes so far: a node's ports are chosen before it binds
# them, so a later pick must not return one a node has not bound yet.
_handed_out = set()


def node_port():
    """A free loopback port below the ephemeral range, never handed out before in this process."""
    while True:
        port = free_port_below_ephemeral()
        if port not in _handed_out:
            _handed_out.add(port)
            return port
# Down after 4 missed 500 ms heartbeats; back within the 5 s back-off cap.
DEADLINE = 20.0


def attempt(node, fn):
    """Runs fn(channel) on a new connection to node; the broker's error, or None."""
    conn = node.connect()
    try:
        fn(conn.channel())
        return None
    except (pex.ChannelClosedByBroker, pex.ConnectionClosedByBroker) as e:
        return e
    finally:
        if conn.is_open:
            conn.close()


class FaultProxy:
    """A TCP proxy on a loopback port in front of target_port, run by one
    thread. Modes: "pass" (bytes flow), "cut" (connections closed, new ones
    accepted and closed at once: a reset link), "drop" (connections stay
    open and every byte is discarded both ways: a silent partition that
    only heartbeats detect)."""

    OUT_MAX = 4 << 20  # a side stops being read while the other owes this much

    def __init__(self, target_port):
        self.target_port = target_port
        self.mode = "pass"
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        # Bound at once, so any free port does: one of the ephemeral range
        # cannot be a node's port chosen but not yet bound.
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._pairs = {}  # socket -> its other end
        self._out = {}  # socket -> bytes waiting to be written to it
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def set_mode(self, mode):
        assert mode in ("pass", "cut", "drop"), mode
        with self._lock:
            self.mode = mode
        self._wake_w.send(b"x")

    def close(self):
        self._stop = True
        self._wake_w.send(b"x")
        self._thread.join(5)
        for s in list(self._pairs):
            s.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drop_pair(self, s):
        other = self._pairs.pop(s, None)
        for x in (s, other):
            if x is None:
                continue
            self._pairs.pop(x, None)
            self._out.pop(x, None)
            try:
                self._sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _accept(self):
        try:
            c, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self.mode == "cut":
            c.close()
            return
        try:
            t = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
        except OSError:
            c.close()
            return
        for s in (c, t):
            s.setblocking(False)
            self._out[s] = bytearray()
            self._sel.register(s, selectors.EVENT_READ, "data")
        self._pairs[c], self._pairs[t] = t, c

    def _interest(self, s):
        """Read from s unless its peer's output is over the bound; write to s while it has output."""
        other = self._pairs[s]
        ev = selectors.EVENT_READ if len(self._out[other]) < self.OUT_MAX else 0
        if self._out[s]:
            ev |= selectors.EVENT_WRITE
        try:
            if ev:
                self._sel.modify(s, ev, "data")
            else:
                self._sel.unregister(s)
        except KeyError:
            if ev:
                self._sel.register(s, ev, "data")

    def _readable(self, s):
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_pair(s)
            return
        if self.mode == "drop":
            return
        other = self._pairs[s]
        self._out[other] += data
        self._interest(s)
        self._interest(other)

    def _writable(self, s):
        try:
            n = s.send(self._out[s])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop_pair(s)
            return
        del self._out[s][:n]
        self._interest(s)
        self._interest(self._pairs[s])

    def _run(self):
        while not self._stop:
            for key, ev in self._sel.select(0.5):
                s = key.fileobj
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._wake_r.recv(4096)
                else:
                    if ev & selectors.EVENT_WRITE and s in self._pairs:
                        self._writable(s)
                    if ev & selectors.EVENT_READ and s in self._pairs:
                        self._readable(s)
            if self.mode == "cut":
                for s in list(self._pairs):
                    self._drop_pair(s)


class Node:
    def __init__(self, node_name):
        self.name = node_name
        self.peer_port = node_port()
        self.mgmt_port = node_port()
        self.amqp_port = node_port()
        self.prometheus_port = node_port()
        self.broker = None

    def http(self):
        return Http("127.0.0.1", self.mgmt_port)

    def connect(self, **kw):
        return connect("127.0.0.1", self.amqp_port, **kw)

    def nodes(self):
        r = self.http().get("/api/nodes")
        assert r.status == 200, r
        return {n["name"]: n for n in r.json}

    def running(self):
        """The other nodes and whether each is up, as this node sees them."""
        return {k: v["running"] for k, v in self.nodes().items() if k != self.name}

    def alive(self):
        return self.broker is not None and self.broker.proc.poll() is None

    def log(self):
        return self.broker.log()


class Cluster:
    """Nodes n1..nN. With proxies, node a reaches node b through
    self.proxies[(a, b)]; partition() and heal() switch them."""

    def __init__(self, tmp_path, names=("n1", "n2", "n3"), proxies=False, extra=None):
        self.tmp = tmp_path
        self.extra = extra or {}
        self.nodes = {n: Node(n) for n in names}
        self.proxies = {}
        if proxies:
            for a in names:
                for b in names:
                    if a != b:
                        self.proxies[(a, b)] = FaultProxy(self.nodes[b].peer_port)

    def peer_port(self, a, b):
        """The port node a dials to reach node b."""
        p = self.proxies.get((a, b))
        return p.port if p else self.nodes[b].peer_port

    def section(self, node, cluster_name="warren", secret=SECRET, tls=False, peer_host="127.0.0.1"):
        path = self.tmp / ("%s.secret" % node.name)
        path.write_bytes(secret + b"\n")
        os.chmod(path, 0o600)
        return {"name": cluster_name, "node": node.name, "secret_file": str(path),
                "listen": {"address": "127.0.0.1", "port": node.peer_port},
                "nodes": [{"name": n.name, "address": "127.0.0.1" if n is node else peer_host,
                           "port": node.peer_port if n is node else self.peer_port(node.name, n.name)}
                          for n in self.nodes.values()],
                **({"tls": True} if tls else {})}

    def start(self, node_name, config=None, **kw):
        """Starts the node (again, on its data directory, after a stop or a
        kill); config: this node's own settings on top of the cluster's."""
        node = self.nodes[node_name]
        if node.broker is not None:
            assert not node.alive(), "%s is running" % node_name
            node.broker = start_warrend(raw_config=node.broker.config, workdir=node.broker.workdir)
            return node
        extra = {"cluster": self.section(node, **kw),
                 "listeners": [{"address": "127.0.0.1", "port": node.amqp_port}],
                 "management": {"address": "127.0.0.1", "port": node.mgmt_port},
                 "prometheus": {"address": "127.0.0.1", "port": node.prometheus_port},
                 "users": [{"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]}]}
        extra.update(self.extra)
        extra.update(config or {})
        node.broker = start_warrend(extra_config=extra)
        return node

    def start_all(self):
        for n in self.nodes:
            self.start(n)

    def kill(self, node_name):
        """kill -9, and wait for the process to be gone."""
        b = self.nodes[node_name].broker
        b.proc.send_signal(signal.SIGCONT)
        b.proc.kill()
        b.proc.wait()

    def kill_all(self):
        """kill -9 to every running node at once, then waits for them all to be gone."""
        live = [n.broker.proc for n in self.nodes.values() if n.alive()]
        for proc in live:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        for proc in live:
            proc.wait()

    def stop(self, node_name):
        """SIGTERM; asserts a clean exit."""
        b = self.nodes[node_name].broker
        b.proc.send_signal(signal.SIGCONT)
        b.stopped = False
        assert b.stop() == 0, b.log()

    def pause(self, node_name):
        self.nodes[node_name].broker.proc.send_signal(signal.SIGSTOP)

    def resume(self, node_name):
        self.nodes[node_name].broker.proc.send_signal(signal.SIGCONT)

    def partition(self, side_a, side_b, mode="cut"):
        """Cuts every peer link between a node of side_a and one of side_b."""
        for a in side_a:
            for b in side_b:
                self.proxies[(a, b)].set_mode(mode)
                self.proxies[(b, a)].set_mode(mode)

    def heal(self):
        for p in self.proxies.values():
            p.set_mode("pass")

    def stop_all(self):
        for n in self.nodes.values():
            if n.alive():
                n.broker.proc.send_signal(signal.SIGCONT)
                assert n.broker.stop() == 0, n.log()
        for p in self.proxies.values():
            p.close()

    def wait_running(self, observer, expected, timeout=DEADLINE):
        node = self.nodes[observer]
        wait_for(lambda: node.running() == expected, timeout=timeout, what="%s to see %s" % (observer, expected))

    def wait_all_up(self, timeout=DEADLINE):
        """Every running node sees every other running node up."""
        live = [n for n in self.nodes if self.nodes[n].alive()]
        for n in live:
            want = {m: self.nodes[m].alive() for m in self.nodes if m != n}
            self.wait_running(n, want, timeout)
