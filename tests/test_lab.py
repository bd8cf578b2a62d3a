"""The embedded lab on the real engine: one concurrent sweep, then one test per lab recipe
asserting the failing tier, test and log evidence (the same mechanism as its seed case)."""
import json
from pathlib import Path

import pytest

from redfix_lib.lab import engine, lab_home
from redfix_lib.lab.recipes import list_recipes, load_meta
from redfix_lib.lab.sweep import run_sweep

pytestmark = pytest.mark.engine


@pytest.fixture(scope="session")
def lab(engine):
    return lab_engine_up()


def lab_engine_up():
    return engine.lab_up()


@pytest.fixture(scope="session")
def sweep(lab, tmp_path_factory):
    return run_sweep(out=str(tmp_path_factory.mktemp("sweep")))


def _logs(entry, pattern):
    return [p for p in Path(entry["dir"]).glob(pattern)]


def _grep(paths, text):
    return [p for p in paths if text in p.read_text(errors="replace")]


def test_lab_up_is_idempotent_and_complete(lab):
    cal = engine.load_state()["calibration"]
    engine.lab_up()
    status = engine.lab_status()
    # the handshake calibration is made once per machine and handed to deploys through node.env
    assert status["state"]["calibration"]["at"] == cal["at"]
    assert f"HANDSHAKE_WORK={cal['work']}\n" in (lab_home() / "node.env").read_text()
    assert cal["rung"] in [t["rung"] for t in cal["tried"]] and "redfix-stress" not in status["stacks"]   # probe + stressors gone
    assert status["swarm"] == "active" and status["proxy_network"] and status["base_image"]
    assert set(list_recipes()) <= set(status["recipes"])
    assert "warm-keycloak_lab_redfix_test" in status["stacks"]
    for r in list_recipes():
        tags = __import__("subprocess").run(["git", "-C", str(lab_home() / "recipes" / r), "tag"],
                                            capture_output=True, text=True).stdout.split()
        assert set(tags) == set(load_meta(r)["versions"]) and len(tags) >= 2


def test_sweep_reproduces_exactly_the_six_and_control_passes(sweep):
    got = {n: (e["status"], tuple(e["failed_tiers"])) for n, e in sweep["recipes"].items()}
    for n in list_recipes():
        exp = load_meta(n)["expected"]
        if exp["outcome"] == "pass":
            assert got[n] == ("pass", ()), (n, got[n])
        else:     # the expected tier fails first; a later tier counts only as not run (unver) after it
            assert got[n][0] == "fail" and got[n][1][0] == exp["tier"], (n, got[n])
            assert all(sweep["recipes"][n]["tiers"][t] == "unver" for t in got[n][1][1:]), (n, sweep["recipes"][n]["tiers"])
        assert sweep["recipes"][n]["clean_teardown"] is True, n
    assert Path(sweep["path"]).is_file() and (Path(sweep["path"]).parent / "sweep.md").is_file()


def _failure(sweep, recipe):
    e = sweep["recipes"][recipe]
    exp = load_meta(recipe)["expected"]
    tests = {f["test"] for f in e["failures"]}
    assert set(exp["tests"]) <= tests, (recipe, tests)
    return e, " ".join(f["message"] for f in e["failures"])


def test_stale_overlay_discourse(sweep):
    e, msg = _failure(sweep, "discourse")
    assert "bitnamilegacy-discourse:3.5.0" in msg and "sidekiq" in msg


def test_restore_hook_mattermost(sweep):
    e, msg = _failure(sweep, "mattermost-lts")
    assert 'relation "ci_marker" does not exist' in msg
    assert _grep(_logs(e, "harness.log"), "pg_dump: dumped")


def test_healthy_control_immich_restores_via_hook(sweep):
    e = sweep["recipes"]["immich"]
    assert e["tiers"] == {"install": "pass", "upgrade": "pass", "backup": "pass", "restore": "pass",
                          "custom": "skip", "promote": "pass"}
    assert _grep(_logs(e, "harness.log"), "psql: replayed")


def test_handshake_mumble_fails_under_sweep_load(sweep):
    e, msg = _failure(sweep, "mumble")
    assert "did not complete within" in msg
    assert sweep["load"]["cpu_burners"] >= 8


def test_alias_collision_bluesky(sweep):
    e, msg = _failure(sweep, "bluesky-pds")
    assert "last status 0" in msg
    caddy = _grep(_logs(e, "services/warm/*caddy*.log"), "on-demand TLS ask http://app:3000/tls-check")
    assert caddy, "caddy's failed ask is in the warm caddy log"
    assert e["tiers"]["install"] == "pass"


def test_ro_config_gitea(sweep):
    e, msg = _failure(sweep, "gitea")
    assert "crash loop" in msg
    assert _grep(_logs(e, "services/warm/*app*.log"), "read-only file system")
    # the cold lifecycle (fresh secrets) passed
    assert e["tiers"]["install"] == "pass" and e["tiers"]["upgrade"] == "pass"
    tasks = json.loads(next(Path(e["dir"]).glob("services/warm/tasks.json")).read_text())
    assert sum(t["state"] == "failed" for t in tasks) >= 3


def test_domain_collision_keycloak(sweep):
    e, msg = _failure(sweep, "keycloak")
    assert "collides with live-warm provider 'keycloak'" in msg


def test_node_settings_ghost(sweep):
    """The lab node's settings skip the warm canonicals: ghost's run installs its upgrade base, the broken
    1.1.0 release (cc-ci's no-canonical fallback), instead of the canonical 1.0.0, and fails at INSTALL."""
    e, msg = _failure(sweep, "ghost")
    assert "install of 1.1.0+5.90.0" in msg and "crash loop" in msg
    assert _grep(_logs(e, "harness.log"), "upgrade base 1.1.0+5.90.0: newest release tag older than the head "
                                          "(settings: skip_canonicals_for_upgrade = true)")
    assert _grep(_logs(e, "services/cold/*app*.log"), "Missing required config value: mail.from")
    assert (lab_home() / "etc" / "cc-ci" / "settings.toml").read_text().count("skip_canonicals_for_upgrade = true") == 1


def test_a_run_deploys_once_the_upgrade_base_first(sweep):
    """cc-ci deploys once — the upgrade base when an upgrade tier follows — and the upgrade redeploys the
    head over it (docs/testing.md): the healthy control's log says so and every tier passed."""
    e = sweep["recipes"]["immich"]
    assert _grep(_logs(e, "harness.log"), "deploy once: immich@1.0.0+v1.120.0 (the upgrade base)")
    assert e["tiers"]["install"] == "pass" and e["tiers"]["upgrade"] == "pass"
