"""redfix command line. Each subcommand is a thin wrapper over one library call."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import EXIT_BAD_INPUT, EXIT_OK, Interrupted, ParamsError, RedfixError

ARGS = "<command line>"          # the `file` of a refused argument


def _bad(fld: str, reason: str) -> ParamsError:
    return ParamsError([(ARGS, fld, reason)])


def _out_dir(args, case) -> Path:
    if args.out:
        return Path(args.out)
    import time
    return Path("outputs") / time.strftime("%Y-%m-%d", time.gmtime()) / case.case


def _check_out(out: Path, case, flag: str = "--out", fix: bool = False) -> None:
    """The bundle folder may be new, empty, or this case's own bundle; never a file, another case's
    bundle, a folder of other things (--fresh would delete it) or, for verify, the failing runs."""
    from .bundle import load_bundle
    s = str(out)
    if any(ord(c) < 32 for c in s):
        raise _bad(flag, f"{s!r} contains a control character (newline, tab...)")
    if not os.path.lexists(out):
        return
    if not out.is_dir() or out.is_symlink():
        raise _bad(flag, f"{s} exists and is not a folder: a bundle folder is needed")
    if not (out / "bundle.json").exists() and not os.path.lexists(out / "bundle.json"):
        if any(out.iterdir()):
            raise _bad(flag, f"{s} is a folder that holds other things, not a redfix bundle: refused")
        return
    b = load_bundle(out)                       # a broken bundle there is refused (exit 2) as it is
    if b.case.get("case") != case.case:
        raise _bad(flag, f"{s} holds the bundle of case {b.case.get('case')!r}, not {case.case!r}: "
                         "choose another folder")
    if fix and any(r.mode != "fix" for r in b.runs):
        raise _bad(flag, f"{s} holds {case.case!r}'s investigation runs; verify starts its bundle afresh and "
                         "would delete them: choose another folder")


def _positive(lo: int, hi: int):
    def conv(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from {lo} to {hi}, got {v!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {n}")
        return n
    return conv


class _Parser(argparse.ArgumentParser):
    """argparse, with its refusals in the `file: field: reason` form (exit 2)."""

    def error(self, message: str):
        import re
        self.print_usage(sys.stderr)
        m = re.match(r"argument ([^:]+): (.*)", message, re.S)
        fld, reason = (m.group(1), m.group(2)) if m else ("<arguments>", message)
        self.exit(EXIT_BAD_INPUT, f"redfix: error: {ARGS}: {fld}: {reason}\n")


def cmd_check(args) -> int:
    from .gate import local_run_problems
    from .isolate import template_values
    from .params import load_cases
    # a local case's program or cwd that is missing is refused too
    cases = load_cases(args.paths, extra=lambda c: local_run_problems(c, template_values(c, Path("."), 1)))
    for c in cases:
        print(f"ok  {c.source}  case={c.case} recipe={c.recipe} ref={c.ref}")
    return EXIT_OK


def cmd_isolate(args) -> int:
    from . import pipeline
    from .gate import preflight
    from .nodes import make_node
    from .params import load_case
    case = load_case(args.case)
    out = _out_dir(args, case)
    _check_out(out, case)
    preflight(case, make_node(case.node), under_load=args.under_load, load_probe=False)
    bundle = pipeline.isolate_runs(args.case, out, runs=args.runs, fresh=args.fresh,
                                   under_load=args.under_load, load_level=args.load_level, ref=args.ref,
                                   harness_defaults=args.harness_defaults)
    print(f"bundle: {bundle.path / 'bundle.json'}")
    if args.classify:
        from .classify import write_verdict
        pipeline.collect_evidence(args.case, bundle.path)
        v = write_verdict(bundle.path)
        print(f"verdict: {v['reproducibility']} / {v['cause']} ({v['sub_cause']}) -> {bundle.path / 'verdict.json'}")
    return EXIT_OK


def cmd_investigate(args) -> int:
    from .gate import host_problem, preflight
    from .nodes import make_node
    from .params import load_case
    from .pipeline import investigate
    if args.node and (p := host_problem(args.node)):
        raise _bad("--node", p)
    case = load_case(args.case)
    _check_out(_out_dir(args, case), case)
    preflight(case, make_node(case.node, args.node), under_load=args.under_load, load_probe=True)
    v = investigate(args.case, _out_dir(args, case), runs=args.runs, fresh=args.fresh,
                    under_load=True if args.under_load else None, node_host=args.node)
    print(json.dumps({k: v[k] for k in ("case", "reproducibility", "flake_or_genuine", "cause", "sub_cause",
                                        "confidence")}, indent=2))
    return EXIT_OK


def cmd_collect(args) -> int:
    from .gate import require_ssh
    from .nodes import make_node
    from .params import load_case
    from .pipeline import collect_evidence
    case = load_case(args.case)
    _check_out(_out_dir(args, case), case)
    if case.node.kind == "ssh":
        require_ssh(make_node(case.node))
    bundle = collect_evidence(args.case, _out_dir(args, case))
    print(f"bundle: {bundle.path / 'bundle.json'} ({len(bundle.evidence)} evidence items)")
    return EXIT_OK


def cmd_lab(args) -> int:
    from .lab import engine
    if args.lab_cmd == "up":
        engine.lab_up()
    elif args.lab_cmd == "down":
        engine.lab_down()
    elif args.lab_cmd == "status":
        print(json.dumps(engine.lab_status(), indent=2))
    elif args.lab_cmd == "sweep":
        from .safety import recipe_problem
        for r in args.recipes or []:
            if p := recipe_problem(r):
                raise _bad("recipes", p)
        if args.out and os.path.lexists(args.out) and not os.path.isdir(args.out):
            raise _bad("--out", f"{args.out} exists and is not a folder")
        from .lab import sweep
        rep = sweep.run_sweep(stress=args.stress, recipes=args.recipes or None, out=args.out)
        print(sweep.format_report(rep))
        print(f"sweep report: {rep['path']}")
    return EXIT_OK


def cmd_explain(args) -> int:
    from .gate import check_log
    from .signatures import explain_file
    check_log(args.file)                     # exit 2 before the scan: missing, folder, FIFO, device, size
    print(json.dumps(explain_file(args.file), indent=2))
    return EXIT_OK


def cmd_classify(args) -> int:
    from .classify import reclassify
    v, changed = reclassify(args.bundle)
    print(json.dumps({k: v[k] for k in ("case", "reproducibility", "cause", "sub_cause", "confidence", "versions",
                                        "analysis")}, indent=2))
    print("changes vs the stored verdict:" + ("".join(f"\n  {c}" for c in changed) if changed else " none"))
    return EXIT_OK


def cmd_batch(args) -> int:
    import re
    from .batch import run_batch
    from .gate import host_problem
    if args.date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.date):
        raise _bad("--date", f"must be YYYY-MM-DD (it names a folder), got {args.date!r}")
    if os.path.lexists(args.out_root) and not os.path.isdir(args.out_root):
        raise _bad("--out-root", f"{args.out_root} exists and is not a folder")
    if args.nodes is not None:
        hosts = args.nodes.split(",")
        for h in hosts:
            if p := host_problem(h):
                raise _bad("--nodes", p)
        if len(set(hosts)) != len(hosts):
            raise _bad("--nodes", "a node is named twice (two cases would share it)")
    rc = run_batch(args.params or ["params/lab"], date=args.date, force=args.force, out_root=args.out_root,
                   live=not args.replay, sweep=args.sweep,
                   nodes=[n for n in (args.nodes or "").split(",") if n] or None)
    return rc


def cmd_verify(args) -> int:
    from .gate import preflight
    from .nodes import make_node
    from .params import load_case
    from .safety import ref_problem
    from .verify import verify_fix
    case = load_case(args.case)
    fix_ref = args.ref or (case.lab or {}).get("fix_ref")
    if not fix_ref:
        raise ParamsError([(args.case, "lab.fix_ref", "no fix ref: pass --ref REF or set lab.fix_ref in the case")])
    if p := ref_problem(fix_ref):
        raise _bad("--ref", p) if args.ref else ParamsError([(args.case, "lab.fix_ref", p)])
    import time
    _check_out(Path(args.out or Path("outputs") / time.strftime("%Y-%m-%d", time.gmtime()) / f"{case.case}-fix"),
               case, fix=True)
    preflight(case, make_node(case.node), load_probe=True)
    row = verify_fix(args.case, fix_ref=args.ref, runs=args.runs, out=args.out)
    print(json.dumps(row, indent=2))
    return EXIT_OK if row.get("status") == "verified" else 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="redfix", description="Investigate CI failures of Docker Swarm recipes.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate case params files or folders")
    c.add_argument("paths", nargs="+")
    c.set_defaults(fn=cmd_check)
    i = sub.add_parser("isolate", help="run a case's harness alone N times")
    i.add_argument("case")
    i.add_argument("--runs", type=_positive(1, 200), default=None, help="fixed number of runs (default: the case's stop rule)")
    i.add_argument("--out", default=None, help="bundle folder (default outputs/<today>/<case>)")
    i.add_argument("--fresh", action="store_true", help="start a new bundle instead of appending runs")
    i.add_argument("--under-load", action="store_true", help="rerun beside controlled stressors")
    i.add_argument("--load-level", type=_positive(0, 1000), default=None, help="CPU burners of the first load rung (default 8 per core); the ladder escalates from there")
    i.add_argument("--ref", default=None, help="run another ref of the recipe as a contrast (mode 'contrast')")
    i.add_argument("--harness-defaults", action="store_true",
                   help="a contrast run with the node's harness settings at cc-ci's defaults (CCCI_SETTINGS -> an empty file)")
    i.add_argument("--classify", action="store_true", help="write verdict.json afterwards")
    i.set_defaults(fn=cmd_isolate)
    inv = sub.add_parser("investigate", help="isolation runs + load reproduction + evidence + verdict, one case")
    inv.add_argument("case")
    inv.add_argument("--runs", type=_positive(1, 200), default=None)
    inv.add_argument("--out", default=None)
    inv.add_argument("--fresh", action="store_true")
    inv.add_argument("--under-load", action="store_true", help="always add under-load reruns")
    inv.add_argument("--node", default=None, help="ssh host (an alias from ~/.ssh/config) for ssh cases")
    inv.set_defaults(fn=cmd_investigate)
    co = sub.add_parser("collect", help="(re)collect a case's evidence into its bundle, no runs")
    co.add_argument("case")
    co.add_argument("--out", default=None)
    co.set_defaults(fn=cmd_collect)
    lab = sub.add_parser("lab", help="the embedded local Docker Swarm lab")
    ls = lab.add_subparsers(dest="lab_cmd", required=True)
    ls.add_parser("up")
    ls.add_parser("down")
    ls.add_parser("status")
    sw = ls.add_parser("sweep")
    sw.add_argument("--stress", type=_positive(0, 1000), default=None, help="CPU-burner tasks during the sweep (default 8 per core; 0 = none)")
    sw.add_argument("--out", default=None)
    sw.add_argument("recipes", nargs="*")
    lab.set_defaults(fn=cmd_lab)
    e = sub.add_parser("explain-log", help="match a log against the signature catalogue")
    e.add_argument("file")
    e.set_defaults(fn=cmd_explain)
    k = sub.add_parser("classify", help="re-judge a stored bundle with today's analysis, write verdict.json, "
                                        "print what changed")
    k.add_argument("bundle")
    k.set_defaults(fn=cmd_classify)
    b = sub.add_parser("batch", help="run the investigation notebook per case with papermill")
    b.add_argument("params", nargs="*")
    b.add_argument("--date", default=None)
    b.add_argument("--force", action="store_true")
    b.add_argument("--replay", action="store_true", help="replay stored bundles instead of running")
    b.add_argument("--out-root", default="outputs")
    b.add_argument("--nodes", default=None, help="comma-separated ssh hosts: cases run in parallel, one per node")
    b.add_argument("--sweep", default=None, help="sweep.json: only the cases whose recipe failed in that sweep")
    b.set_defaults(fn=cmd_batch)
    v = sub.add_parser("verify", help="run a fix ref in isolation and compare with the failing runs")
    v.add_argument("case")
    v.add_argument("--ref", default=None)
    v.add_argument("--runs", type=_positive(1, 200), default=2)
    v.add_argument("--out", default=None)
    v.set_defaults(fn=cmd_verify)
    return p


def _on_signal(signum, frame):
    import signal
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):     # a second signal does not cut the cleanup short
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def _install_signal_handlers() -> None:
    """SIGINT/SIGTERM/SIGHUP become errors.Interrupted in the main thread: node.run stops the harness
    and everything it started, the run is recorded as interrupted, the bundle stays consistent."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .nodes import descendants, make_subreaper, stop_descendants
    make_subreaper()            # orphans of anything redfix starts come back to it, and are stopped
    _install_signal_handlers()
    before = descendants()
    try:
        return _main(args)
    finally:
        stop_descendants(keep=before)


def _main(args) -> int:
    try:
        return args.fn(args)
    except ParamsError as e:
        for line in e.lines():
            print(f"redfix: error: {line}", file=sys.stderr)
        return e.exit_code
    except RedfixError as e:
        print(f"redfix: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        name = getattr(e, "signal_name", "SIGINT")
        print(f"redfix: interrupted by {name}: the harness and everything it started were stopped; the bundle "
              "keeps every finished run (a run in progress is recorded as 'interrupted')", file=sys.stderr)
        return getattr(e, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
