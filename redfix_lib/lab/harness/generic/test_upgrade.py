import pytest


def test_upgrade_from_previous_version(ctx):
    # INSTALL deployed the base (the run's single deploy); the upgrade redeploys the head over it
    if not ctx.prev_ref:
        pytest.skip("no base version (no earlier tag)")
    ctx.deploy(ctx.head_ref)
    ok, detail = ctx.wait()
    assert ok, f"upgrade {ctx.prev_ref} -> {ctx.head_ref} did not converge: {detail}"


def test_head_version_label(ctx):
    want = ctx.head_ref
    for name in ctx.service_names():
        labels = ctx.c.services.get(f"{ctx.stack}_{name}").attrs["Spec"].get("Labels") or {}
        got = labels.get(f"coop-cloud.{ctx.stack}.version")
        if got is not None and ctx.head_is_tag:
            assert got == want, f"{name}: version label {got} != {want}"
