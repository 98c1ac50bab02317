/**
 * API economy of the EC2 provider, on a real moto_server: how many calls a
 * detection cycle over N managed instances makes (and how long it takes
 * against moto), and how many calls fix a tag change shared by all of them.
 *
 * The bar (DESIGN.md): detection of N instances in about ⌈N/1000⌉ describe
 * calls; identical tag changes in one CreateTags per 1000 instances. Wall
 * time is moto's, not AWS's: it says how the agent scales, not how fast AWS
 * answers. moto pages DescribeInstances by reservation; the instances are
 * launched in one reservation per 1000 so one page here is one page on AWS.
 */
import { parseRevision } from '../agent/manifest.js';
import { detect } from '../agent/detect.js';
import { Ec2Provider } from '../providers/aws-ec2/index.js';
import { KINDS } from '../providers/registry.js';
import type { Provider } from '../providers/types.js';
import { ec2World, startMoto, useMotoCredentials } from '../test/helpers/moto.js';
import { median } from './harness.js';
import type { Benchmark, Row } from './types.js';

const NAME = 'ec2-api';
const SIZES = [100, 1_000] as const;
const DETECT_RUNS = 5;

const manifest = (i: number, id: string) =>
  `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: web-${i} }\nspec:\n  selector: { instanceId: ${id} }\n  tags: { Env: prod, Team: web }\n`;

async function sizeRows(n: number, ctx: Parameters<Benchmark['run']>[0]): Promise<Row[]> {
  const moto = await startMoto();
  try {
    const world = await ec2World(moto);
    const ids: string[] = [];
    for (let left = n; left > 0; left -= 1000)
      ids.push(...(await world.run(Math.min(1000, left), { tags: { Env: 'prod' } })));
    ctx.progress(`${NAME}: ${n} instances launched in moto`);
    const parsed = parseRevision(
      [{ file: 'fleet/web.yaml', text: ids.map((id, i) => manifest(i, id)).join('---\n') }],
      KINDS,
    );
    if (!parsed.ok) throw new Error(`bench manifests invalid: ${parsed.problems[0]?.message}`);
    const calls = new Map<string, number>();
    const provider = new Ec2Provider({
      region: world.region,
      endpoint: moto.url,
      onRequest: (op) => calls.set(op, (calls.get(op) ?? 0) + 1),
    });
    const providers = new Map<string, Provider>([['aws-ec2', provider]]);

    const times: number[] = [];
    const describes: number[] = [];
    let drifted = 0;
    for (let r = 0; r < DETECT_RUNS; r++) {
      calls.clear();
      const t0 = performance.now();
      const d = await detect(parsed.resources, KINDS, providers, () => undefined);
      times.push(performance.now() - t0);
      describes.push([...calls].filter(([op]) => op.startsWith('Describe')).reduce((s, [, c]) => s + c, 0));
      drifted = d.drift.length;
      if (d.errors.length > 0) throw new Error(`observe errors: ${d.errors[0]?.error}`);
    }
    const detection = await detect(parsed.resources, KINDS, providers, () => undefined);
    calls.clear();
    const t0 = performance.now();
    const outcomes = await provider.apply(
      detection.drift.map((x) => ({ resource: x.resource, ops: x.patch, observed: x.observed })),
      { shouldStop: () => false, onOutcome: async () => {} },
    );
    const applyMs = performance.now() - t0;
    const writes = [...calls].filter(([op]) => !op.startsWith('Describe'));
    const writeCalls = writes.reduce((s, [, c]) => s + c, 0);
    const failed = outcomes.filter((o) => o.outcome === 'failed').length;
    const after = await detect(parsed.resources, KINDS, providers, () => undefined);
    const bar = Math.ceil(n / 1000);
    return [
      {
        benchmark: NAME,
        case: 'detect (describe calls)',
        n,
        runs: DETECT_RUNS,
        medianMs: median(times),
        minMs: Math.min(...times),
        maxMs: Math.max(...times),
        rate: null,
        peakRssMiB: null,
        figure: `${median(describes)} describe call(s), ${drifted} drifted`,
        target: { value: Math.max(...describes), max: bar, label: `≤ ⌈N/1000⌉ = ${bar} describe(s)` },
      },
      {
        benchmark: NAME,
        case: 'fix shared tag (write calls)',
        n,
        runs: 1,
        medianMs: applyMs,
        minMs: applyMs,
        maxMs: applyMs,
        rate: null,
        peakRssMiB: null,
        figure: `${writes.map(([op, c]) => `${c} ${op}`).join(', ')}; ${failed} failed; ${after.drift.length} drifted after`,
        target: {
          value: writeCalls + (after.drift.length > 0 ? 1e9 : 0),
          max: bar,
          label: `≤ ${bar} CreateTags, converged`,
        },
      },
    ];
  } finally {
    await moto.stop();
  }
}

export const ec2Api: Benchmark = {
  name: NAME,
  description:
    'EC2 provider on moto_server: describe calls per detection, write calls to fix a shared tag change',
  async run(ctx) {
    useMotoCredentials();
    const rows: Row[] = [];
    for (const n of SIZES) rows.push(...(await sizeRows(n, ctx)));
    return rows;
  },
};
