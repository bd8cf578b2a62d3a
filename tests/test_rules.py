"""Static rules and the compose reader they stand on.

1. compose.py: COMPOSE_FILE as abra resolves it, `docker compose config` merge semantics,
   interpolation, load errors.
2. Every rule on every real tree in <project root>/../shared/real-recipes (third-party files, kept
   out of the project; CI has ../shared beside the clone): the exact findings per tree, each one
   checked by hand (the `why` column). No known false positives.
3. Each rule on a real tree with the one defect it is about put into it (or on a lab recipe), and
   the false positives issue 10 found (R06, R09, R10, R11, labels in both places) staying fixed.
"""
import re
from collections import Counter
from pathlib import Path

import pytest

from redfix_lib import compose as C
from redfix_lib import rules as R
from redfix_lib.lab import RECIPES_SRC
from redfix_lib.rules import evaluate

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / ".." / "shared" / "real-recipes"


def _need_shared():
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is missing: the real recipe trees live in <project root>/../shared/real-recipes "
                    "(CI lays shared/ beside the clone; in a worktree: ln -s /work/shared ../shared)")


# Where SOURCE.txt has no `abra.sh:` line (the three oldest trees) the upstream commit was read by
# hand: bonfire-coop-cloud@a49cdec abra.sh exports these five; coop-cloud-traefik@8ff2f3a (v2.4.8)
# exports two; coop-cloud-go-ssb-room@c3f559b has no abra.sh.
UPSTREAM_ABRA_SH = {
    "bonfire/2.0.1+1.0.6-social-amd64": ["APP_ENTRYPOINT_VERSION", "PG_BACKUP_VERSION", "MEILI_BACKUP_VERSION",
                                         "SONIC_CFG_VERSION", "SONIC_ENTRYPOINT_VERSION"],
    "traefik-2021/v2.4.8": ["TRAEFIK_YML_VERSION", "FILE_PROVIDER_YML_VERSION"],
    "go-ssb-room-2021/2.0.3-HEAD": None,
}
# trees whose ref is a git tag (SOURCE.txt `ref:`), and older ref -> newer ref pairs of one repo
TAGS = {"bonfire/2.0.1+1.0.6-social-amd64": "2.0.1+1.0.6-social-amd64", "foodsharing-cms": "v1.0.3",
        "foodsharing-cms-v1.0.0": "v1.0.0", "traefik-2021/v2.4.8": "v2.4.8", "swarmpit-1.9": "1.9",
        "swarmprom-v1.8": "v1.8", "dockerswarm-rocks-0.3.0": "0.3.0"}
PREV = {"foodsharing-cms": "foodsharing-cms-v1.0.0", "traefik-2021-head": "traefik-2021/v2.4.8",
        "swarmpit": "swarmpit-1.9", "swarmprom": "swarmprom-v1.8", "dockerswarm-rocks": "dockerswarm-rocks-0.3.0",
        "lemp": "wordpress-2021"}   # wordpress-2021 is mayel/lemp@08fc5fe, lemp is its master 0b36204


def real_trees() -> list[str]:
    if not REAL.is_dir():
        return ["<missing ../shared>"]
    out = []
    for d in sorted(REAL.iterdir()):
        if (d / "SOURCE.txt").exists():
            out.append(d.name)
        else:
            out += [f"{d.name}/{s.name}" for s in sorted(d.iterdir()) if s.is_dir()]
    return out


def tree(rel: str) -> dict[str, str]:
    """A real tree as the static collector reads a recipe at a ref: path -> text, subfolders kept.
    abra.sh is not copied into shared/; SOURCE.txt says whether it exists and what it exports."""
    _need_shared()
    d = REAL / rel
    files = {p.relative_to(d).as_posix(): p.read_text(errors="replace") for p in sorted(d.rglob("*"))
             if p.is_file() and p.name != "SOURCE.txt"}
    m = re.search(r"^abra\.sh: (.*)$", (d / "SOURCE.txt").read_text(), re.M)
    if m:
        present = m.group(1).startswith("present")
        exports = m.group(1).split("exports:", 1)[1].split() if "exports:" in m.group(1) else []
    else:
        exports = UPSTREAM_ABRA_SH[rel]
        present, exports = exports is not None, exports or []
    if present:
        files["abra.sh"] = "".join(f"export {n}=v1\n" for n in exports) or "# comments only, no exports\n"
    return files


def lab(recipe: str, tag: str) -> dict[str, str]:
    """A lab recipe's tree at a tag, as `lab up` commits it (shared files included)."""
    from redfix_lib.lab.recipes import load_meta
    d = RECIPES_SRC / recipe / "versions" / tag
    t = {p.name: p.read_text() for p in d.iterdir() if p.is_file()}
    for inc in load_meta(recipe).get("include", []):
        t.setdefault(inc, (RECIPES_SRC / "_shared" / inc).read_text())
    return t


def rules(files, **kw):
    return {(f.rule, f.service) for f in evaluate(files, **kw)}


def by_rule(files, rule, **kw):
    return [f for f in evaluate(files, **kw) if f.rule == rule]


# ============================== 1. compose.py =================================================
def test_env_accumulates_compose_file_in_order_and_ignores_commented_lines():
    env = C.parse_env('COMPOSE_FILE="compose.yml"\n#COMPOSE_FILE="$COMPOSE_FILE:compose.z.yml"\n'
                      'COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"\nexport A=1 # note\nB=\'$A\'\nC="${A}x"\n'
                      'SECRET_X_VERSION=v1 # length=128\n')
    assert C.compose_file_list(env) == ["compose.yml", "compose.postgres.yml"]     # order kept, z not active
    assert (env["A"], env["B"], env["C"], env["SECRET_X_VERSION"]) == ("1", "$A", "1x", "v1")
    assert C.compose_file_list({}) == ["compose.yml"]
    assert C.compose_file_list({"COMPOSE_FILE": "compose.yml:./sub/compose.b.yml:compose.a.yml"}) == \
        ["compose.yml", "sub/compose.b.yml", "compose.a.yml"]


