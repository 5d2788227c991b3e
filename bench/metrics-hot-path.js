"use strict";
// What the metrics add per msg, measured directly rather than as a difference of two noisy runs:
//   node bench/metrics-hot-path.js
// times the calls a written msg makes into its node's metrics (object written, request duration)
// and the monitor's once-a-second tick for one node, and prints one JSON line (ns per msg, µs per tick).

const { performance } = require("node:perf_hooks");
const { EgressMetrics } = require("../nodes/lib/metrics/egress-metrics");
const { EgressMonitor } = require("../nodes/lib/metrics/monitor");

const MSGS = 2_000_000;
const TICKS = 2_000;

function hotPathNsPerMsg() {
  const metrics = new EgressMetrics();
  const run = () => {
    const started = performance.now();
    for (let i = 0; i < MSGS; i++) {
      metrics.written(256);
      metrics.requestSucceeded(i % 50);
    }
    return ((performance.now() - started) * 1e6) / MSGS;
  };
  run(); // warm-up: optimised code, as in a running node
  return run();
}

function tickMicros() {
  const metrics = new EgressMetrics();
  const gauges = { writesInFlight: 3, concurrencyLimit: 16, queuedMsgs: 10, queuedBytes: 2560, spoolRecords: 0, spoolBytes: 0, spoolOldestAt: undefined, openBatches: 0, bufferedBytes: 0, waitingMsgs: 13 };
  const monitor = new EgressMonitor(() => undefined, 300_000);
  monitor.add({ labels: { id: "n1", name: "bench", flow: "bench", bucket: "bench" }, metrics, gauges: () => gauges, healthChanged: () => undefined });
  const started = performance.now();
  for (let i = 0; i < TICKS; i++) {
    // Something changes every second, so every tick builds and sends an update: the most it costs.
    metrics.written(256);
    monitor.tick();
  }
  const micros = ((performance.now() - started) * 1000) / TICKS;
  monitor.remove("n1");
  return micros;
}

process.stdout.write(JSON.stringify({ hotPathNsPerMsg: hotPathNsPerMsg(), tickMicrosPerNode: tickMicros() }) + "\n");
