"""Each of the 14 static rules on a real recipe file (tests/fixtures/real-recipes, copied from
../shared/real-recipes; as shipped, or with the one defect the rule is about put into it) or on a
lab recipe tree."""
from pathlib import Path

from redfix_lib.lab import RECIPES_SRC
from redfix_lib.rules import evaluate

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "fixtures" / "real-recipes"
BONFIRE = REAL / "bonfire" / "2.0.1+1.0.6-social-amd64"
TRAEFIK = REAL / "traefik-2021" / "v2.4.8"
SSB = REAL / "go-ssb-room-2021" / "2.0.3-HEAD"

def tree(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in d.iterdir() if p.is_file() and p.name != "SOURCE.txt"}


def lab(recipe: str, tag: str) -> dict[str, str]:
    """A lab recipe's tree at a tag, as `lab up` commits it (shared files included)."""
    from redfix_lib.lab.recipes import load_meta
    t = tree(RECIPES_SRC / recipe / "versions" / tag)
    for inc in load_meta(recipe).get("include", []):
        t.setdefault(inc, (RECIPES_SRC / "_shared" / inc).read_text())
    return t


def rules(files, **kw):
    return {(f.rule, f.service) for f in evaluate(files, **kw)}


def test_bonfire_as_shipped_is_clean_for_backup_rules():
    hits = rules(tree(BONFIRE), tag="2.0.1+1.0.6-social-amd64")
    assert not {r for r, _ in hits} & {"R01", "R02", "R03", "R04", "R05", "R12", "R13"}


def test_R01_backupbot_labels_under_plain_labels():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("    deploy:\n      labels:", "    labels:", 1)
    assert ("R01", "db") in rules(f)


def test_R02_database_without_backup():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = "\n".join(l for l in f["compose.postgres.yml"].splitlines() if "backupbot" not in l)
    assert ("R02", "db") in rules(f)


def test_R03_pre_hook_without_restore_post_hook_lab_and_real():
    assert ("R03", "db") in rules(lab("mattermost-lts", "2.1.9+10.11.15"))
    assert ("R03", "db") not in rules(lab("immich", "1.1.0+v1.121.0"))
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = "\n".join(l for l in f["compose.postgres.yml"].splitlines() if "restore.post-hook" not in l)
    assert ("R03", "db") in rules(f)


def test_R04_path_names_unmounted_volume():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("backupbot.backup.volumes.db-data.path", "backupbot.backup.volumes.pgdata.path")
    assert ("R04", "db") in rules(f)


def test_R05_hook_script_not_provided():
    f = tree(BONFIRE)
    assert ("R05", "db") not in rules(f) or "pg_backup" in f["compose.postgres.yml"]
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("/pg_backup.sh backup", "/dump_it.sh backup")
    assert ("R05", "db") in rules(f)


def test_R06_version_var_without_default_and_config_changed_without_bump():
    f = tree(BONFIRE)
    f["abra.sh"] = "export SOMETHING_ELSE=v1\n"
    assert any(r == "R06" for r, _ in rules(f))
    f["abra.sh"] = "".join(f"export {v}=v1\n" for v in
                           __import__("re").findall(r"\$\{([A-Z_]+_VERSION)\}", "".join(v for k, v in f.items() if k.startswith("compose"))))
    assert not any(r == "R06" for r, _ in rules(f))
    # lab: mumble's handshake.sh is identical across tags and its config name unchanged -> no R06
    assert not any(r == "R06" for r, _ in rules(lab("mumble", "1.0.0+v1.6.870-0"), prev_files=lab("mumble", "0.9.0+v1.5.735-0")))
    prev = lab("mumble", "0.9.0+v1.5.735-0")
    cur = dict(prev)
    cur["handshake.sh"] = prev["handshake.sh"] + "\n# changed\n"
    assert any(r == "R06" for r, _ in rules(cur, prev_files=prev))


def test_R07_moving_tag():
    f = tree(SSB)
    assert not any(r == "R07" for r, _ in rules(f))
    f["compose.yml"] = f["compose.yml"].replace("3wordchant/go-ssb-room:2.0.3", "3wordchant/go-ssb-room:latest")
    assert ("R07", "app") in rules(f)


def test_R08_bare_name_over_proxy_lab_and_fix():
    assert ("R08", "caddy") in rules(lab("bluesky-pds", "0.3.0+v0.4.219"))
    fix = tree(RECIPES_SRC / "bluesky-pds" / "fixes" / "ci" / "warm-routing-alias")
    assert not any(r == "R08" for r, _ in rules(fix))


def test_R09_no_image():
    f = tree(SSB)
    f["compose.yml"] = f["compose.yml"].replace("    image: 3wordchant/go-ssb-room:2.0.3\n", "")
    assert ("R09", "app") in rules(f)


def test_R10_rollback_start_first_real_traefik():
    f = tree(TRAEFIK)              # as shipped: rollback + start-first in compose.yml
    assert ("R10", "app") in rules(f)
    f["compose.yml"] = f["compose.yml"].replace("order: start-first", "order: stop-first")
    assert ("R10", "app") not in rules(f)


def test_R11_overlay_missing_at_older_tag():
    cur = tree(TRAEFIK)
    cur[".env.sample"] = cur[".env.sample"].replace('#COMPOSE_FILE="compose.yml:compose.keycloak.yml"',
                                                      'COMPOSE_FILE="compose.yml:compose.host.yml"')
    prev = {k: v for k, v in cur.items() if k != "compose.host.yml"}
    assert any(r == "R11" for r, _ in rules(cur, prev_files=prev))
    assert not any(r == "R11" for r, _ in rules(cur, prev_files=cur))


def test_R12_version_label_vs_tag():
    f = tree(BONFIRE)
    assert not any(r == "R12" for r, _ in rules(f, tag="2.0.1+1.0.6-social-amd64"))
    assert ("R12", "app") in rules(f, tag="2.0.2+1.0.7-social-amd64")


def test_R13_legacy_labels():
    f = tree(BONFIRE)
    f["compose.postgres.yml"] = f["compose.postgres.yml"].replace("backupbot.backup.pre-hook", "backupbot.backup.path: /x\n        backupbot.backup.command")
    assert ("R13", "db") in rules(f)


def test_R14_gitea_app_ini_read_only_config_lab():
    assert ("R14", "app") in rules(lab("gitea", "3.6.0+1.24.2-rootless"))
