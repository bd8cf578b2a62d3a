"""cc-ci overlay written for a PR that migrates discourse to the official image and drops sidekiq.
It asserts that migration against whatever head it is given."""


def test_head_runs_official_image_not_bitnamilegacy(ctx):
    img = ctx.service_image("app")
    assert img == "redfix-lab/discourse:3.5.3", f"head runs {img}, expected the official redfix-lab/discourse:3.5.3"


def test_sidekiq_service_dropped_by_head(ctx):
    assert "sidekiq" not in ctx.service_names(), "sidekiq service still present at head"
