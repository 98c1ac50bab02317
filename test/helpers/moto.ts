/**
 * Test helper: a real moto_server (PyPI `moto[server]`) on a free loopback
 * port, for the EC2 provider's integration tests.
 *
 * The binary is `$MOTO_SERVER`, else `.venv/bin/moto_server` in the project
 * (`.ci/run` creates that venv). A missing binary FAILS the test with a
 * message saying how to get it: these tests are never skipped silently.
 *
 * Readiness is polled over HTTP (bounded); stopping kills the process and
 * waits for it to exit.
 */
import {
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  type Instance,
  type _InstanceType,
  paginateDescribeInstances,
  RunInstancesCommand,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export interface Moto {
  /** `http://127.0.0.1:<port>` — the `endpoint` for the EC2 client. */
  url: string;
  /** Drops every resource (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_TIMEOUT_MS = 30_000;

/** Dummy credentials and a region for the SDK in this process: moto accepts any; nothing may reach AWS. */
export function useMotoCredentials(): void {
  process.env['AWS_ACCESS_KEY_ID'] = 'testing';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'testing';
  process.env['AWS_REGION'] = 'us-east-1';
  delete process.env['AWS_PROFILE'];
  delete process.env['AWS_SESSION_TOKEN'];
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
}

export function motoBinary(): string {
  const bin = process.env['MOTO_SERVER'] || join(PROJECT, '.venv', 'bin', 'moto_server');
  if (!existsSync(bin))
    throw new Error(
      `moto_server not found at ${bin}. The EC2 integration tests need it: run npm test once (it creates .venv), or create the venv by hand ` +
        `(python3 -m venv .venv && .venv/bin/pip install "moto[server]==5.2.5"), or set MOTO_SERVER to the binary.`,
    );
  return bin;
}

/** A loopback port nothing listens on (now). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((res) => p.once('exit', () => res()));
}

/** Polls `url` until it answers 200, the process dies, or the deadline passes. */
async function waitReady(url: string, p: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let delay = 25;
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null)
      throw new Error(`moto_server exited (${p.exitCode ?? p.signalCode}) before it was ready:\n${log()}`);
    try {
      const r = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`moto_server did not answer on ${url} within ${READY_TIMEOUT_MS / 1000}s:\n${log()}`);
    await sleep(delay);
    delay = Math.min(delay * 2, 250);
  }
}

/** Starts moto_server on 127.0.0.1 and a free port; retries once if the port was taken in between. */
export async function startMoto(): Promise<Moto> {
  const bin = motoBinary();
  useMotoCredentials();
  let lastError: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-4_000);
    };
    p.stdout?.on('data', keep);
    p.stderr?.on('data', keep);
    p.on('error', (e) => {
      output += `\nspawn error: ${e.message}`;
    });
    const stop = async () => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
      await exited(p);
      clearTimeout(t);
    };
    try {
      await waitReady(url, p, () => output);
      return {
        url,
        stop,
        async reset() {
          const r = await fetch(`${url}/moto-api/reset`, { method: 'POST' });
          if (!r.ok) throw new Error(`moto reset failed: ${r.status}`);
          await r.body?.cancel();
        },
      };
    } catch (e) {
      lastError = e;
      await stop();
    }
  }
  throw lastError;
}

// ---------------------------------------------------------------------------
// Seeding through the SDK (a client of its own: its calls are never counted)
// ---------------------------------------------------------------------------

export interface Ec2World {
  client: EC2Client;
  region: string;
  vpcId: string;
  subnetId: string;
  imageId: string;
  /** Creates a security group in the VPC; returns its id. */
  group(name: string): Promise<string>;
  /** Launches `count` instances in ONE RunInstances call (one reservation); returns their ids. */
  run(
    count: number,
    opts?: { groups?: string[]; tags?: Record<string, string>; type?: string },
  ): Promise<string[]>;
  /** The instances, as DescribeInstances returns them. */
  describe(ids: string[]): Promise<Instance[]>;
  /** One security group as DescribeSecurityGroups returns it. */
  describeGroup(id: string): Promise<SecurityGroup>;
}

/** A VPC with a subnet, and helpers to seed it; `reset` first for a clean account. */
export async function ec2World(moto: Moto, region = 'us-east-1'): Promise<Ec2World> {
  const client = new EC2Client({ region, endpoint: moto.url, maxAttempts: 1 });
  const vpcId = (await client.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
  const subnetId = (await client.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.0.0/20' })))
    .Subnet!.SubnetId!;
  const images = await client.send(new DescribeImagesCommand({ Owners: ['amazon'], MaxResults: 5 }));
  const imageId = images.Images?.[0]?.ImageId;
  if (!imageId) throw new Error('moto offers no AMI');
  const tags = (t: Record<string, string>) => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));
  return {
    client,
    region,
    vpcId,
    subnetId,
    imageId,
    async group(name) {
      const r = await client.send(
        new CreateSecurityGroupCommand({ GroupName: name, Description: name, VpcId: vpcId }),
      );
      return r.GroupId!;
    },
    async run(count, opts = {}) {
      const r = await client.send(
        new RunInstancesCommand({
          ImageId: imageId,
          MinCount: count,
          MaxCount: count,
          SubnetId: subnetId,
          InstanceType: (opts.type ?? 't3.micro') as _InstanceType,
          ...(opts.groups ? { SecurityGroupIds: opts.groups } : {}),
          ...(opts.tags ? { TagSpecifications: [{ ResourceType: 'instance', Tags: tags(opts.tags) }] } : {}),
        }),
      );
      return (r.Instances ?? []).map((i) => i.InstanceId!);
    },
    async describe(ids) {
      const out: Instance[] = [];
      for await (const page of paginateDescribeInstances(
        { client },
        { Filters: [{ Name: 'instance-id', Values: ids }] },
      ))
        for (const res of page.Reservations ?? []) out.push(...(res.Instances ?? []));
      return ids.map((id) => out.find((i) => i.InstanceId === id)!);
    },
    async describeGroup(id) {
      const r = await client.send(new DescribeSecurityGroupsCommand({ GroupIds: [id] }));
      return r.SecurityGroups![0]!;
    },
  };
}

/** One moto_server for the whole test file: started before its first test, stopped after its last. */
export function motoForThisFile(): () => Moto {
  let moto: Moto | undefined;
  before(async () => {
    moto = await startMoto();
  });
  after(async () => {
    await moto?.stop();
  });
  return () => {
    if (!moto) throw new Error('moto_server is not started yet: call this inside a test');
    return moto;
  };
}
