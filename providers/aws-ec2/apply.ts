/**
 * Applying EC2 actions: batched where the API allows, one outcome per
 * resource, one resource's failure never failing another.
 *
 * Each action becomes a job; the fields its (policy-filtered) operations
 * touch decide which phases it takes part in. Phases run in this order, each
 * over all jobs at once, so that identical changes share calls:
 *
 *  1. rules       SecurityGroup ingress/egress: authorise, update descriptions, revoke (per group)
 *  2. attributes  Ec2Instance securityGroupIds, sourceDestCheck, disableApiTermination
 *                 (ModifyInstanceAttribute takes one attribute per call, one instance per call)
 *  3. tags        CreateTags per distinct set of tag changes, DeleteTags per distinct set of
 *                 removed keys, ≤ 1000 resource ids a call, across both kinds
 *  4. type        instanceType: stop the running ones (one call), wait until stopped, modify each
 *  5. state       StartInstances / StopInstances, one call per ≤ 100 ids; instances stopped in
 *                 phase 4 are started again here, even if their modify failed or shutdown began
 *
 * A batch that fails with a per-resource error (a bad id, a permission that
 * resource-level IAM denies) is retried id by id, so the error lands on the
 * resource at fault; throttling and server errors fail the whole batch (the
 * SDK has retried already; the agent's backoff takes over).
 *
 * `ctl.shouldStop()` is checked before every call; once it is true no new
 * call starts (except the restarts of phase 5). A job is reported as soon as
 * its last phase is done; one that had started and was cut short is reported
 * failed (`EC2_INTERRUPTED`); one that had not started is not reported.
 */
import type { EC2Client, IpPermission, ModifyInstanceAttributeCommandInput } from '@aws-sdk/client-ec2';
import { sdk } from './sdk.js';
import { mapLimit } from '../../core/concurrency.js';
import type { ApplyAction, ApplyControl, ApplyOutcome } from '../types.js';
import { awsCode, awsMessage, isPerResource } from './client.js';
import { INSTANCE_KIND } from './instance-kind.js';
import { FILTER_VALUES_PER_CALL, PAGE_SIZE, chunk } from './plan.js';
import { diffRules, type Rule, ruleToAws } from './rules.js';

const {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  ModifyInstanceAttributeCommand,
  paginateDescribeInstances,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  UpdateSecurityGroupRuleDescriptionsEgressCommand,
  UpdateSecurityGroupRuleDescriptionsIngressCommand,
} = sdk;

/** CreateTags / DeleteTags take up to 1000 resource ids. */
const TAG_BATCH = 1000;
/** Start/StopInstances ids per call (no documented limit; kept modest). */
const STATE_BATCH = 100;
/** Per-resource calls in flight (mutating bucket: 50 burst, 5/s). */
const PARALLEL = 4;

const PHASES = ['rules', 'attributes', 'tags', 'type', 'state'] as const;
type Phase = (typeof PHASES)[number];

export interface ApplyOptions {
  client: EC2Client;
  ctl: ApplyControl;
  /** How long to wait for instances to stop before changing their type. */
  stopTimeoutMs: number;
  /** Delays between "is it stopped yet?" reads; the last one repeats. */
  stopPollMs: readonly number[];
  sleep: (ms: number) => Promise<void>;
}

export interface Job {
  action: ApplyAction;
  key: string;
  isInstance: boolean;
  id: string;
  /** Top-level spec fields the operations touch. */
  fields: Set<string>;
  tagSet: Record<string, string>;
  tagDelete: string[];
  phases: Set<Phase>;
  startedAt: number | null;
  error: { code: string; message: string } | null;
  /** Phase 4 stopped it: phase 5 must start it again if it should run. */
  stoppedByUs: boolean;
  reported: boolean;
  /** Fires when the agent may no longer act on it (a shard lease about to expire): every call carries it. */
  signal?: AbortSignal | undefined;
}

const unescapePointer = (s: string): string => s.replace(/~1/g, '/').replace(/~0/g, '~');

/** The per-call options of the SDK's `send` (an abort signal, when the action has one). */
type AbortOpts = { abortSignal?: AbortSignal };

