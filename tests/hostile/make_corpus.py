"""Writes the stored hostile corpus (cases/, bundles/, sweeps/) and manifest.yaml, which names for
every input the field its refusal must name. Re-run after changing it:
    .venv/bin/python tests/hostile/make_corpus.py
Inputs that cannot be stored in git (FIFOs, symlinks, device files, 30 MB files) are made at
test time by tests/test_hostile.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

BASE = 'case: {id}\nrecipe: fakerecipe\nref: "1.0.0"\nharness:\n  argv: ["touch", "PWNED"]\n'


def case(id_: str, body: str | None = None, extra: str = "") -> str:
    return (BASE.format(id=id_) if body is None else body) + extra


# name -> (content (str or bytes), expected field, why)
CASES: dict[str, tuple] = {}


def c(name, content, fld, why):
    assert name not in CASES, name
    CASES[name] = (content, fld, why)


def harness(id_, lines: str, top: str = "") -> str:
    return f'case: {id_}\nrecipe: fakerecipe\nref: "1.0.0"\n{top}harness:\n{lines}'


# --- names (full match: no trailing newline, no '..', no shell characters) ----------------------
c("case_space", 'case: "bad case"\nrecipe: r\nref: main\nharness: {argv: ["true"]}\n', "case", "space in the id")
c("case_newline", 'case: "x\\n"\nrecipe: r\nref: main\nharness: {argv: ["true"]}\n', "case", "trailing newline")
c("case_dotdot", 'case: "a..b"\nrecipe: r\nref: main\nharness: {argv: ["true"]}\n', "case", "'..' in the id")
c("case_slash", 'case: "../etc"\nrecipe: r\nref: main\nharness: {argv: ["true"]}\n', "case", "path in the id")
c("case_dash", 'case: "-rf"\nrecipe: r\nref: main\nharness: {argv: ["true"]}\n', "case", "leading dash")
c("case_long", f'case: {"a" * 101}\nrecipe: r\nref: main\nharness: {{argv: ["true"]}}\n', "case", "101 characters")
c("case_number", 'case: 12\nrecipe: r\nref: main\nharness: {argv: ["true"]}\n', "case", "a number")
c("case_missing", 'recipe: r\nref: main\nharness: {argv: ["true"]}\n', "case", "missing")
c("recipe_shell", 'case: h-recipe-shell\nrecipe: "gitea;reboot"\nref: main\nharness: {argv: ["true"]}\n', "recipe", "shell")
c("recipe_upper", 'case: h-recipe-upper\nrecipe: Gitea\nref: main\nharness: {argv: ["true"]}\n', "recipe", "upper case")
c("recipe_newline", 'case: h-recipe-nl\nrecipe: "gitea\\n"\nref: main\nharness: {argv: ["true"]}\n', "recipe", "trailing newline")
c("recipe_dotdot", 'case: h-recipe-dd\nrecipe: "a..b"\nref: main\nharness: {argv: ["true"]}\n', "recipe", "'..'")
c("recipe_missing", 'case: h-recipe-missing\nref: main\nharness: {argv: ["true"]}\n', "recipe", "missing")
c("ref_subshell", 'case: h-ref-sub\nrecipe: r\nref: "$(curl evil)"\nharness: {argv: ["true"]}\n', "ref", "command substitution")
c("ref_dash", 'case: h-ref-dash\nrecipe: r\nref: "-rf"\nharness: {argv: ["true"]}\n', "ref", "option-like")
c("ref_dotdot", 'case: h-ref-dd\nrecipe: r\nref: "a..b"\nharness: {argv: ["true"]}\n', "ref", "'..'")
c("ref_trailing_slash", 'case: h-ref-sl\nrecipe: r\nref: "main/"\nharness: {argv: ["true"]}\n', "ref", "trailing /")
c("ref_lock", 'case: h-ref-lock\nrecipe: r\nref: "x.lock"\nharness: {argv: ["true"]}\n', "ref", ".lock")
c("ref_newline", 'case: h-ref-nl\nrecipe: r\nref: "main\\n"\nharness: {argv: ["true"]}\n', "ref", "trailing newline")
c("ref_float", 'case: h-ref-float\nrecipe: r\nref: 1.10\nharness: {argv: ["true"]}\n', "ref", "YAML number (1.10 -> 1.1)")
c("ref_bool", 'case: h-ref-bool\nrecipe: r\nref: yes\nharness: {argv: ["true"]}\n', "ref", "YAML boolean")
c("ref_missing", 'case: h-ref-missing\nrecipe: r\nharness: {argv: ["true"]}\n', "ref", "missing")
c("node_name_bad", case("h-node-name", extra='node: {name: "a b"}\n'), "node.name", "space")

# --- structure ----------------------------------------------------------------------------------
c("unknown_top", case("h-unk-top", extra="surprise: 1\n"), "surprise", "unknown field")
c("unknown_harness", harness("h-unk-h", '  argv: ["true"]\n  shell: true\n'), "harness.shell", "unknown field")
c("unknown_node", case("h-unk-node", extra="node: {kind: local, password: x}\n"), "node.password", "unknown field")
c("unknown_runs", case("h-unk-runs", extra="runs: {max: 2, maxx: 3}\n"), "runs.maxx", "typo")
c("harness_missing", 'case: h-h-missing\nrecipe: r\nref: main\n', "harness", "missing")
c("harness_list", 'case: h-h-list\nrecipe: r\nref: main\nharness: ["true"]\n', "harness", "a list")
c("argv_missing", harness("h-argv-missing", "  cwd: /tmp\n"), "harness.argv", "missing")
c("argv_string", harness("h-argv-str", '  argv: "run_recipe_ci.py --all"\n'), "harness.argv", "a shell string")
c("argv_empty", harness("h-argv-empty", "  argv: []\n"), "harness.argv", "empty")
c("argv_int", harness("h-argv-int", '  argv: ["true", 5]\n'), "harness.argv[1]", "a number")
c("argv_nested", harness("h-argv-nested", '  argv: ["true", ["x"]]\n'), "harness.argv[1]", "a list in argv")
c("pre_string", harness("h-pre-str", '  argv: ["true"]\n  pre: "git checkout x"\n'), "harness.pre", "a string")
c("pre_item_string", harness("h-pre-item", '  argv: ["true"]\n  pre: ["git checkout x"]\n'), "harness.pre[0]",
  "a shell string")
c("env_list", harness("h-env-list", '  argv: ["true"]\n  env: ["A=1"]\n'), "harness.env", "a list")
c("env_int", harness("h-env-int", '  argv: ["true"]\n  env: {RECIPE: 5}\n'), "harness.env.RECIPE", "a number")
c("env_name_dash", harness("h-env-dash", '  argv: ["true"]\n  env: {bad-name: x}\n'), "harness.env.bad-name",
  "invalid name")
c("env_name_digit", harness("h-env-digit", '  argv: ["true"]\n  env: {"1X": x}\n'), "harness.env.1X", "starts with a digit")
c("env_name_eq", harness("h-env-eq", '  argv: ["true"]\n  env: {"A=B": x}\n'), "harness.env.<key #1>", "'=' in a name")
c("unset_bad", harness("h-unset", '  argv: ["true"]\n  unset: ["A B"]\n'), "harness.unset[0]", "invalid name")
c("unset_string", harness("h-unset-str", '  argv: ["true"]\n  unset: PATH\n'), "harness.unset", "a string")
c("runs_zero", case("h-runs-0", extra="runs: {max: 0}\n"), "runs.max", "0 runs")
c("runs_huge", case("h-runs-huge", extra="runs: {max: 100000}\n"), "runs.max", "too many")
c("runs_negative_min", case("h-runs-neg", extra="runs: {min: -5}\n"), "runs.min", "negative")
c("runs_min_gt_max", case("h-runs-minmax", extra="runs: {max: 2, min: 3}\n"), "runs.min", "min > max")
c("runs_bool", case("h-runs-bool", extra="runs: {max: true}\n"), "runs.max", "a boolean")
c("runs_float", case("h-runs-float", extra="runs: {max: 2.5}\n"), "runs.max", "a float")
c("stop_rule_bad", case("h-stop", extra="runs: {stop_rule: never}\n"), "runs.stop_rule", "unknown rule")
c("timeout_zero", case("h-to-0", extra="timeout_s: 0\n"), "timeout_s", "0")
c("timeout_negative", case("h-to-neg", extra="timeout_s: -1\n"), "timeout_s", "negative")
c("timeout_huge", case("h-to-huge", extra="timeout_s: 1e300\n"), "timeout_s", "huge")
c("timeout_nan", case("h-to-nan", extra="timeout_s: .nan\n"), "timeout_s", "NaN")
c("timeout_inf", case("h-to-inf", extra="timeout_s: .inf\n"), "timeout_s", "infinity")
c("timeout_string", case("h-to-str", extra='timeout_s: "10m"\n'), "timeout_s", "a string")
c("tier_bad", case("h-tier", extra="sweep_failure: {tier: deploy}\n"), "sweep_failure.tier", "unknown tier")
c("tests_not_list", case("h-tests", extra="sweep_failure: {tests: test_x}\n"), "sweep_failure.tests", "a string")
c("sweep_unknown", case("h-sf-unk", extra="sweep_failure: {tier: install, when: now}\n"), "sweep_failure.when",
  "unknown field")
c("probes_mapping", case("h-probes-map", extra="probes: {kind: dns}\n"), "probes", "a mapping")
c("probe_no_kind", case("h-probe-nokind", extra="probes: [{network: proxy}]\n"), "probes[0].kind", "missing kind")
c("probe_unknown_kind", case("h-probe-kind", extra="probes: [{kind: rm_rf}]\n"), "probes[0].kind", "unknown probe")
c("probe_http_no_url", case("h-probe-http", extra="probes: [{kind: http}]\n"), "probes[0].url", "missing url")
c("probe_http_file_url", case("h-probe-file", extra="probes: [{kind: http, url: 'file:///etc/shadow'}]\n"),
  "probes[0].url", "file:// URL")
c("probe_typo", case("h-probe-typo", extra="probes: [{kind: dns, netwrok: proxy}]\n"), "probes[0].netwrok", "typo")
c("probe_load_negative", case("h-probe-load", extra="probes: [{kind: load, level: -1}]\n"), "probes[0].level",
  "negative")
c("lab_list", case("h-lab", extra="lab: [x]\n"), "lab", "a list")
c("lab_fix_ref_option", case("h-fixref", extra='lab: {fix_ref: "--upload-pack=touch PWNED"}\n'), "lab.fix_ref",
  "option-like fix ref")
c("description_map", case("h-desc", extra="description: {a: 1}\n"), "description", "a mapping")
c("top_list", "- case: x\n- recipe: y\n", "<top>", "a list at the top")
c("top_scalar", "just a string\n", "<top>", "a scalar")
c("empty_file", "", "<top>", "empty file")
c("comments_only", "# nothing here\n", "<top>", "no mapping")

# --- templates: only {name} from the known set ----------------------------------------------------
c("tmpl_format_spec", harness("h-t-spec", '  argv: ["true", "{recipe:>1500000000}"]\n'), "harness.argv[1]",
  "format spec (MemoryError before)")
c("tmpl_conversion", harness("h-t-conv", '  argv: ["true", "{recipe!r}"]\n'), "harness.argv[1]", "conversion")
c("tmpl_attribute", harness("h-t-attr", '  argv: ["true", "{recipe.__class__}"]\n'), "harness.argv[1]", "attribute")
c("tmpl_index", harness("h-t-index", '  argv: ["true", "{ref[0]}"]\n'), "harness.argv[1]", "index")
c("tmpl_unknown", harness("h-t-unk", '  argv: ["true", "{evil}"]\n'), "harness.argv[1]", "unknown placeholder")
c("tmpl_positional", harness("h-t-pos", '  argv: ["true", "{}"]\n'), "harness.argv[1]", "positional field")
c("tmpl_unbalanced", harness("h-t-unbal", '  argv: ["true", "{recipe"]\n'), "harness.argv[1]", "unbalanced brace")
c("tmpl_nested_spec", harness("h-t-nest", '  argv: ["true", "{recipe:{ref}}"]\n'), "harness.argv[1]", "nested spec")
c("tmpl_cwd", harness("h-t-cwd", '  argv: ["true"]\n  cwd: "{lab_home!s}"\n'), "harness.cwd", "conversion in cwd")
c("tmpl_env", harness("h-t-env", '  argv: ["true"]\n  env: {X: "{run_dir:*^99999999}"}\n'), "harness.env.X",
  "format spec in env")
c("tmpl_results", harness("h-t-res", '  argv: ["true"]\n  results_json: "{nope}/r.json"\n'), "harness.results_json",
  "unknown placeholder")
c("tmpl_pre", harness("h-t-pre", '  argv: ["true"]\n  pre: [["git", "{ref:x}"]]\n'), "harness.pre[0][1]",
  "format spec in a pre step")

# --- NUL bytes ----------------------------------------------------------------------------------
c("nul_argv", harness("h-nul-argv", '  argv: ["true", "a\\0b"]\n'), "harness.argv[1]", "NUL in argv")
c("nul_env", harness("h-nul-env", '  argv: ["true"]\n  env: {X: "a\\0b"}\n'), "harness.env.X", "NUL in env")
c("nul_cwd", harness("h-nul-cwd", '  argv: ["true"]\n  cwd: "/tmp\\0x"\n'), "harness.cwd", "NUL in cwd")

# --- hosts --------------------------------------------------------------------------------------
c("host_option", case("h-host-opt", extra='node: {kind: ssh, host: "-oProxyCommand=touch PWNED"}\n'),
  "node.host", "an ssh option")
c("host_user_option", case("h-host-uopt", extra='node: {kind: ssh, host: "root@-oProxyCommand=x"}\n'),
  "node.host", "option after user@")
c("host_space", case("h-host-sp", extra='node: {kind: ssh, host: "a b"}\n'), "node.host", "space")
c("host_shell", case("h-host-sh", extra='node: {kind: ssh, host: "host;id"}\n'), "node.host", "shell character")
c("host_port", case("h-host-port", extra='node: {kind: ssh, host: "host:99999"}\n'), "node.host", "port out of range")
c("host_number", case("h-host-num", extra="node: {kind: ssh, host: 10}\n"), "node.host", "a number")
c("docker_host_http", case("h-dh-http", extra='node: {docker_host: "http://x:2375"}\n'), "node.docker_host",
  "unknown scheme")
c("docker_host_ssh_option", case("h-dh-sshopt", extra='node: {docker_host: "ssh://-oProxyCommand=x"}\n'),
  "node.docker_host", "an ssh option")
c("docker_host_unix_relative", case("h-dh-unix", extra='node: {docker_host: "unix://docker.sock"}\n'),
  "node.docker_host", "relative socket path")
c("docker_host_tcp_port", case("h-dh-tcp", extra='node: {docker_host: "tcp://host:0"}\n'), "node.docker_host",
  "port 0")
c("docker_host_bare", case("h-dh-bare", extra='node: {docker_host: "/var/run/docker.sock"}\n'), "node.docker_host",
  "no scheme")
c("node_kind_bad", case("h-kind", extra="node: {kind: k8s}\n"), "node.kind", "unknown kind")
c("busy_regex", case("h-busy-rx", extra="node: {busy: [{process: '('}]}\n"), "node.busy[0].process", "bad regex")
c("busy_two_keys", case("h-busy-two", extra="node: {busy: [{process: a, stack: b}]}\n"), "node.busy[0]", "two kinds")
c("busy_unknown", case("h-busy-unk", extra="node: {busy: [{pid: 1}]}\n"), "node.busy[0].pid", "unknown kind")
c("busy_not_string", case("h-busy-int", extra="node: {busy: [{lock_file: 5}]}\n"), "node.busy[0].lock_file",
  "a number")

# --- YAML itself ----------------------------------------------------------------------------------
BOMB = ('case: h-bomb\nrecipe: r\nref: main\nharness: {argv: ["true"]}\nlab:\n  a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(f'  {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},'
                  f'*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n' for i in range(8)))
c("yaml_alias_bomb", BOMB, "line 6", "billion laughs (1.3 KB -> > 1 GB before)")
c("yaml_alias", case("h-alias", extra="lab: {a: &x 1, b: *x}\n"), "line 6", "anchor and alias")
c("yaml_merge_key", 'case: h-merge\nrecipe: r\nref: main\nbase: &b {argv: ["true"]}\nharness: {<<: *b}\n', "line 4",
  "merge key needs an anchor")
c("yaml_dup_top", harness("h-dup", '  argv: ["true"]\n') + 'harness:\n  argv: ["touch", "PWNED"]\n', "harness",
  "second harness: silently won before")
c("yaml_dup_nested", harness("h-dup-n", '  argv: ["true"]\n  env: {A: "1", A: "2"}\n'), "harness.env.A",
  "duplicate env key")
c("yaml_python_tag", case("h-pytag", extra="lab: !!python/object/apply:os.system ['id']\n"), "lab", "python tag")
c("yaml_binary_tag", case("h-bintag", extra="description: !!binary aGVsbG8=\n"), "description", "binary tag")
c("yaml_set_tag", case("h-settag", extra="lab: !!set {a, b}\n"), "lab", "set tag")
c("yaml_custom_tag", case("h-ctag", extra="lab: !vault x\n"), "lab", "custom tag")
c("yaml_two_docs", case("h-docs") + "---\n" + case("h-docs2"), "line 6", "two documents")
c("yaml_syntax", 'case: x\n  bad: [\n', "line 2", "invalid YAML")
c("yaml_int_key", case("h-intkey", extra="1: x\n"), "1", "a number as a key")
c("yaml_bool_key", harness("h-boolkey", '  argv: ["true"]\n  env: {on: x}\n'), "harness.env.on",
  "YAML 1.1 'on' is a boolean key")
c("yaml_deep", "case: h-deep\nrecipe: r\nref: main\nharness: {argv: [\"true\"]}\nlab: " + "[" * 20000 + "]" * 20000
  + "\n", "line 5", "20,000-deep nesting (traceback before)")
c("yaml_deep_map", "case: h-deepm\nrecipe: r\nref: main\nharness: {argv: [\"true\"]}\nlab: " + "{a: " * 40
  + "1" + "}" * 40 + "\n", "line 5", "40-deep mappings")
c("yaml_control_char", 'case: "h-\x07ctl"\nrecipe: r\nref: main\nharness: {argv: ["true"]}\n', "line 1",
  "control character")
c("yaml_huge_int", case("h-hugeint", extra="runs: {max: " + "9" * 5000 + "}\n"), "runs.max", "5000-digit number")

# --- encodings --------------------------------------------------------------------------------
c("enc_latin1", case("h-latin").encode() + b"description: caf\xe9\n", "<file>",
  "Latin-1, not UTF-8")
c("enc_utf16le", "\ufeff".encode("utf-16-le") + case("h-u16").encode("utf-16-le"), "<file>", "UTF-16 LE with BOM")
c("enc_utf16be", "\ufeff".encode("utf-16-be") + case("h-u16be").encode("utf-16-be"), "<file>", "UTF-16 BE with BOM")
c("enc_utf16_nobom", case("h-u16n").encode("utf-16-le"), "<file>", "UTF-16 without BOM")
c("enc_utf32", "\ufeff".encode("utf-32-le") + case("h-u32").encode("utf-32-le"), "<file>", "UTF-32")
c("enc_binary_png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "<file>", "binary")
c("enc_nul_in_text", case("h-nul").encode() + b"description: a\x00b\n", "<file>", "raw NUL byte")
c("enc_overlong", case("h-overlong").encode() + b"description: \xc0\xaf\n", "<file>", "overlong UTF-8")

# --- local node: program / cwd must exist (checked before anything runs) -------------------------
c("prog_missing_abs", harness("h-prog-abs", '  argv: ["/nonexistent/bin/harness"]\n'), "harness.argv[0]",
  "no such program")
c("prog_not_on_path", harness("h-prog-path", '  argv: ["redfix-no-such-program-xyz"]\n'), "harness.argv[0]",
  "not on PATH")
c("prog_is_folder", harness("h-prog-dir", '  argv: ["/tmp"]\n'), "harness.argv[0]", "a folder")
c("prog_not_exec", harness("h-prog-noexec", '  argv: ["/etc/passwd"]\n'), "harness.argv[0]", "not executable")
c("cwd_missing", harness("h-cwd", '  argv: ["true"]\n  cwd: /nonexistent/work\n'), "harness.cwd", "no such folder")
c("pre_prog_missing", harness("h-pre-prog", '  argv: ["true"]\n  pre: [["/nonexistent/git", "checkout"]]\n'),
  "harness.pre[0][0]", "pre step program missing")
c("path_unset", harness("h-path-unset", '  argv: ["true"]\n  unset: [PATH]\n'), "harness.argv[0]",
  "PATH unset: the program cannot be found")


# ---- bundles -----------------------------------------------------------------------------------

def base_bundle(case_id="hb"):
    return {
        "schema_version": 1, "redfix_version": "x", "created": "2026-01-01T00:00:00Z",
        "case": {"case": case_id, "recipe": "r", "ref": "1.0.0", "sweep_failure": {"tier": "restore", "tests": ["t"],
                                                                                     "message": ""}, "lab": {}},
        "node": {"node": "local"},
        "runs": [{"index": 1, "mode": "isolated", "started": "", "wall_s": 1.0, "exit_code": 1, "proc_status": "exited",
                  "outcome": "fail", "log": "runs/001/harness.log", "artifacts": ["runs/001/harness.log"], "ref": "1.0.0",
                  "load": {}, "error": "",
                  "result": {"source": "results.json", "flags": {}, "meta": {},
                             "tiers": [{"name": "restore", "status": "fail", "detail": "",
                                        "tests": [{"name": "t", "status": "fail", "ms": 1, "message": "boom",
                                                   "classname": ""}]}]}}],
        "evidence": [{"id": "harness_log:run001:harness", "kind": "harness_log", "source": "x", "status": "ok",
                      "summary": "", "excerpt": "", "artifact": "runs/001/harness.log", "data": {"run": 1}}],
        "notes": []}


BUNDLES: dict[str, tuple] = {}


def b(name, mutate, fld, why, raw: bytes | None = None):
    BUNDLES[name] = (mutate, fld, why, raw)


def run0(d):
    return d["runs"][0]


b("index_string", lambda d: run0(d).update(index="one"), "runs[0].index", "index 'one'")
b("index_zero", lambda d: run0(d).update(index=0), "runs[0].index", "index 0")
b("index_float", lambda d: run0(d).update(index=1.5), "runs[0].index", "index 1.5")
b("index_duplicate", lambda d: d["runs"].append(dict(run0(d))), "runs[1].index", "two runs numbered 1")
b("tier_status_int", lambda d: run0(d)["result"]["tiers"][0].update(status=7), "runs[0].result.tiers[0].status",
  "tier status 7")
b("tier_status_word", lambda d: run0(d)["result"]["tiers"][0].update(status="exploded"),
  "runs[0].result.tiers[0].status", "unknown tier status")
b("test_status_bad", lambda d: run0(d)["result"]["tiers"][0]["tests"][0].update(status=None),
  "runs[0].result.tiers[0].tests[0].status", "test status null")
b("outcome_bad", lambda d: run0(d).update(outcome="meh"), "runs[0].outcome", "unknown outcome")
b("proc_status_bad", lambda d: run0(d).update(proc_status=1), "runs[0].proc_status", "a number")
b("wall_negative", lambda d: run0(d).update(wall_s=-3), "runs[0].wall_s", "negative")
b("wall_string", lambda d: run0(d).update(wall_s="1s"), "runs[0].wall_s", "a string")
b("exit_code_string", lambda d: run0(d).update(exit_code="1"), "runs[0].exit_code", "a string")
b("nan_wall", None, "runs[0].wall_s", "NaN", raw=b"NaN")
b("infinity_wall", None, "runs[0].wall_s", "Infinity", raw=b"Infinity")
b("log_escape", lambda d: run0(d).update(log="../../etc/shadow"), "runs[0].log", "log path ../../etc/shadow")
b("log_absolute", lambda d: run0(d).update(log="/etc/shadow"), "runs[0].log", "absolute log path")
b("log_missing", lambda d: run0(d).update(log="runs/001/nope.log"), "runs[0].log", "missing log")
b("log_folder", lambda d: run0(d).update(log="runs/001"), "runs[0].log", "a folder as the log")
b("log_int", lambda d: run0(d).update(log=5), "runs[0].log", "a number")
b("artifact_escape", lambda d: run0(d).update(artifacts=["../../../etc/passwd"]), "runs[0].artifacts[0]",
  "artifact outside")
b("evidence_artifact_escape", lambda d: d["evidence"][0].update(artifact="../x"), "evidence[0].artifact",
  "evidence artifact outside")
b("evidence_status_bad", lambda d: d["evidence"][0].update(status="maybe"), "evidence[0].status", "unknown status")
b("evidence_unknown_key", lambda d: d["evidence"][0].update(shell="rm -rf /"), "evidence[0].shell", "unknown key")
b("run_unknown_key", lambda d: run0(d).update(cmd="x"), "runs[0].cmd", "unknown key")
b("result_missing", lambda d: run0(d).pop("result"), "runs[0].result", "missing")
b("result_source_bad", lambda d: run0(d)["result"].update(source="guess"), "runs[0].result.source", "unknown source")
b("schema_version_2", lambda d: d.update(schema_version=2), "schema_version", "future schema")
b("schema_version_missing", lambda d: d.pop("schema_version"), "schema_version", "missing")
b("case_missing", lambda d: d.pop("case"), "case", "missing")
b("case_id_newline", lambda d: d["case"].update(case="x\n"), "case.case", "trailing newline")
b("case_id_path", lambda d: d["case"].update(case="../../tmp/x"), "case.case", "path in the case id")
b("runs_not_list", lambda d: d.update(runs={"1": {}}), "runs", "a mapping")
b("notes_not_list", lambda d: d.update(notes="x"), "notes", "a string")
b("top_unknown_key", lambda d: d.update(extra=1), "extra", "unknown top key")
b("duplicate_key", None, "runs[0].index", "duplicate key", raw=b"DUP")
b("not_json", None, "line 1", "not JSON", raw=b"{'runs': [}\n")
b("empty", None, "line 1", "empty file", raw=b"")
b("top_array", None, "<top>", "a list", raw=b"[1, 2]\n")
b("utf16", None, "<file>", "UTF-16", raw=b"UTF16")
b("deep_json", None, "<top>", "100,000-deep nesting", raw=b"[" * 100000 + b"]" * 100000)
b("nul_string", lambda d: run0(d).update(error="a\u0000b"), "runs[0].error", "NUL in a string")


# ---- sweep files -------------------------------------------------------------------------------

SWEEPS = {
    "not_json": (b"recipes: {}\n", "line 1", "YAML, not JSON"),
    "no_recipes": (b'{"started": "x"}\n', "recipes", "missing recipes"),
    "recipes_list": (b'{"recipes": ["gitea"]}\n', "recipes", "a list"),
    "entry_no_status": (b'{"recipes": {"fakerecipe": {"exit_code": 1}}}\n', "recipes.fakerecipe.status",
                        "missing status"),
    "status_int": (b'{"recipes": {"fakerecipe": {"status": 1}}}\n', "recipes.fakerecipe.status", "a number"),
    "bad_recipe_name": (b'{"recipes": {"../../x": {"status": "fail"}}}\n', "recipes.<key #1>", "a path as a name"),
    "nan": (b'{"recipes": {"fakerecipe": {"status": "fail", "wall_s": NaN}}}\n', "recipes.fakerecipe.wall_s", "NaN"),
    "duplicate": (b'{"recipes": {"a": {"status": "fail"}}, "recipes": {}}\n', "recipes", "duplicate key"),
    "utf16": ('{"recipes": {}}'.encode("utf-16"), "<file>", "UTF-16"),
    "top_array": (b"[]\n", "<top>", "a list"),
    "binary": (b"\x00\x01\x02\x03" * 10, "<file>", "binary"),
}


def main() -> None:
    for sub in ("cases", "bundles", "sweeps"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
        (HERE / sub).mkdir(parents=True)
    man = {"cases": {}, "bundles": {}, "sweeps": {}}
    for name, (content, fld, why) in CASES.items():
        p = HERE / "cases" / f"{name}.yaml"
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        man["cases"][f"cases/{name}.yaml"] = {"field": fld, "why": why}
    for name, (mutate, fld, why, raw) in BUNDLES.items():
        d = HERE / "bundles" / name
        (d / "runs" / "001").mkdir(parents=True)
        (d / "runs" / "001" / "harness.log").write_text("ERROR boom\n")
        data = base_bundle(f"hb-{name.replace('_', '-')}")
        if mutate:
            mutate(data)
        text = json.dumps(data, indent=1, ensure_ascii=False)
        if raw in (b"NaN", b"Infinity"):
            out = text.replace('"wall_s": 1.0', f'"wall_s": {raw.decode()}').encode()
        elif raw == b"DUP":
            out = text.replace('"index": 1,', '"index": 1, "index": 2,').encode()
        elif raw == b"UTF16":
            out = text.encode("utf-16")
        elif raw is not None:
            out = raw
        else:
            out = text.encode()
        (d / "bundle.json").write_bytes(out)
        man["bundles"][f"bundles/{name}"] = {"field": fld, "why": why}
    for name, (content, fld, why) in SWEEPS.items():
        (HERE / "sweeps" / f"{name}.json").write_bytes(content)
        man["sweeps"][f"sweeps/{name}.json"] = {"field": fld, "why": why}
    import yaml
    head = ("# The hostile corpus: every input here must be refused with exit 2 and a `file: field: reason`\n"
            "# line naming `field`, no traceback, nothing created. Written by make_corpus.py; run by\n"
            "# tests/test_hostile.py (which adds the inputs git cannot store: FIFOs, symlinks, devices,\n"
            "# 30 MB files, and the command-line table).\n")
    (HERE / "manifest.yaml").write_text(head + yaml.safe_dump(man, sort_keys=False, allow_unicode=True, width=200))
    print(f"cases {len(CASES)}, bundles {len(BUNDLES)}, sweeps {len(SWEEPS)}")


if __name__ == "__main__":
    main()
