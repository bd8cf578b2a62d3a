"""Signature catalogue by failure family: every entry's examples, confidence rules (decisive vs
hint + decided_by), printed source lines are not events, bounded memory on any input shape (via
the pure API), and the real-failure corpus as a regression (zero confident-wrong)."""
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from redfix_lib.signatures import (BLOCK, CLASSES, FAMILIES, MAX_LINE, explain_hits, explain_text, is_source_line,
                                   load_catalogue, scan, scan_file, scan_text)

ROOT = Path(__file__).resolve().parents[1]
CAT = load_catalogue()
BY_ID = {s.id: s for s in CAT.signatures}


# ------------------------------------------------------------------ the catalogue itself
@pytest.mark.parametrize("sig", CAT.signatures, ids=lambda s: s.id)
def test_every_signature_matches_its_examples(sig):
    assert sig.examples, f"{sig.id} has no example"
    for ex in sig.examples:
        hits = scan(io.BytesIO(("noise line\n" + ex + "\nmore noise\n").encode()))
        assert any(h.signature == sig.id and h.line_no == 2 for h in hits), (sig.id, ex)
    for ex in sig.counter_examples:
        assert not any(h.signature == sig.id for h in scan(io.BytesIO(ex.encode() + b"\n")))


@pytest.mark.parametrize("sig", CAT.signatures, ids=lambda s: s.id)
def test_every_example_contains_a_prefilter_literal(sig):
    for ex in sig.examples:
        assert any(x in ex.lower() for x in sig.literals), (sig.id, ex)


def test_fields_confidence_rules_and_unique_ids():
    ids = [s.id for s in CAT.signatures]
    assert len(ids) == len(set(ids))
    for s in CAT.signatures:
        assert s.explanation and s.fix_hint and s.sub_cause and s.family in FAMILIES
        assert set(s.classes) <= set(CLASSES)
        if s.decisive:
            assert len(s.classes) == 1, s.id
        else:
            assert s.decided_by and len(s.decided_by) > 20, s.id      # names the deciding evidence


def test_every_family_the_issue_names_is_covered():
    fams = {s.family for s in CAT.signatures}
    assert {"image", "data", "startup", "readiness", "dirty-node", "git", "host", "swarm", "secrets-config",
            "deploy", "warm", "test", "harness"} <= fams


def test_no_entry_is_keyed_on_a_seed_literal():
    """Regexes and literals describe families; the six lab cases' own paths and messages appear
    nowhere in them (examples may quote them)."""
    seeds = ("/app/index.js", "wc5", "tls-check", "restored data", "ci_marker", "pg_backup", "live-warm",
             "warm-canon", "warm-bluesky", "handshake (tls+serversync)")
    for s in CAT.signatures:
        keyed = (s.regex + " " + " ".join(s.literals)).lower()
        assert not [x for x in seeds if x in keyed], s.id


@pytest.mark.parametrize("bad,reason", [
    ({"classes": ["recipe", "infrastructure"], "confidence": "decisive"}, "exactly one class"),
    ({"classes": ["recipe"], "confidence": "hint"}, "decided_by"),
    ({"classes": ["nonsense"], "confidence": "decisive"}, "classes"),
    ({"classes": ["recipe"], "confidence": "decisive", "family": "nope"}, "family"),
])
def test_catalogue_validation_refuses_inconsistent_entries(tmp_path, bad, reason):
    e = {"id": "x", "family": "host", "regex": "boom", "literals": ["boom"], "sub_cause": "s", "precedence": 1,
         "explanation": "e", "fix_hint": "f", "examples": ["boom"]}
    e.update(bad)
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps({"version": 1, "signatures": [e]}))
    with pytest.raises(ValueError, match=reason):
        load_catalogue(str(p))


