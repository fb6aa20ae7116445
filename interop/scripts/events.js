// node events.js QUEUE N — prints "ready" on stderr once listening, then collects
// completed/failed/removed/progress/active events until N completed+failed+removed arrived;
// prints {"events":[…]}.
const { bullmq, connection, print } = require('./lib');
(async () => {
  const [queue, n] = process.argv.slice(2);
  const qe = new bullmq.QueueEvents(queue, { connection, lastEventId: '0' });
  await qe.waitUntilReady();
  const events = [];
  let finished = 0;
  const done = async () => { if (++finished >= Number(n)) { await qe.close(); print({ events }, () => process.exit(0)); } };
  qe.on('active', (e) => events.push({ event: 'active', ...e }));
  qe.on('progress', (e) => events.push({ event: 'progress', ...e }));
  qe.on('completed', (e) => { events.push({ event: 'completed', ...e }); done(); });
  qe.on('failed', (e) => { events.push({ event: 'failed', ...e }); done(); });
  qe.on('removed', (e) => { events.push({ event: 'removed', ...e }); done(); });
  setTimeout(() => { print({ events, timeout: true }, () => process.exit(0)); }, 20000);
})().catch((e) => { console.error(e); process.exit(1); });
