# SPDX-License-Identifier: MIT
# TLS listeners (warren only: each test starts a warrend with a TLS
# listener, using certificates made here with the openssl CLI, so no key is
# ever committed): pika over TLS, the mechanisms offered, mutual TLS with
# SASL EXTERNAL, refused handshakes (a client certificate from another CA,
# no certificate when one is required, TLS 1.1, TLS 1.2 under tlsv1.3), the
# default TLS 1.2 suites, certificates reloaded on SIGHUP, the start-up
# errors for bad TLS files, and the input cap under a TLS flood.
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import warnings

import pika
import pytest

import amqp_raw as raw
from conftest import Http
from helpers import DEADLINE, channel_error, default_config, free_port, wait_for

LOGIN_REFUSED_EXTERNAL = ("ACCESS_REFUSED - Login was refused using authentication mechanism "
                          "EXTERNAL. For details see the broker logfile.")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


class Certs:
    """A throwaway PKI in a temp dir: a CA, a server certificate for
    localhost/127.0.0.1, client certificates (CN tlsuser, CN nobody, no CN)
    and a second CA with a client certificate of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="warren-tls-")
        self._ca("ca")
        self._ca("rogue-ca")
        self._leaf("server", "ca", "/CN=localhost",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        client_ext = "extendedKeyUsage=clientAuth\n"
        self._leaf("client", "ca", "/O=warren/CN=tlsuser", client_ext)
        self._leaf("nobody", "ca", "/O=warren/CN=nobody", client_ext)
        self._leaf("no-cn", "ca", "/O=warren/OU=no common name", client_ext)
        self._leaf("rogue", "rogue-ca", "/O=warren/CN=tlsuser", client_ext)
        self._leaf("other-server", "ca", "/CN=localhost",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        subprocess.run(["openssl"] + list(args), cwd=self.dir, check=True, capture_output=True)

    def _key(self, name):
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", name + ".key")

    def _ca(self, name):
        self._key(name)
        self._openssl("req", "-x509", "-new", "-key", name + ".key", "-out", name + ".pem",
                      "-days", "2", "-subj", "/CN=warren test " + name)

    def _leaf(self, name, ca, subject, ext):
        self._key(name)
        with open(self.path(name + ".ext"), "w") as f:
            f.write(ext)
        self._openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj", subject)
        self._openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                      "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                      "-extfile", name + ".ext")

    def client_context(self, cert=None, ca="ca"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.path(ca + ".pem"))
        if cert:
            ctx.load_cert_chain(self.path(cert + ".pem"), self.path(cert + ".key"))
        return ctx


@pytest.fixture(scope="module")
def certs():
    c = Certs()
    yield c
    shutil.rmtree(c.dir, ignore_errors=True)


def tls_config(certs, port, **tls):
    settings = {"certfile": certs.path("server.pem"), "keyfile": certs.path("server.key"),
                "cacertfile": certs.path("ca.pem")}
    settings.update(tls)
    return {"tls_listeners": [{"address": "127.0.0.1", "port": port}],
            "tls": settings,
            "users": [{"name": "guest", "password": "guest", "vhosts": ["/"]},
                      {"name": "tlsuser", "password_hash": "", "vhosts": ["/"]}]}


def start_tls(dedicated_broker, certs, **tls):
    """A warrend with a TLS listener beside its plain one; (broker, port)."""
    port = free_port()
    return dedicated_broker(tls_config(certs, port, **tls)), port


class TlsRaw(raw.RawConnection):
    """amqp_raw's connection over TLS."""

    def __init__(self, port, context, timeout=10.0):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(s, server_hostname="localhost")
        self.buf = b""
        self.tune = None
        self.server_properties = None
        self.mechanisms = None


def external_start_ok():
    return raw.method_frame(0, raw.CONNECTION_START_OK, [
        ("T", {"product": "warren-tests-raw", "capabilities": {"authentication_failure_close": True}}),
        ("s", "EXTERNAL"), ("S", b""), ("s", "en_US")])


def tls_params(port, context, **kw):
    kw.setdefault("connection_attempts", 1)
    kw.setdefault("socket_timeout", 5)
    kw.setdefault("heartbeat", 0)
    kw.setdefault("credentials", pika.PlainCredentials("guest", "guest"))
    return pika.ConnectionParameters(host="127.0.0.1", port=port,
                                     ssl_options=pika.SSLOptions(context, "localhost"), **kw)