# ------------------------------------------------------------------ decisive vs hint
@pytest.mark.parametrize("line,sig,cls", [
    ("write /var/lib/docker/tmp/GetImageBlob1: no space left on device", "disk-full", "infrastructure"),
    ("toomanyrequests: You have reached your pull rate limit.", "registry-rate-limit", "infrastructure"),
    ("could not find an available IP while allocating VIP", "vip-exhausted", "infrastructure"),
    ("FATA myapp has locally unstaged changes", "unstaged-changes", "harness"),
    # v7: git refusing the CI workspace (a CI runner's workspace path) is the harness's checkout
    ("fatal: detected dubious ownership in repository at '/__w/app/app'", "git-dubious-ownership-ci", "harness"),
    # v7: the container's own health check says its tool is not found (a shell, not only the OCI exec)
    ('                        "Output": "/bin/sh: 1: curl: not found\\n"', "healthcheck-output-tool-missing", "recipe"),    # v9: a changed *config* the stack ships decides recipe (its versioned name was not bumped)
    ("failed to update config app_nginx_conf_v2: Error response from daemon: rpc error: code = InvalidArgument "
     "desc = only updates to Labels are allowed", "config-content-changed", "recipe"),
    # v10 (held-out batch 10): a registry or a git host answering 5xx is an outage on its side
    ("Error response from daemon: received unexpected HTTP status: 502 Bad Gateway", "registry-server-error", "infrastructure"),
    ("error pulling image configuration: download failed after attempts=6: received unexpected HTTP status: 503 "
     "Service Unavailable", "registry-server-error", "infrastructure"),
    ('failed to resolve reference "quay.io/org/app:2.0": unexpected status from GET request to '
     "https://quay.io/v2/org/app/manifests/2.0: 500 Internal Server Error", "registry-server-error", "infrastructure"),
    ("fatal: unable to access 'https://git.example.org/org/app.git/': The requested URL returned error: 502",
     "git-host-server-error", "infrastructure"),
    ("error: RPC failed; HTTP 504 curl 22 The requested URL returned error: 504", "git-host-server-error",
     "infrastructure"),
    # v10: the job's registry login expired (never refreshed): the harness's credentials
    ("Error response from daemon: denied: Your authorization token has expired. Reauthenticate and try again.",
     "registry-credentials-expired", "harness"),
    # v10: a vm.* sysctl (not namespaced: no container can set it) below what the service checks at start
    ("bootstrap check failure [1] of [1]: max virtual memory areas vm.max_map_count [262143] is too low, "
     "increase to at least [262144]", "kernel-setting-too-low", "infrastructure"),
])
def test_decisive_lines_give_their_class(line, sig, cls):
    out = explain_text("starting\n" + line + "\n")
    assert out["verdict"] == {**out["verdict"], "class": cls, "confidence": "decisive", "signature": sig}
    assert out["cause_hint"]["cause"] == cls


