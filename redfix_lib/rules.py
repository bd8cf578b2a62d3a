"""Static recipe rules: the 14 defects of shared/reference/recipes.md, as pure functions
of a recipe's files at a ref (and, for cross-ref rules, at the previous ref)."""
from __future__ import annotations

import re
from dataclasses import dataclass, asdict

from . import compose as C

RULESET_VERSION = "rules-1"
DB_NAMES = {"db", "database", "postgres", "postgresql", "mysql", "mariadb", "mongo", "mongodb"}
DB_IMAGE_RE = re.compile(r"(^|/)(postgres|postgis|mysql|mariadb|mongo)[^/]*(:|$)")
WRITES_OWN_CONFIG = {"gitea": "app.ini", "forgejo": "app.ini"}   # app -> file it rewrites
MOVING_TAG_RE = re.compile(r"^(latest|stable|main|master|edge|release-.*|v?\d+(\.\d+)?)$")
SCRIPT_RE = re.compile(r"(/[A-Za-z0-9_./-]+\.sh)\b")


@dataclass
class Finding:
    rule: str
    title: str
    severity: str        # error | warning
    service: str
    message: str
    file: str = "compose.yml"

    @property
    def id(self) -> str:
        return f"rule:{self.rule}:{self.service or '-'}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["id"] = self.id
        return d


TITLES = {
    "R01": "backupbot labels under plain labels: instead of deploy.labels",
    "R02": "database service with data volumes but no backupbot.backup",
    "R03": "backup pre-hook (dump) without backupbot.restore.post-hook",
    "R04": "backupbot.backup.volumes.<v>.path names a volume the service does not mount",
    "R05": "hook calls a script no config of the service provides",
    "R06": "config versioning: ${X_VERSION} unset with no default, or config changed without a version bump",
    "R07": "moving image tag",
    "R08": "bare short service name resolved over the shared proxy network (cross-stack collision)",
    "R09": "service with no image",
    "R10": "update_config failure_action rollback with order start-first (silent rollback)",
    "R11": "overlay named in COMPOSE_FILE missing at an older tag",
    "R12": "coop-cloud.${STACK_NAME}.version label disagrees with the git tag",
    "R13": "legacy v1 backup labels",
    "R14": "application that rewrites its own config file given it as a read-only config mount",
}


def _f(rule, svc, msg, sev="error", file="compose.yml"):
    return Finding(rule, TITLES[rule], sev, svc, msg, file)