def test_commented_overlays_are_optional_stacks_with_their_paragraph_uncommented():
    sample = ('COMPOSE_FILE="compose.yml"\nCOMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"\n\n'
              '# mail\n# COMPOSE_FILE="$COMPOSE_FILE:compose.mail.yml"\n# SECRET_MAIL_VERSION=v1\n'
              '# some prose = not a setting\n#COMPOSE_FILE="$COMPOSE_FILE:compose.mail.key.yml"\n\n'
              '#COMPOSE_FILE="$COMPOSE_FILE:postgres/compose.tune.yml"\n')
    files = {"compose.yml": "services: {app: {image: a:1.0.0}}", ".env.sample": sample, "compose.postgres.yml": "{}",
             "compose.mail.yml": "{}", "compose.mail.key.yml": "{}", "postgres/compose.tune.yml": "{}",
             "compose.extra.yml": "{}"}
    st = C.recipe_stacks(files)
    assert [(s.files, s.optional) for s in st] == [
        (["compose.yml", "compose.postgres.yml"], False),
        (["compose.yml", "compose.postgres.yml", "compose.mail.yml"], True),
        (["compose.yml", "compose.postgres.yml", "compose.mail.yml", "compose.mail.key.yml"], True),  # builds on mail
        (["compose.yml", "compose.postgres.yml", "postgres/compose.tune.yml"], True),                # subfolder
        (["compose.yml", "compose.postgres.yml", "compose.extra.yml"], True)]                        # named nowhere
    assert st[1].env["SECRET_MAIL_VERSION"] == "v1" and "SECRET_MAIL_VERSION" not in st[0].env
    # an app's env (the case's) decides the deployed stack
    assert C.recipe_stacks(files, {"COMPOSE_FILE": "compose.yml:compose.mail.yml"})[0].files == ["compose.yml", "compose.mail.yml"]


def test_interpolation_forms_and_errors():
    env = {"A": "a", "E": ""}
    assert C.interpolate("${A}-${E:-d}-${E-d}-${U:-${A}x}-${A:+set}-${U+set}-$A-$$A-${STACK_NAME}", env) == \
        "a-d--ax-set--a-$A-${STACK_NAME}"
    errs = []
    C.interpolate("--token=${cat /run/secrets/t}", env, errors=errs)
    assert errs and "invalid interpolation format" in errs[0]
    errs = []
    C.interpolate("${U:?set U}", env, errors=errs)
    assert errs == ["required variable U is missing a value: set U"]


def test_merge_follows_the_compose_spec():
    base = C.load_project({"a.yml": """
services:
  app:
    image: x:1.0.0
    command: [a, b]
    environment: [A=1, B=2]
    labels: {l1: x}
    ports: ["80:80", "443:443"]
    volumes: ["data:/data", "logs:/logs"]
    secrets: [s1]
    configs: [{source: c1, target: /c.sh}]
    networks: [internal]
    deploy: {labels: [d1=x], update_config: {order: start-first}}
    dns: [1.1.1.1]
""", "b.yml": """
services:
  app:
    command: c
    environment: {B: "3", C: "4"}
    labels: [l2=y]
    ports: [{target: 80, published: 80, mode: host}, "8080:80"]
    volumes: ["other:/data"]
    secrets: [{source: s1, target: /run/secrets/s1, mode: 0400}, s2]
    configs: [{source: c2, target: /c.sh}]
    networks: {proxy: {}}
    deploy: {labels: {d2: y}, update_config: {failure_action: rollback}}
    dns: [8.8.8.8]
    healthcheck: !reset null
"""}, ["a.yml", "b.yml"]).services["app"]
    assert base["command"] == "c"                                            # replaced
    assert base["environment"] == {"A": "1", "B": "3", "C": "4"}             # list and map merged
    assert base["labels"] == {"l1": "x", "l2": "y"}
    assert base["deploy"]["labels"] == {"d1": "x", "d2": "y"}
    assert base["deploy"]["update_config"] == {"order": "start-first", "failure_action": "rollback"}
    assert len(base["ports"]) == 3 and {"target": 80, "published": 80, "mode": "host"} in base["ports"]  # by key
    assert base["volumes"] == ["other:/data", "logs:/logs"]                 # by target
    assert [C.mount_key("secrets", s) for s in base["secrets"]] == ["/run/secrets/s1", "/run/secrets/s2"]
    assert base["configs"] == [{"source": "c2", "target": "/c.sh"}]          # same target: overlay wins
    assert list(base["networks"]) == ["internal", "proxy"]
    assert base["dns"] == ["1.1.1.1", "8.8.8.8"]                            # other sequences append
    assert "healthcheck" not in base


def test_extends_and_duplicate_keys():
    p = C.load_project({"compose.yml": """
services:
  base: {image: x:1.0.0, environment: [A=1]}
  app:
    extends: base
    environment: [B=2]
  other:
    extends: {file: common/c.yml, service: tpl}
""", "common/c.yml": "services:\n  tpl: {image: y:2.0.0}\n"}, ["compose.yml"])
    assert p.services["app"]["image"] == "x:1.0.0" and p.services["app"]["environment"] == {"A": "1", "B": "2"}
    assert p.services["other"]["image"] == "y:2.0.0"
    p = C.load_project({"compose.yml": "services:\n  app:\n    image: a:1.0.0\n    image: b:1.0.0\n"}, ["compose.yml"])
    assert p.errors and "already defined" in p.errors[0][1]


