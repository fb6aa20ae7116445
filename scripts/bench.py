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


def server_usec(port):
    total = 0.0
    for line in cli(port, "INFO", "commandstats").splitlines():
        m = re.search(r"usec=(\d+)", line)
        if m:
            total += int(m.group(1))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="run only rows whose label contains this text")
    a = ap.parse_args()

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

        def contenders(kind, param):
            return {
                "orchestrator": lambda q: [rbin, kind, "orch", url, q, str(a.jobs), str(param)],
                "bullmq-official": lambda q: [rbin, kind, "direct", url, q, str(a.jobs), str(param)],
                "node bullmq": lambda q: ["node", os.path.join(ROOT, "interop/scripts/bench.js"), kind, q, str(a.jobs), str(param)],
            }

        def fill(queue):
            subprocess.run([rbin, "bulk", "direct", url, queue, str(a.jobs), "1000"], check=True, capture_output=True)

        rows = [("schedule, concurrency 1", "schedule", 1), ("schedule, concurrency 64", "schedule", 64),
                ("bulk, batches of 1000", "bulk", 1000), ("worker, no-op, concurrency 50", "worker", 50)]
        results = {}
        n = 0
        for label, kind, param in rows:
            if a.only not in label:
                continue
            per = {name: {"rate": [], "usec_per_job": [], "rss": []} for name in contenders(kind, param)}
            for _ in range(a.rounds):
                for name, make in contenders(kind, param).items():
                    n += 1
                    queue = f"bench{n}"
                    cli(port, "FLUSHALL")
                    if kind == "worker":
                        fill(queue)
                    cli(port, "CONFIG", "RESETSTAT")
                    out, rss = run(make(queue), env)
                    per[name]["rate"].append(out["rate"])
                    per[name]["usec_per_job"].append(server_usec(port) / a.jobs)
                    per[name]["rss"].append(rss)
            results[label] = per

        redis_version = cli(port, "INFO", "server").split("redis_version:")[1].split()[0]
        node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        print(f"machine: {os.cpu_count()} cores, {platform.machine()}, redis {redis_version}, node {node_version}, "
              f"node bullmq {json.load(open(os.path.join(node_dir, 'node_modules/bullmq/package.json')))['version']}, "
              f"jobs {a.jobs}, rounds {a.rounds}")
        print()
        print("| row | contender | median jobs/s | vs bullmq-official | vs node bullmq | redis usec/job | redis ceiling jobs/s | share of ceiling | peak RSS MiB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, per in results.items():
            med = {k: statistics.median(v["rate"]) for k, v in per.items()}
            for name, v in per.items():
                usec = statistics.median(v["usec_per_job"])
                ceiling = 1e6 / usec if usec else float("inf")
                print(f"| {label} | {name} | {med[name]:,.0f} | {med[name] / med['bullmq-official']:.2f}x | "
                      f"{med[name] / med['node bullmq']:.2f}x | {usec:.1f} | {ceiling:,.0f} | {med[name] / ceiling:.0%} | {max(v['rss']):.0f} |")
    finally:
        redis.terminate(); redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
