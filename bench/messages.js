"use strict";
// One messages measurement, run by bench/run.js in a fresh process so memory figures do not mix:
//   node bench/messages.js '{"contender":"node|raw|peer","port":N,"payloadBytes":256,"concurrency":16,"warmupMs":1000,"measureMs":4000}'
// ("metrics":false runs the node with its metrics turned off, to measure what they cost.)
// Keeps `concurrency` writes in flight, counts those finished inside the measuring window and
// prints one JSON line: msgs/s, p50/p99 write latency (ms), CPU time of this process per msg (µs,
// which holds when other processes share the cores), peak RSS (bytes), errors.

const { performance } = require("node:perf_hooks");
const { CONTENDERS, latencyQuantiles, runMeasurement } = require("./contenders");

async function main() {
  const options = { concurrency: 32, warmupMs: 1000, measureMs: 4000, payloadBytes: 256, ...JSON.parse(process.argv[2]) };
  const payload = Buffer.alloc(options.payloadBytes, "x");
  const starts = [];
  const latencies = [];
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let countedInWindow = 0;
  let stopping = false;
  let drained;
  const allDrained = new Promise((resolve) => (drained = resolve));

  const finished = (index, error) => {
    if (starts[index] === undefined) return;
    const now = performance.now();
    done++;
    if (error) {
      errors++;
      firstError ??= String(error.message || error);
    } else if (starts[index] >= windowStart && now <= windowEnd) {
      countedInWindow++;
      latencies.push(now - starts[index]);
    }
    starts[index] = undefined;
    if (!stopping) launch();
    else if (done === next) drained();
  };
  const contender = await CONTENDERS[options.contender](options, finished);
  const launch = () => {
    const index = next++;
    starts[index] = performance.now();
    contender.start(index, payload);
  };

  const begin = performance.now();
  windowStart = begin + options.warmupMs;
  windowEnd = windowStart + options.measureMs;
  for (let i = 0; i < options.concurrency; i++) launch();
  await new Promise((resolve) => setTimeout(resolve, windowStart - performance.now()));
  const cpuAtStart = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, windowEnd - performance.now()));
  const cpu = process.cpuUsage(cpuAtStart);
  stopping = true;
  if (done < next) await Promise.race([allDrained, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const result = {
    msgsPerSec: countedInWindow / (options.measureMs / 1000),
    msgs: countedInWindow,
    ...latencyQuantiles(latencies),
    cpuMicrosPerMsg: (cpu.user + cpu.system) / countedInWindow,
    peakRss,
    errors,
    firstError,
  };
  return { contender, result };
}

runMeasurement(main);
