"""docker-py creates, uses and removes networks."""
import os

import docker

image = os.environ["APITEST_IMAGE"]
labels = {"apitest": os.environ["APITEST_LABEL"]}
prefix = os.environ["APITEST_PREFIX"]
client = docker.from_env()
print("docker-py", docker.__version__)

net = client.networks.create(prefix + "-net")
assert net.name == prefix + "-net", net.name
assert [n.name for n in client.networks.list(names=[prefix + "-net"])] == [net.name]
out = client.containers.run(
    image, "echo on-net", network=net.name, remove=True, labels=labels
)
assert out == b"on-net\n", out
net.remove()
assert client.networks.list(names=[prefix + "-net"]) == []
print("network ok")

print("ok")
