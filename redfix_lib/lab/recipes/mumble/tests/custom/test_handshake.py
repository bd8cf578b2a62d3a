"""Custom tier: a client handshake (TLS + ServerSync) must complete within the window."""
import os
import time


def test_handshake_completes_within_window(ctx):
    window = float(os.environ.get("CCCI_HANDSHAKE_WINDOW") or ctx.meta["handshake"]["window_s"])
    start = time.monotonic()
    deadline = start + window
    attempts = []
    while time.monotonic() < deadline:
        left = max(1, int(deadline - time.monotonic() + 0.999))
        t0 = time.monotonic()
        code, out = ctx.exec("app", ["wget", "-q", "-O", "-", "http://127.0.0.1:64738/cgi-bin/handshake"], timeout=left)
        dt = time.monotonic() - t0
        if code == 0 and "ServerSync" in out:
            print(f"handshake completed in {time.monotonic() - start:.2f}s (window {window:g}s)")
            return
        attempts.append(f"exit {code} after {dt:.1f}s")
    raise AssertionError(f"handshake (TLS+ServerSync) did not complete within {window:g}s: "
                         f"{len(attempts)} attempt(s): {'; '.join(attempts)}")
