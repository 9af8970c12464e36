# SPDX-License-Identifier: MIT
# The management API over HTTPS ("management": {"tls": true}, the
# certificate of the "tls" object, as RabbitMQ's management.ssl): clients
# (http.client, curl) that trust the CA get /api/overview, plain HTTP and
# clients trusting another CA are refused, the overview names the listener
# "https", and a key file that does not load stops the start. warren only: it starts
# warrends with certificates made by test_tls.Certs.
import base64
import http.client
import json
import shutil
import socket
import ssl
import subprocess

import pytest

from helpers import free_port, wait_for
from test_tls import Certs  # noqa: F401 (the certs fixture needs it)
from test_tls import certs  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def https_config(certs, port, **management):
    mgmt = {"address": "127.0.0.1", "port": port, "tls": True}
    mgmt.update(management)
    return {"management": mgmt,
            "tls": {"certfile": certs.path("server.pem"), "keyfile": certs.path("server.key")},
            "users": [{"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]}]}


def https_get(port, path, context):
    c = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
    try:
        c.request("GET", path, headers={"Authorization": AUTH})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


@pytest.fixture
def https_broker(dedicated_broker, certs):
    port = free_port()
    b = dedicated_broker(https_config(certs, port))
    b.https_port = port

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(up, what="the HTTPS listener")
    return b


def test_overview_over_https_with_the_ca(https_broker, certs):
    status, overview = https_get(https_broker.https_port, "/api/overview", certs.client_context())
    assert status == 200
    listeners = [l for l in overview["listeners"] if l["port"] == https_broker.https_port]
    assert [(l["protocol"], l["ip_address"]) for l in listeners] == [("https", "127.0.0.1")]


def test_curl_with_the_ca(https_broker, certs):
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    p = subprocess.run(["curl", "-sS", "--fail", "--cacert", certs.path("ca.pem"), "-u", "guest:guest",
                        "https://localhost:%d/api/whoami" % https_broker.https_port],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["name"] == "guest"


def test_plain_http_to_the_https_port_fails(https_broker, certs):
    c = http.client.HTTPConnection("127.0.0.1", https_broker.https_port, timeout=10)
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            c.request("GET", "/api/overview", headers={"Authorization": AUTH})
            c.getresponse()
    finally:
        c.close()
    # The broker still serves HTTPS afterwards.
    assert https_get(https_broker.https_port, "/api/overview", certs.client_context())[0] == 200


def test_a_client_trusting_another_ca_is_refused(https_broker, certs):
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(https_broker.https_port, "/api/overview", certs.client_context(ca="rogue-ca"))


def test_unreadable_key_stops_the_start(warrend_binary, certs, tmp_path):
    cfg = https_config(certs, free_port())
    cfg["tls"]["keyfile"] = str(tmp_path / "missing.key")
    path = tmp_path / "warren.json"
    path.write_text(json.dumps(cfg))
    p = subprocess.run([warrend_binary, "--check-config", str(path)], capture_output=True, text=True,
                       timeout=30, cwd=str(tmp_path))
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == "%s: tls.keyfile: cannot read '%s': No such file or directory\n" % (
        path, cfg["tls"]["keyfile"])
