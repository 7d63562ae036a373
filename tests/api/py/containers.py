"""docker-py against burrow's service: run with output, run detached with
logs and wait, exec_run, ContainerError and ImageNotFound."""
import os

import docker

image = os.environ["APITEST_IMAGE"]
labels = {"apitest": os.environ["APITEST_LABEL"]}
prefix = os.environ["APITEST_PREFIX"]
client = docker.from_env()
print("docker-py", docker.__version__, "api", client.api.api_version)

# run: the output (stdout only, as docker-py returns it by default).
out = client.containers.run(
    image, ["sh", "-c", "echo out; echo err >&2"], remove=True, labels=labels
)
assert out == b"out\n", out
print("run output ok")

# run detached, then logs and wait.
ctr = client.containers.run(
    image,
    ["sh", "-c", "echo started; echo warned >&2; exit 7"],
    detach=True,
    labels=labels,
    name=prefix + "-detached",
)
res = ctr.wait(timeout=60)
assert res["StatusCode"] == 7, res
assert ctr.logs() == b"started\nwarned\n", ctr.logs()
assert ctr.logs(stderr=False) == b"started\n", ctr.logs(stderr=False)
ctr.reload()
assert ctr.status == "exited", ctr.status
assert ctr.attrs["State"]["ExitCode"] == 7, ctr.attrs["State"]
assert ctr.name == prefix + "-detached", ctr.name
ctr.remove()
print("detach logs wait ok")

# A failing run raises ContainerError with the stderr.
try:
    client.containers.run(
        image, ["sh", "-c", "echo bad >&2; exit 2"], remove=True, labels=labels
    )
    raise AssertionError("no ContainerError")
except docker.errors.ContainerError as e:
    assert e.exit_status == 2, e.exit_status
    assert b"bad" in (e.stderr or b""), e.stderr
print("ContainerError ok")

# exec_run, in a running container.
ctr = client.containers.run(
    image,
    ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
    detach=True,
    labels=labels,
    name=prefix + "-exec",
)
r = ctr.exec_run(["sh", "-c", "echo hi; exit 3"])
assert r.exit_code == 3 and r.output == b"hi\n", r
r = ctr.exec_run("cat /etc/hostname", demux=True)
assert r.exit_code == 0 and r.output[0], r
r = ctr.exec_run(["sh", "-c", "echo $V"], environment={"V": "set"}, workdir="/tmp")
assert r.output == b"set\n", r
ctr.reload()
assert ctr.status == "running", ctr.status
found = client.containers.list(filters={"label": "apitest=" + labels["apitest"]})
assert [c.id for c in found] == [ctr.id], found
ctr.stop(timeout=5)
ctr.remove()
print("exec_run ok")

# Missing images.
try:
    client.images.get("apitest/missing:nope")
    raise AssertionError("no ImageNotFound from images.get")
except docker.errors.ImageNotFound:
    pass
try:
    client.containers.create("apitest/missing:nope", "true")
    raise AssertionError("no ImageNotFound from containers.create")
except docker.errors.ImageNotFound:
    pass
try:
    client.containers.get(prefix + "-nonesuch")
    raise AssertionError("no NotFound from containers.get")
except docker.errors.NotFound:
    pass
print("ImageNotFound ok")
print("ok")
