#!/usr/bin/env python3
"""Side-by-side benchmark: orchestrator vs direct bullmq-official vs Node BullMQ, same run.

Starts a throwaway redis-server on a free loopback port, runs every contender as its own
process, alternating contenders (A B C, A B C, ...) for ROUNDS rounds, and prints medians,
same-run ratios, the Redis ceiling (server-side usec per job from INFO commandstats, reset
before each contender) and each process's peak RSS.

    scripts/bench.sh [--jobs N] [--rounds R]
"""
import argparse, json, os, platform, re, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def run(cmd, env=None):
    """Run one contender; return (parsed JSON line, peak RSS in MiB)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"contender failed: {' '.join(cmd)}\n{out}\n{err}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def server_usec(port, only=None):
    """Redis time (usec) of every command since the last RESETSTAT, or of the `only` ones."""
    total = 0.0
    for line in cli(port, "INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_([^:]+):.*?usec=(\d+)", line)
        if m and (only is None or m.group(1) in only):
            total += int(m.group(2))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="run only rows whose label contains this text (alternatives separated by |)")
    ap.add_argument("--depths", default="1000,100000,1000000",
                    help="queue depths (comma-separated) of the status-vs-depth rows")
    ap.add_argument("--list-depth", type=int, default=100000,
                    help="waiting jobs behind the BullMQ list/counts rows")
    ap.add_argument("--workflows", type=int, default=10000,
                    help="open workflows behind the Temporal list/counts rows")
    ap.add_argument("--executions", type=int, default=2000,
                    help="finished executions behind the n8n list/counts rows")
    ap.add_argument("--list-calls", type=int, default=100, help="calls per list/counts contender")
    a = ap.parse_args()
    wanted = lambda label: any(o in label for o in a.only.split("|"))

    rbin = os.path.join(ROOT, "target", "release", "orchestrator-bench")
    node_dir = os.path.join(ROOT, "interop", "node6")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="orch-bench-")
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close(); break
            except OSError:
                time.sleep(0.05)
        url = f"redis://127.0.0.1:{port}"
        env = dict(os.environ, BULLMQ_DIR=node_dir, REDIS_URL=url)

        node = lambda kind, param, jobs: (lambda q: ["node", os.path.join(ROOT, "interop/scripts/bench.js"), kind, q, str(jobs), str(param)])
        rust = lambda kind, mode, target, param, jobs: (lambda q: [rbin, kind, mode, target, q, str(jobs), str(param)])

        def redis_row(kind, param, jobs):
            return {
                "orchestrator": rust(kind, "orch", url, param, jobs),
                "bullmq-official": rust(kind, "direct", url, param, jobs),
                "node bullmq": node(kind, param, jobs),
            }

        def fill(queue):
            subprocess.run([rbin, "bulk", "direct", url, queue, str(a.jobs), "1000"], check=True, capture_output=True)

        # (label, kind, contenders, jobs, fills the queue first)
        rows = [
            ("schedule, concurrency 1", "schedule", redis_row("schedule", 1, a.jobs), a.jobs),
            ("schedule, concurrency 64", "schedule", redis_row("schedule", 64, a.jobs), a.jobs),
            ("bulk, batches of 1000", "bulk", redis_row("bulk", 1000, a.jobs), a.jobs),
            # The HTTP API against the library call it wraps (server and load in one process).
            ("schedule over HTTP, concurrency 64", "schedule",
             {"orchestrator serve (POST /v1/tasks)": rust("schedule", "http", url, 64, a.jobs),
              "orchestrator (library call)": rust("schedule", "orch", url, 64, a.jobs)}, a.jobs),
            ("worker, no-op, concurrency 50", "worker", redis_row("worker", 50, a.jobs), a.jobs),
        ]
        lat_jobs = max(a.jobs // 10, 100)
        latency_rows = [("latency @1000 jobs/s, worker concurrency 50", redis_row("latency", 1000, lat_jobs))]
        side_jobs = max(a.jobs // 10, 100)
        temporal_cli = os.path.join(ROOT, ".cache", "venv", "bin", "temporal")
        tport = free_port()
        temporal = subprocess.Popen([temporal_cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(tport), "--log-level", "error", "--search-attribute", "OrchestratorTaskName=Keyword"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        turl = f"http://127.0.0.1:{tport}"
        other_rows = [
            ("temporal starts, concurrency 16", "temporal", {"orchestrator": rust("temporal", "orch", turl, 16, side_jobs), "temporalio-client": rust("temporal", "direct", turl, 16, side_jobs)}, side_jobs),
            ("n8n dispatch to a local sink, concurrency 64", "n8n", {"orchestrator": rust("n8n", "orch", "-", 64, side_jobs), "reqwest": rust("n8n", "direct", "-", 64, side_jobs)}, side_jobs),
        ]
        for _ in range(300):  # wait for the dev server's frontend
            try:
                socket.create_connection(("127.0.0.1", tport), 0.1).close(); break
            except OSError:
                time.sleep(0.1)
        time.sleep(2)

        results, n = {}, 0
        for label, kind, cont, jobs in rows + other_rows:
            if not wanted(label):
                continue
            per = {name: {"rate": [], "usec_per_job": [], "rss": []} for name in cont}
            for _ in range(a.rounds):
                for name, make in cont.items():
                    n += 1
                    queue = f"bench{n}"
                    cli(port, "FLUSHALL")
                    if kind == "worker":
                        fill(queue)
                    cli(port, "CONFIG", "RESETSTAT")
                    out, rss = run(make(queue), env)
                    per[name]["rate"].append(out["rate"])
                    per[name]["usec_per_job"].append(server_usec(port) / jobs)
                    per[name]["rss"].append(rss)
            results[label] = (kind, per)
        # Status vs depth: the queue is filled once per depth (never flushed between
        # contenders: status reads write nothing) and the oldest waiting job is read, the
        # worst case for a scan of the wait list (it sits at the list's far end).
        status_results = {}
        for depth in [int(d) for d in a.depths.split(",") if d]:
            label = f"status of the oldest waiting job, {depth:,} waiting"
            if not wanted(label):
                continue
            n += 1
            queue = f"bench{n}"
            cli(port, "FLUSHALL")
            subprocess.run([rbin, "bulk", "direct", url, queue, str(depth), "1000"], check=True, capture_output=True)
            # Let Redis finish the incremental rehash of its grown keyspace, whose steps it
            # would otherwise charge to the first commands measured.
            time.sleep(3)
            # The scanning contenders get fewer calls at depth (one costs ~0.5 s at 1M).
            scans = max(10, min(500, 20_000_000 // depth))
            cont = {
                "orchestrator": (500, rust("status", "orch", url, 1, 500)(queue)),
                "bullmq-official": (scans, rust("status", "direct", url, 1, scans)(queue)),
                "node bullmq": (scans, node("status", 1, scans)(queue)),
            }
            per = {name: {"calls": calls, "usec": [], "ms": []} for name, (calls, _) in cont.items()}
            for _ in range(a.rounds):
                for name, (calls, cmd) in cont.items():
                    cli(port, "CONFIG", "RESETSTAT")
                    out, _rss = run(cmd, env)
                    # Top-level script time only (the commands a script runs are counted again
                    # on their own lines of INFO commandstats); the warm-up call included.
                    per[name]["usec"].append(server_usec(port, ("evalsha", "eval", "script|load")) / (calls + 1))
                    per[name]["ms"].append(out["seconds"] * 1000 / calls)
            status_results[label] = per
        # list/counts at depth: one queue filled once (reads write nothing); each contender
        # reads the first page of every state, or the per-state counts, one call at a time.
        monitor_results = {}
        page = 50
        bull_rows = [(f"list, first page of {page}, {a.list_depth:,} waiting jobs", "list", page),
                     (f"counts, {a.list_depth:,} waiting jobs", "counts", 0)]
        if any(wanted(label) for label, _, _ in bull_rows):
            n += 1
            queue = f"bench{n}"
            cli(port, "FLUSHALL")
            subprocess.run([rbin, "bulk", "direct", url, queue, str(a.list_depth), "1000"], check=True, capture_output=True)
            time.sleep(3)  # let Redis finish rehashing the grown keyspace
            for label, kind, param in bull_rows:
                if not wanted(label):
                    continue
                cont = {"orchestrator": rust(kind, "orch", url, param, a.list_calls)(queue),
                        "bullmq-official": rust(kind, "direct", url, param, a.list_calls)(queue),
                        "node bullmq": node(kind, param, a.list_calls)(queue)}
                per = {name: {"usec": [], "ms": []} for name in cont}
                for _ in range(a.rounds):
                    for name, cmd in cont.items():
                        cli(port, "CONFIG", "RESETSTAT")
                        out, _rss = run(cmd, env)
                        # Every command's server time (scripts, pipelines, discovery SCAN),
                        # the warm-up call included.
                        per[name]["usec"].append(server_usec(port) / (a.list_calls + 1))
                        per[name]["ms"].append(out["seconds"] * 1000 / a.list_calls)
                monitor_results[label] = per
        temporal_rows = [(f"list, first page of {page}, {a.workflows:,} open workflows", "tlist", page),
                         (f"counts, {a.workflows:,} open workflows", "tcounts", 0)]
        if any(wanted(label) for label, _, _ in temporal_rows):
            # Started with no worker: every one stays open (RUNNING).
            run([rbin, "temporal", "direct", turl, "benchlist", str(a.workflows), "16"], env)
            time.sleep(2)  # the visibility store catches up
            for label, kind, param in temporal_rows:
                if not wanted(label):
                    continue
                cont = {"orchestrator": rust(kind, "orch", turl, param, a.list_calls)("-"),
                        "temporalio-client": rust(kind, "direct", turl, param, a.list_calls)("-")}
                per = {name: {"usec": [], "ms": []} for name in cont}
                for _ in range(a.rounds):
                    for name, cmd in cont.items():
                        out, _rss = run(cmd, env)
                        per[name]["ms"].append(out["seconds"] * 1000 / a.list_calls)
                monitor_results[label] = per
        n8n_rows = [(f"list, first page of {page}, {a.executions:,} n8n executions", "nlist", page),
                    (f"counts, {a.executions:,} n8n executions", "ncounts", 0)]
        if any(wanted(label) for label, _, _ in n8n_rows):
            up = subprocess.run([os.path.join(ROOT, "scripts", "n8n-up.sh")], check=True, capture_output=True, text=True)
            nenv = dict(l.split("=", 1) for l in up.stdout.splitlines() if "=" in l)
            try:
                env_n8n = dict(env, N8N_API_KEY=nenv["N8N_API_KEY"])
                nurl = nenv["N8N_URL"]
                run([rbin, "nfill", "orch", nurl, "-", str(a.executions), "16"], env_n8n)
                time.sleep(2)  # the last echo executions finish
                for label, kind, param in n8n_rows:
                    if not wanted(label):
                        continue
                    cont = {"orchestrator": rust(kind, "orch", nurl, param, a.list_calls)("-"),
                            "n8n API (reqwest)": rust(kind, "direct", nurl, param, a.list_calls)("-")}
                    per = {name: {"usec": [], "ms": []} for name in cont}
                    for _ in range(a.rounds):
                        for name, cmd in cont.items():
                            out, _rss = run(cmd, env_n8n)
                            per[name]["ms"].append(out["seconds"] * 1000 / a.list_calls)
                    monitor_results[label] = per
            finally:
                subprocess.run([os.path.join(ROOT, "scripts", "n8n-down.sh"), nenv["N8N_PID"]], capture_output=True)
                shutil.rmtree(nenv.get("N8N_DATA_DIR", ""), ignore_errors=True)
        lat_results = {}
        for label, cont in latency_rows:
            if not wanted(label):
                continue
            per = {name: {"p50": [], "p99": [], "rss": []} for name in cont}
            for _ in range(a.rounds):
                for name, make in cont.items():
                    n += 1
                    cli(port, "FLUSHALL")
                    out, rss = run(make(f"bench{n}"), env)
                    per[name]["p50"].append(out["p50_ms"]); per[name]["p99"].append(out["p99_ms"]); per[name]["rss"].append(rss)
            lat_results[label] = per
        temporal.terminate(); temporal.wait()

        redis_version = cli(port, "INFO", "server").split("redis_version:")[1].split()[0]
        node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        print(f"machine: {os.cpu_count()} cores, {platform.machine()}, redis {redis_version}, node {node_version}, "
              f"node bullmq {json.load(open(os.path.join(node_dir, 'node_modules/bullmq/package.json')))['version']}, "
              f"jobs {a.jobs} (temporal/n8n/latency rows {side_jobs}), rounds {a.rounds}")
        if results:
            print()
            print("| row | contender | median jobs/s | vs reference | vs node bullmq | redis usec/job | redis ceiling jobs/s | share of ceiling | peak RSS MiB |")
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, (kind, per) in results.items():
            med = {k: statistics.median(v["rate"]) for k, v in per.items()}
            ref = list(per)[1]  # the direct client the orchestrator wraps
            for name, v in per.items():
                usec = statistics.median(v["usec_per_job"])
                redis_cols = f"{usec:.1f} | {1e6 / usec:,.0f} | {med[name] / (1e6 / usec):.0%}" if kind not in ("temporal", "n8n") else "- | - | -"
                vs_node = f"{med[name] / med['node bullmq']:.2f}x" if "node bullmq" in med else "-"
                print(f"| {label} | {name} | {med[name]:,.0f} | {med[name] / med[ref]:.2f}x ({ref}) | {vs_node} | {redis_cols} | {max(v['rss']):.0f} |")
        if lat_results:
            print()
            print("| row | contender | median p50 ms | median p99 ms | peak RSS MiB |")
            print("|---|---|---:|---:|---:|")
            for label, per in lat_results.items():
                for name, v in per.items():
                    print(f"| {label} | {name} | {statistics.median(v['p50']):.2f} | {statistics.median(v['p99']):.2f} | {max(v['rss']):.0f} |")
        if status_results:
            print()
            print("| row | contender | calls | redis script usec/call | vs orchestrator | wall ms/call |")
            print("|---|---|---:|---:|---:|---:|")
            for label, per in status_results.items():
                orch = statistics.median(per["orchestrator"]["usec"])
                for name, v in per.items():
                    usec = statistics.median(v["usec"])
                    print(f"| {label} | {name} | {v['calls']} | {usec:,.1f} | {usec / orch:,.1f}x | {statistics.median(v['ms']):.3f} |")
        if monitor_results:
            print()
            print("| row | contender | calls | wall ms/call | vs reference | redis usec/call |")
            print("|---|---|---:|---:|---:|---:|")
            for label, per in monitor_results.items():
                ref = list(per)[1]  # the direct client the orchestrator wraps
                ref_ms = statistics.median(per[ref]["ms"])
                for name, v in per.items():
                    ms = statistics.median(v["ms"])
                    usec = f"{statistics.median(v['usec']):,.1f}" if v["usec"] else "-"
                    print(f"| {label} | {name} | {a.list_calls} | {ms:.3f} | {ms / ref_ms:.2f}x ({ref}) | {usec} |")
    finally:
        redis.terminate(); redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
