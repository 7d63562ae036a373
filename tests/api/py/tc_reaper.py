"""testcontainers-python with Ryuk on: the stand-in reaper image is
started as Ryuk is (the socket bound in, port 8080, its session label
sent); then this session ends without cleaning up, as a killed test run
does, and the reaper must remove what it left."""
import os

from testcontainers.core.container import DockerContainer
from testcontainers.core.labels import SESSION_ID

image = os.environ["APITEST_IMAGE"]
c = DockerContainer(image).with_command(
    ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
)
c.start()
print("session", SESSION_ID, flush=True)
print("left", c.get_container_id(), flush=True)
# A killed session: no atexit, no stop; the kernel closes the reaper's
# connection.
os._exit(0)