/** The code and message of an abort: the signal's reason when it names one (LEASE_EXPIRING, LEASE_LOST). */
function abortReason(signal: AbortSignal): { code: string; message: string } {
  const r = signal.reason as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof r?.code === 'string' ? r.code : 'EC2_ABORTED',
    message: typeof r?.message === 'string' ? r.message : 'the action was aborted',
  };
}

/** Builds the job for one action from its operations (already filtered by field policy). */
export function makeJob(action: ApplyAction): Job {
  const isInstance = action.resource.kind === INSTANCE_KIND;
  const obs = action.observed.spec;
  const id = String((isInstance ? obs['instanceId'] : obs['groupId']) ?? '');
  const desiredTags = (action.resource.desired.spec['tags'] ?? {}) as Record<string, string>;
  const job: Job = {
    action,
    key: action.resource.key,
    isInstance,
    id,
    fields: new Set(),
    tagSet: {},
    tagDelete: [],
    phases: new Set(),
    startedAt: null,
    error: null,
    stoppedByUs: false,
    reported: false,
  };
  for (const op of action.ops) {
    const segs = op.path.split('/').map(unescapePointer);
    const field = segs[2];
    if (field === undefined || segs[1] !== 'spec') continue;
    job.fields.add(field);
    if (field !== 'tags') continue;
    const tagKey = segs[3];
    if (tagKey === undefined) {
      if (op.op === 'add' || op.op === 'replace') Object.assign(job.tagSet, desiredTags);
    } else if (op.op === 'remove') job.tagDelete.push(tagKey);
    else if (Object.hasOwn(desiredTags, tagKey)) job.tagSet[tagKey] = desiredTags[tagKey]!;
  }
  const f = job.fields;
  if (!isInstance && (f.has('ingress') || f.has('egress'))) job.phases.add('rules');
  if (isInstance && (f.has('securityGroupIds') || f.has('sourceDestCheck') || f.has('disableApiTermination')))
    job.phases.add('attributes');
  if (Object.keys(job.tagSet).length > 0 || job.tagDelete.length > 0) job.phases.add('tags');
  if (isInstance && f.has('instanceType')) job.phases.add('type');
  if (isInstance && (f.has('state') || f.has('instanceType'))) job.phases.add('state');
  return job;
}

/** Sends one call for a batch of ids; on a per-resource error, once per id. Returns the ids that failed. */
async function batched(
  ids: readonly string[],
  call: (ids: string[]) => Promise<unknown>,
): Promise<Map<string, { code: string; message: string }>> {
  const failed = new Map<string, { code: string; message: string }>();
  try {
    await call([...ids]);
  } catch (e) {
    if (ids.length > 1 && isPerResource(e)) {
      for (const id of ids) {
        try {
          await call([id]);
        } catch (e1) {
          failed.set(id, { code: awsCode(e1), message: awsMessage(e1) });
        }
      }
    } else for (const id of ids) failed.set(id, { code: awsCode(e), message: awsMessage(e) });
  }
  return failed;
}

export class Ec2Apply {
  private readonly outcomes: ApplyOutcome[] = [];

  constructor(
    private readonly jobs: Job[],
    private readonly o: ApplyOptions,
  ) {
    for (const j of jobs) j.signal = o.ctl.signal?.(j.key);
  }

  private get stopping(): boolean {
    return this.o.ctl.shouldStop();
  }

  private start(j: Job): void {
    j.startedAt ??= performance.now();
  }

  /** Records a failure: the first error gives the code; later ones (a restart after a failed modify) are appended. */
  private fail(j: Job, code: string, message: string): void {
    if (j.signal?.aborted && (code === 'AbortError' || code === 'UNKNOWN')) {
      const r = abortReason(j.signal);
      code = r.code;
      message = `${message} (${r.message})`;
    }
    j.error =
      j.error === null
        ? { code, message }
        : { code: j.error.code, message: `${j.error.message}; then ${message}` };
  }