def merged_compose(files: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """compose.yml merged with every compose.*.yml overlay; returns (compose, service->file)."""
    base = C.load(files.get("compose.yml", "")) if "compose.yml" in files else {}
    where = {s: "compose.yml" for s in (base.get("services") or {})}
    for name in sorted(files):
        if re.fullmatch(r"compose\.[A-Za-z0-9_.-]+\.yml", name):
            try:
                over = C.load(files[name])
            except Exception:  # noqa: BLE001 - a broken overlay is reported by the harness
                continue
            for s in (over.get("services") or {}):
                where.setdefault(s, name)
            base = C.merge(base, over)
    return base, where


def _abra_exports(files: dict[str, str]) -> set[str]:
    return set(re.findall(r"export\s+([A-Za-z_][A-Za-z0-9_]*)=", files.get("abra.sh", "")))


def _image_tag(image: str) -> str | None:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "@digest"
    return last.split(":", 1)[1] if ":" in last else None


def _strings(v) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [f"{k}={x}" for k, x in v.items()]
    if isinstance(v, list):
        return [str(x) for x in v]
    return []


def evaluate(files: dict[str, str], tag: str | None = None, prev_files: dict[str, str] | None = None) -> list[Finding]:
    """All 14 rules on one recipe at one ref. `files`: path -> text of the recipe tree.
    Overlays are optional features: the base compose is checked alone and with each overlay."""
    overlays = sorted(n for n in files if re.fullmatch(r"compose\.[A-Za-z0-9_.-]+\.yml", n))
    seen: dict[tuple, Finding] = {}
    for ov in [None] + overlays:
        sub = {k: v for k, v in files.items() if not re.fullmatch(r"compose\.[A-Za-z0-9_.-]+\.yml", k) or k == ov}
        for f in _evaluate_one(sub, tag, files):
            seen.setdefault((f.rule, f.service, f.message), f)
    out = list(seen.values())
    if prev_files is not None:
        comp, _ = merged_compose(files)
        out.extend(cross_ref(files, prev_files, comp.get("configs") or {}))
    out.sort(key=lambda x: (x.rule, x.service, x.message))
    return out


def _evaluate_one(files: dict[str, str], tag: str | None, all_files: dict[str, str]) -> list[Finding]:
    comp, where = merged_compose(files)
    services = comp.get("services") or {}
    out: list[Finding] = []
    raw_all = "\n".join(t for n, t in files.items() if n.startswith("compose"))
    exports = _abra_exports(all_files)

    for name, svc in services.items():
        if not isinstance(svc, dict):
            continue
        f = where.get(name, "compose.yml")
        labels = C.deploy_labels(svc)
        plain = svc.get("labels") or {}
        image = str(svc.get("image") or "")
        vols = C.service_volumes(svc)
        # R01
        bad = sorted(k for k in plain if k.startswith("backupbot."))
        if bad:
            out.append(_f("R01", name, f"{', '.join(bad)} under labels: (container labels); backupbot reads "
                                       "Swarm service labels (deploy.labels), so this service is not backed up", file=f))
        backed = any(k.startswith("backupbot.backup") for k in labels)
        # R02
        is_db = name in DB_NAMES or bool(DB_IMAGE_RE.search(image))
        if is_db and vols and not backed and not any(k.startswith("backupbot.") for k in plain):
            out.append(_f("R02", name, f"database service mounts {', '.join(vols)} but has no backupbot.backup label", file=f))
        # R03
        if labels.get("backupbot.backup.pre-hook") and not labels.get("backupbot.restore.post-hook"):
            out.append(_f("R03", name, f"pre-hook {labels['backupbot.backup.pre-hook']!r} dumps, but there is no "
                                       "backupbot.restore.post-hook to replay the dump on restore", file=f))
        # R04
        for k in labels:
            m = re.fullmatch(r"backupbot\.backup\.volumes\.([^.]+)\.path", k)
            if m and m.group(1) not in vols:
                out.append(_f("R04", name, f"{k} names volume {m.group(1)!r}, the service mounts {vols or 'none'}", file=f))
        # R05
        targets = {c.get("target") for c in (svc.get("configs") or []) if isinstance(c, dict)}
        targets |= {f"/{c}" for c in (svc.get("configs") or []) if isinstance(c, str)}
        for hk in ("backupbot.backup.pre-hook", "backupbot.backup.post-hook", "backupbot.restore.pre-hook",
                   "backupbot.restore.post-hook", "backupbot.backup.command"):
            for script in SCRIPT_RE.findall(labels.get(hk, "")):
                if script not in targets:
                    out.append(_f("R05", name, f"{hk} calls {script}, which no config of the service provides "
                                               f"(targets: {sorted(t for t in targets if t) or 'none'})", "warning", f))
        # R07
        if image:
            t = _image_tag(image)
            if t is None or (t != "@digest" and MOVING_TAG_RE.match(t)):
                out.append(_f("R07", name, f"image {image!r} uses a moving tag ({t or 'implicit latest'})", "warning", f))
        # R09
        if not image and not svc.get("build"):
            out.append(_f("R09", name, "service has no image:", file=f))
        # R10
        uc = (svc.get("deploy") or {}).get("update_config") or {}
        if uc.get("failure_action") == "rollback" and uc.get("order") == "start-first":
            out.append(_f("R10", name, "failure_action: rollback with order: start-first: a failed upgrade is "
                                       "silently rolled back and the old version keeps serving", "warning", f))
        # R12
        if tag:
            for k, v in labels.items():
                if re.fullmatch(r"coop-cloud\.\$\{STACK_NAME\}\.version", k) and v and v != tag:
                    out.append(_f("R12", name, f"version label {v!r} != tag {tag!r}", file=f))
        # R13
        legacy = [k for k in list(labels) + list(plain) if k in ("backupbot.backup.path", "backupbot.backup.command")]
        if legacy:
            out.append(_f("R13", name, f"legacy v1 backup labels: {', '.join(sorted(set(legacy)))}", "warning", f))
        # R14
        for app, fname in WRITES_OWN_CONFIG.items():
            if app in image.lower():
                for c in svc.get("configs") or []:
                    tgt = c.get("target", "") if isinstance(c, dict) else f"/{c}"
                    if tgt.endswith("/" + fname) or tgt == fname:
                        out.append(_f("R14", name, f"{app} rewrites {fname} (e.g. to save a generated JWT secret) "
                                                   f"but {tgt} is a read-only config mount", file=f))
    # R08: a service reaches another service of the stack by its bare name and the two share
    # no network but the shared proxy (where every stack's service of that name answers)
    for name, svc in services.items():
        if not isinstance(svc, dict) or "proxy" not in C.service_networks(svc):
            continue
        text = " ".join(_strings(svc.get("environment")) + _strings(svc.get("command")) + _strings(svc.get("entrypoint")))
        for other, osvc in services.items():
            if other == name or not isinstance(osvc, dict):
                continue
            if not re.search(rf"(?<![A-Za-z0-9_.-]){re.escape(other)}(:\d+|/|\b)(?![A-Za-z0-9_.-])", text):
                continue
            if not re.search(rf"(://|=){re.escape(other)}(:\d+|/|$|\s)", text) and not re.search(rf"\b{re.escape(other)}:\d+", text):
                continue
            shared = (set(C.service_networks(svc)) & set(C.service_networks(osvc))) - {"proxy"}
            if not shared:
                out.append(_f("R08", name, f"{name} reaches {other!r} by its bare name, but shares no network with it "
                                           f"except the shared 'proxy', where every stack's {other!r} answers", file=where.get(name, "compose.yml")))
    # R06: config names with ${X_VERSION} (only decidable when abra.sh is part of the tree)
    if "abra.sh" in all_files:
        for m in re.finditer(r"name:\s*\S*\$\{([A-Za-z_][A-Za-z0-9_]*_VERSION)(:?-[^}]*)?\}", raw_all):
            var, has_default = m.group(1), bool(m.group(2))
            if not has_default and var not in exports:
                out.append(_f("R06", "-", f"config name uses ${{{var}}}, which abra.sh does not export and has no default"))
    return out


def cross_ref(files: dict[str, str], prev: dict[str, str], configs: dict) -> list[Finding]:
    out = []
    # R06 (second half): a config file changed between the refs but its name did not
    pcomp, _ = merged_compose(prev)
    pconfigs = pcomp.get("configs") or {}
    for cname, c in configs.items():
        c = c or {}
        pc = pconfigs.get(cname) or {}
        fpath = str(c.get("file", "")).lstrip("./")
        if fpath and fpath in files and fpath in prev and files[fpath] != prev[fpath] \
                and c.get("name") and c.get("name") == pc.get("name"):
            out.append(_f("R06", "-", f"config {cname} file {fpath} changed since the previous tag but its name "
                                      f"{c.get('name')} did not (Swarm refuses: only updates to Labels are allowed)"))
    # R11: overlays named in COMPOSE_FILE (.env.sample) that the older tag lacks
    m = re.search(r"^\s*#?\s*COMPOSE_FILE=\"?([^\"\n]+)", files.get(".env.sample", ""), re.M)
    if m:
        for ov in m.group(1).split(":"):
            ov = ov.strip()
            if ov and ov in files and ov not in prev:
                out.append(_f("R11", "-", f"COMPOSE_FILE names {ov}, which does not exist at the previous tag: "
                                          "the upgrade base deploy fails", file=".env.sample"))
    return out
