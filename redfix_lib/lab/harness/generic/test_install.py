import time


def test_deploys_and_converges(ctx):
    # the run's single deploy (cc-ci): the upgrade base when an upgrade tier follows, else the head
    ref = ctx.s.get("install_ref") or ctx.head_ref
    ctx.deploy(ref)
    ok, detail = ctx.wait()
    assert ok, f"install of {ref}: {detail}"


def test_serves(ctx):
    s = ctx.meta.get("serve") or {"service": "app", "port": 80, "path": "/"}
    code, out = 1, ""
    for _ in range(10):
        # busybox wget's own -T segfaults in Debian's static build: bound it with timeout(1)
        code, out = ctx.exec(s["service"], ["wget", "-q", "-O", "-", f"http://127.0.0.1:{s['port']}{s.get('path', '/')}"],
                             timeout=5)
        if code == 0:
            break
        time.sleep(1)
    assert code == 0, f"{s['service']} does not serve {s.get('path', '/')} on :{s['port']}: {out.strip()[:300]}"
