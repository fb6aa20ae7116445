// Shared helpers: load the BullMQ version under test and parse the Redis URL.
const path = require('path');
const bullmq = require(path.join(process.env.BULLMQ_DIR, 'node_modules', 'bullmq'));
const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const print = (v) => process.stdout.write(JSON.stringify(v) + '\n');
module.exports = { bullmq, connection, print };