  /**
   * A job whose signal fired (its shard's lease is about to expire, or was lost) gets no further call: it is
   * failed with the signal's reason. True when it was cut off.
   */
  private cutOff(j: Job): boolean {
    if (!j.signal?.aborted) return false;
    if (!j.error) {
      const { code, message } = abortReason(j.signal);
      this.fail(j, code, `${j.id}: ${message}`);
    }
    return true;
  }

  /** The SDK options of a call for these jobs: aborted as soon as any of their signals fires. */
  private abortOpts(jobs: readonly Job[]): AbortOpts {
    const signals = jobs.flatMap((j) => (j.signal ? [j.signal] : []));
    if (signals.length === 0) return {};
    return { abortSignal: signals.length === 1 ? signals[0]! : AbortSignal.any(signals) };
  }

  /** Runs every phase and returns one outcome per job that started. */
  async run(): Promise<ApplyOutcome[]> {
    for (const j of this.jobs)
      if (!j.id) this.fail(j, 'EC2_NO_ID', 'the observed document has no resource id');
    for (const [i, phase] of PHASES.entries()) {
      const part = this.jobs.filter((j) => j.phases.has(phase) && (j.error === null || phase === 'state'));
      if (part.length > 0) await this.phase(phase, part);
      // A job is reported after its last phase, or at its first error — unless phase 5 still has to restart it.
      await this.report(
        (j) => (j.error !== null && !j.stoppedByUs) || !PHASES.slice(i + 1).some((p) => j.phases.has(p)),
      );
    }
    await this.report(() => true);
    return this.outcomes;
  }

  private async phase(phase: Phase, jobs: Job[]): Promise<void> {
    if (phase === 'rules') await mapLimit(jobs, PARALLEL, (j) => this.rules(j));
    else if (phase === 'attributes') await mapLimit(jobs, PARALLEL, (j) => this.attributes(j));
    else if (phase === 'tags') await this.tags(jobs);
    else if (phase === 'type') await this.instanceType(jobs);
    else await this.state(jobs);
  }

  /** Reports the jobs `done` selects that are not reported yet. */
  private async report(done: (j: Job) => boolean): Promise<void> {
    for (const j of this.jobs) {
      if (j.reported || !done(j)) continue;
      const finished = j.error !== null || ![...j.phases].some((p) => !this.completed.has(`${j.key}|${p}`));
      if (!finished && j.startedAt === null) continue; // never started (shutdown): no outcome
      j.reported = true;
      const durationMs = j.startedAt === null ? 0 : Math.round(performance.now() - j.startedAt);
      const outcome: ApplyOutcome =
        j.error === null && finished
          ? { key: j.key, id: j.id || null, outcome: 'applied', durationMs }
          : {
              key: j.key,
              id: j.id || null,
              outcome: 'failed',
              code: j.error?.code ?? 'EC2_INTERRUPTED',
              error:
                j.error?.message ?? 'shutdown began before every change was made; the next cycle picks it up',
              durationMs,
            };
      this.outcomes.push(outcome);
      await this.o.ctl.onOutcome(outcome);
    }
  }

  /** `${key}|${phase}` for every phase a job went through to the end. */
  private readonly completed = new Set<string>();
  private done(j: Job, phase: Phase): void {
    this.completed.add(`${j.key}|${phase}`);
  }

  /** Calls `send` for one job, recording a failure; false when it failed or shutdown began. */
  private async call(j: Job, what: string, send: () => Promise<unknown>, ignore: readonly string[] = []) {
    if (this.stopping || j.error || this.cutOff(j)) return false;
    this.start(j);
    try {
      await send();
      return true;
    } catch (e) {
      if (ignore.includes(awsCode(e))) return true;
      this.fail(j, awsCode(e), `${what} ${j.id}: ${awsMessage(e)}`);
      return false;
    }
  }

  // ---- phase 1: security-group rules --------------------------------------------------------

