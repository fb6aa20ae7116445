// node worker.js QUEUE MODE [IDLE_MS] [CONCURRENCY]
// Processes jobs until the queue has been idle for IDLE_MS (default 1500), then prints
// {"processed":[{id,name,data,attemptsMade,priority,delay,at}]}.
// MODE: echo (returns {node:true,data}), fail-twice (throws on the first two attempts),
// slow (sleeps 30 s; for kill tests), paced (echo after 50 ms, so a second worker can join).
const { bullmq, connection, print } = require('./lib');
const [queue, mode = 'echo', idleArg = '1500', concArg = '1'] = process.argv.slice(2);
const idleMs = Number(idleArg);
const processed = [];
let last = Date.now();
const worker = new bullmq.Worker(queue, async (job) => {
  last = Date.now();
  processed.push({ id: job.id, name: job.name, data: job.data, attemptsMade: job.attemptsMade,
    priority: job.opts.priority || 0, delay: job.opts.delay || 0, at: Date.now(), timestamp: job.timestamp });
  if (mode === 'fail-twice' && job.attemptsMade < 2) throw new Error(`node attempt ${job.attemptsMade + 1} failed`);
  if (mode === 'slow') await new Promise((r) => setTimeout(r, 30000));
  if (mode === 'paced') await new Promise((r) => setTimeout(r, 50));
  last = Date.now();
  return { node: true, data: job.data };
}, { connection, concurrency: Number(concArg), drainDelay: 1 });
const timer = setInterval(async () => {
  if (Date.now() - last > idleMs) {
    clearInterval(timer);
    await worker.close();
    print({ processed }, () => process.exit(0));
  }
}, 100);
