import assert from "node:assert/strict";
import { ADAPTIVE_LIMITS, AdaptiveLimit, FixedLimit, LimitRegistry } from "../../nodes/lib/delivery/concurrency";

/** A clock the test moves by hand. */
class FakeClock {
  ms = 0;
  readonly now = () => this.ms;
}

/** Takes every slot the limit allows, as a busy writer does; returns how many it took. */
function fill(limit: AdaptiveLimit): number {
  let taken = 0;
  while (limit.tryAcquire()) taken++;
  return taken;
}

/** One round trip of a busy writer: every write answered after `rttMs` (or throttled), each freed slot taken again at once. */
function roundTrip(limit: AdaptiveLimit, clock: FakeClock, rttMs: number, signal: "answered" | "throttled" = "answered"): void {
  clock.ms += rttMs;
  const inFlight = limit.inFlight;
  for (let i = 0; i < inFlight; i++) {
    limit.record(signal, rttMs);
    limit.release();
    fill(limit);
  }
}

describe("adaptive concurrency limit (fake clock)", () => {
  it(`starts at ${ADAPTIVE_LIMITS.initial} and never lets more than the limit in flight`, () => {
    const limit = new AdaptiveLimit(new FakeClock().now);
    assert.equal(limit.limit, ADAPTIVE_LIMITS.initial);
    assert.equal(fill(limit), ADAPTIVE_LIMITS.initial);
    assert.equal(limit.tryAcquire(), false);
  });

  it(`grows quickly while round trips stay flat (a slow endpoint gets many writes in flight), up to the maximum of ${ADAPTIVE_LIMITS.max}`, () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    fill(limit);
    const levels: number[] = [];
    for (let trip = 0; trip < 8; trip++) {
      roundTrip(limit, clock, 100);
      levels.push(limit.limit);
    }
    const start = ADAPTIVE_LIMITS.initial;
    assert.deepEqual(levels.slice(0, 3), [start * 2, start * 4, start * 8], "doubles per round trip until the first sign of overload");
    assert.equal(limit.limit, ADAPTIVE_LIMITS.max);
    assert.equal(limit.inFlight, ADAPTIVE_LIMITS.max);
  });

  it("does not grow while the slots are not used", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    for (let i = 0; i < 50; i++) {
      clock.ms += 10;
      assert.ok(limit.tryAcquire());
      limit.record("answered", 10);
      limit.release();
    }
    assert.equal(limit.limit, ADAPTIVE_LIMITS.initial);
  });

  it("shrinks multiplicatively on throttling, once per round trip however many answers say so, and not below 1", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    fill(limit);
    roundTrip(limit, clock, 20);
    const before = limit.limit;
    roundTrip(limit, clock, 20, "throttled");
    assert.equal(limit.limit, Math.floor(before * 0.8), `${before} throttled answers in one round trip: one decrease`);
    for (let trip = 0; trip < 40; trip++) roundTrip(limit, clock, 20, "throttled");
    assert.equal(limit.limit, 1);
  });

  it("shrinks when round trips stay inflated over their recent minimum; one slow answer (a pause of the process) does not", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    fill(limit);
    roundTrip(limit, clock, 25);
    roundTrip(limit, clock, 25);
    const grown = limit.limit;
    clock.ms += 200;
    limit.record("answered", 200);
    assert.ok(limit.limit >= grown, `one slow answer: ${limit.limit} >= ${grown}`);
    for (let trip = 0; trip < 5; trip++) roundTrip(limit, clock, 80);
    assert.ok(limit.limit < grown, `inflated for several round trips: ${limit.limit} < ${grown}`);
  });

  it("holds while round trips are somewhat longer than their minimum (more in flight would only wait), and grows again once they are back", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    fill(limit);
    roundTrip(limit, clock, 20);
    // 1.6x the minimum: above where growth stops (1.25x + 5 ms = 30 ms), below where it shrinks (2x + 5 ms = 45 ms).
    for (let trip = 0; trip < 10; trip++) roundTrip(limit, clock, 32);
    const held = limit.limit;
    for (let trip = 0; trip < 5; trip++) roundTrip(limit, clock, 32);
    assert.equal(limit.limit, held);
    for (let trip = 0; trip < 5; trip++) roundTrip(limit, clock, 20);
    assert.ok(limit.limit > held, `${held} -> ${limit.limit} once round trips are back at their minimum`);
  });

  it("after throttling grows by a quarter per round trip only: the endpoint said where its limit is", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    fill(limit);
    roundTrip(limit, clock, 25);
    roundTrip(limit, clock, 25, "throttled");
    const throttledAt = limit.limit;
    for (let trip = 0; trip < 4; trip++) roundTrip(limit, clock, 25);
    assert.ok(limit.limit - throttledAt <= 1, `${throttledAt} -> ${limit.limit} in 4 round trips`);
  });

  it("returns quickly to its level after an outage of throttling answers (slow start up to the level before)", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    fill(limit);
    for (let trip = 0; trip < 3; trip++) roundTrip(limit, clock, 25);
    const level = limit.limit;
    for (let trip = 0; trip < 30; trip++) roundTrip(limit, clock, 25, "throttled");
    assert.equal(limit.limit, 1);
    // Doubling from 1 reaches the level in log2(level) round trips (9 for 400), not the hundreds of additive increase.
    const trips = Math.ceil(Math.log2(level));
    for (let trip = 0; trip < trips; trip++) roundTrip(limit, clock, 25);
    assert.ok(limit.limit >= Math.floor(level * 0.8), `back near ${level} within ${trips} round trips: ${limit.limit}`);
  });

  it("ignores failures that say nothing about load (refused connections, resets)", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    fill(limit);
    for (let i = 0; i < ADAPTIVE_LIMITS.initial; i++) {
      clock.ms += 5;
      limit.record("other", 5);
    }
    assert.equal(limit.limit, ADAPTIVE_LIMITS.initial);
  });

  it("tells subscribers when a slot frees and when the limit moves", () => {
    const clock = new FakeClock();
    const limit = new AdaptiveLimit(clock.now);
    let calls = 0;
    const unsubscribe = limit.subscribe(() => calls++);
    fill(limit);
    limit.release();
    assert.equal(calls, 1);
    clock.ms += 10;
    limit.record("throttled", 10);
    assert.equal(calls, 2);
    unsubscribe();
    limit.release();
    assert.equal(calls, 2);
  });
});