  private async rules(j: Job): Promise<void> {
    const { client } = this.o;
    const GroupId = j.id;
    for (const dir of ['ingress', 'egress'] as const) {
      if (!j.fields.has(dir)) continue;
      const desired = (j.action.resource.desired.spec[dir] ?? []) as Rule[];
      const observed = (j.action.observed.spec[dir] ?? []) as Rule[];
      const ch = diffRules(observed, desired);
      const ing = dir === 'ingress';
      const authorize = (IpPermissions: IpPermission[]): Promise<unknown> =>
        ing
          ? client.send(
              new AuthorizeSecurityGroupIngressCommand({ GroupId, IpPermissions }),
              this.abortOpts([j]),
            )
          : client.send(
              new AuthorizeSecurityGroupEgressCommand({ GroupId, IpPermissions }),
              this.abortOpts([j]),
            );
      const revoke = (IpPermissions: IpPermission[]): Promise<unknown> =>
        ing
          ? client.send(
              new RevokeSecurityGroupIngressCommand({ GroupId, IpPermissions }),
              this.abortOpts([j]),
            )
          : client.send(
              new RevokeSecurityGroupEgressCommand({ GroupId, IpPermissions }),
              this.abortOpts([j]),
            );
      const Op = ing ? 'Ingress' : 'Egress';
      // Authorise first, then revoke: a replaced rule never leaves a gap in what Git allows.
      if (ch.add.length > 0)
        await this.eachOnConflict(
          j,
          `AuthorizeSecurityGroup${Op}`,
          ch.add,
          authorize,
          'InvalidPermission.Duplicate',
        );
      if (ch.describe.length > 0)
        await this.call(j, `UpdateSecurityGroupRuleDescriptions${Op}`, () => {
          // A rule without a description in Git is sent without one: AWS then removes it.
          const IpPermissions = ch.describe.map((r) => ruleToAws(r));
          return ing
            ? client.send(
                new UpdateSecurityGroupRuleDescriptionsIngressCommand({ GroupId, IpPermissions }),
                this.abortOpts([j]),
              )
            : client.send(
                new UpdateSecurityGroupRuleDescriptionsEgressCommand({ GroupId, IpPermissions }),
                this.abortOpts([j]),
              );
        });
      if (ch.remove.length > 0)
        await this.eachOnConflict(
          j,
          `RevokeSecurityGroup${Op}`,
          ch.remove.map((r) => ({ ...r, description: undefined })),
          revoke,
          'InvalidPermission.NotFound',
        );
    }
    if (!j.error && !this.stopping) this.done(j, 'rules');
  }

  /**
   * One call for all rules; if it fails because one of them already is as wanted
   * (a duplicate on authorise, a missing rule on revoke: eventual consistency or
   * another writer), the rules one by one, that error ignored.
   */
  private async eachOnConflict(
    j: Job,
    what: string,
    rules: Rule[],
    send: (p: IpPermission[]) => Promise<unknown>,
    benign: string,
  ): Promise<void> {
    if (this.stopping || j.error || this.cutOff(j)) return;
    this.start(j);
    try {
      await send(rules.map((r) => ruleToAws(r)));
    } catch (e) {
      if (awsCode(e) !== benign || rules.length === 1) {
        if (awsCode(e) !== benign) this.fail(j, awsCode(e), `${what} ${j.id}: ${awsMessage(e)}`);
        return;
      }
      for (const r of rules) await this.call(j, what, () => send([ruleToAws(r)]), [benign]);
    }
  }

  // ---- phase 2: instance attributes ----------------------------------------------------------

  private async attributes(j: Job): Promise<void> {
    const { client } = this.o;
    const d = j.action.resource.desired.spec;
    const InstanceId = j.id;
    const modify = (input: Omit<ModifyInstanceAttributeCommandInput, 'InstanceId'>) =>
      this.call(j, 'ModifyInstanceAttribute', () =>
        client.send(new ModifyInstanceAttributeCommand({ InstanceId, ...input }), this.abortOpts([j])),
      );
    if (j.fields.has('securityGroupIds') && !(await modify({ Groups: d['securityGroupIds'] as string[] })))
      return;
    if (
      j.fields.has('sourceDestCheck') &&
      !(await modify({ SourceDestCheck: { Value: d['sourceDestCheck'] === true } }))
    )
      return;
    if (
      j.fields.has('disableApiTermination') &&
      !(await modify({ DisableApiTermination: { Value: d['disableApiTermination'] === true } }))
    )
      return;
    this.done(j, 'attributes');
  }

