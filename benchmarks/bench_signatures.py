"""Signature scan vs `grep -E -f` with the same patterns on a generated log (default 1 GiB),
in the same run; plus the scan's peak RSS. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_signatures.py [--mb 1024]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from redfix_lib.signatures import load_catalogue  # noqa: E402

NOISE = [b"[harness 09:13:05] tier install: pytest test_install.py",
         b"2026-11-27T09:17:22.496241872Z gitea 1.23.0: listening on :3000",
         b"caddy: serving https://warm-x.lab.redfix.test with a certificate from the ask endpoint",
         b"db: database system is ready to accept connections", b"INFO  uvicorn request GET /xrpc/_health 200 OK"]
HITS = [b"sh: can't create /etc/gitea/app.ini: Read-only file system",
        b"!! WC5 promote failed for bluesky-pds: warm-bluesky-pds.x/xrpc/_health last status 0"]


def make_log(path, mb):
    block = bytearray()
    i = 0
    while len(block) < (1 << 20):
        block += NOISE[i % len(NOISE)] + f" seq={i}\n".encode()
        i += 1
        if i % 5000 == 0:
            block += HITS[(i // 5000) % 2] + b"\n"
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(block)


def ere(rx: str) -> str:
    rx = re.sub(r"^\(\?i\)", "", rx).replace("(?:", "(").replace(r"\d", "[0-9]")
    return rx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    a = ap.parse_args()
    cat = load_catalogue()
    with tempfile.TemporaryDirectory() as d:
        log, pats = os.path.join(d, "big.log"), os.path.join(d, "patterns.txt")
        make_log(log, a.mb)
        with open(pats, "w") as f:
            f.write("\n".join(ere(s.regex) for s in cat.signatures) + "\n")
        subprocess.run(["cat", log], stdout=subprocess.DEVNULL)      # warm the page cache for both
        t0 = time.perf_counter()
        g = subprocess.run(["grep", "-E", "-c", "-f", pats, log], capture_output=True, text=True)
        tg = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c",
                            "import sys,json,resource; sys.path.insert(0, sys.argv[2]);"
                            "from redfix_lib.signatures import scan_file;"
                            "h=scan_file(sys.argv[1]);"
                            "print(len(h), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
                            log, os.path.join(os.path.dirname(__file__), "..")], capture_output=True, text=True)
        ts = time.perf_counter() - t0
        hits, rss_kb = r.stdout.split()
        print(f"log size            : {a.mb} MiB, {len(cat.signatures)} signatures")
        print(f"grep -E -f          : {tg:.2f} s ({g.stdout.strip()} matching lines)")
        print(f"redfix scan_file    : {ts:.2f} s ({hits} hits kept, capped per signature)")
        print(f"ratio scan/grep     : {ts / tg:.2f}x   (goal <= 2x)")
        print(f"scan peak RSS       : {int(rss_kb) / 1024:.1f} MiB   (goal <= 100 MiB)")


if __name__ == "__main__":
    main()

# The pure-Python path (no grep on the node) is measured too:
#   .venv/bin/python -c "from redfix_lib.signatures import scan; scan(open('big.log','rb'))"