@pytest.mark.parametrize("line,sig", [
    # a port conflict: a dirty node or the recipe publishing a fixed port
    ("Bind for 0.0.0.0:443 failed: port is already allocated", "port-conflict"),
    # a pinned tag deleted upstream vs a registry outage
    ("Error response from daemon: manifest for app/x:1.2 not found: manifest unknown: manifest unknown",
     "image-manifest-unknown"),
    # harness context vs the node's daemon
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
     "docker-daemon"),
    ("FATAL:  database files are incompatible with server", "db-data-incompatible"),
    ("standard_init_linux.go:228: exec user process caused: exec format error", "exec-format-error"),
    ("no suitable node (insufficient resources on 1 node)", "swarm-no-suitable-node"),
    ("app_1 exited with code 137", "exit-137"),
    # v7 families (held-out batch 7). GitHub's own message names job starvation as a cause: not decisive
    ("The hosted runner: GitHub Actions 3 lost communication with the server. Anything in your workflow that "
     "terminates the runner process, starves it for CPU/Memory, or blocks its network access can cause this error.",
     "runner-starved-or-lost"),
    ("2025-07-02 23:09:57.285 GMT [42] FATAL:  sorry, too many clients already", "db-connection-limit"),
    ("make[2]: fork: Resource temporarily unavailable", "process-limit"),
    ("[gw3] node down: Not properly terminated", "test-worker-crashed"),
    ('Error: Timeout of 2000ms exceeded. For async tests and hooks, ensure "done()" is called', "test-runner-timeout"),
    ("command traefik error: field not found, node: entrypoint", "app-config-key-rejected"),
    ("entrypoint.sh: line 2: $'\\r': command not found", "script-crlf"),
    ('"invalid mount config for type "bind": bind source path does not exist: /srv/app"', "bind-mount-source-missing"),
    ("rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided", "service-image-missing"),
    # the same refusal by an app's git on its own data volume is not the CI checkout
    ("fatal: detected dubious ownership in repository at '/data/git/repositories/org/app.git'", "git-dubious-ownership"),
    ("locator.click: Error: strict mode violation: locator('button') resolved to 3 elements:", "test-locator-ambiguous"),
    ("Cannot log after tests are done. Did you forget to wait for something async in your test?", "test-async-leak"),
    ("Your test suite must contain at least one test.", "test-suite-empty"),
    ("Failed: 'slow' not found in `markers` configuration option", "pytest-marker-unregistered"),
    ("browserType.launch: Executable doesn't exist at /root/.cache/ms-playwright/chromium-1155/chrome-linux/chrome",
     "browser-binary-missing"),    # v9 (held-out batch 9 had two confident-wrong here): a changed secret is provided by the operator/harness,
    # and the bare daemon line does not say which object it was
    ("failed to update secret credentials: Error response from daemon: rpc error: code = InvalidArgument "
     "desc = only updates to Labels are allowed", "object-content-changed"),
    ("Error response from daemon: rpc error: code = 3 desc = only updates to Labels are allowed", "object-content-changed"),
    # v10 (held-out batch 10; v9 asserted infrastructure here): a blob the registry does not serve is a
    # registry flake or an image deleted / half-pushed upstream
    ("error pulling image configuration: unknown blob", "image-blob-unknown"),
    ("failed to copy: httpReadSeeker: failed open: content digest sha256:9f2b not found: not found", "image-blob-unknown"),
    # an expired certificate on a registry: the served certificate, the node's clock or the pulling engine's trust store
    ('error pulling image configuration: Get "https://cdn.example.net/registry-v2/blobs/sha256/0c/data": x509: '
     "certificate has expired or is not yet valid", "registry-tls-untrusted"),
    ('Error response from daemon: Head "https://ghcr.io/v2/org/app/manifests/1.2": denied: denied', "image-pull-denied"),
    ("alembic.util.exc.CommandError: Multiple head revisions are present for given argument 'head'", "db-migration-failed"),
    ("django.core.management.base.CommandError: Conflicting migrations detected; multiple leaf nodes in the "
     "migration graph: (0004_a, 0004_b in app).", "db-migration-failed"),
    ("FATAL:  the database system is starting up", "db-not-yet-ready"),
    ("Redis is not available, retrying in 5s", "dependency-not-reachable"),
    ('nginx: [emerg] host not found in upstream "api" in /etc/nginx/conf.d/site.conf:7', "proxy-upstream-name-unresolved"),
    ("dependency failed to start: container app-cache-1 has no healthcheck configured", "compose-healthcheck-missing"),
    ("Error response from daemon: Could not attach to network backend: rpc error: code = PermissionDenied desc = "
     "network backend not manually attachable", "network-not-attachable"),
    ('Error response from daemon: network sandbox join failed: subnet sandbox join failed for "10.0.9.0/24": '
     "error creating vxlan interface: file exists", "overlay-sandbox-join-failed"),
    ("/home/runner/work/_temp/0c1d.sh: line 2: abra: command not found", "harness-tool-missing"),
])
def test_lines_that_cannot_decide_give_a_hint_and_the_deciding_evidence(line, sig):
    out = explain_text(line + "\n")
    assert out["verdict"]["class"] is None and out["verdict"]["confidence"] == "hint"
    assert out["cause_hint"]["cause"] == "unknown"
    assert sig in [h["signature"] for h in out["hints"]]
    assert BY_ID[sig].decided_by in out["deciding_evidence"]
    assert len(next(h for h in out["hints"] if h["signature"] == sig)["classes"]) >= 2


