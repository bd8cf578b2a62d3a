"""Signature scan: speed against `grep -E -c -f` with the same patterns on a generated log, and
peak RSS on the input shapes that used to blow up (a 200 MB single-line file, an endless stream
like /dev/zero, which the byte cap ends). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_signatures.py [--mb 256] [--line-mb 200] [--cap-mb 512]

Each scan runs in its own Python process so its peak RSS is its own (ru_maxrss of that child);
the Python interpreter with the catalogue loaded is measured first as the baseline.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
from redfix_lib.signatures import load_catalogue  # noqa: E402

NOISE = [b"[harness 09:13:05] tier install: pytest test_install.py",
         b"2026-11-27T09:17:22.496241872Z gitea 1.23.0: listening on :3000",
         b"caddy: serving https://warm-x.lab.redfix.test with a certificate from the ask endpoint",
         b"db: database system is ready to accept connections", b"INFO  uvicorn request GET /xrpc/_health 200 OK"]
HITS = [b"sh: can't create /etc/gitea/app.ini: Read-only file system",
        b"Error response from daemon: Conflict. The container name \"/db\" is already in use by container \"8a\"",
        b"E       requests.exceptions.ReadTimeout: HTTPConnectionPool(host='app', port=80): Read timed out."]

CHILD = """
import sys, time, json, resource
sys.path.insert(0, sys.argv[1])
from redfix_lib.signatures import load_catalogue, scan, scan_file
load_catalogue()
mode, arg, cap = sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
if mode == "file":
    h = scan_file(arg, max_bytes=cap)
elif mode == "stream":
    with open(arg, "rb", buffering=0) as f:
        h = scan(f, max_bytes=cap)
else:
    h = []
dt = time.perf_counter() - t0
print(json.dumps({"s": dt, "hits": len(h), "bytes": getattr(h, "bytes_scanned", 0),
                  "truncated": getattr(h, "truncated", False),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(mode, arg="", cap=512 << 20):
    import json
    r = subprocess.run([sys.executable, "-c", CHILD, ROOT, mode, arg, str(cap)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout)


def make_log(path, mb):
    block = bytearray()
    i = 0
    while len(block) < (1 << 20):
        block += NOISE[i % len(NOISE)] + f" seq={i}\n".encode()
        i += 1
        if i % 4000 == 0:
            block += HITS[(i // 4000) % len(HITS)] + b"\n"
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(block)


def make_one_line(path, mb):
    chunk = b"x" * (1 << 20)
    with open(path, "wb") as f:
        f.write(b"write /var/lib/x: no space left on device ")
        for _ in range(mb):
            f.write(chunk)


def ere(rx: str) -> str:
    return rx.replace("(?:", "(").replace(r"\d", "[0-9]").replace(r"\s", "[[:space:]]").replace(r"\S", "[^[:space:]]") \
             .replace(r"\w", "[[:alnum:]_]").replace(r"\b", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256, help="generated log size (MiB)")
    ap.add_argument("--line-mb", type=int, default=200, help="single-line file size (MiB)")
    ap.add_argument("--cap-mb", type=int, default=512, help="byte cap for the endless stream (MiB)")
    a = ap.parse_args()
    cat = load_catalogue()
    base = child("none")
    print(f"catalogue           : v{cat.version}, {len(cat.signatures)} signatures, {len(cat.literals)} literals; "
          f"prefilter: {'Aho-Corasick (ahocorasick-rs)' if cat.automaton is not None else 'bytes.find per literal'}")
    print(f"baseline RSS        : {base['rss_mib']:.1f} MiB (python + catalogue, nothing scanned)")
    with tempfile.TemporaryDirectory() as d:
        log, pats, line = os.path.join(d, "big.log"), os.path.join(d, "patterns.txt"), os.path.join(d, "line.log")
        make_log(log, a.mb)
        with open(pats, "w") as f:
            f.write("\n".join(ere(s.regex) for s in cat.signatures) + "\n")
        subprocess.run(["cat", log], stdout=subprocess.DEVNULL)          # warm the page cache for both
        t0 = time.perf_counter()
        g = subprocess.run(["grep", "-E", "-i", "-c", "-f", pats, log], capture_output=True, text=True)
        tg = time.perf_counter() - t0
        r = child("file", log)
        print(f"log ({a.mb} MiB)       : grep -E -i -f {tg:.2f} s ({g.stdout.strip() or g.stderr.strip()[:60]} lines); "
              f"scan_file {r['s']:.2f} s = {a.mb / r['s']:.0f} MiB/s ({r['hits']} hits kept), "
              f"ratio {r['s'] / tg:.1f}x grep; peak RSS {r['rss_mib']:.1f} MiB")
        make_one_line(line, a.line_mb)
        r = child("file", line)
        print(f"one line ({a.line_mb} MiB) : {r['s']:.2f} s, {r['hits']} hit(s) (head of the line), "
              f"peak RSS {r['rss_mib']:.1f} MiB (+{r['rss_mib'] - base['rss_mib']:.1f} over baseline)")
        os.unlink(line)
    if os.path.exists("/dev/zero"):
        r = child("stream", "/dev/zero", a.cap_mb << 20)
        print(f"/dev/zero stream    : stopped at the {a.cap_mb} MiB cap after {r['s']:.2f} s "
              f"(truncated={r['truncated']}, {r['bytes'] >> 20} MiB read), peak RSS {r['rss_mib']:.1f} MiB; "
              f"scan_file('/dev/zero') is refused (not a regular file)")
    print("no subprocess is started by the scan: nothing can outlive redfix")


if __name__ == "__main__":
    main()
