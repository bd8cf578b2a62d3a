import io
import json
import subprocess
import sys

import pytest

from redfix_lib.signatures import BLOCK, explain_hits, load_catalogue, scan

CAT = load_catalogue()


@pytest.mark.parametrize("sig", CAT.signatures, ids=lambda s: s.id)
def test_every_signature_matches_its_examples(sig):
    assert sig.examples, f"{sig.id} has no example"
    for ex in sig.examples:
        hits = scan(io.BytesIO(("noise line\n" + ex + "\nmore noise\n").encode()))
        assert any(h.signature == sig.id and h.line_no == 2 for h in hits), (sig.id, ex)
    for ex in sig.counter_examples:
        assert not any(h.signature == sig.id for h in scan(io.BytesIO(ex.encode() + b"\n")))


def test_catalogue_fields_and_unique_ids():
    ids = [s.id for s in CAT.signatures]
    assert len(ids) == len(set(ids))
    for s in CAT.signatures:
        assert s.explanation and s.fix_hint and s.sub_cause


def test_precedence_orders_matches_and_cause_hint():
    log = b"Traceback (most recent call last):\nwget: bad address 'app'\nsh: can't create /etc/gitea/app.ini: Read-only file system\n"
    out = explain_hits(scan(io.BytesIO(log)))
    assert [m["signature"] for m in out["matches"]] == ["read-only-config-write", "dns-failure", "python-traceback"]
    assert out["cause_hint"] == {"cause": "recipe", "sub_cause": "read-only-config-write",
                                 "signature": "read-only-config-write"}


def test_unknown_when_nothing_matches():
    assert explain_hits(scan(io.BytesIO(b"all good\n")))["cause_hint"]["cause"] == "unknown"


def test_line_numbers_across_blocks():
    filler = b"x" * 99 + b"\n"
    n = (BLOCK // 100) + 7
    data = filler * n + b"FATA deploy timed out\n" + filler * 3 + b"no space left on device\n"
    hits = scan(io.BytesIO(data))
    assert [(h.signature, h.line_no) for h in hits] == [("deploy-timeout", n + 1), ("disk-full", n + 5)]


def test_explain_log_cli(tmp_path):
    f = tmp_path / "h.log"
    f.write_text("ok\n!! WC5 promote refused for keycloak: canonical domain x collides with live-warm provider 'keycloak'\n")
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "explain-log", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["cause_hint"] == {"cause": "harness", "sub_cause": "warm-domain-collision", "signature": "warm-domain-collision"}
    assert d["matches"][0]["line"] == 2


@pytest.mark.parametrize("sig", CAT.signatures, ids=lambda s: s.id)
def test_every_example_contains_a_prefilter_literal(sig):
    for ex in sig.examples:
        assert any(l in ex.lower() for l in sig.literals), (sig.id, ex)


def test_lines_without_newline_at_end_and_no_newline_file():
    assert [h.line_no for h in scan(io.BytesIO(b"a\nno space left on device"))] == [2]
    assert [h.line_no for h in scan(io.BytesIO(b"no space left on device"))] == [1]


def test_scan_file_grep_path_equals_pure_scan(tmp_path):
    from redfix_lib.signatures import scan_file
    lines = [b"noise %d" % i for i in range(3000)]
    lines[10] = b"FATA deploy timed out"
    lines[2500] = b"sh: can't create /etc/gitea/app.ini: READ-ONLY FILE SYSTEM"
    lines[2999] = b"no space left on device"
    data = b"\n".join(lines)              # no newline at the end
    f = tmp_path / "x.log"
    f.write_bytes(data)
    a = [(h.signature, h.line_no, h.line) for h in scan_file(str(f))]
    b = [(h.signature, h.line_no, h.line) for h in scan(io.BytesIO(data))]
    assert a == b and [x[1] for x in a] == [11, 2501, 3000]