def test_the_pull_error_prefix_does_not_decide_what_follows_it():
    """v9 decided infrastructure on any `error pulling image configuration:` line (held-out batch 10:
    one confident-wrong, `unknown blob`). What follows the colon decides: a 5xx is the registry's
    outage; a missing blob and a certificate are hints naming what would decide."""
    head = "error pulling image configuration: "
    v = explain_text(head + "received unexpected HTTP status: 500 Internal Server Error\n")["verdict"]
    assert (v["class"], v["signature"]) == ("infrastructure", "registry-server-error")
    for tail, sig in (("unknown blob", "image-blob-unknown"),
                      ("Get https://r.example/v2/x/blobs/sha256:ab: x509: certificate has expired or is not yet valid",
                       "registry-tls-untrusted")):
        out = explain_text(head + tail + "\n")
        assert out["verdict"]["class"] is None and out["verdict"]["confidence"] == "hint", tail
        assert sig in [h["signature"] for h in out["hints"]]
        assert "image-layer-corrupt" not in [m["signature"] for m in out["matches"]]
    # a truncated or unverifiable layer still decides
    v = explain_text("filesystem layer verification failed for digest sha256:8f1e9a\n")["verdict"]
    assert (v["class"], v["signature"]) == ("infrastructure", "image-layer-corrupt")


@pytest.mark.parametrize("line", [
    "curl: (22) The requested URL returned error: 500",                 # a script fetching the app, not git
    "fatal: unable to access 'https://git.example.org/r.git/': The requested URL returned error: 403",
    "AssertionError: unexpected status code: 503",                      # a test's HTTP client
    "Error response from daemon: received unexpected HTTP status: 404 Not Found",
    "E   AssertionError: 401 Unauthorized: token has expired",          # an app's own tokens
    "Access denied: token has expired",
    "max file descriptors [4096] for elasticsearch process is too low, increase to at least [65535]",  # ulimits: compose sets them
])
def test_the_v10_decisive_families_stay_inside_their_bounds(line):
    """Server errors decide only when git or the registry client reports them; an expired token only
    when the registry refuses it; only the node's vm.* settings (which no container can set) decide."""
    assert explain_text(line + "\n")["verdict"]["confidence"] != "decisive", line


def test_decisive_lines_that_disagree_give_no_class():
    out = explain_text("no space left on device\nFATA x has locally unstaged changes\n")
    assert out["verdict"]["class"] is None and "disagree" in out["verdict"]["why"]


def test_nothing_matched():
    out = explain_text("all good\n")
    assert out["verdict"]["confidence"] == "none" and out["matches"] == [] and out["cause_hint"]["cause"] == "unknown"


def test_oomkilled_false_is_not_an_oom():
    assert not any(h.signature == "oom-killed" for h in scan_text('"OOMKilled": false,\n'))
    assert any(h.signature == "oom-killed" for h in scan_text('"OOMKilled": true,\n'))


# ------------------------------------------------------------------ printed source code is not an event
PYTEST_TRACEBACK = '''\
    def test_backup(app):
        out = run(["abra", "app", "backup", "create"])
        if "409" in out:
>           raise RuntimeError(f"backup failed: 409 container not running")
E           RuntimeError: backup failed: 409 container not running

tests/test_backup.py:12: RuntimeError
'''


def test_pytest_source_lines_are_not_events_but_E_lines_are():
    hits = [h for h in scan_text(PYTEST_TRACEBACK) if h.signature == "backup-container-not-running"]
    assert [h.line_no for h in hits] == [5]                     # the E line only, not the `>` source
    assert scan_text(PYTEST_TRACEBACK).source_lines_skipped >= 1


