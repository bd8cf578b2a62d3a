"""Runs last: `lab down` removes every lab object and leaves the engine as lab up found it."""
import pytest

from redfix_lib.lab import LAB_LABEL, engine as lab_engine, lab_home

pytestmark = pytest.mark.engine


def _lab_objects(client):
    from redfix_lib.lab.harness.canonical import BASE_DOMAIN
    suffix = "_" + BASE_DOMAIN.replace(".", "_")

    def ns(labels):
        return (labels or {}).get("com.docker.stack.namespace", "")
    left = []
    if client.info()["Swarm"]["LocalNodeState"] == "active":
        left += [s.name for s in client.services.list() if ns(s.attrs["Spec"].get("Labels")).endswith(suffix)
                 or ns(s.attrs["Spec"].get("Labels")) == "redfix-stress"]
        left += [c.name for c in client.configs.list() if ns(c.attrs["Spec"].get("Labels")).endswith(suffix)]
    left += [v.name for v in client.volumes.list() if ns(v.attrs.get("Labels")).endswith(suffix)]
    left += [n.name for n in client.networks.list() if (n.attrs.get("Labels") or {}).get(LAB_LABEL) == "1"
             or ns(n.attrs.get("Labels")).endswith(suffix)]
    left += [t for i in client.images.list() for t in i.tags if t.startswith("redfix-lab/")]
    left += [c.name for c in client.containers.list(all=True, sparse=True)
             if ns(c.attrs.get("Labels")).endswith(suffix)]
    return left


def test_lab_down_leaves_nothing_behind(engine):
    st = lab_engine.lab_up()
    swarm_was_created = st["created"]["swarm"]
    assert _lab_objects(engine), "lab up created objects"
    lab_engine.lab_down()
    assert _lab_objects(engine) == []
    assert not lab_home().exists()
    state = engine.info()["Swarm"]["LocalNodeState"]
    assert state == ("inactive" if swarm_was_created else "active")
    if st["created"].get("gwbridge"):
        assert not [n for n in engine.networks.list(names=["docker_gwbridge"]) if n.name == "docker_gwbridge"]
