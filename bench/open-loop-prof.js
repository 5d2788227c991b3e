"use strict";
// One open-loop measurement, run by bench/run.js in a fresh process:
//   node bench/open-loop.js '{"contender":"node|raw|peer","port":N,"msgs":5000,"payloadBytes":256,"ratePerSec":0,"warmupMsgs":0}'
// Msgs arrive whatever the contender is doing: all at once (ratePerSec 0, as after a gateway
// reconnects) or at a fixed rate, each contender at its defaults. With warmupMsgs, that many msgs
// first arrive at WARMUP_RATE and finish (a flow that has been running before the burst), and only
// then is the measured phase timed. Prints one JSON line: msgs/s from the first arrival to the last
// msg finished, p50/p99 time from arrival to finished, CPU time per msg, peak RSS and the RSS once
// the contender had started, errors, and for the node the writes-in-flight limit at the end.

const { performance } = require("node:perf_hooks");
const { CONTENDERS, latencyQuantiles, runMeasurement } = require("./contenders");

/** Arrivals per tick at a fixed rate. */
const TICK_MS = 10;
/** The rate of the warm-up msgs: a steady flow, as before a gateway's reconnect. */
const WARMUP_RATE = 1000;
/** A phase that has not finished by then is reported with what finished. */
const PHASE_LIMIT_MS = 120_000;

async function main() {
  const options = { msgs: 5000, payloadBytes: 256, ratePerSec: 0, warmupMsgs: 0, ...JSON.parse(process.argv[2]) };
  const payload = Buffer.alloc(options.payloadBytes, "x");
  let phase;
  const contender = await CONTENDERS[options.contender](options, (index, error, msg) => phase?.finished(index, error, msg));
  const startedRss = process.memoryUsage().rss;
  if (options.warmupMsgs > 0) {
    phase = openLoopPhase(contender, payload, options.msgs, options.warmupMsgs, WARMUP_RATE);
    await phase.run();
  }
  phase = openLoopPhase(contender, payload, 0, options.msgs, options.ratePerSec);
  const inspector = require("node:inspector"); const session = new inspector.Session(); session.connect();
  const post = (m, p) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  await post("Profiler.enable"); await post("Profiler.setSamplingInterval", { interval: 200 }); await post("Profiler.start");
  const cpuAtStart = process.cpuUsage();
  const { finishedCount, elapsedMs, latencies, errors, firstError, limit } = await phase.run();
  const cpu = process.cpuUsage(cpuAtStart);
  const { profile } = await post("Profiler.stop"); require("fs").writeFileSync(process.env.PROF_OUT, JSON.stringify(profile));
  const result = {
    msgs: options.msgs,
    finished: finishedCount,
    msgsPerSec: finishedCount / (elapsedMs / 1000),
    elapsedMs,
    ...latencyQuantiles(latencies),
    cpuMicrosPerMsg: (cpu.user + cpu.system) / Math.max(1, finishedCount),
    peakRss: process.resourceUsage().maxRSS * 1024,
    startedRss,
    errors,
    firstError,
    limit,
  };
  return { contender, result };
}

/** `count` msgs numbered from `firstIndex`, arriving at `ratePerSec` (0: all at once); `run()` resolves when all finished. */
function openLoopPhase(contender, payload, firstIndex, count, ratePerSec) {
  const arrivals = new Float64Array(count);
  const figures = { finishedCount: 0, elapsedMs: 0, latencies: [], errors: 0, firstError: undefined, limit: undefined };
  let allFinished;
  const everything = new Promise((resolve) => (allFinished = resolve));
  const finished = (index, error, msg) => {
    const slot = index - firstIndex;
    if (!(slot >= 0 && slot < count) || arrivals[slot] < 0) return;
    figures.latencies.push(performance.now() - arrivals[slot]);
    arrivals[slot] = -1;
    if (error) {
      figures.errors++;
      figures.firstError ??= String(error.message || error);
    }
    if (msg?.s3?.concurrency) figures.limit = msg.s3.concurrency;
    if (++figures.finishedCount === count) allFinished();
  };
  const run = async () => {
    const begin = performance.now();
    let next = 0;
    const arrive = (howMany) => {
      for (const end = Math.min(count, next + howMany); next < end; next++) {
        arrivals[next] = performance.now();
        contender.start(firstIndex + next, payload);
      }
    };
    if (ratePerSec > 0) {
      // Catches up by the clock, so a busy event loop delays arrivals but never lowers the rate.
      const timer = setInterval(() => {
        arrive(Math.round(((performance.now() - begin) / 1000) * ratePerSec) - next);
        if (next >= count) clearInterval(timer);
      }, TICK_MS);
    } else arrive(count);
    const limitTimer = setTimeout(() => allFinished(), PHASE_LIMIT_MS);
    await everything;
    clearTimeout(limitTimer);
    figures.elapsedMs = performance.now() - begin;
    return figures;
  };
  return { finished, run };
}

runMeasurement(main);
