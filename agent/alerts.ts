/**
 * Alerts (SPEC §8), the façade: what the rest of steward imports. The parts
 * live in agent/alerts/: plan.ts (events → alerts, pure), deliver.ts (one
 * receiver's queue, retries, signing) and alerter.ts (the wiring).
 * docs/alerts.md describes the contract for receivers.
 */
export { Alerter, type AlerterOptions } from './alerts/alerter.js';
export type { AlertOutcome } from './alerts/deliver.js';
export type { AlertPayload, OpenAlert } from './alerts/plan.js';