def refused_handshake(port, context):
    """Runs a TLS client up to connection.start; returns the ssl.SSLError
    that ended it. With TLS 1.3 a client learns that its certificate was
    refused only on its first read, so the error may come there."""
    try:
        c = TlsRaw(port, context)
    except ssl.SSLError as e:
        return e
    try:
        c.send(raw.PROTOCOL_HEADER)
        f = c.read_frame()
    except ssl.SSLError as e:
        return e
    except (raw.Closed, ConnectionError) as e:
        return e
    finally:
        c.close()
    raise AssertionError("the TLS handshake succeeded and the broker answered %r" % f)


def log_has(b, text):
    wait_for(lambda: text in b.log(), DEADLINE, "warrend to log %r" % text)


def test_pika_over_tls(dedicated_broker, certs, name):
    """pika with a CA-verified TLS connection: PLAIN login, a round trip,
    and the log names the negotiated protocol."""
    b, port = start_tls(dedicated_broker, certs)
    c = pika.BlockingConnection(tls_params(port, certs.client_context()))
    ch = c.channel()
    q = name("tls")
    ch.queue_declare(q, exclusive=True)
    ch.basic_publish("", q, b"over tls")
    m, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"over tls"
    c.close()
    log_has(b, "TLS handshake done: TLSv1.3 ")
    # The plain listener still serves plain clients.
    b.connect().close()


def test_tls_connection_in_management_api(dedicated_broker, certs):
    """/api/connections shows a TLS connection's session in RabbitMQ's
    (Erlang ssl) names; the certificate fields stay null."""
    port, mgmt_port = free_port(), free_port()
    cfg = tls_config(certs, port)
    cfg["users"][0]["tags"] = ["administrator"]
    cfg["management"] = {"address": "127.0.0.1", "port": mgmt_port}
    dedicated_broker(cfg)
    c = pika.BlockingConnection(tls_params(port, certs.client_context()))
    try:
        api = Http("127.0.0.1", mgmt_port)
        conns = wait_for(lambda: (lambda r: r.status == 200 and r.json)(api.get("/api/connections")),
                         what="the connection to be listed")
        fields = {k: conns[0][k] for k in ("ssl", "ssl_protocol", "ssl_key_exchange", "ssl_cipher",
                                           "ssl_hash", "peer_cert_subject")}
        assert fields == {"ssl": True, "ssl_protocol": "tlsv1.3", "ssl_key_exchange": "any",
                          "ssl_cipher": "aes_256_gcm", "ssl_hash": "sha384", "peer_cert_subject": None}
    finally:
        c.close()


def test_probed_port_is_bound_last(dedicated_broker, certs):
    """Start-up probes (this suite's, a deployment's) connect to the first
    plain listener, and the kernel completes that connection as soon as the
    port listens, before warrend's loop runs: every other port must already
    be bound by then. A TLS client here was once refused right after the
    probe got through."""
    b, port = start_tls(dedicated_broker, certs)
    lines = [line for line in b.log().splitlines() if "listening on" in line]
    assert [line.split("listening on ")[1] for line in lines] == [
        "127.0.0.1:%d (TLS)" % port, "127.0.0.1:%d" % b.port]


def test_mechanisms_plain_and_tls(dedicated_broker, certs):
    """EXTERNAL is offered on TLS connections only, after PLAIN and AMQPLAIN
    (RabbitMQ 3.10 with rabbitmq_auth_mechanism_ssl)."""
    b, port = start_tls(dedicated_broker, certs)
    with TlsRaw(port, certs.client_context()) as t:
        f = t.start()
    assert f.args[3] == b"PLAIN AMQPLAIN EXTERNAL"
    with b.raw() as r:
        f = r.start()
    assert f.args[3] == b"PLAIN AMQPLAIN"


def test_mutual_tls_external(dedicated_broker, certs, name):
    """verify_peer and SASL EXTERNAL with pika's ExternalCredentials: the
    user is the certificate's CN (user_id must match it)."""
    b, port = start_tls(dedicated_broker, certs, verify="verify_peer", fail_if_no_peer_cert=True)
    c = pika.BlockingConnection(tls_params(port, certs.client_context("client"),
                                           credentials=pika.credentials.ExternalCredentials()))
    ch = c.channel()
    ch.confirm_delivery()
    q = name("ext")
    ch.queue_declare(q, exclusive=True)
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="tlsuser"))
    with channel_error(406, "PRECONDITION_FAILED - user_id property set to 'guest' but "
                            "authenticated user was 'tlsuser'"):
        ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="guest"))
    c.close()
    log_has(b, "user 'tlsuser' authenticated and granted access to vhost '/'")


