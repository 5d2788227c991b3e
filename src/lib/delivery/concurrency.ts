/** Writes in flight as a node sets them: "auto" (the config node's adaptive limit, shared by its nodes) or a fixed number. */
export type ConcurrencySetting = "auto" | number;

/** How one attempt of a write ended, as a concurrency limit sees it. */
export type AttemptSignal =
  /** Answered: its round trip says how loaded the endpoint is. */
  | "answered"
  /** SlowDown, 503, 429 or a timeout: the endpoint asks for less. */
  | "throttled"
  /** Anything else (refused connection, reset, 500, a permanent error): says nothing about load. */
  | "other";

/**
 * Slots for writes in flight, shared by every writer that uses it. Writers take a slot per write
 * (`tryAcquire`), give it back when the write ends (`release`) and report every attempt
 * (`record`); subscribers hear when a slot frees or the limit moves.
 */
export interface ConcurrencyLimit {
  /** Writes allowed in flight now. */
  readonly limit: number;
  readonly inFlight: number;
  tryAcquire(): boolean;
  release(): void;
  record(signal: AttemptSignal, roundTripMs: number): void;
  /** Calls `listener` after every release and limit change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

/** Base class: slot counting and listeners; subclasses decide the limit. */
abstract class Slots implements ConcurrencyLimit {
  abstract readonly limit: number;
  private running = 0;
  private listeners: (() => void)[] = [];

  get inFlight(): number {
    return this.running;
  }

  tryAcquire(): boolean {
    if (this.running >= this.limit) return false;
    this.running++;
    return true;
  }

  release(): void {
    this.running--;
    this.notify();
  }

  abstract record(signal: AttemptSignal, roundTripMs: number): void;

  subscribe(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((other) => other !== listener);
    };
  }

  protected notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/** A limit set by hand: the node's `concurrency` as a number. */
export class FixedLimit extends Slots {
  constructor(readonly limit: number) {
    super();
  }

  record(): void {}
}

/**
 * Where the adaptive limit starts and its range (docs/performance.md documents them). It starts where the
 * AWS SDK's default socket pool ends (50), and slow start doubles it per round trip from there.
 * A fixed number of writes in flight has the same maximum.
 */
export const ADAPTIVE_LIMITS = { initial: 50, min: 1, max: 1024 } as const;
/** A round trip this much over the recent minimum (times, plus milliseconds) counts as inflated. */
const LATENCY_TOLERANCE = 2;
const LATENCY_SLACK_MS = 5;
/**
 * Above this much (times the minimum, plus the slack) the limit stops growing but holds: more
 * writes in flight would only wait longer (in this process's event loop or at the endpoint),
 * and a limit that grew until the decrease caught it would overshoot by a round trip's growth.
 */
const GROWTH_TOLERANCE = 1.25;
/** Multiplicative decrease on throttling and on inflated latency. */
const THROTTLE_FACTOR = 0.8;
const LATENCY_FACTOR = 0.9;
/**
 * Growth per round trip above the level of the last throttling: slow, as the endpoint has said
 * where its limit is, so that probing past it costs few throttled requests.
 */
const PROBE_PER_ROUND_TRIP = 0.25;
/** The minimum round trip is taken over the last one or two windows of this length, so it follows a slower endpoint. */
const MIN_RTT_WINDOW_MS = 10_000;
/** Weight of the newest round trip in the smoothed one (about the last 20 answers count). */
const SMOOTHING = 0.05;

/**
 * AIMD with a latency signal, after Vector's adaptive request concurrency and Netflix's
 * concurrency-limits: while the slots are in use and the smoothed round trip stays near its
 * recent minimum, the limit grows (somewhat above it, it holds), by one per answer up to the level of the last throttling
 * (slow start, so it finds its level within a few round trips) and by a quarter per round trip
 * beyond it; throttling and inflated round trips shrink it multiplicatively, at most once per
 * round trip (the answers of one overload arrive together). Refused connections and resets
 * change nothing: an outage is not overload, and the writer's backoff handles it.
 */
export class AdaptiveLimit extends Slots {
  private estimate: number;
  /** Slow start below this: the level after the first throttling of an episode (the maximum before any). */
  private threshold: number;
  private answeredSinceThrottled = true;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private smoothedRtt: number | undefined;
  private windowStart: number;
  private windowMin = Number.POSITIVE_INFINITY;
  private previousWindowMin = Number.POSITIVE_INFINITY;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly bounds: { min: number; max: number; initial: number } = ADAPTIVE_LIMITS,
  ) {
    super();
    this.estimate = bounds.initial;
    this.threshold = bounds.max;
    this.windowStart = now();
  }

