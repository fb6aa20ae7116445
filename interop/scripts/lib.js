// Shared helpers: load the BullMQ version under test and parse the Redis URL.
const path = require('path');
const bullmq = require(path.join(process.env.BULLMQ_DIR, 'node_modules', 'bullmq'));
const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
// Every output names the BullMQ version that was loaded, so a test can check it.
const version = require(path.join(process.env.BULLMQ_DIR, 'node_modules', 'bullmq', 'package.json')).version;
// `done` runs once the output is flushed: a pipe write is asynchronous, and `process.exit`
// right after it would cut a large document at 64 KiB.
const print = (v, done) => process.stdout.write(JSON.stringify({ bullmq: version, ...v }) + '\n', done);
module.exports = { bullmq, connection, print };