@pytest.mark.parametrize("cert,why", [
    ("nobody", "EXTERNAL login refused: user 'nobody' - invalid credentials"),
    ("no-cn", "EXTERNAL login refused: no name found"),
    (None, "EXTERNAL login refused: connection peer presented no TLS (x.509) certificate"),
])
def test_external_refused(dedicated_broker, certs, cert, why):
    """EXTERNAL with a certificate of an unknown user, one without a CN, or
    none at all: 403 as for a wrong password, the reason in the log."""
    b, port = start_tls(dedicated_broker, certs, verify="verify_peer")
    with TlsRaw(port, certs.client_context(cert)) as t:
        t.start()
        t.send(external_start_ok())
        code, text, cls, mth = t.expect_connection_close()
    assert (code, text, cls, mth) == (403, LOGIN_REFUSED_EXTERNAL, 0, 0)
    log_has(b, why)


def test_external_without_verification(dedicated_broker, certs):
    """verify_none: the server asks for no certificate, so EXTERNAL has no
    identity to use, even from a client that has one."""
    b, port = start_tls(dedicated_broker, certs)
    with TlsRaw(port, certs.client_context("client")) as t:
        t.start()
        t.send(external_start_ok())
        assert t.expect_connection_close()[:2] == (403, LOGIN_REFUSED_EXTERNAL)
    log_has(b, "EXTERNAL login refused: connection peer presented no TLS (x.509) certificate")


def test_external_on_plain_listener(dedicated_broker, certs):
    """EXTERNAL where it is not offered: RabbitMQ's command_invalid during
    the handshake, a silent close."""
    b, _ = start_tls(dedicated_broker, certs)
    with b.raw() as r:
        r.start()
        r.send(external_start_ok())
        assert r.wait_closed(timeout=DEADLINE) == b""
    log_has(b, "invalid authentication mechanism 'EXTERNAL'")


def test_certificate_from_another_ca_refused(dedicated_broker, certs):
    """A client certificate that does not chain to tls.cacertfile fails the
    handshake; the client never sees connection.start."""
    b, port = start_tls(dedicated_broker, certs, verify="verify_peer")
    e = refused_handshake(port, certs.client_context("rogue"))
    assert isinstance(e, (ssl.SSLError, raw.Closed, ConnectionError)), e
    log_has(b, "certificate verify failed")


def test_no_client_certificate_refused(dedicated_broker, certs):
    b, port = start_tls(dedicated_broker, certs, verify="verify_peer", fail_if_no_peer_cert=True)
    refused_handshake(port, certs.client_context())
    log_has(b, "peer did not return a certificate")


def old_client(certs, version):
    """A client that offers nothing newer than `version`. The local OpenSSL
    refuses TLS 1.1 at its default security level, so the client's is 0:
    the refusal must come from warren."""
    ctx = certs.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = version
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def test_tls11_refused(dedicated_broker, certs):
    b, port = start_tls(dedicated_broker, certs)
    e = refused_handshake(port, old_client(certs, ssl.TLSVersion.TLSv1_1))
    assert isinstance(e, ssl.SSLError), e
    assert "PROTOCOL_VERSION" in str(e) or "protocol version" in str(e), e
    log_has(b, "unsupported protocol")


def test_tls12_allowed_by_default(dedicated_broker, certs):
    b, port = start_tls(dedicated_broker, certs)
    with TlsRaw(port, old_client(certs, ssl.TLSVersion.TLSv1_2)) as t:
        assert t.sock.version() == "TLSv1.2"
        t.handshake()
    log_has(b, "TLS handshake done: TLSv1.2 ")


def test_min_version_tls13(dedicated_broker, certs):
    b, port = start_tls(dedicated_broker, certs, min_version="tlsv1.3")
    e = refused_handshake(port, old_client(certs, ssl.TLSVersion.TLSv1_2))
    assert isinstance(e, ssl.SSLError), e
    with TlsRaw(port, certs.client_context()) as t:
        t.handshake()


