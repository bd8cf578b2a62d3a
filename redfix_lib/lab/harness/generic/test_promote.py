from redfix_lib.lab.harness import promote


def test_promote_canonical(ctx):
    ok, msg = promote.promote(ctx)
    assert ok, msg
