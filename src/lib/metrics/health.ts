import type { EgressMetrics } from "./egress-metrics";

/**
 * The node's health as far as a sink with s3:PutObject alone can know it (no HeadBucket or
 * ListBucket probe): from the writes themselves.
 * - `failing`: S3 refused a write for good (AccessDenied, NoSuchBucket, …) and none succeeded since;
 * - `stalled`: msgs have waited `stallMs` or longer and no write succeeded in that time;
 * - `ok`: neither.
 */
export type Health = { state: "ok" } | { state: "failing"; code: string } | { state: "stalled"; sinceMs: number };

const OK: Health = Object.freeze({ state: "ok" });

export function healthOf(metrics: EgressMetrics, stallMs: number, now = Date.now()): Health {
  if (metrics.permanentFailure !== undefined) return { state: "failing", code: metrics.permanentFailure };
  if (metrics.waitingSince === 0) return OK;
  const quietSince = Math.max(metrics.waitingSince, metrics.lastWriteAt);
  const quietMs = now - quietSince;
  return quietMs >= stallMs ? { state: "stalled", sinceMs: quietMs } : OK;
}

/** How long a stall has lasted, as the status shows it: whole minutes, or seconds below one. */
export function stallDuration(milliseconds: number): string {
  return milliseconds < 60_000 ? `${Math.floor(milliseconds / 1000)} s` : `${Math.floor(milliseconds / 60_000)} min`;
}

/** Whether two healths show the same status, so a node's status is re-rendered only when its text would change. */
export function sameHealth(a: Health, b: Health): boolean {
  if (a.state === "failing" && b.state === "failing") return a.code === b.code;
  if (a.state === "stalled" && b.state === "stalled") return stallDuration(a.sinceMs) === stallDuration(b.sinceMs);
  return a.state === b.state;
}
