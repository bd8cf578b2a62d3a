"""Static recipe rules: one record per rule (id, title, check, cause, tiers, severity, grep, fix),
run on the stacks abra would deploy from a recipe tree at a ref (compose.py resolves COMPOSE_FILE,
overlays, interpolation and merge), and, for cross-ref rules, against the previous ref.

Severity decides what a finding may do in a verdict (classify.py reads it through `corroborates`):
- error: a defect decided from the files alone. It is one kind of evidence for its sub_cause, and
  only for a failing tier the rule can explain, and only when the stack it was found in is the one
  the app deploys (not an optional overlay). One kind alone is still only a hint.
- warning: a likely defect the files cannot decide (moving tags, scripts an image may ship, legacy
  labels, a tag not in recipe form). A hint, listed with its evidence; never corroborates.
- hint: not a defect: a recipe fact that changes how a failure in its tiers shows (a rolled-back
  upgrade). Read when the failing tier is one of its tiers, to choose the next probe; never counts.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from . import compose as C

RULESET_VERSION = "rules-2"
SEVERITIES = ("error", "warning", "hint")
DB_NAMES = {"db", "database", "postgres", "postgresql", "mysql", "mariadb", "mongo", "mongodb"}
DB_IMAGE_RE = re.compile(r"(^|/)(postgres|postgis|mysql|mariadb|mongo)[^/]*(:|$)")
WRITES_OWN_CONFIG = {"gitea": "app.ini", "forgejo": "app.ini"}   # app -> file it rewrites
SCRIPT_RE = re.compile(r"(/[A-Za-z0-9_./-]+\.sh)\b")
PINNED_TAG_RE = re.compile(r"\d+\.\d+\.\d+|^[0-9a-f]{12,}$|20\d\d-?[01]\d-?[0-3]\d")
CONVENTIONAL_ON_PROXY = {"app"}   # service names every recipe attaches to the shared proxy network
HOOKS = ("backupbot.backup.pre-hook", "backupbot.backup.post-hook", "backupbot.restore.pre-hook",
         "backupbot.restore.post-hook", "backupbot.backup.command")
LEGACY = ("backupbot.backup.path", "backupbot.backup.command")


@dataclass
class Finding:
    rule: str
    title: str
    severity: str        # error | warning | hint
    service: str
    message: str
    file: str = "compose.yml"
    stack: str = ""      # the COMPOSE_FILE (or stack files) it was found in
    optional: bool = False   # only when an optional overlay is enabled

    @property
    def id(self) -> str:
        return f"rule:{self.rule}:{self.service or '-'}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["id"] = self.id
        return d


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    sub_cause: str
    tiers: frozenset
    grep: str            # what to grep in the blamed file to see it
    fix: str
    check: Callable | None = field(default=None, compare=False)   # per deployable stack
    cross: Callable | None = field(default=None, compare=False)   # against the previous ref
    cause: str = "recipe"


RULES: dict[str, Rule] = {}


def rule(id, title, severity, sub_cause, tiers, grep, fix, cross_only=False):
    assert severity in SEVERITIES

    def deco(fn):
        r = Rule(id, title, severity, sub_cause, frozenset(tiers), grep, fix)
        RULES[id] = replace(r, cross=fn) if cross_only else replace(r, check=fn)
        return fn
    return deco


def cross(id):
    """Attach a cross-ref check (this ref against the previous one) to a registered rule."""
    def deco(fn):
        RULES[id] = replace(RULES[id], cross=fn)
        return fn
    return deco


# --- lookups for the classifier ------------------------------------------------------------------
def get(rule_id: str) -> Rule | None:
    return RULES.get(rule_id)


def corroborates(finding: dict, tier: str) -> bool:
    """May this stored finding count as evidence for a failure of `tier`? (errors only, the rule's
    tiers only, the deployed stack only)."""
    r = RULES.get(finding.get("rule", ""))
    return bool(r) and finding.get("severity") == "error" and tier in r.tiers and not finding.get("optional")


def hints(findings: list[dict], tier: str) -> list[dict]:
    """Warnings and hints that bear on a failure of `tier` (never evidence on their own)."""
    return [f for f in findings if f.get("severity") in ("warning", "hint")
            and (r := RULES.get(f.get("rule", ""))) and tier in r.tiers]


# --- context of one stack ------------------------------------------------------------------------
@dataclass
class Ctx:
    files: dict[str, str]
    project: C.Project
    stack: C.Stack
    recipe: bool
    tag: str | None
    out: list = field(default_factory=list)

    def add(self, rule_id, service, message, file=None, severity=None):
        r = RULES[rule_id]
        self.out.append(Finding(rule_id, r.title, severity or r.severity, service, message,
                                file or self.project.file_of(service), self.stack.label, self.stack.optional))


def _labels(svc: dict) -> dict[str, str]:
    """Service labels then deploy labels (deploy wins): backup rules read both places."""
    return {**(svc.get("labels") or {}), **C.deploy_labels(svc)}


def _label_file(ctx: Ctx, svc: str, key: str) -> str:
    lo = ctx.project.label_origin.get(svc, {})
    return lo.get(("deploy", key)) or lo.get(("labels", key)) or ctx.project.file_of(svc)


def _mount_file(ctx: Ctx, svc: str, kind: str, src: str) -> str:
    """The last file of the stack whose service mounts `src` under `kind`."""
    for f in reversed(ctx.stack.files):
        s = ((ctx.project.docs.get(f) or {}).get("services") or {}).get(svc) or {}
        if any((c.get("source") if isinstance(c, dict) else c) == src for c in s.get(kind) or []):
            return f
    return ctx.project.file_of(svc, kind)


def _is_db(name: str, svc: dict) -> bool:
    return name in DB_NAMES or bool(DB_IMAGE_RE.search(str(svc.get("image") or "")))


def _strings(v) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [k if x is None else f"{k}={x}" for k, x in v.items()]
    if isinstance(v, list):
        return [str(x) for x in v]
    return []


def _image_tag(image: str) -> str | None:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "@digest"
    return last.split(":", 1)[1] if ":" in last else None


# --- the rules -----------------------------------------------------------------------------------
@rule("R01", "backupbot labels under plain labels: instead of deploy.labels", "error",
      "backup-labels-not-deployed", {"backup", "restore"}, "labels:|backupbot",
      "recipe: move the backupbot.* labels under deploy.labels (backupbot reads Swarm service labels)")
def r01(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        bad = sorted(k for k in (svc.get("labels") or {}) if k.startswith("backupbot."))
        if bad:
            ctx.add("R01", name, f"{', '.join(bad)} under labels: (container labels); backupbot reads "
                                 "Swarm service labels (deploy.labels), so this service is not backed up",
                    _label_file(ctx, name, bad[0]))


@rule("R02", "database service with data volumes but no backupbot.backup", "error",
      "database-not-backed-up", {"backup", "restore"}, "backupbot|volumes",
      "recipe: add backupbot.backup=true (with a dump pre-hook and a restore post-hook) to the database service")
def r02(ctx: Ctx):
    # only when the recipe opts into backups: without any backupbot.backup label the backup and
    # restore tiers do not run (cc-ci), so a missing label explains nothing
    opted = any(k == "backupbot.backup" for s in ctx.project.services.values() for k in _labels(s))
    if not opted:
        return
    for name, svc in ctx.project.services.items():
        vols = C.service_volumes(svc)
        if _is_db(name, svc) and vols and not any(k.startswith("backupbot.backup") for k in _labels(svc)):
            ctx.add("R02", name, f"database service mounts {', '.join(vols)} but has no backupbot.backup label "
                                 "while other services of the stack are backed up")


@rule("R03", "backup pre-hook (dump) without backupbot.restore.post-hook", "error",
      "missing-restore-hook", {"restore"}, "backupbot",
      "recipe: dump-only backup path + backupbot.restore.post-hook replaying the dump")
def r03(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        lb = _labels(svc)
        pre = lb.get("backupbot.backup.pre-hook")
        if not pre or lb.get("backupbot.restore.post-hook"):
            continue
        # a pre-hook undone by a backup post-hook (maintenance mode on/off) needs no replay
        if not re.search(r"dump|backup|\.sql", pre) and lb.get("backupbot.backup.post-hook"):
            continue
        ctx.add("R03", name, f"pre-hook {pre!r} dumps, but there is no "
                             "backupbot.restore.post-hook to replay the dump on restore",
                _label_file(ctx, name, "backupbot.backup.pre-hook"))


@rule("R04", "backupbot.backup.volumes.<v>.path names a volume the service does not mount", "error",
      "backup-path-unmounted-volume", {"backup", "restore"}, "backupbot|volumes",
      "recipe: name a volume the service mounts in backupbot.backup.volumes.<v>[.path]")
def r04(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        vols = C.service_volumes(svc)
        for k in _labels(svc):
            m = re.fullmatch(r"backupbot\.backup\.volumes\.([^.]+)(\.path)?", k)
            if m and m.group(1) not in vols:
                ctx.add("R04", name, f"{k} names volume {m.group(1)!r}, the service mounts {vols or 'none'}",
                        _label_file(ctx, name, k))


@rule("R05", "hook calls a script no config of the service provides", "warning",
      "hook-script-missing", {"backup", "restore"}, "backupbot|target:",
      "recipe: mount the script as a config (target: /script.sh, mode: 0555) on the service that runs the hook")
def r05(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        lb = _labels(svc)
        targets = {C.mount_key("configs", c) for c in svc.get("configs") or []}
        for hk in HOOKS:
            for script in SCRIPT_RE.findall(lb.get(hk, "")):
                if script not in targets:
                    ctx.add("R05", name, f"{hk} calls {script}, which no config of the service mounts "
                                         "(the image may ship it: check)", _label_file(ctx, name, hk))


@rule("R06", "config versioning: ${X_VERSION} unset with no default, or config changed without a version bump",
      "error", "config-version-not-bumped", {"install", "upgrade", "promote"}, "name:|_VERSION",
      "recipe: set the version in abra.sh (configs) or .env.sample (secrets), and bump it when the file changes")
def r06(ctx: Ctx):
    if not ctx.recipe:
        return   # plain stacks take their variables from the deployer's shell: undecidable
    env = ctx.stack.env
    for (section, cname), raw in sorted(ctx.project.raw_names.items()):
        if section not in ("configs", "secrets"):
            continue
        for var, op, _ in C.references(raw):
            if var in C.KEEP or op in (":-", "-") or var in env:
                continue
            where = ("abra.sh does not export and .env.sample does not set" if section == "configs"
                     else ".env.sample does not set (nor abra.sh)")
            ctx.add("R06", "-", f"{section[:-1]} {cname} name uses ${{{var}}}, which {where}, with no default",
                    ctx.project.top_origin.get((section, cname)))


@rule("R07", "moving image tag", "warning", "moving-image-tag", {"install", "upgrade", "promote", "custom"},
      "image:", "recipe: pin the image to a full version (x.y.z) or a digest")
def r07(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        image = str(svc.get("image") or "")
        if not image or svc.get("build"):
            continue   # a built image is not pulled: nothing upstream can move under it
        t = _image_tag(image)
        if t is None or (t != "@digest" and not PINNED_TAG_RE.search(t)):
            ctx.add("R07", name, f"image {image!r} uses a moving tag ({t or 'implicit latest'})",
                    ctx.project.where(name, "image"))


@rule("R08", "bare short service name resolved over the shared proxy network (cross-stack collision)", "error",
      "cross-stack-alias-collision", {"install", "promote", "custom"}, "networks|proxy|http://",
      "recipe: give the service a unique alias and point callers at it (no bare `app` over proxy)")
def r08(ctx: Ctx):
    services = ctx.project.services
    for name, svc in services.items():
        if "proxy" not in C.service_networks(svc):
            continue
        text = " ".join(_strings(svc.get("environment")) + _strings(svc.get("command")) + _strings(svc.get("entrypoint")))
        for other, osvc in services.items():
            if other == name:
                continue
            if not re.search(rf"(?<![A-Za-z0-9_.-]){re.escape(other)}(:\d+|/|\b)(?![A-Za-z0-9_.-])", text):
                continue
            if not re.search(rf"(://|=){re.escape(other)}(:\d+|/|$|\s)", text) and not re.search(rf"\b{re.escape(other)}:\d+", text):
                continue
            shared = (set(C.service_networks(svc)) & set(C.service_networks(osvc))) - {"proxy"}
            if not shared:
                # every recipe's main service is `app` on proxy (Co-op Cloud convention), so a bare
                # `app` collides for sure; another name collides only if another stack uses it too
                sure = other in CONVENTIONAL_ON_PROXY
                ctx.add("R08", name, f"{name} reaches {other!r} by its bare name, but shares no network with it "
                                     f"except the shared 'proxy', where " + (f"every stack's {other!r} answers" if sure else
                                     f"any other stack's service named {other!r} would answer too"),
                        severity="error" if sure else "warning")


@rule("R09", "service with no image", "error", "service-without-image", {"install"}, "image:|^  [a-z]",
      "recipe: give the service an image: (abra and docker stack deploy never build)")
def r09(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        if str(svc.get("image") or "").strip():
            continue
        if svc.get("build") and not ctx.recipe and "stack" not in " ".join(ctx.stack.files):
            continue   # a docker compose file that builds its image (not a Swarm stack)
        # an overlay that extends a service another overlay gives the image to is a selection
        # matter (which overlays go together), not a service without image
        if any(f not in ctx.stack.files and _gives_image(ctx.files, f, name, ctx.stack.env) for f in _compose_names(ctx)):
            continue
        raw = _raw_image(ctx, name)
        if raw:
            unset = [v for v, op, _ in C.references(raw) if op not in (":-", "-") and not ctx.stack.env.get(v)]
            msg = f"image: {raw} resolves to nothing ({', '.join(unset) or 'variables'} unset in .env.sample, no default)"
        else:
            msg = "service has no image:" + (" (build: is ignored by docker stack deploy and abra)" if svc.get("build") else "")
        ctx.add("R09", name, msg, ctx.project.where(name, "image") if raw else ctx.project.file_of(name))


def _compose_names(ctx: Ctx) -> list[str]:
    return [n for n in ctx.files if ctx.recipe and (C.OVERLAY_RE.search(n) or n == "compose.yml")]


def _gives_image(files, fname, service, env) -> bool:
    doc, _ = C.parse_yaml(files.get(fname, ""))
    svc = ((doc or {}).get("services") or {}).get(service) if isinstance(doc, dict) else None
    return isinstance(svc, dict) and bool(C.interpolate(str(svc.get("image") or ""), env, errors=[]).strip())


def _raw_image(ctx: Ctx, service: str) -> str:
    for f in reversed(ctx.stack.files):
        doc, _ = C.parse_yaml(ctx.files.get(f, ""))
        svc = ((doc or {}).get("services") or {}).get(service) if isinstance(doc, dict) else None
        if isinstance(svc, dict) and svc.get("image"):
            return str(svc["image"])
    return ""


@rule("R10", "update_config failure_action: rollback: a failed upgrade is reverted without failing the deploy",
      "hint", "silent-rollback", {"upgrade", "promote"}, "failure_action|order",
      "investigate the new version's task failure (docker service ps --no-trunc <stack>_<service>): the rollback "
      "is how it shows, not its cause")
def r10(ctx: Ctx):
    # The standard Co-op Cloud deploy block. Not a defect: it tells how an upgrade failure shows
    # (cc-ci runbook: "wrong version after upgrade" = Swarm failure_action: rollback reverted it).
    for name, svc in ctx.project.services.items():
        uc = (svc.get("deploy") or {}).get("update_config") or {}
        if uc.get("failure_action") == "rollback":
            ctx.add("R10", name, "failure_action: rollback: if the new version's tasks fail, Swarm reverts to the old "
                                 "one; an upgrade that ends on the old version means the new tasks failed — read their "
                                 "error, not the upgrade step",
                    ctx.project.where(name, "deploy", "update_config", "failure_action"))


@rule("R11", "overlay named in COMPOSE_FILE missing at an older tag", "error", "overlay-missing-at-older-tag",
      {"upgrade"}, "COMPOSE_FILE", "recipe: keep the overlay's name out of the default COMPOSE_FILE until the "
      "upgrade base has it, or pin the upgrade base (UPGRADE_BASE_VERSION) to a tag that has it", cross_only=True)
def r11(files, prev, env, out):
    if not C.is_recipe(files):
        return
    seen = set()
    for st in C.recipe_stacks(files, env):     # the default stack first: once per overlay
        for ov in st.files:
            if ov in files and ov not in prev and ov not in seen:
                seen.add(ov)
                out.append(Finding("R11", RULES["R11"].title, "error", "-",
                                   f"COMPOSE_FILE names {ov}, which does not exist at the previous tag: "
                                   "the upgrade base deploy fails" + (f" (when enabled: {st.why})" if st.optional else ""),
                                   ".env.sample", st.label, st.optional))


@cross("R06")
def r06_cross(files, prev, env, out):
    old_stacks = {st.label: st for st in C.stacks(prev, env) if not st.optional}
    for st in C.stacks(files, env):
        if st.optional or st.label not in old_stacks:
            continue
        cur = C.load_project(files, st.files, st.env)
        old = C.load_project(prev, old_stacks[st.label].files, old_stacks[st.label].env)
        for cname, c in sorted((cur.data.get("configs") or {}).items()):
            c, pc = c or {}, (old.data.get("configs") or {}).get(cname) or {}
            base = posixpath.dirname(st.files[0])   # compose: paths are relative to the first file
            fpath = posixpath.normpath(posixpath.join(base, str(c.get("file", "")))) if c.get("file") else ""
            name = c.get("name") or f"<stack>_{cname}"
            if fpath and fpath in files and fpath in prev and files[fpath] != prev[fpath] \
                    and pc and name == (pc.get("name") or f"<stack>_{cname}"):
                out.append(Finding("R06", RULES["R06"].title, "error", "-",
                                   f"config {cname} file {fpath} changed since the previous tag but its name "
                                   f"{name} did not (Swarm refuses: only updates to Labels are allowed)",
                                   cur.top_origin.get(("configs", cname), st.files[0]), st.label))


@rule("R12", "coop-cloud.${STACK_NAME}.version label disagrees with the git tag", "error",
      "version-label-mismatch", {"upgrade"}, "version", "recipe: set the version label to the release tag (abra recipe sync)")
def r12(ctx: Ctx):
    if not ctx.tag:
        return
    for name, svc in ctx.project.services.items():
        for k, v in C.deploy_labels(svc).items():
            if re.fullmatch(r"coop-cloud\.\$\{STACK_NAME\}\.version", k) and v and v != ctx.tag:
                # a tag not in recipe form (<semver>+<upstream>) is an app repo's own release tag:
                # which of the two abra takes as the version cannot be decided from the files
                sev = "error" if "+" in ctx.tag else "warning"
                ctx.add("R12", name, f"version label {v!r} != tag {ctx.tag!r}", _label_file(ctx, name, k), sev)


@rule("R13", "legacy v1 backup labels", "warning", "legacy-backup-labels", {"backup", "restore"},
      "backupbot.backup.(path|command)", "recipe: use backupbot v2 labels (backupbot.backup.volumes.<v>.path, pre-/post-hooks)")
def r13(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        legacy = sorted(k for k in _labels(svc) if k in LEGACY)
        if legacy:
            ctx.add("R13", name, f"legacy v1 backup labels: {', '.join(legacy)}", _label_file(ctx, name, legacy[0]))


@rule("R14", "application that rewrites its own config file given it as a read-only config mount", "error",
      "read-only-config-write", {"install", "upgrade", "promote"}, "configs|target:|app.ini",
      "recipe: render the file into a writable volume (entrypoint) instead of a read-only config mount")
def r14(ctx: Ctx):
    for name, svc in ctx.project.services.items():
        image = str(svc.get("image") or "").lower()
        for app, fname in WRITES_OWN_CONFIG.items():
            if app not in image:
                continue
            for kind in ("configs", "secrets"):
                for c in svc.get(kind) or []:
                    tgt = C.mount_key(kind, c)
                    if tgt.endswith("/" + fname) or tgt == fname:
                        what = "config" if kind == "configs" else "secret"
                        ctx.add("R14", name, f"{app} rewrites {fname} (e.g. to save a generated JWT secret) "
                                             f"but {tgt} is a read-only {what} mount", ctx.project.file_of(name, kind))


@rule("R15", "compose files do not load (YAML, duplicate key, interpolation, missing file)", "error",
      "compose-invalid", {"install", "upgrade", "promote"}, "\\$\\{|^[^#]*:",
      "recipe: fix the compose file so `docker compose -f ... config` accepts it")
def r15(ctx: Ctx):
    for fname, msg in ctx.project.errors:
        if "required variable" in msg:
            # a plain stack's variables come from the deployer's shell: undecidable; a recipe's
            # app env may set what .env.sample leaves out (the harness sets DOMAIN etc.): a hint
            if ctx.recipe:
                ctx.add("R15", "-", msg + " (not set in .env.sample: the app's env must set it)", fname, "warning")
            continue
        ctx.add("R15", "-", msg, fname)


@rule("R16", "service refers to a secret, config, network or volume the compose files do not declare", "error",
      "undefined-compose-reference", {"install", "upgrade", "promote"}, "secrets:|configs:|networks:|volumes:",
      "recipe: declare it at the top level of the overlay that uses it (or use the declared name)")
def r16(ctx: Ctx):
    d = ctx.project.data
    for name, svc in ctx.project.services.items():
        for kind in ("secrets", "configs"):
            declared = d.get(kind) or {}
            for c in svc.get(kind) or []:
                src = c.get("source") if isinstance(c, dict) else c
                if src not in declared:
                    ctx.add("R16", name, f"{kind[:-1]} {src!r} is not declared under top-level {kind}: "
                                         "(docker stack deploy: undefined " + kind[:-1] + ")", _mount_file(ctx, name, kind, src))
        for n in C.service_networks(svc):
            if n != "default" and n not in (d.get("networks") or {}):
                ctx.add("R16", name, f"network {n!r} is not declared under top-level networks:",
                        ctx.project.file_of(name, "networks"))
        for v in C.service_volumes(svc):
            if v not in (d.get("volumes") or {}):
                ctx.add("R16", name, f"volume {v!r} is not declared under top-level volumes:",
                        ctx.project.file_of(name, "volumes"))


# --- evaluation ----------------------------------------------------------------------------------
def evaluate(files: dict[str, str], tag: str | None = None, prev_files: dict[str, str] | None = None,
             env: dict[str, str] | None = None) -> list[Finding]:
    """Every rule on a recipe tree at one ref (`files`: path -> text). Each stack abra would deploy
    is checked: the default COMPOSE_FILE (from .env.sample, or `env` when given), then each optional
    overlay; a finding seen in the default stack is reported once, as not optional."""
    recipe = C.is_recipe(files)
    seen: dict[tuple, Finding] = {}
    for st in C.stacks(files, env):
        proj = C.load_project(files, st.files, st.env)
        ctx = Ctx(files, proj, st, recipe, tag)
        for r in RULES.values():
            if r.check:
                r.check(ctx)
        for f in ctx.out:
            seen.setdefault((f.rule, f.service, f.message, f.file), f)
    out = list(seen.values())
    if prev_files is not None:
        crossed: list[Finding] = []
        for r in RULES.values():
            if r.cross:
                r.cross(files, prev_files, env, crossed)
        out.extend(crossed)
    out.sort(key=lambda x: (x.rule, x.optional, x.service, x.file, x.message))
    return out


def defects(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity != "hint"]


def merged_compose(files: dict[str, str], env: dict[str, str] | None = None) -> tuple[dict, dict[str, str]]:
    """The default stack merged (as deployed); returns (compose, service -> file defining it)."""
    st = C.stacks(files, env)
    if not st:
        return {}, {}
    p = C.load_project(files, st[0].files, st[0].env)
    return p.data, {s: p.file_of(s) for s in p.services}
