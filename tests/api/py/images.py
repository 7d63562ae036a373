"""docker-py pulls from a loopback registry, lists, inspects and removes."""
import os

import docker

image = os.environ["APITEST_IMAGE"]
repo = os.environ["APITEST_REPO"]
client = docker.from_env()
print("docker-py", docker.__version__)

img = client.images.pull(repo, tag="1")
assert repo + ":1" in img.tags, img.tags
got = client.images.get(repo + ":1")
assert got.id == img.id, (got.id, img.id)
# Listed by name: list() inspects every image it lists, and other tests'
# images on the same store come and go meanwhile (a 404 between the two).
listed = client.images.list(name=repo)
assert any(repo + ":1" in i.tags for i in listed), listed
assert client.images.get(image).id.startswith("sha256:")
out = client.containers.run(repo + ":1", ["echo", "pulled"], remove=True)
assert out == b"pulled\n", out
client.images.remove(repo + ":1")
try:
    client.images.get(repo + ":1")
    raise AssertionError("the image is still there after remove")
except docker.errors.ImageNotFound:
    pass
try:
    client.images.pull(repo + "-missing", tag="1")
    raise AssertionError("pulled a missing image")
except docker.errors.APIError as e:
    print("missing pull:", e.status_code)
print("ok")