# ============================== 2. every rule on every real tree ===============================
def M(service, file, image):
    """R07 (warning): an image without a full x.y.z version or digest moves under the stack when
    upstream republishes. Checked by hand: each listed image string has no x.y.z tag."""
    return ("R07", "warning", service, file, False, image, "moving tag: no x.y.z version, no digest")


ROLLBACK = ("failure_action: rollback", "the deploy block sets update_config.failure_action: rollback — a hint for "
            "upgrade-tier failures (a failed upgrade is reverted), never a defect nor evidence")

# tree -> the exact findings: (rule, severity, service, blamed file, optional, text in the message, why right)
EXPECTED = {
    "agora": [M("app", "compose.yml", "moonlion/agora-server:testing"),
              M("bridge", "compose.yml", "moonlion/agora-bridge:testing")],
    "atsea": [
        # docker-compose*.yml build their images (not pulled): no R07 there; docker-stack.yml pulls
        ("R10", "hint", "appserver", "docker-stack.yml", False, *ROLLBACK),
        ("R10", "hint", "payment_gateway", "docker-stack.yml", False, *ROLLBACK),
        ("R10", "hint", "visualizer", "docker-stack.yml", False, *ROLLBACK),
        M("appserver", "docker-stack.yml", "dockersamples/atsea_app"),
        M("database", "docker-stack.yml", "dockersamples/atsea_db"),
        M("payment_gateway", "docker-stack.yml", "dockersamples/atseasampleshopapp_payment_gateway"),
        M("reverse_proxy", "docker-stack.yml", "dockersamples/atseasampleshopapp_reverse_proxy"),
        M("visualizer", "docker-stack.yml", "dockersamples/visualizer:stable")],
    "bonfire/2.0.1+1.0.6-social-amd64": [
        # compose.auth.github.yml mounts secret github_client_secret but declares it as
        # `oauth_client_secret:` (name ..._github_client_secret_...): docker stack deploy / abra stop
        # with `undefined secret "github_client_secret"` (docker/cli convertServiceSecrets) as soon
        # as the overlay is enabled. Optional: the default COMPOSE_FILE does not include it.
        ("R16", "error", "app", "compose.auth.github.yml", True, "'github_client_secret' is not declared",
         "real defect in an optional overlay (secret declared under the wrong key)"),
        M("db", "compose.postgres.yml", "ghcr.io/baosystems/postgis:17-3.5"),
        # not R06: pg_backup's ${PG_BACKUP_VERSION} is exported by abra.sh; SECRET_*_VERSION have
        # defaults or are set in .env.sample. Not R12: label == tag. Not R09: image ${VAR:-default}.
    ],
    "bore": [],   # pinned ekzhang/bore:0.6.0; commented backupbot lines are comments
    "coop-inlets": [
        # "--token=${cat /run/secrets/inlets_shared_token}" is not a variable: docker-compose says
        # `Invalid interpolation format for "command" option in service "inlets"` (checked by hand
        # with docker-compose 1.29 config); compose-go refuses it too. The default stack does not load.
        ("R15", "error", "-", "compose.yml", False, "invalid interpolation format", "real defect: shell syntax in compose"),
        ("R10", "hint", "inlets", "compose.yml", False, *ROLLBACK),
        M("inlets", "compose.yml", "dezsh/inlets:amd64"),
        # not R06: SECRET_INLETS_SHARED_TOKEN_VERSION=v1 is in .env.sample (the standard convention)
    ],
    "dockerswarm-rocks": [
        # ${DOMAIN?Variable not set} etc. come from the deployer's shell for plain stacks: not a finding
        M("agent", "docs/portainer.yml", "portainer/agent"), M("agent", "docs/swarmpit.yml", "swarmpit/agent:latest"),
        M("app", "docs/swarmpit.yml", "swarmpit/swarmpit:latest"), M("app", "docs/thelounge.yml", "thelounge/thelounge:latest"),
        M("cadvisor", "docs/swarmprom.yml", "gcr.io/cadvisor/cadvisor"),
        M("consul-leader", "docs/traefik-host-v1.yml", "consul"), M("consul-leader", "docs/traefik-v1.yml", "consul"),
        M("consul-replica", "docs/traefik-host-v1.yml", "consul"), M("consul-replica", "docs/traefik-v1.yml", "consul"),
        M("dockerd-exporter", "docs/swarmprom.yml", "stefanprodan/caddy"), M("influxdb", "docs/swarmpit.yml", "influxdb:1.7"),
        M("portainer", "docs/portainer.yml", "portainer/portainer-ce"),
        M("traefik", "docs/traefik-host-v1.yml", "traefik:v1.7"), M("traefik", "docs/traefik-host.yml", "traefik:v2.2"),
        M("traefik", "docs/traefik-v1.yml", "traefik:v1.7"), M("traefik", "docs/traefik-v3.yml", "traefik:v3.0"),
        M("traefik", "docs/traefik.yml", "traefik:v2.2")],
    "dockerswarm-rocks-0.3.0": [
        M("agent", "docs/portainer.yml", "portainer/agent"), M("agent", "docs/swarmpit.yml", "swarmpit/agent:latest"),
        M("app", "docs/swarmpit.yml", "swarmpit/swarmpit:latest"), M("app", "docs/thelounge.yml", "thelounge/thelounge:latest"),
        M("cadvisor", "docs/swarmprom.yml", "google/cadvisor"),
        M("consul-leader", "docs/traefik-host-v1.yml", "consul"), M("consul-leader", "docs/traefik-v1.yml", "consul"),
        M("consul-replica", "docs/traefik-host-v1.yml", "consul"), M("consul-replica", "docs/traefik-v1.yml", "consul"),
        M("dockerd-exporter", "docs/swarmprom.yml", "stefanprodan/caddy"), M("influxdb", "docs/swarmpit.yml", "influxdb:1.7"),
        M("portainer", "docs/portainer.yml", "portainer/portainer"),
        M("traefik", "docs/traefik-host-v1.yml", "traefik:v1.7"), M("traefik", "docs/traefik-host.yml", "traefik:v2.2"),
        M("traefik", "docs/traefik-v1.yml", "traefik:v1.7"), M("traefik", "docs/traefik.yml", "traefik:v2.2")],
    "dogvscat": [
        # old-stack-proxy.yml: proxy <-> swarm-listener talk by bare name over the external `proxy`
        # network only; any other stack on `proxy` with a service of that name would answer too.
        # Not the Co-op Cloud `app` certainty, so a warning (hint), not an error.
        ("R08", "warning", "proxy", "old-stack-proxy.yml", False, "reaches 'swarm-listener'", "bare name over the shared network"),
        ("R08", "warning", "swarm-listener", "old-stack-proxy.yml", False, "reaches 'proxy'", "bare name over the shared network"),
        M("agent", "stack-portainer.yml", "portainer/agent"), M("cadvisor", "stack-swarmprom.yml", "google/cadvisor"),
        M("consul", "stack-proxy-global.yml", "consul"), M("db", "stack-ee-ghost.yml", "mysql:5.7"),
        M("db", "stack-ee-voting.yml", "postgres:9.6"), M("db", "stack-ghost.yml", "mysql:5.7"),
        M("db", "stack-voting.yml", "postgres:9.6"), M("db-backup", "stack-ee-ghost.yml", "mysql:5.7"),
        M("db-backup", "stack-ghost.yml", "mysql:5.7"), M("dockerd-exporter", "stack-swarmprom.yml", "stefanprodan/caddy"),
        M("dockersocket", "stack-proxy-global.yml", "tecnativa/docker-socket-proxy"),
        M("ghost", "stack-ee-ghost.yml", "ghost:1-alpine"), M("ghost", "stack-ghost.yml", "ghost:alpine"),
        M("ghost", "stack-sqlite-ghost.yml", "ghost:2-alpine"), M("image-prune", "stack-prune.yml", "docker"),
        M("proxy", "old-stack-proxy.yml", "vfarcic/docker-flow-proxy"), M("redis", "stack-ee-voting.yml", "redis:alpine"),
        M("redis", "stack-voting.yml", "redis:alpine"), M("result", "stack-ee-voting.yml", "bretfisher/examplevotingapp_result"),
        M("result", "stack-voting.yml", "bretfisher/examplevotingapp_result"),
        M("swarm-listener", "old-stack-proxy.yml", "vfarcic/docker-flow-swarm-listener"),
        M("traefik", "stack-proxy-global.yml", "traefik:1.7-alpine"), M("traefik", "stack-proxy.yml", "traefik:2.2"),
        M("traefik-init", "stack-proxy-global.yml", "traefik:1.7-alpine"), M("viz", "stack-visualizer.yml", "dockersamples/visualizer"),
        M("vote", "stack-ee-voting.yml", "bretfisher/examplevotingapp_vote"), M("vote", "stack-voting.yml", "bretfisher/examplevotingapp_vote"),
        M("web", "stack-portainer.yml", "portainer/portainer"),
        M("worker", "stack-ee-voting.yml", "bretfisher/examplevotingapp_worker:java"),
        M("worker", "stack-voting.yml", "bretfisher/examplevotingapp_worker:java"),
        # stack-elk.override.yml (logstash without image) is merged onto stack-elk.yml: no R09
    ],
    "foodsharing-cms": [
        ("R10", "hint", "app", "compose.yml", False, *ROLLBACK),
        # the git tag is v1.0.3 (the app repo's own release tag), the label says 1.0.3+1.0.3 (recipe
        # form): they do differ, but which one abra takes as the version is not decidable from files
        ("R12", "warning", "app", "compose.yml", False, "'1.0.3+1.0.3' != tag 'v1.0.3'", "label and tag differ; tag not in recipe form"),
        # backupbot.backup.path is a v1 label; backupbot v2 ignores it (it backs up the volumes)
        ("R13", "warning", "app", "compose.yml", False, "backupbot.backup.path", "legacy label, ignored by backupbot v2"),
        # not R06: SECRET_CMS_TOKEN_VERSION=v1 is set in .env.sample; not R07: :1.0.3 is pinned
    ],
    "foodsharing-cms-v1.0.0": [
        ("R10", "hint", "app", "compose.yml", False, *ROLLBACK),
        ("R12", "warning", "app", "compose.yml", False, "'1.0.0+1.0.0' != tag 'v1.0.0'", "label and tag differ; tag not in recipe form"),
        ("R13", "warning", "app", "compose.yml", False, "backupbot.backup.path", "legacy label, ignored by backupbot v2"),
    ],
    "gaseous": [
        # db (mariadb) mounts gsdb without backupbot labels, but no service opts into backups, so the
        # backup/restore tiers never run: no R02
        M("app", "compose.yml", "gaseousgames/gaseousserver:latest"), M("db", "compose.yml", "mariadb")],
    "go-ssb-room-2021/2.0.3-HEAD": [],   # pinned 3wordchant/go-ssb-room:2.0.3; 2021 `.app.version` label not compared
    "lemp": [
        ("R10", "hint", "app", "compose.yml", False, *ROLLBACK),
        M("app", "compose.yml", "php:8.0-fpm-alpine3.13"), M("db", "compose.yml", "mariadb:10.6"),
        # not R06: every config version is an abra.sh export, SECRET_DB_*_VERSION are in .env.sample,
        # SECRET_SMTP_PASSWORD_VERSION is commented in the same paragraph as compose.smtp.yml's line;
        # no R02: no service opts into backups; vs wordpress-2021: no config file changed under one name
    ],
    "lores-swarm-pi-stacks": [M("traefik", "stacks/traefik.yml", "traefik:3.2")],
    "nodex-next": [
        # image ${IMAGE:-nodex-next:latest}: abra reads the root .env.sample only (this one is in deploy/),
        # so the default applies; either way the tag is latest
        ("R10", "hint", "app", "compose.yml", False, *ROLLBACK),
        M("app", "compose.yml", "nodex-next:latest")],
    "portainer-compose": [
        M("agent", "docker-stack.yml", "portainer/agent"), M("agent", "nginx-proxy/portainer-swarm.yml", "portainer/agent"),
        M("nginx-proxy", "nginx-proxy/docker-compose.yml", "jwilder/nginx-proxy"),
        M("nginx-proxy", "nginx-proxy/portainer-swarm.yml", "jwilder/nginx-proxy"),
        M("portainer", "docker-stack.yml", "portainer/portainer")],
    "prometheus-swarm": [
        M(s, f, i) for f in ("docker-compose.yml", "docker-stack.yml", "docker-traefik-stack.yml", "pwd-stack.yml")
        for s, i in (("alertmanager", "prom/alertmanager"), ("cadvisor", "gcr.io/cadvisor/cadvisor"),
                     ("grafana", "grafana/grafana"))] + [
        M("node-exporter", "docker-compose.yml", "quay.io/prometheus/node-exporter:latest"),
        M("node-exporter", "docker-stack.yml", "quay.io/prometheus/node-exporter:latest"),
        M("node-exporter", "docker-traefik-stack.yml", "prom/node-exporter"),
        M("node-exporter", "pwd-stack.yml", "prom/node-exporter"),
        M("prometheus", "docker-traefik-stack.yml", "prom/prometheus"), M("source", "pwd-stack.yml", "containerize/git")],
    "swarmpit": [
        M("agent", "docker-compose.arm.yml", "swarmpit/agent:latest"), M("agent", "docker-compose.yml", "swarmpit/agent:latest"),
        M("app", "docker-compose.arm.yml", "swarmpit/swarmpit:latest"), M("app", "docker-compose.yml", "swarmpit/swarmpit:latest"),
        M("influxdb", "docker-compose.arm.yml", "influxdb:1.7"), M("influxdb", "docker-compose.yml", "influxdb:1.8")],
    "swarmpit-1.9": [
        M("agent", "docker-compose.arm.yml", "swarmpit/agent:latest"), M("agent", "docker-compose.yml", "swarmpit/agent:2.2"),
        M("app", "docker-compose.arm.yml", "swarmpit/swarmpit:latest"), M("app", "docker-compose.yml", "swarmpit/swarmpit:1.9"),
        M("influxdb", "docker-compose.arm.yml", "influxdb:1.7"), M("influxdb", "docker-compose.yml", "influxdb:1.7")],
    "swarmprom": [
        M("caddy", "docker-compose.yml", "stefanprodan/caddy"), M("caddy", "weave-compose.yml", "stefanprodan/caddy"),
        M("cadvisor", "docker-compose.traefik.yml", "google/cadvisor"), M("cadvisor", "docker-compose.yml", "google/cadvisor"),
        M("cadvisor", "weave-compose.yml", "google/cadvisor"),
        M("dockerd-exporter", "docker-compose.traefik.yml", "stefanprodan/caddy"),
        M("dockerd-exporter", "docker-compose.yml", "stefanprodan/caddy"),
        M("dockerd-exporter", "weave-compose.yml", "stefanprodan/caddy"),
        M("scope-launcher", "weave-compose.yml", "weaveworks/scope-swarm-launcher")],
    "swarmprom-v1.8": [
        M("caddy", "docker-compose.yml", "stefanprodan/caddy"), M("caddy", "weave-compose.yml", "stefanprodan/caddy"),
        M("cadvisor", "docker-compose.yml", "google/cadvisor"), M("cadvisor", "weave-compose.yml", "google/cadvisor"),
        M("dockerd-exporter", "docker-compose.yml", "stefanprodan/caddy"),
        M("dockerd-exporter", "weave-compose.yml", "stefanprodan/caddy"),
        M("scope-launcher", "weave-compose.yml", "weaveworks/scope-swarm-launcher")],
    "traefik-2021/v2.4.8": [
        # the standard block (rollback + start-first): a hint, no longer an R10 defect; the config
        # versions are abra.sh exports (read by hand at 8ff2f3a): no R06
        ("R10", "hint", "app", "compose.yml", False, *ROLLBACK)],
    "traefik-2021-head": [
        ("R10", "hint", "app", "compose.yml", False, *ROLLBACK),
        # head adds compose.ovh.yml, offered by a commented COMPOSE_FILE line; v2.4.8 lacks it, so an
        # app that enables it cannot deploy the v2.4.8 upgrade base. Optional: not the default stack.
        ("R11", "error", "-", ".env.sample", True, "compose.ovh.yml", "overlay absent at the previous tag (when enabled)")],
    "voting-app": [
        # docker-compose.yml builds vote/result/worker (not pulled): only db/redis there
        M("db", "docker-compose.images.yml", "postgres:15-alpine"), M("db", "docker-compose.yml", "postgres:15-alpine"),
        M("db", "docker-stack.yml", "postgres:15-alpine"), M("redis", "docker-compose.images.yml", "redis:alpine"),
        M("redis", "docker-compose.yml", "redis:alpine"), M("redis", "docker-stack.yml", "redis:alpine"),
        M("result", "docker-compose.images.yml", "dockersamples/examplevotingapp_result"),
        M("result", "docker-stack.yml", "dockersamples/examplevotingapp_result"),
        M("vote", "docker-compose.images.yml", "dockersamples/examplevotingapp_vote"),
        M("vote", "docker-stack.yml", "dockersamples/examplevotingapp_vote"),
        M("worker", "docker-compose.images.yml", "dockersamples/examplevotingapp_worker"),
        M("worker", "docker-stack.yml", "dockersamples/examplevotingapp_worker")],
    "wordpress-2021": [
        ("R10", "hint", "app", "compose.yml", False, *ROLLBACK),
        M("db", "compose.yml", "mariadb:10.6")],   # wordpress:5.7.2 is pinned
}


