#!/usr/bin/python3
"""Checks a tutti-bench -J file against the fields README-bench.md documents.

    check_json.py FILE [--peer] [--bound] [--latency] [--algo]

Exits 0 when every documented field is present with the documented type,
1 with one line per problem otherwise. The flags say which optional parts
the run was asked for, and so must be objects rather than null; --algo
says the run had --algo, so every row must name one of
parameters.algorithms (never "auto") and every one of those must have
rows, in the order listed.
"""
import json
import sys

NUM = (int, float)
OPT_NUM = (int, float, type(None))

TOP = {"schema": str, "tool": dict, "command": list, "start_time": str,
       "parameters": dict, "environment": dict, "rows": list,
       "summary": dict}
PARAMETERS = {"collective": str, "nranks": int, "min_bytes": int,
              "max_bytes": int, "step_factor": int, "step_bytes": int,
              "iters": int, "warmup_iters": int, "check": int, "ops": list,
              "datatypes": list, "root": int, "algo": str,
              "algorithms": list, "time_combine": str,
              "blocking": int, "blocking_requested": int, "latency": bool,
              "peer": (str, type(None)), "bound": bool, "timeout_ms": int,
              "launch": str, "reexec_mpiexec": bool}
ENVIRONMENT = {"host": str, "cores": int, "tutti_version": str,
               "tutti_version_code": int, "ranks": list, "transport": dict,
               "tutti_env": dict, "peer": (dict, type(None))}
ROW = {"collective": str, "size": int, "count": int, "type": str,
       "redop": str, "root": int, "algorithm": str, "tutti": dict,
       "peer": (dict, type(None)), "ratio": (dict, type(None)),
       "bound": (dict, type(None))}
RESULT = {"time_us": OPT_NUM, "algbw_gbs": OPT_NUM, "busbw_gbs": OPT_NUM,
          "wrong": (int, type(None)), "latency_us": (dict, type(None)),
          "skipped": (str, type(None))}
BOUND = {"memcpy_single_gbs": OPT_NUM, "memcpy_concurrent_gbs": OPT_NUM,
         "busbw_bound_gbs": OPT_NUM, "out_of_place_pct": OPT_NUM,
         "in_place_pct": OPT_NUM}
SUMMARY = {"rows": int, "avg_busbw_gbs": NUM, "wrong": int,
           "peer_avg_busbw_gbs": OPT_NUM, "peer_wrong": (int, type(None))}

problems = []


def need(obj, fields, where):
    for name, typ in fields.items():
        if name not in obj:
            problems.append("%s: missing %s" % (where, name))
        elif not isinstance(obj[name], typ) or (
                typ is int and isinstance(obj[name], bool)):
            problems.append("%s.%s: %r has the wrong type"
                            % (where, name, obj[name]))


def check_result(res, where, latency):
    need(res, RESULT, where)
    if latency and res.get("skipped") is None:
        lat = res.get("latency_us")
        if not isinstance(lat, dict) or set(lat) != {"p50", "p99", "max"}:
            problems.append("%s.latency_us: want p50, p99, max" % where)


def check_algorithms(doc, forced):
    """rows[].algorithm against parameters.algorithms, in sweep order."""
    params = doc.get("parameters", {})
    algos = params.get("algorithms", [])
    if not algos or not all(isinstance(a, str) for a in algos):
        problems.append("parameters.algorithms: %r" % (algos,))
        return
    seen = []
    for k, row in enumerate(doc.get("rows", [])):
        algo = row.get("algorithm")
        if algo not in algos:
            problems.append("rows[%d].algorithm: %r is not in %r"
                            % (k, algo, algos))
        elif not seen or seen[-1] != algo:
            seen.append(algo)
    if seen != algos:
        problems.append("rows: algorithms in order %r, expected %r"
                        % (seen, algos))
    if forced and ("auto" in algos or params.get("algo") == "auto"):
        problems.append("parameters: --algo run says auto: %r %r"
                        % (params.get("algo"), algos))


def main():
    doc = json.load(open(sys.argv[1]))
    flags = set(sys.argv[2:])
    need(doc, TOP, "top")
    if not str(doc.get("schema", "")).startswith("tutti-bench/"):
        problems.append("schema: %r" % doc.get("schema"))
    need(doc.get("parameters", {}), PARAMETERS, "parameters")
    need(doc.get("environment", {}), ENVIRONMENT, "environment")
    need(doc.get("summary", {}), SUMMARY, "summary")
    env = doc.get("environment", {})
    for r in env.get("ranks", []):
        need(r, {"rank": int, "pid": int, "host": str}, "environment.ranks")
    need(env.get("transport", {}), {"requested": str, "per_peer": list},
         "environment.transport")
    if not doc.get("rows"):
        problems.append("rows: empty")
    check_algorithms(doc, "--algo" in flags)
    for k, row in enumerate(doc.get("rows", [])):
        where = "rows[%d]" % k
        need(row, ROW, where)
        for p in ("out_of_place", "in_place"):
            check_result(row.get("tutti", {}).get(p, {}),
                         where + ".tutti." + p, "--latency" in flags)
            if "--peer" in flags:
                peer = row.get("peer") or {}
                check_result(peer.get(p, {}), where + ".peer." + p,
                             "--latency" in flags)
        if "--peer" in flags:
            need(row.get("ratio") or {}, {"busbw": OPT_NUM, "time": OPT_NUM},
                 where + ".ratio")
        if "--bound" in flags:
            need(row.get("bound") or {}, BOUND, where + ".bound")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
