// Conversions between google.protobuf Timestamp/Duration and JavaScript.
import type { Duration, DurationInput } from './generated/google/protobuf/Duration';
import type { Timestamp } from './generated/google/protobuf/Timestamp';

// A Timestamp as a Date; undefined for an unset one.
export function toDate(ts: Timestamp | null | undefined): Date | undefined {
  if (ts === null || ts === undefined) return undefined;
  return new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1e6));
}

// A Duration as milliseconds; undefined for an unset one.
export function durationToMs(d: Duration | null | undefined): number | undefined {
  if (d === null || d === undefined) return undefined;
  return d.seconds * 1000 + Math.floor(d.nanos / 1e6);
}

// Milliseconds as a Duration, e.g. `ttl: durationFromMs(15 * 60_000)`.
export function durationFromMs(ms: number): DurationInput {
  const seconds = Math.trunc(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}