  get limit(): number {
    return Math.floor(this.estimate);
  }

  /** The smallest round trip seen lately (ms), or undefined before the first answer. */
  private get minRoundTrip(): number | undefined {
    const min = Math.min(this.windowMin, this.previousWindowMin);
    return Number.isFinite(min) ? min : undefined;
  }

  record(signal: AttemptSignal, roundTripMs: number): void {
    if (signal === "other") return;
    if (signal === "throttled") {
      this.decrease(THROTTLE_FACTOR, true);
      return;
    }
    this.observeRoundTrip(roundTripMs);
    // The smoothed round trip, not one answer: a pause of the event loop (GC) delays many answers at once without any overload.
    const smoothed = this.smoothedRtt ?? roundTripMs;
    const baseline = this.minRoundTrip ?? roundTripMs;
    if (smoothed > baseline * LATENCY_TOLERANCE + LATENCY_SLACK_MS) {
      this.decrease(LATENCY_FACTOR, false);
      return;
    }
    this.answeredSinceThrottled = true;
    // Only a limit in use has proven anything: an idle node keeps its level.
    if (this.inFlight < this.limit / 2 || smoothed > baseline * GROWTH_TOLERANCE + LATENCY_SLACK_MS) return;
    const before = this.limit;
    this.estimate = Math.min(this.bounds.max, this.estimate + (this.estimate < this.threshold ? 1 : PROBE_PER_ROUND_TRIP / this.estimate));
    if (this.limit !== before) this.notify();
  }

  private observeRoundTrip(roundTripMs: number): void {
    const now = this.now();
    if (now - this.windowStart >= MIN_RTT_WINDOW_MS) {
      this.previousWindowMin = this.windowMin;
      this.windowMin = Number.POSITIVE_INFINITY;
      this.windowStart = now;
    }
    this.windowMin = Math.min(this.windowMin, roundTripMs);
    this.smoothedRtt = this.smoothedRtt === undefined ? roundTripMs : this.smoothedRtt + SMOOTHING * (roundTripMs - this.smoothedRtt);
  }

  /**
   * Throttling marks the level to return to quickly (the first throttle after answers: an
   * outage's run of throttles without answers keeps it); inflated latency only trims the limit,
   * as a stall of this process (a burst arriving, a GC) inflates every round trip at once.
   */
  private decrease(factor: number, throttled: boolean): void {
    const now = this.now();
    if (now - this.lastDecreaseAt < (this.smoothedRtt ?? 0)) return;
    this.lastDecreaseAt = now;
    const before = this.limit;
    this.estimate = Math.max(this.bounds.min, this.estimate * factor);
    if (throttled) {
      if (this.answeredSinceThrottled) this.threshold = this.estimate;
      this.answeredSinceThrottled = false;
    }
    if (this.limit !== before) this.notify();
  }
}

/**
 * The limits of one config node's users: those set to "auto" share one adaptive limit, each fixed
 * number is its user's own. The socket pool is sized to the most they have allowed together: a
 * keep-alive pool smaller than its open sockets closes each socket that frees, so following every
 * dip of an adaptive limit would close connections only to open them again a round trip later.
 * Sockets the writes no longer use close when idle (the sink's free-socket timeout).
 */
export class LimitRegistry {
  private readonly users = new Map<object, ConcurrencyLimit>();
  private emptiedWaiters: (() => void)[] = [];
  private sockets = 0;

  constructor(
    private readonly onSockets: (count: number) => void,
    readonly shared: AdaptiveLimit = new AdaptiveLimit(),
  ) {
    shared.subscribe(() => this.resize());
  }

  /** Resolves once no user is registered (at once when none is). */
  emptied(): Promise<void> {
    if (this.users.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptiedWaiters.push(resolve));
  }

  register(user: object, setting: ConcurrencySetting): ConcurrencyLimit {
    const limit = setting === "auto" ? this.shared : new FixedLimit(setting);
    this.users.set(user, limit);
    this.resize();
    return limit;
  }

  unregister(user: object): void {
    this.users.delete(user);
    this.resize();
    if (this.users.size > 0) return;
    for (const resolve of this.emptiedWaiters) resolve();
    this.emptiedWaiters = [];
  }

  private resize(): void {
    // Runs after every write (a slot freed): no allocation, the shared limit counted once.
    let sockets = 0;
    let sharedUsed = false;
    for (const limit of this.users.values()) {
      if (limit === this.shared) sharedUsed = true;
      else sockets += limit.limit;
    }
    if (sharedUsed) sockets += this.shared.limit;
    if (sockets <= this.sockets) return;
    this.sockets = sockets;
    this.onSockets(sockets);
  }
}