  // ---- phase 3: tags, batched across resources -------------------------------------------------

  private async tags(jobs: Job[]): Promise<void> {
    const { client } = this.o;
    /** `${key}|set` / `${key}|delete` for each tag call that succeeded for a job. */
    const sent = new Set<string>();
    const groups = (pick: (j: Job) => string | null) => {
      const m = new Map<string, Job[]>();
      for (const j of jobs) {
        const k = pick(j);
        if (k !== null) m.set(k, [...(m.get(k) ?? []), j]);
      }
      return m;
    };
    const run = async (
      byChange: Map<string, Job[]>,
      what: 'CreateTags' | 'DeleteTags',
      send: (change: string, ids: string[], opts: AbortOpts) => Promise<unknown>,
    ) => {
      for (const [change, members] of byChange)
        for (const part of chunk(
          members.filter((j) => !j.error),
          TAG_BATCH,
        )) {
          if (this.stopping) return;
          const live = part.filter((j) => !this.cutOff(j));
          if (live.length === 0) continue;
          for (const j of live) this.start(j);
          const opts = this.abortOpts(live);
          const failed = await batched(
            live.map((j) => j.id),
            (ids) => send(change, ids, opts),
          );
          for (const j of live) {
            const f = failed.get(j.id);
            if (f) this.fail(j, f.code, `${what} ${j.id}: ${f.message}`);
            else sent.add(`${j.key}|${what}`);
          }
        }
    };
    const sets = groups((j) =>
      Object.keys(j.tagSet).length > 0 ? JSON.stringify(Object.entries(j.tagSet).sort()) : null,
    );
    await run(sets, 'CreateTags', (change, Resources, opts) =>
      client.send(
        new CreateTagsCommand({
          Resources,
          Tags: (JSON.parse(change) as Array<[string, string]>).map(([Key, Value]) => ({ Key, Value })),
        }),
        opts,
      ),
    );
    const deletes = groups((j) => (j.tagDelete.length > 0 ? JSON.stringify([...j.tagDelete].sort()) : null));
    // Deleted by key, whatever the value now is: the key was steward's, and Git no longer has it.
    await run(deletes, 'DeleteTags', (change, Resources, opts) =>
      client.send(
        new DeleteTagsCommand({ Resources, Tags: (JSON.parse(change) as string[]).map((Key) => ({ Key })) }),
        opts,
      ),
    );
    for (const j of jobs)
      if (
        !j.error &&
        (Object.keys(j.tagSet).length === 0 || sent.has(`${j.key}|CreateTags`)) &&
        (j.tagDelete.length === 0 || sent.has(`${j.key}|DeleteTags`))
      )
        this.done(j, 'tags');
  }

  // ---- phase 4: instance type (stop → modify; phase 5 starts) ------------------------------------

  private async instanceType(jobs: Job[]): Promise<void> {
    const { client } = this.o;
    const running = jobs.filter((j) => j.action.observed.spec['state'] === 'running');
    if (running.length > 0) {
      if (this.stopping) return;
      const stopped = await this.stateCall(running, 'StopInstances', (InstanceIds, opts) =>
        client.send(new StopInstancesCommand({ InstanceIds }), opts),
      );
      for (const j of stopped) j.stoppedByUs = true;
      const still = await this.waitStopped(stopped.map((j) => j.id));
      for (const j of stopped)
        if (still.has(j.id))
          this.fail(
            j,
            'EC2_STOP_TIMEOUT',
            `${j.id} did not stop within ${Math.round(this.o.stopTimeoutMs / 1000)}s; its type was not changed`,
          );
    }
    await mapLimit(
      jobs.filter((j) => !j.error),
      PARALLEL,
      async (j) => {
        const Value = j.action.resource.desired.spec['instanceType'] as string;
        if (
          await this.call(j, 'ModifyInstanceAttribute', () =>
            client.send(
              new ModifyInstanceAttributeCommand({ InstanceId: j.id, InstanceType: { Value } }),
              this.abortOpts([j]),
            ),
          )
        )
          this.done(j, 'type');
      },
    );
  }

