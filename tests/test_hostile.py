"""The hostile corpus through the real CLI (subprocesses): every input is refused with exit 2 (4
where an engine or ssh is missing) and a `file: field: reason` line naming the expected field, no
traceback, and nothing created (no bundle, no output folder, no verdict, no file the hostile
harness would have touched). Stored inputs and their fields: tests/hostile/manifest.yaml; inputs
git cannot hold (FIFOs, symlinks, devices, 30 MB files) and the command-line table are made here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile"
MAN = yaml.safe_load((HOSTILE / "manifest.yaml").read_text())
CLI = [sys.executable, "-m", "redfix_lib.cli"]
GOOD = 'case: good\nrecipe: fakerecipe\nref: "1.0.0"\nharness:\n  argv: ["touch", "PWNED"]\n'
TRIED: dict[str, int] = {}          # family -> distinct hostile inputs run (printed at the end)

sys.path.insert(0, str(HOSTILE))
from make_corpus import base_bundle  # noqa: E402


def redfix(args, cwd, env=None, timeout=60):
    e = {**os.environ, "REDFIX_LOCK_DIR": str(Path(cwd) / ".locks"), **(env or {})}
    return subprocess.run(CLI + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=e, stdin=subprocess.DEVNULL)


def tree(d: Path) -> dict:
    """Every path under d (symlinks not followed) with size and mtime, FIFOs and devices untouched."""
    out = {}
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            p = Path(root) / n
            if ".locks" in p.parts:
                continue
            st = p.lstat()
            out[str(p.relative_to(d))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def refused(r, fld: str, code: int = 2, file: str | None = None) -> str | None:
    """None when r is the expected clean refusal, else what is wrong."""
    err = r.stderr + r.stdout
    if "Traceback" in err:
        return f"traceback:\n{err[-1500:]}"
    if r.returncode != code:
        return f"exit {r.returncode}, expected {code}:\n{err[-800:]}"
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("redfix: error: ") or ln.startswith("redfix: ")]
    want = f": {fld}: "
    if code == 2 and not any(want in ln and (file is None or ln.startswith(f"redfix: error: {file}: "))
                             for ln in lines):
        return f"no line naming {fld!r}" + (f" for {file}" if file else "") + f":\n{r.stderr[-800:]}"
    return None


def check_all(items, run) -> None:
    """run(item) -> problem or None, 4 at a time; one assertion listing every failure."""
    with ThreadPoolExecutor(4) as ex:
        probs = [p for p in ex.map(run, items) if p]
    assert not probs, "\n\n".join(probs)


def make_fifo(p: Path) -> Path:
    os.mkfifo(p)
    return p


# ---- stored corpus ---------------------------------------------------------------------------

def test_manifest_names_every_stored_input():
    stored = {f"cases/{p.name}" for p in (HOSTILE / "cases").iterdir()} | \
             {f"bundles/{p.name}" for p in (HOSTILE / "bundles").iterdir()} | \
             {f"sweeps/{p.name}" for p in (HOSTILE / "sweeps").iterdir()}
    named = set(MAN["cases"]) | set(MAN["bundles"]) | set(MAN["sweeps"])
    assert stored == named
    assert all(e.get("field") for part in ("cases", "bundles", "sweeps") for e in MAN[part].values())
    assert len(named) >= 100


def test_shipped_schema_is_valid_draft7():
    """Editors read params/case.schema.json with a standard validator: it must be a valid draft-7
    schema, and the shipped case files must pass jsonschema itself too."""
    import jsonschema
    schema = json.loads((ROOT / "params" / "case.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    v = jsonschema.Draft7Validator(schema)
    for f in sorted((ROOT / "params").rglob("*.yaml")):
        assert not list(v.iter_errors(yaml.safe_load(f.read_text()))), f


def test_hostile_case_files(tmp_path):
    """All stored case files in one `check` (it reports every file's problems), then the ones that
    would run something through `isolate` one by one: refused, no bundle, nothing touched."""
    w = tmp_path / "w"
    shutil.copytree(HOSTILE / "cases", w / "cases")
    before = tree(w)
    files = sorted(MAN["cases"])
    r = redfix(["check", *files], w)
    assert "Traceback" not in r.stderr and r.returncode == 2, r.stderr[-2000:]
    probs = []
    for f in files:
        fld = MAN["cases"][f]["field"]
        if not any(ln.startswith(f"redfix: error: {f}: {fld}: ") for ln in r.stderr.splitlines()):
            mine = [ln for ln in r.stderr.splitlines() if f"{f}:" in ln]
            probs.append(f"{f}: expected field {fld!r}, got {mine[:3]}")
    assert not probs, "\n".join(probs)
    assert tree(w) == before
    TRIED["case files"] = len(files)

    run_them = ["yaml_dup_top", "yaml_alias_bomb", "tmpl_format_spec", "host_option", "nul_argv", "prog_missing_abs",
                "cwd_missing", "pre_prog_missing", "case_newline", "yaml_deep", "enc_utf16le", "docker_host_ssh_option"]

    def run(name):
        d = tmp_path / f"iso-{name}"
        d.mkdir()
        shutil.copy(HOSTILE / "cases" / f"{name}.yaml", d / "c.yaml")
        before = tree(d)
        rr = redfix(["isolate", "c.yaml", "--runs", "1", "--out", "out"], d)
        p = refused(rr, MAN["cases"][f"cases/{name}.yaml"]["field"], file="c.yaml")
        if not p and tree(d) != before:
            p = f"created {set(tree(d)) - set(before)}"
        return f"isolate {name}: {p}" if p else None
    check_all(run_them, run)


def test_hostile_files_made_at_test_time(tmp_path):
    """FIFOs, symlinks out of the folder (/etc/shadow), devices, a 30 MB file:
    refused from their stat, never opened for a blocking read, never echoed."""
    w = tmp_path / "w"
    (w / "params").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.yaml").write_text(GOOD)
    made = {
        "params/fifo.yaml": (make_fifo(w / "params" / "fifo.yaml"), "<file>"),
        "shadow.yaml": (os.symlink("/etc/shadow", w / "shadow.yaml"), "<file>"),
        "params/shadow.yaml": (os.symlink("/etc/shadow", w / "params" / "shadow.yaml"), "<file>"),
        "outside.yaml": (os.symlink(tmp_path / "elsewhere" / "x.yaml", w / "outside.yaml"), "<file>"),
        "dangling.yaml": (os.symlink(w / "nope.yaml", w / "dangling.yaml"), "<file>"),
        "zero.yaml": (os.symlink("/dev/zero", w / "zero.yaml"), "<file>"),
        "/dev/zero": (None, "<file>"),
        "/dev/null": (None, "<file>"),
        "missing.yaml": (None, "<file>"),
    }
    big = w / "big.yaml"
    with open(big, "wb") as f:                           # 30 MB, sparse: refused from its size
        f.write(GOOD.encode())
        f.truncate(30 << 20)
    made["big.yaml"] = (None, "<file>")
    just_over = w / "just_over.yaml"                      # a real (non-sparse) file 1 byte over the cap
    just_over.write_text(GOOD + "description: " + "x" * (256 * 1024) + "\n")
    made["just_over.yaml"] = (None, "<file>")
    before = tree(w)
    args = [k for k in made if not k.startswith("params/")] + ["params"]
    r = redfix(["check", *args], w, timeout=30)           # a FIFO opened for reading would hang here
    assert "Traceback" not in r.stderr and r.returncode == 2, r.stderr
    for name, (_, fld) in made.items():
        assert any(ln.startswith(f"redfix: error: {name}: {fld}: ") for ln in r.stderr.splitlines()), (name, r.stderr)
    shadow = Path("/etc/shadow")
    if os.access(shadow, os.R_OK):
        for line in shadow.read_text().splitlines():
            secret = line.split(":")[1] if ":" in line else ""
            assert len(secret) < 4 or secret not in r.stderr
    assert "symlink to /etc/shadow" in r.stderr
    assert tree(w) == before
    empty = w / "empty"
    empty.mkdir()
    r2 = redfix(["check", "empty"], w)
    assert refused(r2, "<path>") is None, r2.stderr
    TRIED["generated files"] = len(made) + 1


def _bundle_dir(d: Path, case_id: str = "other", mode: str = "isolated") -> Path:
    data = base_bundle(case_id)
    data["runs"][0]["mode"] = mode
    (d / "runs" / "001").mkdir(parents=True)
    (d / "runs" / "001" / "harness.log").write_text("ERROR boom\n")
    (d / "bundle.json").write_text(json.dumps(data))
    return d


def test_hostile_bundles(tmp_path):
    """Each stored broken bundle through `classify`: exit 2 naming the field, no verdict written;
    plus the ones made here (a log symlinked to /etc/shadow, a FIFO bundle.json, 70 MB, ...)."""
    made = {}
    for kind in ("log_symlink_shadow", "bundle_fifo", "bundle_symlink_out", "bundle_big", "bundle_is_dir",
                 "artifact_fifo"):
        d = _bundle_dir(tmp_path / "made" / kind)
        if kind == "log_symlink_shadow":
            (d / "runs" / "001" / "harness.log").unlink()
            os.symlink("/etc/shadow", d / "runs" / "001" / "harness.log")
            made[kind] = "runs[0].log"
        elif kind == "bundle_fifo":
            (d / "bundle.json").unlink()
            make_fifo(d / "bundle.json")
            made[kind] = "<file>"
        elif kind == "bundle_symlink_out":
            (tmp_path / "out.json").write_text((d / "bundle.json").read_text())
            (d / "bundle.json").unlink()
            os.symlink(tmp_path / "out.json", d / "bundle.json")
            made[kind] = "<file>"
        elif kind == "bundle_big":
            with open(d / "bundle.json", "ab") as f:
                f.truncate(70 << 20)
            made[kind] = "<file>"
        elif kind == "bundle_is_dir":
            (d / "bundle.json").unlink()
            (d / "bundle.json").mkdir()
            made[kind] = "<file>"
        elif kind == "artifact_fifo":
            make_fifo(d / "runs" / "001" / "results.json")
            data = json.loads((d / "bundle.json").read_text())
            data["runs"][0]["artifacts"].append("runs/001/results.json")
            (d / "bundle.json").write_text(json.dumps(data))
            made[kind] = "runs[0].artifacts[1]"
    items = [(HOSTILE / k, v["field"], True) for k, v in MAN["bundles"].items()] + \
            [(tmp_path / "made" / k, f, False) for k, f in made.items()]
    items += [(tmp_path / "no-such-bundle", "<bundle>", False), (HOSTILE / "manifest.yaml", "<bundle>", False)]

    def run(item):
        src, fld, copy = item
        w = tmp_path / "run" / src.name
        w.mkdir(parents=True)
        if copy:
            shutil.copytree(src, w / src.name)
            target = w / src.name
        else:
            target = src
        before = tree(w), (tree(src) if src.is_dir() and not copy else None)
        r = redfix(["classify", target], w, timeout=30)
        p = refused(r, fld)
        if not p and (tree(w), (tree(src) if src.is_dir() and not copy else None)) != before:
            p = "something was written"
        return f"classify {src.name}: {p}" if p else None
    check_all(items, run)
    TRIED["bundles"] = len(items)


def test_broken_bundle_refused_by_batch_isolate_verify(tmp_path):
    """batch --replay over a day holding a broken bundle, isolate/verify --out onto one: exit 2
    before any notebook, manifest or run."""
    w = tmp_path / "w"
    (w / "params").mkdir(parents=True)
    (w / "params" / "good.yaml").write_text(GOOD + 'lab: {fix_ref: "fix-1"}\n')
    day = w / "out" / "2026-01-01"
    day.mkdir(parents=True)
    shutil.copytree(HOSTILE / "bundles" / "log_escape", day / "good")
    data = json.loads((day / "good" / "bundle.json").read_text())
    data["case"]["case"] = "good"
    (day / "good" / "bundle.json").write_text(json.dumps(data))
    before = tree(w)
    cmds = [(["batch", "params", "--replay", "--date", "2026-01-01", "--out-root", "out"], "runs[0].log"),
            (["batch", "params", "--date", "2026-01-01", "--out-root", "out"], "runs[0].log"),
            (["isolate", "params/good.yaml", "--runs", "1", "--out", day / "good"], "runs[0].log"),
            (["isolate", "params/good.yaml", "--fresh", "--out", day / "good"], "runs[0].log"),
            (["verify", "params/good.yaml", "--out", day / "good"], "runs[0].log"),
            (["collect", "params/good.yaml", "--out", day / "good"], "runs[0].log")]
    check_all(cmds, lambda c: (lambda p: f"{c[0]}: {p}" if p else None)(refused(redfix(c[0], w), c[1])))
    assert tree(w) == before
    TRIED["bundle via batch/isolate/verify/collect"] = len(cmds)


def test_hostile_sweep_files(tmp_path):
    w0 = tmp_path / "base"
    (w0 / "params").mkdir(parents=True)
    (w0 / "params" / "good.yaml").write_text(GOOD.replace("recipe: fakerecipe", "recipe: fakerecipe"))
    items = [(HOSTILE / k, v["field"]) for k, v in MAN["sweeps"].items()]
    gen = tmp_path / "gen"
    gen.mkdir()
    big = gen / "big.json"
    with open(big, "wb") as f:
        f.write(b'{"recipes": {}}')
        f.truncate(20 << 20)
    items += [(make_fifo(gen / "fifo.json"), "<file>"), (gen / "missing.json", "--sweep"), (gen, "<file>"),
              (big, "<file>"), (Path("/dev/zero"), "<file>")]

    def run(item):
        src, fld = item
        w = tmp_path / "run" / src.name
        shutil.copytree(w0, w)
        before = tree(w)
        r = redfix(["batch", "params", "--replay", "--sweep", src, "--out-root", "out"], w, timeout=30)
        p = refused(r, fld)
        if not p and tree(w) != before:
            p = f"created {set(tree(w)) - set(before)}"
        return f"sweep {src.name}: {p}" if p else None
    check_all(items, run)
    TRIED["sweep files"] = len(items)


# ---- the command line ----------------------------------------------------------------------------

def _setup(w: Path) -> None:
    (w / "params").mkdir(parents=True)
    (w / "params" / "good.yaml").write_text(GOOD)
    (w / "good.yaml").write_text(GOOD)
    _bundle_dir(w / "other", "other")
    _bundle_dir(w / "same", "good")
    (w / "afile").write_text("x")
    (w / "junk").mkdir()
    (w / "junk" / "keep.txt").write_text("mine")
    (w / "emptydir").mkdir()
    (w / "utf16.log").write_bytes("ERROR x\n".encode("utf-16"))
    (w / "binary.log").write_bytes(bytes(4096))
    (w / "small.log").write_text("ERROR x\n" * 200)
    os.symlink("/etc/shadow", w / "shadow.log")
    make_fifo(w / "fifo.log")


ARGS = [  # (argv, field, extra env)
    (["isolate", "good.yaml", "--runs", "-5"], "--runs", None),
    (["isolate", "good.yaml", "--runs", "0"], "--runs", None),
    (["isolate", "good.yaml", "--runs", "abc"], "--runs", None),
    (["isolate", "good.yaml", "--runs", "1000"], "--runs", None),
    (["isolate", "good.yaml", "--load-level", "-1"], "--load-level", None),
    (["isolate", "good.yaml", "--out", "afile"], "--out", None),
    (["isolate", "good.yaml", "--out", "other"], "--out", None),
    (["isolate", "good.yaml", "--fresh", "--out", "other"], "--out", None),
    (["isolate", "good.yaml", "--fresh", "--out", "junk"], "--out", None),
    (["isolate", "good.yaml", "--out", "new\n"], "--out", None),
    (["isolate", "missing.yaml"], "<file>", None),
    (["isolate", "params"], "<file>", None),
    (["investigate", "good.yaml", "--node", "-oProxyCommand=touch PWNED"], "--node", None),
    (["investigate", "good.yaml", "--runs", "-1"], "--runs", None),
    (["investigate", "good.yaml", "--out", "other"], "--out", None),
    (["collect", "good.yaml", "--out", "afile"], "--out", None),
    (["verify", "good.yaml"], "lab.fix_ref", None),
    (["verify", "good.yaml", "--ref", "-x"], "--ref", None),
    (["verify", "good.yaml", "--ref", "a..b"], "--ref", None),
    (["verify", "good.yaml", "--ref", "fix-1", "--out", "same"], "--out", None),
    (["verify", "good.yaml", "--ref", "fix-1", "--runs", "0"], "--runs", None),
    (["batch", "params", "--replay", "--sweep", "missing.json"], "--sweep", None),
    (["batch", "params", "--replay", "--date", "../../etc"], "--date", None),
    (["batch", "params", "--nodes", "-oProxyCommand=touch PWNED"], "--nodes", None),
    (["batch", "params", "--nodes", "a,a"], "--nodes", None),
    (["batch", "params", "--replay", "--out-root", "afile"], "--out-root", None),
    (["batch", "missing-params", "--replay"], "<file>", None),
    (["explain-log", "missing.log"], "<log>", None),
    (["explain-log", "emptydir"], "<log>", None),
    (["explain-log", "/dev/zero"], "<log>", None),
    (["explain-log", "fifo.log"], "<log>", None),
    (["explain-log", "utf16.log"], "<log>", None),
    (["explain-log", "binary.log"], "<log>", None),
    (["explain-log", "shadow.log"], "<log>", None),
    (["explain-log", "small.log"], "<log>", {"REDFIX_MAX_LOG_BYTES": "100"}),
    (["classify", "missing"], "<bundle>", None),
    (["classify", "afile"], "<bundle>", None),
    (["classify", "junk"], "<bundle>", None),
    (["lab", "sweep", "Bad;name"], "recipes", None),
    (["lab", "sweep", "--stress", "-1"], "--stress", None),
    (["lab", "sweep", "--out", "afile", "gitea"], "--out", None),
    (["check", "missing.yaml"], "<file>", None),
    (["check", "emptydir"], "<path>", None),
]


@pytest.mark.parametrize("chunk", range(4))
def test_hostile_command_lines(tmp_path, chunk):
    items = ARGS[chunk::4]

    def run(i_item):
        i, (argv, fld, env) = i_item
        w = tmp_path / f"a{i}"
        _setup(w)
        before = tree(w)
        r = redfix(argv, w, env=env, timeout=30)
        p = refused(r, fld)
        if not p and tree(w) != before:
            p = f"changed {set(tree(w)) ^ set(before) or 'file contents'}"
        return f"redfix {' '.join(map(repr, argv))}: {p}" if p else None
    check_all(list(enumerate(items)), run)
    TRIED[f"command lines {chunk}"] = len(items)


def test_no_engine_or_ssh_is_exit_4_before_anything(tmp_path):
    """--under-load, a `stack` busy probe or a load probe without an engine, and an ssh node that
    does not answer: exit 4 and a clear message, before a bundle exists or anything runs."""
    w = tmp_path / "w"
    w.mkdir()
    noengine = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    (w / "stack.yaml").write_text(GOOD + "node: {busy: [{stack: '^x$'}]}\n")
    (w / "load.yaml").write_text(GOOD + "probes: [{kind: load, level: 2}]\n")
    (w / "ssh.yaml").write_text(GOOD + "node: {kind: ssh, name: nohost, host: redfix-no-such-host.invalid}\n")
    (w / "good.yaml").write_text(GOOD)
    cases = [(["isolate", "good.yaml", "--under-load", "--out", "o"], noengine, "--under-load"),
             (["isolate", "stack.yaml", "--out", "o"], noengine, "stack"),
             (["investigate", "load.yaml", "--out", "o"], noengine, "load probe"),
             (["verify", "load.yaml", "--ref", "fix-1", "--out", "o"], noengine, "load probe"),
             (["batch", "stack.yaml", "--out-root", "o"], noengine, "stack"),
             (["isolate", "ssh.yaml", "--out", "o"], {"REDFIX_SSH_OPTS": "-o ConnectTimeout=5"}, "ssh"),
             (["collect", "ssh.yaml", "--out", "o"], {"REDFIX_SSH_OPTS": "-o ConnectTimeout=5"}, "ssh")]
    before = tree(w)

    def run(c):
        argv, env, needle = c
        r = redfix(argv, w, env=env, timeout=60)
        p = refused(r, "", code=4)
        if not p and needle not in r.stderr:
            p = f"message does not say why ({needle!r}): {r.stderr}"
        return f"{argv}: {p}" if p else None
    check_all(cases, run)
    assert tree(w) == before
    TRIED["no engine / no ssh (exit 4)"] = len(cases)


def test_zz_hostile_count():
    """The figure for the closing note (needs the tests above in the same session)."""
    total = sum(TRIED.values())
    print(f"\nhostile inputs tried {total}, handled {total}: " + ", ".join(f"{k} {v}" for k, v in TRIED.items()))
    if len(TRIED) >= 11:             # every family ran in this session
        assert total >= 100