def run_tree(rel):
    prev = tree(PREV[rel]) if rel in PREV else None
    return evaluate(tree(rel), tag=TAGS.get(rel), prev_files=prev)


def test_every_real_tree_has_an_expectation():
    _need_shared()
    assert sorted(EXPECTED) == sorted(real_trees())


@pytest.mark.parametrize("rel", real_trees())
def test_real_tree_findings_exactly_as_checked_by_hand(rel):
    _need_shared()
    got = run_tree(rel)
    key = lambda f: (f.rule, f.severity, f.service, f.file, f.optional)   # noqa: E731
    assert Counter(key(f) for f in got) == Counter(e[:5] for e in EXPECTED[rel]), \
        "\n".join(f"{key(f)} {f.message}" for f in got)
    for e in EXPECTED[rel]:
        assert any(key(f) == e[:5] and e[5] in f.message for f in got), (e, [f.message for f in got if key(f) == e[:5]])
    # no error on a real tree corroborates a cause unless it is a real defect of the deployed stack
    assert {f.rule for f in got if f.severity == "error" and not f.optional} <= {"R15"}


# ============================== 3. each rule, and the fixed false positives ========================
BONFIRE, TRAEFIK, SSB, LEMP = "bonfire/2.0.1+1.0.6-social-amd64", "traefik-2021/v2.4.8", "go-ssb-room-2021/2.0.3-HEAD", "lemp"


