from pathlib import Path

from redfix_lib.lab.harness import backupbot


def test_backup_creates_snapshot(ctx):
    m = ctx.meta.get("marker")
    if m:
        code, out = ctx.exec(m["service"], m["write"])
        assert code == 0, f"could not write the marker: {out}"
    snap = backupbot.backup(ctx.c, ctx.stack, Path(ctx.snapshots_dir))
    assert snap, "backup yielded no snapshot id"
    ctx.save(snapshot_id=snap)
