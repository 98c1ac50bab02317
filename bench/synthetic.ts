/**
 * Synthetic desired and observed state for N File resources, deterministic
 * (seeded), shaped like what the agent holds in memory during a cycle.
 *
 *  - content: 100–500 bytes of config-like lines, ending in one newline;
 *  - mode: set by Git on 40 % of the files (`0644`, `0600`, `0755`);
 *  - observed: what the file provider reads back (`ensure`, `content`,
 *    `mode` always present; the content a string of its own, as read from
 *    disk); 1 % of the files have drifted content;
 *  - state: a record for every resource with `lastApplied` = desired (the
 *    fleet was converged before). Of the drifted ones, one in five was
 *    applied in the previous cycle without sticking (`verifyPending`), so it
 *    goes into backoff; the rest were first seen at staggered times, so the
 *    per-cycle cap has real sorting to do;
 *  - manifests: the same resources as YAML, one multi-document file per 100.
 */
import type { ManifestFile } from '../agent/manifest.js';
import type { Revision } from '../agent/source/source.js';
import type { PersistedState } from '../agent/state/types.js';
import { seededRandom } from '../policies/backoff.js';
import type { GuardrailConfig, ResourceRecord } from '../policies/types.js';
import { fileKind } from '../providers/file/kind.js';
import type { DesiredResource, ObserveResult } from '../providers/types.js';

/** A fixed "now" so that the figures never depend on the wall clock. */
export const NOW = Date.UTC(2025, 0, 1);
export const SHA = 'b'.repeat(40);
export const DRIFT_EVERY = 100;
export const FILES_PER_MANIFEST = 100;

export interface Fleet {
  resources: DesiredResource[];
  observed: Map<string, ObserveResult>;
  state: PersistedState;
  revision: Revision;
  drifted: number;
  /** Drifted resources whose previous apply did not stick: they go into backoff this cycle. */
  notSticking: number;
}

const WORDS = [
  'listen',
  'upstream',
  'timeout',
  'workers',
  'cache',
  'backend',
  'log_level',
  'retries',
  'keepalive',
  'max_body',
  'region',
  'replicas',
];
const MODES = ['0644', '0600', '0755'] as const;

const name = (i: number): string => `f-${String(i).padStart(6, '0')}`;

/** Flat strings (joined, not `+=` ropes), like those read from a file or a YAML scalar. */
function content(random: () => number, i: number): string {
  const target = 100 + Math.floor(random() * 401);
  const lines = [`# managed by steward: ${name(i)}\n`];
  let length = lines[0]!.length;
  while (length < target) {
    const w = WORDS[Math.floor(random() * WORDS.length)]!;
    const line = `${w} = ${Math.floor(random() * 100_000)}\n`;
    lines.push(line);
    length += line.length;
  }
  return lines.join('');
}

/** Builds the desired resources exactly as `parseRevision` would (same `toDesired`). */
function desiredResources(n: number, seed: number): DesiredResource[] {
  const random = seededRandom(seed);
  const out: DesiredResource[] = [];
  for (let i = 0; i < n; i++) {
    const spec: Record<string, unknown> = { path: `srv/app/${name(i)}.conf`, content: content(random, i) };
    if (random() < 0.4) spec['mode'] = MODES[Math.floor(random() * MODES.length)]!;
    out.push({
      key: `File/${name(i)}`,
      kind: 'File',
      name: name(i),
      spec,
      desired: fileKind.toDesired(spec),
      origin: `fleet/part-${String(Math.floor(i / FILES_PER_MANIFEST)).padStart(4, '0')}.yaml:1:1`,
    });
  }
  return out;
}

export function isDrifted(i: number): boolean {
  return i % DRIFT_EVERY === DRIFT_EVERY / 2;
}

export function buildFleet(n: number, seed = 42): Fleet {
  const resources = desiredResources(n, seed);
  const observed = new Map<string, ObserveResult>();
  const records: Record<string, ResourceRecord> = {};
  let drifted = 0;
  let notSticking = 0;
  for (const [i, r] of resources.entries()) {
    const spec = r.desired.spec;
    const mode = typeof spec['mode'] === 'string' ? spec['mode'] : '0644';
    const drift = isDrifted(i);
    // A string of its own, as a file read gives: sharing the desired one would hide its memory and
    // make the diff's comparison a pointer check.
    const observedContent = drift
      ? `${String(spec['content'])}# edited by hand\n`
      : Buffer.from(String(spec['content']), 'utf8').toString('utf8');
    observed.set(r.key, {
      status: 'present',
      id: r.spec['path'] as string,
      doc: { spec: { ensure: 'present', content: observedContent, mode } },
    });
    const record: ResourceRecord = {
      lastApplied: structuredClone(r.desired),
      attempts: 0,
      cyclesActedDrifted: 0,
      stuck: false,
    };
    if (drift) {
      if (drifted % 5 === 0) {
        record.verifyPending = true;
        record.firstSeen = NOW - 120_000;
        notSticking++;
      } else record.firstSeen = NOW - (drifted % 7) * 30_000;
      drifted++;
    }
    records[r.key] = record;
  }
  const state: PersistedState = {
    version: 2,
    mode: 'enforce',
    freeze: null,
    approvals: [],
    revision: { sha: SHA, acceptedAt: NOW - 3_600_000 },
    soak: { sha: SHA, cyclesObserved: 10 },
    bucket: null,
    resources: records,
  };
  return {
    resources,
    observed,
    state,
    revision: { sha: SHA, fetchedAt: NOW, resources },
    drifted,
    notSticking,
  };
}

/**
 * The guardrail config used: SPEC defaults, except that the mass-drift halt
 * cannot trip. A tripped halt returns early from `decide`; with it out of the
 * way every step (field policy, gate, soak, backoff, cap with its sort, rate
 * limit) runs over the whole drift — the most work `decide` can do.
 */
export function benchGuardrails(n: number): GuardrailConfig {
  return {
    maxActionsPerCycle: 10,
    massDrift: { maxDrifted: n, maxDriftedPercent: 100, minManaged: 5 },
    rateLimit: { actionsPerMinute: 60, burst: 10 },
    backoff: { baseMs: 30_000, factor: 2, maxMs: 1_800_000, jitter: 0.2 },
    nonConvergence: { alertAfterCycles: 3 },
    soak: { observeCycles: 1 },
    fieldPolicy: {},
  };
}

/** One resource as a YAML manifest document. */
export function yamlDoc(r: DesiredResource): string {
  const lines = [
    'apiVersion: steward/v1',
    'kind: File',
    'metadata:',
    `  name: ${r.name}`,
    'spec:',
    `  path: ${String(r.spec['path'])}`,
  ];
  if (typeof r.spec['mode'] === 'string') lines.push(`  mode: "${r.spec['mode']}"`);
  lines.push('  content: |');
  for (const l of String(r.spec['content']).replace(/\n$/, '').split('\n')) lines.push(`    ${l}`);
  return `${lines.join('\n')}\n`;
}

/** The fleet as manifests: one multi-document YAML file per {@link FILES_PER_MANIFEST} resources. */
export function manifests(resources: readonly DesiredResource[]): ManifestFile[] {
  const out: ManifestFile[] = [];
  for (let i = 0; i < resources.length; i += FILES_PER_MANIFEST) {
    const docs = resources.slice(i, i + FILES_PER_MANIFEST).map(yamlDoc);
    out.push({
      file: `fleet/part-${String(i / FILES_PER_MANIFEST).padStart(4, '0')}.yaml`,
      text: docs.join('---\n'),
    });
  }
  return out;
}
