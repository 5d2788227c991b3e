"use strict";
// One open-loop measurement, run by bench/run.js in a fresh process:
//   node bench/open-loop.js '{"contender":"node|raw|peer","port":N,"msgs":5000,"payloadBytes":256,"ratePerSec":0}'
// Msgs arrive whatever the contender is doing: all at once (ratePerSec 0, as after a gateway
// reconnects) or at a fixed rate, each contender at its defaults. Prints one JSON line: msgs/s
// from the first arrival to the last msg finished, p50/p99 time from arrival to finished, CPU
// time per msg, peak RSS, errors, and for the node the writes-in-flight limit at the end.

const { performance } = require("node:perf_hooks");
const { CONTENDERS, latencyQuantiles, runMeasurement } = require("./contenders");

/** Arrivals per tick at a fixed rate. */
const TICK_MS = 10;

async function main() {
  const options = { msgs: 5000, payloadBytes: 256, ratePerSec: 0, ...JSON.parse(process.argv[2]) };
  const payload = Buffer.alloc(options.payloadBytes, "x");
  const arrivals = new Float64Array(options.msgs);
  const latencies = [];
  let finishedCount = 0;
  let errors = 0;
  let firstError;
  let limit;
  let allFinished;
  const everything = new Promise((resolve) => (allFinished = resolve));
  const finished = (index, error, msg) => {
    if (!(index >= 0 && index < options.msgs) || arrivals[index] < 0) return;
    latencies.push(performance.now() - arrivals[index]);
    arrivals[index] = -1;
    if (error) {
      errors++;
      firstError ??= String(error.message || error);
    }
    if (msg?.s3?.concurrency) limit = msg.s3.concurrency;
    if (++finishedCount === options.msgs) allFinished();
  };
  const contender = await CONTENDERS[options.contender](options, finished);
  const cpuAtStart = process.cpuUsage();
  const begin = performance.now();
  let next = 0;
  const arrive = (count) => {
    for (const end = Math.min(options.msgs, next + count); next < end; next++) {
      arrivals[next] = performance.now();
      contender.start(next, payload);
    }
  };
  if (options.ratePerSec > 0) {
    // Catches up by the clock, so a busy event loop delays arrivals but never lowers the rate.
    const timer = setInterval(() => {
      arrive(Math.round(((performance.now() - begin) / 1000) * options.ratePerSec) - next);
      if (next >= options.msgs) clearInterval(timer);
    }, TICK_MS);
  } else arrive(options.msgs);
  const limitTimer = setTimeout(() => allFinished(), 120_000);
  await everything;
  clearTimeout(limitTimer);
  const elapsedMs = performance.now() - begin;
  const cpu = process.cpuUsage(cpuAtStart);
  const result = {
    msgs: options.msgs,
    finished: finishedCount,
    msgsPerSec: finishedCount / (elapsedMs / 1000),
    elapsedMs,
    ...latencyQuantiles(latencies),
    cpuMicrosPerMsg: (cpu.user + cpu.system) / Math.max(1, finishedCount),
    peakRss: process.resourceUsage().maxRSS * 1024,
    errors,
    firstError,
    limit,
  };
  return { contender, result };
}

runMeasurement(main);