def test_registry_one_record_per_rule_and_classify_reads_it():
    import redfix_lib.classify as K
    assert [r for r in R.RULES] == [f"R{i:02d}" for i in range(1, 17)]
    for r in R.RULES.values():
        assert r.title and r.sub_cause and r.tiers and r.grep and r.fix and r.severity in R.SEVERITIES
        assert r.check or r.cross
        re.compile(r.grep)
    assert not hasattr(K, "RULE_CAUSE") and not hasattr(K, "RULE_GREP")
    err = {"rule": "R03", "severity": "error", "optional": False}
    assert R.corroborates(err, "restore") and not R.corroborates(err, "install")
    assert not R.corroborates({**err, "optional": True}, "restore")
    assert not R.corroborates({"rule": "R10", "severity": "hint"}, "upgrade")
    assert not R.corroborates({"rule": "R07", "severity": "warning"}, "install")
    assert R.hints([{"rule": "R10", "severity": "hint"}, {"rule": "R03", "severity": "error"}], "upgrade") == \
        [{"rule": "R10", "severity": "hint"}]


def test_R01_backupbot_labels_under_plain_labels():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("    deploy:\n      labels:", "    labels:", 1)
    assert [x.file for x in by_rule(f, "R01") if x.service == "db"] == ["compose.postgres.yml"]


