/**
 * The alert event names (SPEC §8), defined once: the alerter plans them, the
 * config validates a receiver's `events` against them. Each firing event has
 * its resolved counterpart (`unfrozen` resolves either freeze), except
 * `mass_release`, a notice that nothing resolves.
 */

/** Events that open an alert. */
export const FIRING_EVENTS = Object.freeze([
  'mass_drift_frozen',
  'frozen',
  'resource_stuck',
  'revision_rejected',
  'source_unreachable',
  'state_unwritable',
  'observe_failing',
  'mass_release',
  'health_failing',
] as const);

/** Events that resolve an open alert. */
export const RESOLVED_EVENTS = Object.freeze([
  'unfrozen',
  'resource_recovered',
  'revision_recovered',
  'source_recovered',
  'state_recovered',
  'observe_recovered',
  'health_recovered',
] as const);

export type FiringEvent = (typeof FIRING_EVENTS)[number];
export type ResolvedEvent = (typeof RESOLVED_EVENTS)[number];
export type AlertEventName = FiringEvent | ResolvedEvent;

/** Every alert event name, as a receiver's `events` list may name them. */
export const ALERT_EVENT_NAMES: readonly AlertEventName[] = Object.freeze([
  ...FIRING_EVENTS,
  ...RESOLVED_EVENTS,
]);