describe("concurrency limits of one config node", () => {
  it("nodes set to auto share one adaptive limit; a fixed number is its node's own; the socket pool holds them all and never shrinks", () => {
    const sockets: number[] = [];
    const registry = new LimitRegistry((count) => sockets.push(count), new AdaptiveLimit(new FakeClock().now));
    const a = registry.register({}, "auto");
    const b = registry.register({}, "auto");
    const fixedUser = {};
    const fixed = registry.register(fixedUser, 4);
    assert.equal(a, b);
    assert.ok(fixed instanceof FixedLimit && fixed.limit === 4);
    const shared = ADAPTIVE_LIMITS.initial;
    assert.deepEqual(sockets, [shared, shared + 4]);
    registry.unregister(fixedUser);
    assert.deepEqual(sockets, [shared, shared + 4]);
  });

  it("tells when its last user has left (the config node closes then, without polling)", async () => {
    const registry = new LimitRegistry(() => undefined, new AdaptiveLimit(new FakeClock().now));
    let emptied = false;
    await registry.emptied();
    const first = {};
    const second = {};
    registry.register(first, "auto");
    registry.register(second, 8);
    void registry.emptied().then(() => (emptied = true));
    registry.unregister(first);
    await Promise.resolve();
    assert.equal(emptied, false, "one user is left");
    registry.unregister(second);
    await Promise.resolve();
    assert.equal(emptied, true);
  });

  it("the socket pool follows the shared limit as it moves", () => {
    const clock = new FakeClock();
    const shared = new AdaptiveLimit(clock.now);
    const sockets: number[] = [];
    const registry = new LimitRegistry((count) => sockets.push(count), shared);
    registry.register({}, "auto");
    fill(shared);
    roundTrip(shared, clock, 50);
    assert.equal(sockets[sockets.length - 1], shared.limit);
    assert.equal(shared.limit, ADAPTIVE_LIMITS.initial * 2);
    // A dip (inflated round trips) keeps the pool: its sockets are reused when the limit grows back.
    roundTrip(shared, clock, 500);
    const pool = sockets[sockets.length - 1];
    assert.ok(shared.limit < pool, `limit ${shared.limit} dipped below the pool of ${pool}`);
    assert.equal(pool, Math.max(...sockets));
  });
});