def test_indented_source_and_python_traceback_frames_are_not_events():
    src = ('Traceback (most recent call last):\n'
           '  File "/srv/harness/deploy.py", line 88, in deploy\n'
           '    check(out, "no space left on device")\n'
           '        msg = "port is already allocated"\n'
           'OSError: [Errno 28] No space left on device\n')
    got = [(h.signature, h.line_no) for h in scan_text(src)]
    assert ("disk-full", 5) in got
    assert not any(sig in ("disk-full", "port-conflict") and n in (3, 4) for sig, n in got)


def test_set_x_echoes_prompts_and_comments_are_not_events():
    log = ("+ docker service logs app | grep 'port is already allocated'\n"
           "++ echo 'no space left on device'\n"
           "$ grep -r 'toomanyrequests' .\n"
           "# retry when toomanyrequests\n"
           "app_1  | + grep -q 'manifest unknown' out.txt\n")
    assert list(scan_text(log)) == []
    assert len(list(scan_text("Bind for 0.0.0.0:80 failed: port is already allocated\n"))) == 1


@pytest.mark.parametrize("line,src", [
    (">       raise RuntimeError('x')", True),
    ("> django.db.utils.ProgrammingError: relation \"t\" already exists", False),   # a markdown quote
    ("+ set -e", True),
    ("E       AssertionError: assert 502 == 200", False),
    ("2026-11-27T09:17:22Z app.1.x@node    | + exec foo", True),
    ("FATAL:  database files are incompatible with server", False),
])
def test_is_source_line(line, src):
    assert is_source_line(line.encode()) is src


# ------------------------------------------------------------------ bounded memory on any input shape
class Endless(io.RawIOBase):
    """/dev/zero-like: never ends; produces bytes without keeping them."""
    def __init__(self, byte=b"\0"):
        self.byte = byte

    def readable(self):
        return True

    def readinto(self, b):
        b[:] = self.byte * len(b)
        return len(b)


class OneLine(io.RawIOBase):
    """A single line of `size` bytes (no newline) with `head` at its start, generated on the fly."""
    def __init__(self, size, head=b""):
        self.left, self.head = size, head

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        if n <= 0:
            return 0
        chunk = (self.head + b"x" * n)[:n]
        self.head = self.head[n:]
        b[:n] = chunk
        self.left -= n
        return n


