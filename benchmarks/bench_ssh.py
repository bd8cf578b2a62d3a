"""Per-command overhead of the ssh node (system OpenSSH, BatchMode, loopback sshd) against the
local node: `capture(["true"])` N times each, plus one harness run each way.

    .venv/bin/python benchmarks/bench_ssh.py [-n 20]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    a = ap.parse_args()
    from sshd_helper import start_sshd
    from redfix_lib.nodes import LocalNode, SshNode
    with tempfile.TemporaryDirectory() as d:
        srv = start_sshd(Path(d))
        try:
            ssh, loc = SshNode("b", srv["host"]), LocalNode("b")
            res = {}
            for name, node in (("local", loc), ("ssh", ssh)):
                node.capture(["true"])
                t0 = time.perf_counter()
                for _ in range(a.n):
                    node.capture(["true"])
                res[name] = (time.perf_counter() - t0) / a.n
                t0 = time.perf_counter()
                node.run(["true"], log_path=Path(d) / f"{name}.log", timeout_s=30)
                res[name + "_run"] = time.perf_counter() - t0
        finally:
            srv["stop"]()
    print(f"capture(['true']) local : {res['local'] * 1000:.1f} ms")
    print(f"capture(['true']) ssh   : {res['ssh'] * 1000:.1f} ms  -> per-command ssh overhead {(res['ssh'] - res['local']) * 1000:.1f} ms")
    print(f"run(['true']) local     : {res['local_run'] * 1000:.1f} ms")
    print(f"run(['true']) ssh       : {res['ssh_run'] * 1000:.1f} ms  (run + remote group cleanup = 2 ssh round trips)")


if __name__ == "__main__":
    main()
