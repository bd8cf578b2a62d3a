"""Network evidence: who answers to a name on a shared network (aliases per service, across
stacks), and the DNS answer for that name from inside a container on that network."""
from __future__ import annotations

import re

from ..bundle import EvidenceItem

IP_RE = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")


def holders(client, network: str, name: str) -> list[dict]:
    net = client.networks.get(network)
    out = []
    for s in client.services.list():
        spec = s.attrs["Spec"]
        stack = (spec.get("Labels") or {}).get("com.docker.stack.namespace", "")
        for n in spec["TaskTemplate"].get("Networks") or []:
            if n.get("Target") not in (net.id, network):
                continue
            aliases = n.get("Aliases") or []
            if name in aliases or spec["Name"] == name:
                vips = [v["Addr"].split("/")[0] for v in (s.attrs.get("Endpoint") or {}).get("VirtualIPs", [])
                        if v.get("NetworkID") == net.id]
                # dnsrr services answer with their tasks' addresses
                for t in s.tasks(filters={"desired-state": "running"}):
                    for att in t.get("NetworksAttachments") or []:
                        if att.get("Network", {}).get("ID") == net.id:
                            vips += [a.split("/")[0] for a in att.get("Addresses") or []]
                out.append({"service": spec["Name"], "stack": stack, "aliases": sorted(aliases), "vips": sorted(set(vips))})
    return sorted(out, key=lambda h: h["service"])


def running(client, service: str) -> list:
    """The running containers of a Swarm service (by its full name, `<stack>_<service>`)."""
    return client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}", "status": "running"})


def dns_answer(client, network: str, name: str, image: str, service: str | None = None) -> tuple[list[str], str]:
    """Addresses `name` resolves to from a container on `network` (an existing service's container
    when `service` is given, else a throw-away probe container attached to the network)."""
    if service:
        cs = running(client, service)
        if not cs:
            raise RuntimeError(f"no running container for {service}")
        r = cs[0].exec_run(["nslookup", name])
        text = (r.output or b"").decode("utf-8", "replace")
    else:
        text = client.containers.run(image, ["nslookup", name], network=network, remove=True,
                                     labels={"redfix.probe": "dns"}).decode("utf-8", "replace")
    answer = text.split("Name:", 1)[1] if "Name:" in text else ""
    return sorted(set(IP_RE.findall(answer))), text


def probe_image(client, network: str) -> str:
    """An image already on the node to run the DNS probe from (no registry needed): the image of
    a running container attached to `network`, the node's own choice rather than a fixed name."""
    for c in client.containers.list(filters={"network": network, "status": "running"}):
        tags = c.image.tags
        if tags:
            return tags[0]
    raise RuntimeError(f"no running container on {network} to take a probe image from (name one: probe image:)")


def collect(cx, spec) -> list[EvidenceItem]:
    client = cx.node.docker()
    network, name = spec.get("network", "proxy"), spec.get("name", "app")
    hs = holders(client, network, name)
    stacks = sorted({h["stack"] for h in hs})
    if spec["kind"] == "network_aliases":
        return [EvidenceItem(
            id=f"network_aliases:{network}:{name}", kind="network_aliases", source=f"network {network}",
            status="ok", summary=(f"{len(hs)} service(s) in {len(stacks)} stack(s) answer to {name!r} on {network}: "
                                  + ", ".join(f"{h['service']} {h['vips']}" for h in hs)),
            excerpt="\n".join(f"{h['service']} aliases={h['aliases']} vips={h['vips']}" for h in hs),
            data={"network": network, "name": name, "holders": hs, "stacks": stacks,
                  "recipe_holders": [h for h in hs if cx.case.recipe in h["stack"]]})]
    image = spec.get("image") or probe_image(client, network)
    addrs, raw = dns_answer(client, network, name, image, spec.get("service"))
    art = cx.artifact(f"dns-{network}-{name}.txt")
    art.write_text(raw)
    owners = {ip: h["service"] for h in hs for ip in h["vips"]}
    return [EvidenceItem(
        id=f"dns:{network}:{name}", kind="dns", source=spec.get("service") or f"probe container on {network}",
        status="ok", artifact=cx.bundle.rel(art),
        summary=f"{name!r} on {network} resolves to {addrs or 'nothing'} ("
                + (", ".join(f"{ip}={owners.get(ip, '?')}" for ip in addrs) or "no answer") + ")",
        excerpt=raw.strip()[-400:],
        data={"network": network, "name": name, "addresses": addrs, "owners": owners,
              "recipe_addresses": sorted(ip for ip, s in owners.items() if cx.case.recipe in s), "image": image})]