def _peak(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_endless_stream_is_bounded_by_the_byte_cap():
    hits, peak = _peak(lambda: scan(Endless(), max_bytes=24 << 20))
    assert hits.truncated and hits.bytes_scanned == 24 << 20 and list(hits) == []
    assert peak < 16 << 20


def test_long_single_line_costs_a_bounded_amount_and_its_head_is_matched():
    size = 48 << 20
    hits, peak = _peak(lambda: scan(OneLine(size, b"write /x: no space left on device ")))
    assert [(h.signature, h.line_no) for h in hits] == [("disk-full", 1)]
    assert hits.long_lines == 1 and not hits.truncated and hits.bytes_scanned == size
    assert peak < 16 << 20


def test_only_the_head_of_an_overlong_line_is_matched_and_line_numbers_stay_right():
    data = b"x" * (MAX_LINE + BLOCK + 5) + b" no space left on device\nFATA app has locally unstaged changes\n"
    hits = scan(io.BytesIO(data))
    assert [(h.signature, h.line_no) for h in hits if h.signature != "abra-fatal"] == [("unstaged-changes", 2)]
    assert hits.long_lines == 1


def test_file_without_newlines_and_last_line_without_newline():
    assert [h.line_no for h in scan(io.BytesIO(b"a\nno space left on device"))] == [2]
    assert [h.line_no for h in scan(io.BytesIO(b"no space left on device"))] == [1]


def test_line_numbers_across_blocks():
    filler = b"x" * 99 + b"\n"
    n = (BLOCK // 100) + 7
    data = filler * n + b"FATA deploy timed out\n" + filler * 3 + b"no space left on device\n"
    hits = scan(io.BytesIO(data))
    assert [(h.signature, h.line_no) for h in hits if h.signature in ("deploy-timeout", "disk-full")] == \
        [("deploy-timeout", n + 1), ("disk-full", n + 5)]


def test_aho_corasick_and_fallback_prefilter_agree():
    import dataclasses
    text = (ROOT / "benchmarks" / "corpus" / "corpus.jsonl").read_text()
    blob = "\n".join(json.loads(x)["excerpt"] for x in text.splitlines()).encode()
    plain = dataclasses.replace(CAT, automaton=None)
    a = [(h.signature, h.line_no) for h in scan(io.BytesIO(blob), CAT)]
    b = [(h.signature, h.line_no) for h in scan(io.BytesIO(blob), plain)]
    assert a == b and len(a) > 100


def test_scan_file_refuses_special_files_without_blocking(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    for p in (fifo, tmp_path, "/dev/zero"):
        with pytest.raises(ValueError, match="not a regular file"):
            scan_file(str(p))
    f = tmp_path / "x.log"
    f.write_bytes(b"ok\nno space left on device")
    assert [(h.signature, h.line_no) for h in scan_file(str(f))] == [("disk-full", 2)]


def test_explain_log_cli(tmp_path):
    f = tmp_path / "h.log"
    f.write_text("ok\nError response from daemon: Conflict. The container name \"/db\" is already in use by "
                 "container \"8a1f\". You have to remove (or rename) that container to be able to reuse that name.\n")
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "explain-log", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["verdict"]["class"] is None and d["family"] == "dirty-node"
    assert d["hints"][0]["signature"] == "name-in-use" and d["deciding_evidence"]
    assert d["matches"][0]["line"] == 2 and d["scan"]["bytes_scanned"] == f.stat().st_size


# ------------------------------------------------------------------ the real-failure corpus
def _corpus():
    return [json.loads(x) for x in (ROOT / "benchmarks" / "corpus" / "corpus.jsonl").read_text().splitlines() if x]


def test_corpus_records_are_complete():
    rows = _corpus()
    assert len(rows) >= 150 and len({r["url"] for r in rows}) == len(rows)
    for r in rows:
        assert r["url"].startswith("https://") and r["excerpt"].strip() and r["why"] and r["family"] in FAMILIES
        assert r["label"] in ("recipe", "test", "harness", "load", "infrastructure", "unknown-from-line")
        if r["label"] == "unknown-from-line":
            assert r["decided_by"], r["id"]


def test_corpus_zero_confident_wrong_and_accuracy_floor():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_corpus import score
    s = score(_corpus(), CAT)
    wrong = [(x["id"], x["label"], x["pred"], x["signatures"]) for x in s["rows"] if x["confident_wrong"]]
    assert wrong == []
    # floors sit just under today's figures (accuracy 0.851, macro-F1 0.778 on 502 excerpts, catalogue v11:
    # batch 12 — 40 excerpts labelled by thread conclusion, many of them assertion or data-dir lines earlier
    # batches label unknown-from-line — scored 0.300 / 0.289 held out under v10 (1 confident-wrong, relabelled: see its why), 0.525 / 0.512 in-sample
    # under v11; before it: 0.879 / 0.812 on 462 excerpts, catalogue v10, batch 11 held out;
    # 0.884 / 0.813 on the first 431;
    # v9 scored 0.838 / 0.790 with 1 confident-wrong once batch 10 was added); batches 3-5 added compose-file
    # lines whose thread decided `recipe` but whose line cannot (held-out batch 5); batches 7-10 were each
    # scored held out first, then revised on, so these figures are partly in-sample (README: the batch table)
    assert s["accuracy"] >= 0.845, [x["id"] for x in s["rows"] if not x["correct"]]
    assert s["macro_f1"] >= 0.775


def test_corpus_batches_collected_after_v6_keep_zero_confident_wrong():
    """Batches 7, 8, 9 and 10 were each collected and labelled after the catalogue in force was written and
    scored on it before any revision (1, 0, 2 and 1 confident-wrong); a later catalogue must not bring any
    of those lines back to a confident wrong class, and must keep matching their families."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_corpus import score
    for b, floor in ((7, 0.95), (8, 0.85), (9, 0.9), (10, 0.9), (11, 0.8)):
        rows = [r for r in _corpus() if r.get("batch") == b]
        assert len(rows) >= 15, b
        s = score(rows, CAT)
        assert s["confident_wrong"] == 0, (b, [x["id"] for x in s["rows"] if x["confident_wrong"]])
        assert s["accuracy"] >= floor, (b, s["accuracy"])      # v10: 1.000, 0.889, 0.933, 0.927, 0.806 held out (v9: .., 0.667, 0.561)


def test_corpus_macro_f1_averages_only_the_labels_present():
    """`load` has no excerpt (no real line decides it); a class with zero support is not averaged in
    as a zero, and a class that is present but never predicted is."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_corpus import score
    recs = [{"id": "a", "url": "u1", "label": "test", "family": "test",
             "excerpt": "ScopeMismatch: You tried to access the 'function' scoped fixture 'x' with a 'module' scoped request object\n"},
            {"id": "b", "url": "u2", "label": "recipe", "family": "compose", "excerpt": "nothing to see here\n"}]
    s = score(recs, CAT)
    assert s["per_class"]["test"]["f1"] == 1.0 and s["per_class"]["recipe"]["f1"] == 0.0
    assert s["per_class"]["load"]["support"] == 0
    assert s["macro_f1"] == 0.5                         # (1.0 + 0.0) / 2: load is not a third term


def test_explain_hits_keeps_the_fields_classify_and_the_log_collector_read():
    out = explain_hits(scan_text("sh: can't create /etc/app.ini: Read-only file system\n"))
    m = out["matches"][0]
    assert {"signature", "line", "text", "lead_class", "sub_cause", "precedence"} <= set(m)
    assert "cause" not in m                          # a hint never reads as a cause
    assert (m["lead_class"], m["sub_cause"]) == ("recipe", "read-only-config-write")
    assert (BY_ID[m["signature"]].cause, BY_ID[m["signature"]].sub_cause) == ("recipe", "read-only-config-write")
    assert BY_ID["read-only-config-write"].confidence == "hint"


# ------------------------------------------------------------------ compose files and test code (v4-v6)
def _verdict(text):
    return explain_text(text)["verdict"]


@pytest.mark.parametrize("line", [
    "ScopeMismatch: You tried to access the 'function' scoped fixture 'db' with a 'module' scoped request object, involved factories",
    'Fixture "client" called directly. Fixtures are not meant to be called directly,',
    "In test_login: function uses no argument 'user__admin'",
])
def test_test_code_lines_decide_test(line):
    v = _verdict("collected 12 items\n" + line + "\n")
    assert (v["class"], v["confidence"], v["family"]) == ("test", "decisive", "test")


def test_printed_source_quoting_a_test_error_is_not_an_event():
    text = ('  File "/usr/lib/python3/site-packages/_pytest/fixtures.py", line 612, in _check_scope\n'
            '    msg = "ScopeMismatch: You tried to access the \'function\' scoped fixture \'x\' with a session scoped request object"\n')
    assert CAT.singles["pytest-scope-mismatch"].search(text.splitlines()[1].encode())   # the line would match...
    out = explain_text(text)
    assert out["verdict"]["confidence"] == "none" and out["scan"]["source_lines_skipped"] == 1   # ...but is source


@pytest.mark.parametrize("line", [
    "ERROR: Version in \"./docker-compose.yml\" is unsupported. You might be seeing this error because you're using the wrong Compose file version.",
    "Unsupported config option for services service: 'web'",
])
def test_compose_older_than_the_file_format_decides_harness(line):
    v = _verdict(line + "\n")
    assert (v["class"], v["confidence"], v["signature"]) == ("harness", "decisive", "compose-tool-predates-format")


@pytest.mark.parametrize("line, sig", [
    ("yaml: line 40: did not find expected key", "compose-yaml-syntax"),
    ("validating /srv/compose.yml: services.app Additional property cmd is not allowed", "compose-unknown-key"),
    ("validating /srv/compose.yml: services.app Additional property develop is not allowed", "compose-spec-key-rejected"),
    ('service "app" refers to undefined network backend: invalid compose project', "compose-undeclared-reference"),
    ('ERROR: Invalid interpolation format for "environment" option in service "web": "${X:-}"', "compose-interpolation"),
])
def test_compose_content_lines_are_hints_naming_the_evidence(line, sig):
    """A broken copy of a valid file (or a saved web page) gives the same lines as a broken recipe
    file (held-out corpus batch 5), so the line only hints; the file at the ref decides."""
    out = explain_text(line + "\n")
    assert out["verdict"]["class"] is None and out["verdict"]["confidence"] == "hint"
    h = next(h for h in out["hints"] if h["signature"] == sig)
    assert h["family"] == "compose" and h["decided_by"]
    if sig in ("compose-yaml-syntax", "compose-unknown-key"):
        assert "ref" in h["decided_by"] and set(h["classes"]) == {"recipe", "harness"}


def test_spec_keys_and_typos_take_different_entries():
    """A key the compose spec defines (an old tool may not know it) is never reported as an unknown key."""
    for key in ("develop", "pull_policy", "group_add", "additional_contexts", "restart_policy", "name", "x-common"):
        sigs = {m["signature"] for m in explain_text(f"services.app Additional property {key} is not allowed\n")["matches"]}
        assert "compose-unknown-key" not in sigs, key
    for key in ("cmd", "images", "minio", "enviroment"):
        sigs = {m["signature"] for m in explain_text(f"services.app Additional property {key} is not allowed\n")["matches"]}
        assert "compose-unknown-key" in sigs and "compose-spec-key-rejected" not in sigs, key


def test_image_reference_named_by_compose_decides_recipe_but_a_bare_one_does_not():
    v = _verdict("unable to get image 'ghcr.io/Org/App:1': Error response from daemon: invalid reference format: "
                 "repository name (Org/App) must be lowercase\n")
    assert (v["class"], v["confidence"]) == ("recipe", "decisive")
    v = _verdict("docker: invalid reference format: repository name must be lowercase.\n")
    assert (v["class"], v["confidence"]) == (None, "hint")


@pytest.mark.parametrize("line,want", [
    # v11 (held-out batch 12): a compose file using a secret it never declares is refused before anything
    # runs — the recipe's own file; a secret missing on the node stays undecided (harness or recipe)
    ('service nginx: undefined secret "password"', ("decisive", "recipe")),
    ("service dbinit: secret not found: db_password", ("hint", None)),
    # the CA's own outage vs a challenge that failed (DNS / ports / the route: undecided)
    ("acme: Error 502 - urn:acme:error:serverInternal - The service is down for maintenance", ("decisive", "infrastructure")),
    ("acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: Invalid response from "
     "http://example.com/.well-known/acme-challenge/x: 503", ("hint", None)),
    # the CI platform's own configuration refused or could not start the job
    ("pipeline1: linter: untrusted repositories cannot mount host volumes", ("decisive", "harness")),
    ("HttpError: Resource not accessible by integration", ("decisive", "harness")),
    ('UserWarning: "/home/runner/work/x/x" is shallow and may cause errors', ("decisive", "harness")),
    ("Could not reach any registry endpoint", ("decisive", "infrastructure")),
])
def test_v11_families(line, want):
    v = explain_text(line + "\n", CAT)["verdict"]
    assert (v["confidence"], v.get("class") if v["confidence"] == "decisive" else None) == want, v
