from pathlib import Path

from redfix_lib.lab.harness import backupbot


def test_restore_returns_state(ctx):
    snap = ctx.s.get("snapshot_id")
    assert snap, "no snapshot from the backup tier"
    m = ctx.meta.get("marker")
    if m:
        code, out = ctx.exec(m["service"], m["drop"])
        assert code == 0, f"could not drop the marker: {out}"
    backupbot.restore(ctx.c, ctx.stack, Path(ctx.snapshots_dir), snap)
    ok, detail = ctx.wait()
    assert ok, f"after restore: {detail}"
    if m:
        import time
        time.sleep(float(m.get("settle_s", 3)))
        code, out = ctx.exec(m["service"], m["check"])
        assert code == 0, f"restored data missing: {out.strip()}"
