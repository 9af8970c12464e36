# SPDX-License-Identifier: MIT
# Runs the librabbitmq (rabbitmq-c) clients built from tests/integration/c.
# WARREN_C_CLIENTS names their build directory (meson sets it); without it
# these tests skip.
import os
import subprocess

import pytest

CLIENTS = ["roundtrip", "confirms", "get_qos"]


@pytest.fixture
def c_clients():
    d = os.environ.get("WARREN_C_CLIENTS")
    if not d:
        pytest.skip("WARREN_C_CLIENTS is not set (build with meson to get the C clients)")
    return d


@pytest.mark.parametrize("client", CLIENTS)
def test_c_client(broker, c_clients, client):
    path = os.path.join(c_clients, client)
    assert os.access(path, os.X_OK), "%s is not built" % path
    p = subprocess.run([path, broker.host, str(broker.port)], capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    assert p.returncode == 0, "%s failed (exit %d):\n%s" % (client, p.returncode, out)
    assert "all checks passed" in out