def test_ciphers(dedicated_broker, certs):
    """tls.ciphers limits TLS 1.2 to the listed suites."""
    b, port = start_tls(dedicated_broker, certs, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    ctx = old_client(certs, ssl.TLSVersion.TLSv1_2)
    with TlsRaw(port, ctx) as t:
        assert t.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
        t.handshake()
    ctx = old_client(certs, ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:@SECLEVEL=0")
    assert isinstance(refused_handshake(port, ctx), ssl.SSLError)


@pytest.mark.parametrize("suite", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                                   "ECDHE-ECDSA-AES128-SHA256"])
def test_default_ciphers_refuse_cbc(dedicated_broker, certs, suite):
    """Without tls.ciphers, TLS 1.2 offers only ECDHE with an AEAD (AES-GCM,
    ChaCha20-Poly1305): a client offering nothing but a CBC suite (SHA-1 or
    SHA-2 MAC) is refused. (The test certificates are ECDSA P-256, so the
    ECDHE-RSA suites could never be chosen here.)"""
    b, port = start_tls(dedicated_broker, certs)
    ctx = old_client(certs, ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(suite + ":@SECLEVEL=0")
    e = refused_handshake(port, ctx)
    assert isinstance(e, ssl.SSLError), e
    log_has(b, "no shared cipher")


@pytest.mark.parametrize("suite", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                                   "ECDHE-ECDSA-CHACHA20-POLY1305"])
def test_default_ciphers_accept_aead(dedicated_broker, certs, suite):
    b, port = start_tls(dedicated_broker, certs)
    ctx = old_client(certs, ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(suite)
    with TlsRaw(port, ctx) as t:
        assert t.sock.cipher()[0] == suite
        t.handshake()


def served_certificate(port, certs):
    """The DER certificate a new TLS connection is given."""
    with TlsRaw(port, certs.client_context()) as t:
        return t.sock.getpeercert(binary_form=True)


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def install(certs, name, into):
    """Puts certificate `name` and its key at the paths the broker reads,
    each replaced in one rename as certificate tools do."""
    for ext in ("pem", "key"):
        tmp = os.path.join(into, "new." + ext)
        shutil.copyfile(certs.path("%s.%s" % (name, ext)), tmp)
        os.replace(tmp, os.path.join(into, "server." + ext))


def test_sighup_reloads_certificates(dedicated_broker, certs):
    """Certificate rotation: after SIGHUP new connections get the files as
    they are now, while a running session goes on; a file that does not load
    leaves the current certificate in use, with an error in the log."""
    d = tempfile.mkdtemp(prefix="warren-rotate-")
    try:
        install(certs, "server", d)
        b, port = start_tls(dedicated_broker, certs, certfile=os.path.join(d, "server.pem"),
                            keyfile=os.path.join(d, "server.key"))
        assert served_certificate(port, certs) == pem_to_der(certs.path("server.pem"))
        with TlsRaw(port, certs.client_context()) as running:
            running.handshake()
            install(certs, "other-server", d)
            b.proc.send_signal(signal.SIGHUP)
            log_has(b, "TLS certificates reloaded from '%s'" % os.path.join(d, "server.pem"))
            assert served_certificate(port, certs) == pem_to_der(certs.path("other-server.pem"))
            running.open_channel(1)

        with open(os.path.join(d, "server.pem"), "w") as f:
            f.write("not a certificate\n")
        b.proc.send_signal(signal.SIGHUP)
        log_has(b, "TLS certificates not reloaded, the current ones stay in use: tls.certfile: "
                   "no PEM certificate chain in '%s'" % os.path.join(d, "server.pem"))
        assert served_certificate(port, certs) == pem_to_der(certs.path("other-server.pem"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tls_handshake_timeout(dedicated_broker, certs):
    """limits.handshake_timeout also covers the TLS handshake: a client that
    connects to a TLS listener and says nothing is dropped."""
    port = free_port()
    cfg = tls_config(certs, port)
    cfg["limits"] = {"handshake_timeout": 500}
    b = dedicated_broker(cfg)
    with raw.RawConnection("127.0.0.1", port) as silent:
        assert silent.wait_closed(timeout=DEADLINE) == b""
    log_has(b, "handshake timeout")


def run_warrend(binary, cfg):
    d = tempfile.mkdtemp(prefix="warren-tlscfg-")
    path = os.path.join(d, "warren.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    try:
        p = subprocess.run([binary, "--config", path], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=DEADLINE)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return p.returncode, p.stderr.decode(errors="replace"), path


BAD_TLS = {
    "missing certfile": ({"certfile": "/nonexistent/server.pem"},
                         "tls.certfile: cannot read '/nonexistent/server.pem': No such file or directory"),
    "missing keyfile": ({"keyfile": "/nonexistent/server.key"},
                        "tls.keyfile: cannot read '/nonexistent/server.key': No such file or directory"),
    "key of another certificate": ({"keyfile": "{dir}/client.key"},
                                   "tls.keyfile: cannot use '{dir}/client.key' as the private key of "
                                   "'{dir}/server.pem': key values mismatch"),
    "key that is a certificate": ({"keyfile": "{dir}/server.pem"},
                                  "tls.keyfile: cannot use '{dir}/server.pem' as the private key of "
                                  "'{dir}/server.pem': "),
    "certificate that is a key": ({"certfile": "{dir}/server.key"},
                                  "tls.certfile: no PEM certificate chain in '{dir}/server.key': "),
    "missing CA bundle": ({"cacertfile": "/nonexistent/ca.pem"},
                          "tls.cacertfile: cannot read '/nonexistent/ca.pem': No such file or directory"),
    "no such cipher": ({"ciphers": "NOPE"}, "tls.ciphers: no usable cipher in 'NOPE': "),
    "verify_peer without a CA": ({"verify": "verify_peer", "cacertfile": None},
                                 "tls.verify: verify_peer needs tls.cacertfile"),
    "unknown verify": ({"verify": "verify_always"},
                       "tls.verify: expected 'verify_none' or 'verify_peer', got 'verify_always'"),
    "unknown min_version": ({"min_version": "tlsv1.1"},
                            "tls.min_version: expected 'tlsv1.2' or 'tlsv1.3', got 'tlsv1.1'"),
    "fail_if_no_peer_cert without verify_peer": (
        {"fail_if_no_peer_cert": True},
        "tls.fail_if_no_peer_cert: needs tls.verify set to verify_peer"),
    "no certificate at all": ({"certfile": None, "keyfile": None},
                              "tls_listeners: TLS listeners need tls.certfile and tls.keyfile"),
}


@pytest.mark.parametrize("case", sorted(BAD_TLS))
def test_bad_tls_config(warrend_binary, certs, case):
    """Bad or missing TLS files and settings: exit status 2 before anything
    listens, with a line naming the key and the file."""
    change, line = BAD_TLS[case]
    cfg = default_config(free_port())
    cfg.update(tls_config(certs, free_port()))
    for k, v in change.items():
        if v is None:
            del cfg["tls"][k]
        else:
            cfg["tls"][k] = v.replace("{dir}", certs.dir) if isinstance(v, str) else v
    status, err, path = run_warrend(warrend_binary, cfg)
    assert status == 2, (status, err)
    want = "%s: %s" % (path, line.replace("{dir}", certs.dir))
    assert want in err, "expected %r in stderr:\n%s" % (want, err)


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


def test_tls_input_flood_is_capped(dedicated_broker, certs, monkeypatch):
    """64 MiB of heartbeats (the most frames per octet) as fast as the client
    can encrypt them: the broker's peak memory does not follow the flood.
    Input is handled as it is read, and the TLS bufferevent stops reading at
    the input high watermark whenever it is not."""
    # Under ASan, freed buffers sit in its quarantine instead of being reused,
    # which would make the peak follow the flood: keep the quarantine small.
    monkeypatch.setenv("ASAN_OPTIONS",
                       (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":"))
    b, port = start_tls(dedicated_broker, certs)
    chunk = raw.heartbeat_frame() * (1 << 17)
    with TlsRaw(port, certs.client_context()) as t:
        t.handshake()
        before = vm_hwm_kb(b.proc.pid)
        for _ in range(64):
            t.send(chunk)
        # A round trip after the flood: everything before it was handled.
        t.open_channel(1)
    grown_mb = (vm_hwm_kb(b.proc.pid) - before) / 1024.0
    assert grown_mb < 16, "peak RSS grew by %.1f MiB during a 64 MiB flood" % grown_mb