  /** Polls until every id is stopped or the timeout passes; returns the ids not stopped. */
  private async waitStopped(ids: string[]): Promise<Set<string>> {
    const pending = new Set(ids);
    const deadline = Date.now() + this.o.stopTimeoutMs;
    const delays = this.o.stopPollMs.length > 0 ? this.o.stopPollMs : [0];
    for (let attempt = 0; pending.size > 0; attempt++) {
      const d = delays[Math.min(attempt, delays.length - 1)]!;
      if (Date.now() + d > deadline) break;
      if (d > 0) await this.o.sleep(d);
      for (const part of chunk([...pending], FILTER_VALUES_PER_CALL)) {
        try {
          for await (const page of paginateDescribeInstances(
            { client: this.o.client, pageSize: PAGE_SIZE },
            { Filters: [{ Name: 'instance-id', Values: part }], MaxResults: PAGE_SIZE },
          ))
            for (const r of page.Reservations ?? [])
              for (const i of r.Instances ?? [])
                if (i.InstanceId && i.State?.Name === 'stopped') pending.delete(i.InstanceId);
        } catch {
          // a failed read is retried at the next poll, until the deadline
        }
      }
    }
    return pending;
  }

  // ---- phase 5: state ---------------------------------------------------------------------------

  private async state(jobs: Job[]): Promise<void> {
    const { client } = this.o;
    const observed = (j: Job) => j.action.observed.spec['state'];
    const final = (j: Job) => (j.fields.has('state') ? j.action.resource.desired.spec['state'] : observed(j));
    const restart: Job[] = [];
    const start: Job[] = [];
    const stop: Job[] = [];
    for (const j of jobs) {
      if (j.stoppedByUs) {
        if (final(j) === 'running') restart.push(j);
        else if (!j.error) this.done(j, 'state'); // stopped by phase 4, and Git wants it stopped
      } else if (j.error) continue;
      else if (j.fields.has('state') && final(j) === 'running' && observed(j) !== 'running') start.push(j);
      else if (j.fields.has('state') && final(j) === 'stopped' && observed(j) !== 'stopped') stop.push(j);
      else this.done(j, 'state'); // a type change on a stopped instance: nothing to start
    }
    const send =
      (what: string) =>
      (InstanceIds: string[], opts: AbortOpts): Promise<unknown> =>
        what === 'StartInstances'
          ? client.send(new StartInstancesCommand({ InstanceIds }), opts)
          : client.send(new StopInstancesCommand({ InstanceIds }), opts);
    // Restarts of what phase 4 stopped come first and ignore shutdown: never leave an instance stopped half-way.
    for (const [list, what, always] of [
      [restart, 'StartInstances', true],
      [start, 'StartInstances', false],
      [stop, 'StopInstances', false],
    ] as const)
      if (list.length > 0)
        for (const j of await this.stateCall(list, what, send(what), always))
          if (!j.error) this.done(j, 'state');
  }

  /** Start/Stop for many jobs, ≤ STATE_BATCH ids a call; returns the jobs for which it succeeded. */
  private async stateCall(
    jobs: Job[],
    what: string,
    send: (ids: string[], opts: AbortOpts) => Promise<unknown>,
    evenWhenStopping = false,
  ): Promise<Job[]> {
    const ok: Job[] = [];
    for (const all of chunk(jobs, STATE_BATCH)) {
      if (this.stopping && !evenWhenStopping) break;
      const part = all.filter((j) => !this.cutOff(j));
      if (part.length === 0) continue;
      for (const j of part) this.start(j);
      const opts = this.abortOpts(part);
      const failed = await batched(
        part.map((j) => j.id),
        (ids) => send(ids, opts),
      );
      for (const j of part) {
        const f = failed.get(j.id);
        if (f) this.fail(j, f.code, `${what} ${j.id}: ${f.message}`);
        else ok.push(j);
      }
    }
    return ok;
  }
}

/** Applies EC2 actions; see the module comment. */
export async function applyEc2(actions: readonly ApplyAction[], o: ApplyOptions): Promise<ApplyOutcome[]> {
  return new Ec2Apply(actions.map(makeJob), o).run();
}
