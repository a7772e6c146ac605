// Node's side of the workload comparison (see benches/README.md).
// Usage: node node_bench.js W1 [n]. Prints one JSON line.
'use strict';
const net = require('net');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

function report(workload, n, secs, extra = {}) {
  const rss_kb = Math.round(process.resourceUsage().maxRSS);
  console.log(JSON.stringify({ peer: 'node', workload, n, secs, rate: Math.round(n / secs), rss_kb, ...extra }));
}
const now = () => Number(process.hrtime.bigint()) / 1e9;

if (!isMainThread) {
  // W6 poster: sends n messages to the main thread.
  for (let i = 0; i < workerData.n; i++) parentPort.postMessage(1);
  return;
}

const w = process.argv[2] || 'W1';
const n = Number(process.argv[3] || (w.startsWith('W5') ? 100000 : 1000000));

if (w === 'W1') {
  let left = n;
  const t = now();
  const step = () => { if (--left > 0) setImmediate(step); else report(w, n, now() - t); };
  setImmediate(step);
} else if (w === 'W2') {
  let count = 0;
  const t = now();
  for (let i = 0; i < n; i++) setImmediate(() => { if (++count === n) report(w, n, now() - t); });
} else if (w === 'W3') {
  let count = 0, lastLate = 0;
  const t = now();
  const base = performance.now();
  for (let i = 0; i < n; i++) {
    const delay = Math.floor(i / 1000) + 1;
    setTimeout(() => {
      count++;
      lastLate = performance.now() - (base + delay);
      if (count === n) {
        const total = now() - t;
        report(w, n, total, { setup_secs: setup, run_secs: total - setup, last_late_ms: lastLate });
      }
    }, delay);
  }
  const setup = now() - t;
} else if (w === 'W4') {
  const t = now();
  const ids = new Array(n);
  for (let i = 0; i < n; i++) ids[i] = setTimeout(() => { throw new Error('cleared'); }, 10000);
  for (let i = 0; i < n; i++) clearTimeout(ids[i]);
  process.on('exit', () => report(w, n, now() - t));
} else if (w === 'W5' || w === 'W5c') {
  const conns = w === 'W5' ? 1 : 100;
  const perConn = Math.floor(n / conns);
  let open = conns, t = 0;
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => {
    const port = server.address().port;
    for (let c = 0; c < conns; c++) {
      let left = perConn, got = 0;
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.setNoDelay(true);
        if (!t) t = now();
        sock.write('PING\n');
      });
      sock.on('data', (d) => {
        got += d.length;
        while (got >= 5) {
          got -= 5;
          if (--left === 0) {
            sock.destroy();
            if (--open === 0) { server.close(); report(w, perConn * conns, now() - t, { conns }); }
            return;
          }
          sock.write('PING\n');
        }
      });
    }
  });
} else if (w === 'W6') {
  let count = 0;
  const t = now();
  const worker = new Worker(__filename, { workerData: { n } });
  worker.on('message', () => { if (++count === n) { report(w, n, now() - t); worker.terminate(); } });
} else {
  console.error(`unknown workload ${w}`);
  process.exit(2);
}
