// node add.js QUEUE JOBS_JSON  — JOBS_JSON is [{name,data,opts}]; prints {"ids":[...]}.
const { bullmq, connection, print } = require('./lib');
(async () => {
  const [queue, jobs] = process.argv.slice(2);
  const q = new bullmq.Queue(queue, { connection });
  const ids = [];
  for (const j of JSON.parse(jobs)) ids.push((await q.add(j.name, j.data, j.opts || {})).id);
  const counts = await q.getJobCounts();
  await q.close();
  print({ ids, counts });
})().catch((e) => { console.error(e); process.exit(1); });