def test_R02_database_without_backup_only_when_the_recipe_opts_in():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = "\n".join(l for l in f["compose.postgres.yml"].splitlines() if "backupbot" not in l)
    assert ("R02", "db") in rules(f)       # app still has backupbot.backup=true
    g = tree("gaseous")                    # no backupbot label anywhere: backup tiers never run
    assert not by_rule(g, "R02")
    g["compose.yml"] = g["compose.yml"].replace('        - "traefik.enable=true"', '        - "backupbot.backup=true"\n        - "traefik.enable=true"')
    assert ("R02", "db") in rules(g)


def test_R03_pre_hook_without_restore_post_hook_lab_and_real_and_both_label_places():
    assert ("R03", "db") in rules(lab("mattermost-lts", "2.1.9+10.11.15"))
    assert ("R03", "db") not in rules(lab("immich", "1.1.0+v1.121.0"))
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = "\n".join(l for l in f["compose.postgres.yml"].splitlines() if "restore.post-hook" not in l)
    assert ("R03", "db") in rules(f)
    # labels in the wrong place: R01 says so, and R03 still reads them
    m = lab("mattermost-lts", "2.1.9+10.11.15")
    m["compose.yml"] = m["compose.yml"].replace("    deploy:\n      labels:\n        backupbot", "    labels:\n        backupbot")
    assert {("R01", "db"), ("R03", "db")} <= rules(m)
    # a maintenance-mode pre-hook undone by a backup post-hook needs no restore replay
    m = lab("mattermost-lts", "2.1.9+10.11.15")
    m["compose.yml"] = m["compose.yml"].replace('backupbot.backup.pre-hook: "/pg_backup.sh backup"',
                                                'backupbot.backup.pre-hook: "occ maintenance:mode --on"\n'
                                                '        backupbot.backup.post-hook: "occ maintenance:mode --off"')
    assert ("R03", "db") not in rules(m)


def test_R04_path_names_unmounted_volume():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("backupbot.backup.volumes.db-data.path", "backupbot.backup.volumes.pgdata.path")
    assert [x.file for x in by_rule(f, "R04")] == ["compose.postgres.yml"]


def test_R05_hook_script_not_provided():
    f = tree(BONFIRE)
    assert ("R05", "db") not in rules(f)          # /pg_backup.sh is the pg_backup config's target
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("/pg_backup.sh backup", "/dump_it.sh backup")
    assert [(x.severity, x.service) for x in by_rule(f, "R05")] == [("warning", "db")]


