// node bench.js schedule|bulk|worker|latency|status|list|counts QUEUE JOBS PARAM — the Node
// BullMQ contender. Prints {"jobs", "seconds", "rate"}; `worker` expects a filled queue;
// `status` reads job PARAM's state JOBS times, `list` the first PARAM jobs of every state
// (`getJobs`), `counts` the per-state counts (`getJobCounts`): one call at a time, after
// one warm-up call.
const { bullmq, connection, print } = require('./lib');
const [kind, queue, jobsArg, paramArg] = process.argv.slice(2);
const jobs = Number(jobsArg), param = Number(paramArg);
const payload = (i) => ({ userId: i, email: 'user@example.com', template: 'welcome' });
(async () => {
  let seconds;
  if (kind === 'schedule' || kind === 'bulk') {
    const q = new bullmq.Queue(queue, { connection });
    await q.add(queue, payload(0));
    const t = process.hrtime.bigint();
    if (kind === 'schedule') {
      let next = 0;
      const lane = async () => { while (next < jobs) { const i = next++; await q.add(queue, payload(i)); } };
      await Promise.all(Array.from({ length: param }, lane));
    } else {
      for (let s = 0; s < jobs; s += param) {
        const batch = [];
        for (let i = s; i < Math.min(s + param, jobs); i++) batch.push({ name: queue, data: payload(i) });
        await q.addBulk(batch);
      }
    }
    seconds = Number(process.hrtime.bigint() - t) / 1e9;
    await q.close();
  } else if (kind === 'status') {
    const q = new bullmq.Queue(queue, { connection });
    const id = String(param);
    await q.getJobState(id);
    const t = process.hrtime.bigint();
    for (let i = 0; i < jobs; i++) await q.getJobState(id);
    seconds = Number(process.hrtime.bigint() - t) / 1e9;
    await q.close();
  } else if (kind === 'list' || kind === 'counts') {
    const q = new bullmq.Queue(queue, { connection });
    const states = ['active', 'waiting', 'paused', 'prioritized', 'delayed', 'waiting-children', 'completed', 'failed'];
    const call = async () => {
      if (kind === 'counts') return q.getJobCounts();
      const jobs = await q.getJobs(states, 0, param - 1);
      if (jobs.length !== param) throw new Error(`short page: ${jobs.length}`);
    };
    await call();
    const t = process.hrtime.bigint();
    for (let i = 0; i < jobs; i++) await call();
    seconds = Number(process.hrtime.bigint() - t) / 1e9;
    await q.close();
  } else if (kind === 'latency') {
    const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
    const lat = [];
    const q = new bullmq.Queue(queue, { connection });
    let w;
    const finished = new Promise((resolve) => {
      w = new bullmq.Worker(queue, async (job) => { lat.push((nowUs() - job.data.sent) / 1000); if (lat.length === jobs) resolve(); return null; }, { connection, concurrency: 50 });
    });
    await w.waitUntilReady();
    const interval = 1000 / param;
    const start = performance.now();
    for (let i = 0; i < jobs; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      q.add(queue, { sent: nowUs() });
    }
    await finished;
    await w.close(); await q.close();
    lat.sort((a, b) => a - b);
    const pct = (p) => lat[Math.min(lat.length - 1, Math.round((lat.length - 1) * p))];
    print({ jobs, p50_ms: pct(0.5), p99_ms: pct(0.99) });
    process.exit(0);
  } else {
    let done = 0;
    const t = process.hrtime.bigint();
    await new Promise((resolve) => {
      const w = new bullmq.Worker(queue, async () => { if (++done === jobs) resolve(w); return null; }, { connection, concurrency: param });
    }).then(async (w) => { seconds = Number(process.hrtime.bigint() - t) / 1e9; await w.close(); });
  }
  print({ jobs, seconds, rate: jobs / seconds });
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
