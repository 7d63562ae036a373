"""testcontainers-python: a container on a local image with an exposed
port, get_exposed_port and wait_for_logs (Ryuk disabled)."""
import os
import time
import urllib.request

from testcontainers.core.container import DockerContainer
from testcontainers.core.labels import SESSION_ID
from testcontainers.core.waiting_utils import wait_for_logs

image = os.environ["APITEST_IMAGE"]
print("session", SESSION_ID, flush=True)
script = (
    "trap 'exit 0' TERM; mkdir -p /www && echo tc-hello > /www/index.html"
    " && echo serving && httpd -f -p 8080 -h /www & wait"
)
with DockerContainer(image).with_command(["sh", "-c", script]).with_exposed_ports(
    8080
) as c:
    wait_for_logs(c, "serving", timeout=30)
    host = c.get_container_host_ip()
    port = c.get_exposed_port(8080)
    print("at", host, port)
    body, err = None, None
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://{host}:{port}/", timeout=2).read()
            break
        except Exception as e:
            err = e
            time.sleep(0.2)
    assert body == b"tc-hello\n", (body, err)
    cid = c.get_container_id()
print("removed", cid)
print("ok")