def test_R06_secret_versions_in_env_sample_are_the_convention_and_blame_the_right_file():
    f = tree(LEMP)
    assert not by_rule(f, "R06")                  # SECRET_DB_*_VERSION set in .env.sample, configs exported
    g = dict(f, **{".env.sample": f[".env.sample"].replace("SECRET_DB_PASSWORD_VERSION=v1\n", "")})
    got = by_rule(g, "R06")
    assert [(x.file, x.optional) for x in got] == [("compose.yml", False)] and "secret db_password" in got[0].message
    # the overlay's secret: its version only in the commented paragraph -> fine; removed -> blame the overlay
    g = dict(f, **{".env.sample": f[".env.sample"].replace("#SECRET_SMTP_PASSWORD_VERSION=v1\n", "")})
    assert [(x.file, x.optional) for x in by_rule(g, "R06")] == [("compose.smtp.yml", True)]
    # configs: abra.sh decides
    g = dict(f, **{"abra.sh": f["abra.sh"].replace("export NGINX_DEFAULT_CONF_VERSION=v1\n", "")})
    assert [x.message.split(" name")[0] for x in by_rule(g, "R06")] == ["config nginx_default_conf"]
    b = tree(BONFIRE)
    b["abra.sh"] = "export SOMETHING_ELSE=v1\n"
    assert [(x.file, "pg_backup" in x.message) for x in by_rule(b, "R06")] == [("compose.postgres.yml", True)]


def test_R06_config_changed_without_bump():
    assert not by_rule(lab("mumble", "1.0.0+v1.6.870-0"), "R06", prev_files=lab("mumble", "0.9.0+v1.5.735-0"))
    prev = lab("mumble", "0.9.0+v1.5.735-0")
    cur = dict(prev, **{"handshake.sh": prev["handshake.sh"] + "\n# changed\n"})
    assert [x.rule for x in evaluate(cur, prev_files=prev)] == ["R06"]
    # a bump in abra.sh is a new name: no finding
    f = tree(LEMP)
    g = dict(f, **{"uploads.ini": f["uploads.ini"] + "\n; changed\n"})
    assert [x.message.split(" file")[0] for x in by_rule(g, "R06", prev_files=f)] == ["config php_uploads_conf"]
    g["abra.sh"] = f["abra.sh"].replace("PHP_UPLOADS_CONF_VERSION=v1", "PHP_UPLOADS_CONF_VERSION=v2")
    assert not by_rule(g, "R06", prev_files=f)


def test_R07_moving_tag():
    f = tree(SSB)
    assert not by_rule(f, "R07")
    f["compose.yml"] = f["compose.yml"].replace("3wordchant/go-ssb-room:2.0.3", "3wordchant/go-ssb-room:latest")
    assert [(x.service, x.severity) for x in by_rule(f, "R07")] == [("app", "warning")]


def test_R08_bare_name_over_proxy_lab_and_fix():
    got = by_rule(lab("bluesky-pds", "0.3.0+v0.4.219"), "R08")
    assert [(x.service, x.severity) for x in got] == [("caddy", "error")]
    fix = {p.name: p.read_text() for p in (RECIPES_SRC / "bluesky-pds" / "fixes" / "ci" / "warm-routing-alias").iterdir()}
    assert not by_rule(fix, "R08")


def test_R09_image_from_env_sample_and_overlays_extending_overlays():
    f = tree(SSB)
    f["compose.yml"] = f["compose.yml"].replace("    image: 3wordchant/go-ssb-room:2.0.3\n", "")
    assert [x.message for x in by_rule(f, "R09")] == ["service has no image:"]
    n = tree("nodex-next")
    assert not by_rule(n, "R09")                               # ${IMAGE:-nodex-next:latest}
    n["compose.yml"] = n["compose.yml"].replace("${IMAGE:-nodex-next:latest}", "${IMAGE}")
    assert [x.message for x in by_rule(n, "R09")] == ["image: ${IMAGE} resolves to nothing (IMAGE unset in .env.sample, no default)"]
    n[".env.sample"] = "IMAGE=ghcr.io/x/nodex-next:0.1.0\n"
    assert not by_rule(n, "R09")
    # an overlay adding to a service another overlay defines (with its image) is not "no image"
    t = {"compose.yml": "services:\n  app: {image: a:1.0.0}\n",
         "compose.search.yml": "services:\n  search: {image: s:1.0.0, environment: [A=1]}\n",
         "compose.search.auth.yml": "services:\n  search:\n    environment: [AUTH=1]\n",
         ".env.sample": '#COMPOSE_FILE="compose.yml:compose.search.auth.yml"\n'}
    assert not by_rule(t, "R09")
    del t["compose.search.yml"]
    assert [(x.service, x.optional) for x in by_rule(t, "R09")] == [("search", True)]


def test_R10_standard_deploy_block_is_a_hint_not_a_defect():
    got = by_rule(tree(TRAEFIK), "R10")        # as shipped: rollback + start-first in compose.yml
    assert [(x.service, x.severity, x.file) for x in got] == [("app", "hint", "compose.yml")]
    assert not R.corroborates(got[0].to_dict(), "upgrade")
    assert R.hints([got[0].to_dict()], "upgrade") and not R.hints([got[0].to_dict()], "install")


def test_R11_reads_every_compose_file_line_with_accumulation():
    cur = tree(BONFIRE)
    prev = {k: v for k, v in cur.items() if k != "compose.postgres.yml"}
    got = by_rule(cur, "R11", prev_files=prev)
    # compose.postgres.yml is added by the second, accumulating COMPOSE_FILE line: the default stack
    assert [(x.optional, "compose.postgres.yml" in x.message) for x in got] == [(False, True)]
    assert not by_rule(cur, "R11", prev_files=cur)
    prev = {k: v for k, v in cur.items() if k != "postgres/compose.postgres.tune.yml"}
    got = by_rule(cur, "R11", prev_files=prev)       # a commented overlay in a subfolder: optional
    assert [(x.optional, "postgres/compose.postgres.tune.yml" in x.message) for x in got] == [(True, True)]
    t = tree(TRAEFIK)
    t[".env.sample"] = t[".env.sample"].replace('#COMPOSE_FILE="compose.yml:compose.host.yml"', 'COMPOSE_FILE="compose.yml:compose.host.yml"')
    prev = {k: v for k, v in t.items() if k != "compose.host.yml"}
    assert [x.optional for x in by_rule(t, "R11", prev_files=prev)] == [False]


