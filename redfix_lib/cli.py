"""redfix command line. Each subcommand is a thin wrapper over one library call."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import EXIT_OK, ParamsError, RedfixError


def _out_dir(args, case) -> Path:
    if args.out:
        return Path(args.out)
    import time
    return Path("outputs") / time.strftime("%Y-%m-%d", time.gmtime()) / case.case


def cmd_check(args) -> int:
    from .params import load_cases
    cases = load_cases(args.paths)
    for c in cases:
        print(f"ok  {c.source}  case={c.case} recipe={c.recipe} ref={c.ref}")
    return EXIT_OK


def cmd_isolate(args) -> int:
    from .isolate import isolate, open_bundle
    from .nodes import make_node
    from .params import load_case
    case = load_case(args.case)
    node = make_node(case.node)
    out = _out_dir(args, case)
    with node.lock():
        bundle = open_bundle(case, out, node, fresh=args.fresh)
        if args.under_load:
            from .load import isolate_under_load
            isolate_under_load(case, bundle, node, runs=args.runs, level=args.load_level)
        else:
            isolate(case, bundle, node, runs=args.runs)
    print(f"bundle: {bundle.path / 'bundle.json'}")
    if args.classify:
        from .classify import write_verdict
        from .collectors import Context, collect
        from .isolate import template_values
        collect(Context(case=case, bundle=bundle, node=node, values=template_values(case, bundle.path, 0)), case.probes)
        v = write_verdict(bundle.path)
        print(f"verdict: {v['reproducibility']} / {v['cause']} ({v['sub_cause']}) -> {bundle.path / 'verdict.json'}")
    return EXIT_OK


def cmd_investigate(args) -> int:
    from .isolate import investigate
    from .params import load_case
    case = load_case(args.case)
    v = investigate(args.case, _out_dir(args, case), runs=args.runs, fresh=args.fresh,
                    under_load=True if args.under_load else None, node_host=args.node)
    print(json.dumps({k: v[k] for k in ("case", "reproducibility", "flake_or_genuine", "cause", "sub_cause",
                                        "confidence")}, indent=2))
    return EXIT_OK


def cmd_collect(args) -> int:
    from .collectors import Context, collect
    from .isolate import open_bundle, template_values
    from .nodes import make_node
    from .params import load_case
    case = load_case(args.case)
    node = make_node(case.node)
    with node.lock():
        bundle = open_bundle(case, _out_dir(args, case), node)
        collect(Context(case=case, bundle=bundle, node=node, values=template_values(case, bundle.path, 0)), case.probes)
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
        from .lab import sweep
        rep = sweep.run_sweep(stress=args.stress, recipes=args.recipes or None, out=args.out)
        print(sweep.format_report(rep))
        print(f"sweep report: {rep['path']}")
    return EXIT_OK


def cmd_explain(args) -> int:
    from .signatures import explain_file
    print(json.dumps(explain_file(args.file), indent=2))
    return EXIT_OK


def cmd_classify(args) -> int:
    from .classify import write_verdict
    v = write_verdict(args.bundle)
    print(json.dumps({k: v[k] for k in ("case", "reproducibility", "cause", "sub_cause", "confidence")}, indent=2))
    return EXIT_OK


def cmd_batch(args) -> int:
    from .batch import run_batch
    rc = run_batch(args.params or ["params/lab"], date=args.date, force=args.force, out_root=args.out_root,
                   live=not args.replay, sweep=args.sweep,
                   nodes=[n for n in (args.nodes or "").split(",") if n] or None)
    return rc


def cmd_verify(args) -> int:
    from .verify import verify_fix
    row = verify_fix(args.case, fix_ref=args.ref, runs=args.runs, out=args.out)
    print(json.dumps(row, indent=2))
    return EXIT_OK if row.get("status") == "verified" else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redfix", description="Investigate CI failures of Docker Swarm recipes.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate case params files or folders")
    c.add_argument("paths", nargs="+")
    c.set_defaults(fn=cmd_check)
    i = sub.add_parser("isolate", help="run a case's harness alone N times")
    i.add_argument("case")
    i.add_argument("--runs", type=int, default=None, help="fixed number of runs (default: the case's stop rule)")
    i.add_argument("--out", default=None, help="bundle folder (default outputs/<today>/<case>)")
    i.add_argument("--fresh", action="store_true", help="start a new bundle instead of appending runs")
    i.add_argument("--under-load", action="store_true", help="rerun beside controlled stressors")
    i.add_argument("--load-level", type=int, default=None, help="number of CPU-burner tasks (default 8 per core)")
    i.add_argument("--classify", action="store_true", help="write verdict.json afterwards")
    i.set_defaults(fn=cmd_isolate)
    inv = sub.add_parser("investigate", help="isolation runs + load reproduction + evidence + verdict, one case")
    inv.add_argument("case")
    inv.add_argument("--runs", type=int, default=None)
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
    sw.add_argument("--stress", type=int, default=None, help="CPU-burner tasks during the sweep (default 8 per core; 0 = none)")
    sw.add_argument("--out", default=None)
    sw.add_argument("recipes", nargs="*")
    lab.set_defaults(fn=cmd_lab)
    e = sub.add_parser("explain-log", help="match a log against the signature catalogue")
    e.add_argument("file")
    e.set_defaults(fn=cmd_explain)
    k = sub.add_parser("classify", help="(re)classify a stored bundle, write verdict.json")
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
    v.add_argument("--runs", type=int, default=2)
    v.add_argument("--out", default=None)
    v.set_defaults(fn=cmd_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ParamsError as e:
        for line in e.lines():
            print(f"redfix: error: {line}", file=sys.stderr)
        return e.exit_code
    except RedfixError as e:
        print(f"redfix: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("redfix: interrupted; the bundle keeps every finished run", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
