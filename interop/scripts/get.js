// node get.js QUEUE ID... — prints {"jobs":[{id,state,returnvalue,finishedOn,attemptsMade,failedReason}], "counts": …}.
const { bullmq, connection, print } = require('./lib');
(async () => {
  const [queue, ...ids] = process.argv.slice(2);
  const q = new bullmq.Queue(queue, { connection });
  const jobs = [];
  for (const id of ids) {
    const job = await bullmq.Job.fromId(q, id);
    jobs.push(job ? { id, state: await job.getState(), name: job.name, data: job.data, returnvalue: job.returnvalue,
      finishedOn: job.finishedOn, processedOn: job.processedOn, attemptsMade: job.attemptsMade,
      failedReason: job.failedReason, opts: job.opts } : { id, state: 'missing' });
  }
  const counts = await q.getJobCounts();
  await q.close();
  print({ jobs, counts });
})().catch((e) => { console.error(e); process.exit(1); });
