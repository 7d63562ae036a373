"""docker-py creates, uses and removes volumes."""
import os

import docker

image = os.environ["APITEST_IMAGE"]
labels = {"apitest": os.environ["APITEST_LABEL"]}
prefix = os.environ["APITEST_PREFIX"]
client = docker.from_env()
print("docker-py", docker.__version__)

vol = client.volumes.create(prefix + "-vol", labels={"apitest": "yes"})
assert vol.name == prefix + "-vol", vol.name
assert client.volumes.get(vol.name).name == vol.name
client.containers.run(
    image,
    ["sh", "-c", "echo kept > /v/f"],
    volumes={vol.name: {"bind": "/v", "mode": "rw"}},
    remove=True,
    labels=labels,
)
out = client.containers.run(
    image, "cat /v/f", volumes=[vol.name + ":/v"], remove=True, labels=labels
)
assert out == b"kept\n", out
vol.remove()
try:
    client.volumes.get(vol.name)
    raise AssertionError("the volume is still there")
except docker.errors.NotFound:
    pass
print("volume ok")
print("ok")
