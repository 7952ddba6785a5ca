// Child process for tests/io/hub.test.ts: `node hub-child.js <url> <dst> [hashPrefix]` downloads one file with
// downloadUrlToFile and prints "ok", or prints the error and exits 1. Used for the concurrent-download and
// killed-mid-download cases, which need real separate processes.

import { downloadUrlToFile } from '../../src/io/hub.js';

const [url, dst, hashPrefix] = process.argv.slice(2);
downloadUrlToFile(url, dst, { hashPrefix: hashPrefix || undefined, progress: false, retries: 0, stallTimeoutMs: 10_000 }).then(
  () => console.log('ok'),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