def test_R12_version_label_vs_tag():
    f = tree(BONFIRE)
    assert not by_rule(f, "R12", tag="2.0.1+1.0.6-social-amd64")
    assert [(x.service, x.severity) for x in by_rule(f, "R12", tag="2.0.2+1.0.7-social-amd64")] == [("app", "error")]


def test_R13_legacy_labels():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("backupbot.backup.pre-hook", "backupbot.backup.path: /x\n        backupbot.backup.command")
    assert ("R13", "db") in rules(f)


def test_R14_gitea_app_ini_read_only_config_lab():
    got = by_rule(lab("gitea", "3.6.0+1.24.2-rootless"), "R14")
    assert [(x.service, x.severity) for x in got] == [("app", "error")]


def test_R15_and_R16_compose_that_does_not_load():
    f = tree(SSB)
    f["compose.yml"] = f["compose.yml"].replace("    image: 3wordchant/go-ssb-room:2.0.3\n",
                                                "    image: 3wordchant/go-ssb-room:2.0.3\n    image: x:1.0.0\n")
    assert any("already defined" in x.message for x in by_rule(f, "R15"))
    f = tree(SSB)
    f[".env.sample"] += 'COMPOSE_FILE="compose.yml:compose.gone.yml"\n'
    assert [x.message for x in by_rule(f, "R15")] == ["compose.gone.yml does not exist"]
    f = tree(SSB)
    f["compose.yml"] = f["compose.yml"].replace("      - DOMAIN\n", "      - DOMAIN=${DOMAIN:?set DOMAIN}\n      - X=${X_REQUIRED:?}\n")
    assert [(x.severity, "X_REQUIRED" in x.message) for x in by_rule(f, "R15")] == [("warning", True)]   # DOMAIN is in .env.sample
    b = tree(BONFIRE)
    b["compose.auth.github.yml"] = b["compose.auth.github.yml"].replace("  oauth_client_secret:", "  github_client_secret:")
    assert not by_rule(b, "R16")


def test_lab_findings_the_six_verdicts_rely_on_are_unchanged():
    """The stored example bundles carry the recipe files at the tag and the previous tag (raw facts);
    judged at classify time (analyze.derive) they give the same rule, service, severity, file and
    message as the lab trees evaluated directly — and the findings the verdicts rely on are there."""
    from redfix_lib.analyze import derive
    from redfix_lib.bundle import load_bundle
    stored = ROOT / "outputs" / "example"
    checked, rules = 0, set()
    for case, recipe in (("lab-bluesky-pds", "bluesky-pds"), ("lab-gitea", "gitea"), ("lab-mattermost-lts", "mattermost-lts"),
                         ("lab-discourse", "discourse"), ("lab-mumble", "mumble")):
        items, _ = derive(load_bundle(stored / case))
        for e in items:
            if e.kind == "static_rules" and e.status == "ok" and e.data.get("label") in ("tag", "previous-tag"):
                now = evaluate(lab(recipe, e.data["ref"]), tag=e.data["ref"])
                assert [(f.rule, f.service, f.severity, f.file, f.message) for f in now] == \
                    [(f["rule"], f["service"], f["severity"], f["file"], f["message"]) for f in e.data["findings"]]
                checked += bool(now)
                rules |= {(recipe, f.rule) for f in now if f.severity == "error"}
    assert checked == 6      # R08 bluesky, R14 gitea, R03 (+R07) mattermost, at the tag and the previous tag
    assert {("bluesky-pds", "R08"), ("gitea", "R14"), ("mattermost-lts", "R03")} <= rules


def test_static_collector_reads_mounted_files_at_refs_and_the_app_env(tmp_path):
    """collectors/static.py on a git repo of a real tree (no engine): a config file with any name
    (nginx.conf) is read at both tags, so a change without a version bump is seen; the probe's
    `env` decides the deployed stack."""
    import subprocess
    from types import SimpleNamespace as NS
    from redfix_lib.collectors import static
    repo = tmp_path / "lemp"
    repo.mkdir()
    for k, v in tree(LEMP).items():
        (repo / k).parent.mkdir(parents=True, exist_ok=True)
        (repo / k).write_text(v)
    git = lambda *a: subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *a],  # noqa: E731
                                    check=True, capture_output=True)
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "a")
    git("tag", "1.0.0+8.0")
    (repo / "nginx.conf").write_text((repo / "nginx.conf").read_text() + "\n# changed\n")
    git("commit", "-qam", "b")
    git("tag", "1.0.1+8.0")

    class Node:
        def capture(self, argv, timeout_s=60):
            r = subprocess.run(argv, capture_output=True)
            return r.returncode, r.stdout
    cx = NS(node=Node(), recipe_repo=str(repo), case=NS(ref="1.0.1+8.0", recipe="lemp"))
    assert "nginx.conf" in static.files_at(cx, str(repo), "1.0.1+8.0")
    from redfix_lib.analyze import static_item      # the collector stores the files; rules run at classify time
    raw = {i.data["label"]: i for i in static.collect(cx, {"env": {"COMPOSE_FILE": "compose.yml:compose.mailrelay.yml"}})}
    items = {lbl: static_item(i, raw["previous-tag"].data["files"]).data["findings"] for lbl, i in raw.items()}
    r06 = [f for f in items["tag"] if f["rule"] == "R06"]
    assert [("nginx.conf" in f["message"], f["stack"]) for f in r06] == [(True, "compose.yml:compose.mailrelay.yml")]
    assert not [f for f in items["previous-tag"] if f["rule"] == "R06"]
