/**
 * The deployment artefacts in deploy/ hold together with the code they deploy:
 *
 * - systemd: `systemd-analyze verify` finds nothing to say about the unit, the
 *   hardening is there (and MemoryDenyWriteExecute, which breaks V8, is not),
 *   and `systemd-analyze security` rates it well.
 * - Kubernetes: every manifest parses; the ConfigMap's steward.yaml passes the
 *   real config validator; the secret files it names are exactly the keys of
 *   the Secret where the Deployment mounts it; probes hit real open routes on
 *   the configured port; state.dir is the persistent volume; one replica,
 *   Recreate, read-only root.
 * - Fleet: deploy/kubernetes-fleet (two aws-ec2 agents on one PostgreSQL,
 *   sharded, a PodDisruptionBudget, no PVC, the single-agent hardening field
 *   for field) and deploy/systemd/fleet.yaml (a host agent: postgres backend,
 *   rollout waves, fleet mass drift, a loopback HTTP health check) pass the
 *   real config validator and agree with their manifests and unit.
 * - Container: the Dockerfile is checked statically, then its build is
 *   REPLAYED without a Docker engine — the build context filtered by
 *   .dockerignore, each build-stage COPY and RUN (npm ci, build, prune) in a
 *   clean directory, each runtime-stage COPY into a fake root — and the
 *   resulting production-only layout is run through the image's ENTRYPOINT:
 *   `version`, `validate`, and a real daemon (no git binary on PATH, no HOME,
 *   no TMPDIR) that reconciles, answers the image's HEALTHCHECK command, and
 *   stops with exit 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, posix, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { load, loadAll } from 'js-yaml';
import { ROUTES } from '../../agent/admin/routes.js';
import { type Config, parseConfig } from '../../agent/config.js';
import { createTestRepo } from '../helpers/git-repo.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const at = (...p: string[]): string => join(REPO, ...p);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command itself could not be started (ENOENT, …). */
  spawnError?: NodeJS.ErrnoException;
}

function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd ?? REPO,
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        const err = error as (NodeJS.ErrnoException & { code?: unknown }) | null;
        if (err && typeof err.code === 'string') {
          resolve({ code: null, stdout, stderr, spawnError: err });
          return;
        }
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** The secret files a config reads at parse time (source.auth, alerts), with the readSecret hook stubbed. */
function parseWithStubbedSecrets(text: string, file: string): { config: Config; secretsRead: string[] } {
  const secretsRead: string[] = [];
  const config = parseConfig(text, file, {
    env: {},
    readSecret: (path) => {
      secretsRead.push(path);
      return `dummy-${basename(path)}-0123456789abcdef`;
    },
  });
  return { config, secretsRead };
}

/** Every secret FILE a config refers to: the ones parseConfig reads, plus the ones the admin server reads. */
function secretFilesOf(parsed: { config: Config; secretsRead: string[] }, includeToken: boolean): string[] {
  const files = [...parsed.secretsRead];
  if (includeToken) files.push(parsed.config.admin.tokenFile);
  if (parsed.config.admin.webhookSecretFile !== null) files.push(parsed.config.admin.webhookSecretFile);
  return files.sort();
}

const openGetRoutes = new Set(
  ROUTES.filter((r) => r.auth === 'none' && r.method === 'GET').map((r) => r.url),
);

// ---------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------

type UnitFile = Map<string, Map<string, string[]>>;

/** A systemd unit file: section → key → values in order (a key may repeat). */
function parseUnit(text: string): UnitFile {
  const unit: UnitFile = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[([^\]]+)\]$/.exec(line);
    if (head) {
      section = new Map();
      unit.set(head[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `steward.service:${i + 1}: not "Key=Value" inside a section: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

test('systemd unit: systemd-analyze verify is silent, the hardening is in place, and it rates well', async (t) => {
  const unitPath = at('deploy/systemd/steward.service');
  const text = await readFile(unitPath, 'utf8');
  const unit = parseUnit(text);
  const service = unit.get('Service');
  const unitSection = unit.get('Unit');
  assert.ok(service && unitSection && unit.get('Install'), 'sections [Unit], [Service], [Install]');
  const one = (section: Map<string, string[]>, key: string): string | undefined => {
    const values = section.get(key);
    if (values === undefined) return undefined;
    assert.equal(values.length, 1, `${key}= is set once`);
    return values[0];
  };

  const expected: Record<string, string> = {
    User: 'steward',
    Group: 'steward',
    StateDirectory: 'steward',
    ConfigurationDirectory: 'steward',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    NoNewPrivileges: 'yes',
    CapabilityBoundingSet: '',
    AmbientCapabilities: '',
    RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
    LockPersonality: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    ProtectControlGroups: 'yes',
    RestrictNamespaces: 'yes',
    RestrictSUIDSGID: 'yes',
    Restart: 'on-failure',
    RestartSec: '5s',
    TimeoutStopSec: '60',
    KillSignal: 'SIGTERM',
    ReadWritePaths: '/srv/managed',
    Environment: 'NODE_ENV=production',
  };
  for (const [key, value] of Object.entries(expected)) assert.equal(one(service, key), value, `${key}=`);
  assert.ok(service.get('SystemCallFilter')?.includes('@system-service'), 'SystemCallFilter=@system-service');
  assert.equal(one(service, 'DynamicUser'), undefined, 'a static user (DynamicUser= left out)');
  // V8's JIT needs writable+executable memory: with this set, node aborts at start-up.
  assert.equal(service.get('MemoryDenyWriteExecute'), undefined, 'MemoryDenyWriteExecute= must not be set');
  assert.equal(service.get('ExecReload'), undefined, 'no ExecReload=: steward has no config reload');
  assert.ok(Number(one(unitSection, 'StartLimitBurst')) > 0, 'StartLimitBurst= in [Unit]');
  assert.ok(one(unitSection, 'StartLimitIntervalSec'), 'StartLimitIntervalSec= in [Unit]');
  assert.equal(one(unit.get('Install')!, 'WantedBy'), 'multi-user.target');

  // ExecStart runs the daemon with the config from the ConfigurationDirectory.
  const execStart = one(service, 'ExecStart');
  assert.equal(execStart, '/usr/bin/node /opt/steward/bin/steward.js run -c /etc/steward/steward.yaml');

  // systemd-analyze: required, never skipped.
  const version = await run('systemd-analyze', ['--version']);
  if (version.spawnError)
    assert.fail(
      `systemd-analyze is not installed (${version.spawnError.code}); install systemd (apt-get install systemd) — this test does not skip`,
    );

  // Verify a copy whose ExecStart points at binaries that exist here (verify checks them).
  const dir = await mkdtemp(join(tmpdir(), 'steward-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const copy = join(dir, 'steward.service');
  const local = `${process.execPath} ${at('bin/steward.js')} run -c /etc/steward/steward.yaml`;
  await writeFile(copy, text.replace(`ExecStart=${execStart}`, `ExecStart=${local}`));
  const verify = await run('systemd-analyze', ['verify', copy], { cwd: dir });
  const aboutUs = `${verify.stdout}\n${verify.stderr}`
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => l.includes('steward.service') || l.includes(dir));
  for (const l of `${verify.stdout}\n${verify.stderr}`.split('\n'))
    if (l.trim() !== '' && !aboutUs.includes(l)) t.diagnostic(`systemd-analyze (other units): ${l}`);
  assert.deepEqual(aboutUs, [], 'systemd-analyze verify has nothing to say about steward.service');
  assert.equal(verify.code, 0, `systemd-analyze verify exit code (${verify.stderr})`);

  // The exposure score (0 = locked down, 10 = unprotected); fails above 2.0.
  const security = await run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', copy], {
    cwd: dir,
  });
  const score = /Overall exposure level for steward\.service: ([\d.]+)/.exec(security.stdout)?.[1];
  assert.ok(
    score !== undefined,
    `systemd-analyze security printed a score:\n${security.stdout}${security.stderr}`,
  );
  t.diagnostic(`systemd-analyze security: exposure ${score}`);
  assert.ok(Number(score) <= 2, `exposure ${score} <= 2.0`);
  assert.equal(security.code, 0, 'systemd-analyze security --threshold=20');
});

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

interface Meta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
}
interface Probe {
  httpGet?: { path: string; port: number | string };
}
interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  fsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: VolumeMount[];
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: unknown[] };
  secret?: { secretName: string; defaultMode?: number; items?: unknown[] };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: Record<string, unknown>;
}
interface Deployment extends K8sObject {
  spec: {
    replicas: number;
    strategy: {
      type: string;
      rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string };
    };
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: Meta;
      spec: {
        automountServiceAccountToken?: boolean;
        enableServiceLinks?: boolean;
        terminationGracePeriodSeconds?: number;
        securityContext?: SecurityContext;
        containers: Container[];
        volumes: Volume[];
      };
    };
  };
}
interface ConfigMap extends K8sObject {
  data: Record<string, string>;
}
interface Secret extends K8sObject {
  type: string;
  stringData: Record<string, string>;
}
interface Service extends K8sObject {
  spec: {
    type?: string;
    selector: Record<string, string>;
    ports: Array<{ name?: string; port: number; targetPort: number | string }>;
  };
}
interface Pvc extends K8sObject {
  spec: { accessModes: string[]; resources: { requests: { storage: string } } };
}
interface Kustomization {
  resources: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
}

async function loadManifests(file: string, dir = 'deploy/kubernetes'): Promise<K8sObject[]> {
  const docs = loadAll(await readFile(at(dir, file), 'utf8')).filter((d) => d !== null);
  for (const d of docs) {
    const o = d as Partial<K8sObject>;
    assert.ok(
      typeof o.apiVersion === 'string' && typeof o.kind === 'string' && typeof o.metadata?.name === 'string',
      `${file}: every document has apiVersion, kind and metadata.name`,
    );
  }
  return docs as K8sObject[];
}

/**
 * A kustomize directory: its kustomization (every manifest listed and existing,
 * the placeholder Secret left out), the kinds of the objects it holds, and its
 * placeholder Secret.
 */
async function loadKustomization(
  dir: string,
  kinds: string[],
): Promise<{
  kustomization: Kustomization;
  only: <T extends K8sObject>(kind: string) => T;
  deployment: Deployment;
  configMap: ConfigMap;
  service: Service;
  secret: Secret;
}> {
  const kustomization = load(await readFile(at(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const files = (await readdir(at(dir))).filter((f) => f.endsWith('.yaml')).sort();
  for (const f of kustomization.resources) assert.ok(existsSync(at(dir, f)), `${dir}: ${f} exists`);
  assert.ok(
    !kustomization.resources.includes('secret.example.yaml'),
    `${dir}: the placeholder Secret is left out`,
  );
  assert.deepEqual(
    [...kustomization.resources].sort(),
    files.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml'),
    `${dir}: the kustomization lists every manifest except the placeholder Secret`,
  );
  const objects: K8sObject[] = [];
  for (const f of kustomization.resources) objects.push(...(await loadManifests(f, dir)));
  assert.deepEqual(objects.map((o) => o.kind).sort(), [...kinds].sort());
  const only = <T extends K8sObject>(kind: string): T => objects.find((o) => o.kind === kind) as T;
  const [secret, ...moreSecrets] = (await loadManifests('secret.example.yaml', dir)) as Secret[];
  assert.ok(
    secret && moreSecrets.length === 0 && secret.kind === 'Secret',
    `${dir}/secret.example.yaml: one Secret`,
  );
  for (const [key, value] of Object.entries(secret.stringData))
    assert.equal(value, 'REPLACE-ME', `secret.example.yaml ${key} is a placeholder`);
  const deployment = only<Deployment>('Deployment');
  const configMap = only<ConfigMap>('ConfigMap');
  const service = only<Service>('Service');
  return { kustomization, only, deployment, configMap, service, secret };
}

/** A pod's volume by name (it must exist). */
function volumeOf(pod: { volumes: Volume[] }): (name: string) => Volume {
  return (name) => {
    const v = pod.volumes.find((x) => x.name === name);
    assert.ok(v, `volume ${name} is defined`);
    return v;
  };
}

test('kubernetes: manifests parse and agree with the config validator, the admin routes and each other', async () => {
  const { kustomization, only, deployment, configMap, service, secret } = await loadKustomization(
    'deploy/kubernetes',
    ['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Service'],
  );
  const pvc = only<Pvc>('PersistentVolumeClaim');

  // The Deployment: one agent, never two on one volume.
  const spec = deployment.spec;
  assert.equal(spec.replicas, 1);
  assert.equal(spec.strategy.type, 'Recreate');
  assert.deepEqual(spec.template.metadata.labels, spec.selector.matchLabels);
  const pod = spec.template.spec;
  assert.equal(pod.terminationGracePeriodSeconds, 60);
  assert.equal(pod.containers.length, 1);
  const container = pod.containers[0]!;
  const image = kustomization.images?.find((i) => i.name === container.image);
  assert.ok(image?.newName && image.newTag, 'the image placeholder is set by kustomization images:');

  // Security: non-root 10001 (the image's user), read-only root, nothing extra.
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.equal(pod.securityContext?.runAsUser, 10001);
  assert.equal(pod.securityContext?.fsGroup, 10001, 'fsGroup: secret files are readable by uid 10001');
  assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  const sc = container.securityContext;
  assert.equal(sc?.readOnlyRootFilesystem, true);
  assert.equal(sc?.allowPrivilegeEscalation, false);
  assert.equal(sc?.runAsNonRoot, true);
  assert.equal(sc?.runAsUser, 10001);
  assert.deepEqual(sc?.capabilities, { drop: ['ALL'] });
  assert.equal(sc?.seccompProfile?.type, 'RuntimeDefault');
  assert.ok(container.resources?.requests?.['cpu'] && container.resources.requests['memory'], 'requests');
  assert.ok(container.resources?.limits?.['cpu'] && container.resources.limits['memory'], 'limits');

  // The config file: args -c PATH is where the ConfigMap's key is mounted.
  const args = container.args ?? [];
  assert.deepEqual(args.slice(0, 2), ['run', '-c']);
  const configPath = args[2]!;
  const mounts = container.volumeMounts ?? [];
  const volume = volumeOf(pod);
  const configMount = mounts.find((m) => volume(m.name).configMap !== undefined);
  assert.ok(configMount, 'the ConfigMap is mounted');
  assert.equal(volume(configMount.name).configMap?.name, configMap.metadata.name);
  const configKey = configMount.subPath ?? basename(configPath);
  assert.equal(
    configMount.subPath ? configMount.mountPath : posix.join(configMount.mountPath, configKey),
    configPath,
    'the ConfigMap key is mounted where args -c points',
  );
  assert.equal(configMount.readOnly, true);
  const configText = configMap.data[configKey];
  assert.ok(configText, `the ConfigMap has ${configKey}`);

  // The REAL validator accepts it (secret files stubbed: they live in the Secret).
  const parsed = parseWithStubbedSecrets(configText, configPath);
  const config = parsed.config;

  // Secrets: every secret file the config names is a key of the Secret, in the
  // directory where the Deployment mounts it — and the Secret has no other keys.
  const secretMount = mounts.find((m) => volume(m.name).secret !== undefined);
  assert.ok(secretMount, 'the Secret is mounted');
  const secretVolume = volume(secretMount.name).secret!;
  assert.equal(secretVolume.secretName, secret.metadata.name);
  assert.equal(secretVolume.items, undefined, 'every key is mounted under its own name');
  assert.equal(secretVolume.defaultMode, 0o400);
  assert.equal(secretMount.readOnly, true);
  const secretFiles = secretFilesOf(parsed, true);
  assert.equal(secretFiles.length, 4, `git token, admin token, webhook secret, alert secret: ${secretFiles}`);
  for (const f of secretFiles) assert.equal(dirname(f), secretMount.mountPath, `${f} is in the Secret mount`);
  assert.deepEqual(secretFiles.map((f) => basename(f)).sort(), Object.keys(secret.stringData).sort());

  // Ports and probes: the config's admin port, on all interfaces, open routes only.
  assert.equal(config.admin.listen.host, '0.0.0.0', 'admin.listen on all pod interfaces');
  const port = config.admin.listen.port;
  const ports = container.ports ?? [];
  assert.deepEqual(
    ports.map((p) => p.containerPort),
    [port],
  );
  const resolvePort = (p: number | string): number | undefined =>
    typeof p === 'number' ? p : ports.find((x) => x.name === p)?.containerPort;
  const probes: Array<[string, Probe | undefined, string]> = [
    ['livenessProbe', container.livenessProbe, '/healthz'],
    ['readinessProbe', container.readinessProbe, '/readyz'],
  ];
  for (const [name, probe, path] of probes) {
    assert.equal(probe?.httpGet?.path, path, `${name} path`);
    assert.ok(openGetRoutes.has(path), `${path} is an open GET route in ROUTES`);
    assert.equal(resolvePort(probe.httpGet.port), port, `${name} port is admin.listen's`);
  }

  // State: state.dir is the persistent volume, the only writable place besides /tmp.
  const stateMount = mounts.find((m) => m.mountPath === config.state.dir);
  assert.ok(stateMount, `a volume is mounted at state.dir ${config.state.dir}`);
  assert.notEqual(stateMount.readOnly, true);
  assert.equal(volume(stateMount.name).persistentVolumeClaim?.claimName, pvc.metadata.name);
  assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
  const writable = mounts.filter((m) => m.readOnly !== true).map((m) => m.mountPath);
  assert.deepEqual(writable.sort(), [config.state.dir, '/tmp'].sort());
  if (config.providers.file)
    assert.ok(writable.includes(config.providers.file.root), 'providers.file.root is a writable mount');

  // Service: the admin port, scraped by Prometheus at /metrics.
  assert.equal(service.spec.type ?? 'ClusterIP', 'ClusterIP');
  assert.deepEqual(service.spec.selector, spec.selector.matchLabels);
  assert.equal(service.spec.ports.length, 1);
  assert.equal(resolvePort(service.spec.ports[0]!.targetPort), port);
  const annotations = service.metadata.annotations ?? {};
  assert.equal(annotations['prometheus.io/scrape'], 'true');
  assert.equal(annotations['prometheus.io/port'], String(port));
  assert.ok(openGetRoutes.has(annotations['prometheus.io/path'] ?? ''), 'the scrape path is an open route');
});

// ---------------------------------------------------------------------------
// Fleet: two cloud agents in Kubernetes, many host agents under systemd
// ---------------------------------------------------------------------------

interface PodDisruptionBudget extends K8sObject {
  spec: {
    minAvailable?: number | string;
    maxUnavailable?: number | string;
    selector: { matchLabels: Record<string, string> };
  };
}

test('kubernetes fleet: two agents on one PostgreSQL, sharded, with the single-agent hardening and a PDB', async () => {
  const { kustomization, only, deployment, configMap, service, secret } = await loadKustomization(
    'deploy/kubernetes-fleet',
    ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service'],
  );
  const pdb = only<PodDisruptionBudget>('PodDisruptionBudget');

  // Two agents; the budget keeps one of them through a voluntary disruption.
  const spec = deployment.spec;
  assert.equal(spec.replicas, 2);
  assert.deepEqual(spec.template.metadata.labels, spec.selector.matchLabels);
  assert.equal(pdb.spec.minAvailable, 1);
  assert.deepEqual(pdb.spec.selector.matchLabels, spec.selector.matchLabels);
  assert.deepEqual(service.spec.selector, spec.selector.matchLabels);
  // An update never drops below one agent: the new pod starts before an old one stops.
  assert.equal(spec.strategy.type, 'RollingUpdate');
  assert.equal(spec.strategy.rollingUpdate?.maxUnavailable, 0);

  // The same hardening as the single-agent Deployment, field for field.
  const [single] = (await loadManifests('deployment.yaml')) as Deployment[];
  const pod = spec.template.spec;
  const singlePod = single!.spec.template.spec;
  for (const key of [
    'automountServiceAccountToken',
    'enableServiceLinks',
    'terminationGracePeriodSeconds',
  ] as const)
    assert.equal(pod[key], singlePod[key], `pod ${key} as in deploy/kubernetes`);
  assert.deepEqual(
    pod.securityContext,
    singlePod.securityContext,
    'pod securityContext as in deploy/kubernetes',
  );
  assert.equal(pod.containers.length, 1);
  const container = pod.containers[0]!;
  const singleContainer = singlePod.containers[0]!;
  assert.deepEqual(container.securityContext, singleContainer.securityContext, 'container securityContext');
  assert.deepEqual(container.resources, singleContainer.resources, 'resources');
  assert.deepEqual(container.livenessProbe, singleContainer.livenessProbe, 'livenessProbe');
  assert.deepEqual(container.readinessProbe, singleContainer.readinessProbe, 'readinessProbe');
  assert.deepEqual(container.ports, singleContainer.ports, 'ports');
  assert.deepEqual(container.args, singleContainer.args, 'args');
  const image = kustomization.images?.find((i) => i.name === container.image);
  assert.ok(image?.newName && image.newTag, 'the image placeholder is set by kustomization images:');

  // The config: the real validator, with the Secret's files stubbed.
  const configPath = container.args![2]!;
  const mounts = container.volumeMounts ?? [];
  const volume = volumeOf(pod);
  const configMount = mounts.find((m) => volume(m.name).configMap !== undefined);
  assert.ok(configMount?.subPath, 'the ConfigMap key is mounted with subPath');
  assert.equal(configMount.mountPath, configPath);
  assert.equal(volume(configMount.name).configMap?.name, configMap.metadata.name);
  const configText = configMap.data[configMount.subPath];
  assert.ok(configText, `the ConfigMap has ${configMount.subPath}`);
  const parsed = parseWithStubbedSecrets(configText, configPath);
  const config = parsed.config;
  assert.equal(config.state.backend, 'postgres');
  assert.ok(config.state.postgres, 'state.postgres');
  assert.ok(config.fleet.shards, 'fleet.shards: the two agents split the EC2 resources');
  assert.ok(config.providers['aws-ec2'], 'the aws-ec2 provider');
  assert.ok(!config.providers.file, 'no host-local files from a pod');
  // agent.id is not written: each agent is its host name, i.e. its pod name.
  assert.doesNotMatch(configText, /^\s*agent:/m, 'agent.id left to the pod name');
  assert.equal(config.agent.id, hostname());

  // Secrets: exactly the Secret's keys, in its read-only 0400 mount (the PostgreSQL password among them).
  const secretMount = mounts.find((m) => volume(m.name).secret !== undefined);
  assert.ok(secretMount, 'the Secret is mounted');
  const secretVolume = volume(secretMount.name).secret!;
  assert.equal(secretVolume.secretName, secret.metadata.name);
  assert.equal(secretVolume.defaultMode, 0o400);
  assert.equal(secretMount.readOnly, true);
  const secretFiles = secretFilesOf(parsed, true);
  assert.ok(
    parsed.secretsRead.length > 0 && secretFiles.includes(configText.match(/passwordFile:\s*(\S+)/)![1]!),
  );
  for (const f of secretFiles) assert.equal(dirname(f), secretMount.mountPath, `${f} is in the Secret mount`);
  assert.deepEqual(secretFiles.map((f) => basename(f)).sort(), Object.keys(secret.stringData).sort());

  // State: no PVC; state.dir (Git cache, lock) is an emptyDir, the only writable mount besides /tmp.
  assert.ok(
    pod.volumes.every((v) => v.persistentVolumeClaim === undefined),
    'no PersistentVolumeClaim',
  );
  const stateMount = mounts.find((m) => m.mountPath === config.state.dir);
  assert.ok(stateMount, `a volume is mounted at state.dir ${config.state.dir}`);
  assert.ok(volume(stateMount.name).emptyDir, 'state.dir is an emptyDir');
  const writable = mounts.filter((m) => m.readOnly !== true).map((m) => m.mountPath);
  assert.deepEqual(writable.sort(), [config.state.dir, '/tmp'].sort());

  // Admin: as the single agent (probes and Prometheus reach the pod IP).
  assert.equal(config.admin.listen.host, '0.0.0.0');
  assert.equal(resolvePortOf(container, service.spec.ports[0]!.targetPort), config.admin.listen.port);
});

function resolvePortOf(container: Container, p: number | string): number | undefined {
  return typeof p === 'number' ? p : container.ports?.find((x) => x.name === p)?.containerPort;
}

test('systemd fleet: the host agent config uses one database, waves, bake, fleet mass drift and a local health check', async () => {
  const text = await readFile(at('deploy/systemd/fleet.yaml'), 'utf8');
  const parsed = parseWithStubbedSecrets(text, '/etc/steward/steward.yaml');
  const config = parsed.config;
  assert.equal(config.state.backend, 'postgres');
  assert.ok(config.state.postgres?.password, 'state.postgres.passwordFile is read');
  assert.equal(config.state.dir, '/var/lib/steward', 'state.dir = StateDirectory=steward');
  const unit = parseUnit(await readFile(at('deploy/systemd/steward.service'), 'utf8'));
  assert.deepEqual(unit.get('Service')?.get('ReadWritePaths'), [config.providers.file?.root]);
  assert.deepEqual(config.fleet.rollout?.waves, [1, '10%', '50%', '100%']);
  assert.ok((config.fleet.rollout?.bakeMs ?? 0) > 0, 'fleet.rollout.bake');
  assert.ok(config.fleet.massDrift, 'fleet.massDrift');
  assert.equal(config.fleet.shards, null, 'host-local files are never sharded');
  assert.doesNotMatch(text, /^\s*id:/m, 'agent.id left to the host name');
  assert.equal(config.agent.id, hostname());
  const http = config.health.filter((h) => h.kind === 'http');
  assert.ok(http.length > 0, 'an http health check');
  for (const h of http)
    assert.ok(
      ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(h.url).hostname),
      `${h.url} is the local service`,
    );
  for (const f of secretFilesOf(parsed, false))
    assert.equal(dirname(f), '/etc/steward', `${f} sits beside the config, as in README.md`);
  assert.equal(config.admin.listen.host, '127.0.0.1', 'admin on loopback');
});

// ---------------------------------------------------------------------------
// Container
// ---------------------------------------------------------------------------

interface Instruction {
  cmd: string;
  args: string;
  line: number;
}
interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

/** Dockerfile → stages (global ARG defaults substituted in FROM). Continuations and comments handled. */
function parseDockerfile(text: string): Stage[] {
  const logical: Instruction[] = [];
  let buf = '';
  let start = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && buf === '')) continue;
    if (buf === '') start = i + 1;
    if (trimmed.endsWith('\\')) {
      buf += `${trimmed.slice(0, -1)} `;
      continue;
    }
    buf += trimmed;
    const m = /^(\S+)\s*(.*)$/s.exec(buf.trim());
    assert.ok(m, `Dockerfile:${start}: cannot parse`);
    logical.push({ cmd: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  }
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of logical) {
    if (ins.cmd === 'FROM') {
      const [image, as, name] = ins.args.split(/\s+/);
      const base = image!.replace(/\$\{?(\w+)\}?/g, (_, v: string) => globalArgs.get(v) ?? '');
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, base, instructions: [] });
    } else if (stages.length === 0) {
      assert.equal(ins.cmd, 'ARG', `Dockerfile:${ins.line}: only ARG may come before FROM`);
      const [k, v] = ins.args.split('=');
      globalArgs.set(k!, v ?? '');
    } else stages.at(-1)!.instructions.push(ins);
  }
  return stages;
}

/** The stage's last instruction of a kind (the one that takes effect). */
function lastOf(stage: Stage, cmd: string): Instruction | undefined {
  return [...stage.instructions].reverse().find((i) => i.cmd === cmd);
}

/** `["a","b"]` → ['a','b']; anything else is not exec form. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const v = JSON.parse(args) as unknown;
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
}

interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

function parseCopy(ins: Instruction): Copy {
  const tokens = execForm(ins.args) ?? ins.args.split(/\s+/);
  let from: string | undefined;
  const rest: string[] = [];
  for (const tok of tokens) {
    if (tok.startsWith('--from=')) from = tok.slice('--from='.length);
    else if (tok.startsWith('--'))
      continue; // --chown, --chmod, --link
    else rest.push(tok);
  }
  assert.ok(rest.length >= 2, `Dockerfile:${ins.line}: COPY needs a source and a destination`);
  return { from, sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

/** .dockerignore patterns (Docker semantics: anchored at the context root; a match excludes a dir's contents). */
function dockerignore(text: string): (rel: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ''));
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === '*' && pattern[i + 1] === '*') {
          re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
          i += pattern[i + 2] === '/' ? 2 : 1;
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (rel) => {
    const parts = rel.split('/');
    let excluded = false;
    for (const rule of rules) {
      for (let n = 1; n <= parts.length; n++) {
        if (rule.re.test(parts.slice(0, n).join('/'))) {
          excluded = !rule.negate;
          break;
        }
      }
    }
    return excluded;
  };
}

/** Files (relative POSIX paths) under `rel` in the build context, .dockerignore applied. */
async function contextFiles(rel: string, ignored: (rel: string) => boolean): Promise<string[]> {
  if (ignored(rel)) return [];
  const st = await lstat(at(rel));
  if (!st.isDirectory()) return [rel];
  const out: string[] = [];
  for (const e of await readdir(at(rel))) out.push(...(await contextFiles(posix.join(rel, e), ignored)));
  return out;
}

interface DockerfileFacts {
  stages: Stage[];
  runtime: Stage;
  containerConfig: Config;
  containerConfigText: string;
}

async function dockerfileFacts(): Promise<DockerfileFacts> {
  const stages = parseDockerfile(await readFile(at('deploy/container/Dockerfile'), 'utf8'));
  const runtime = stages.at(-1)!;
  const containerConfigText = await readFile(at('deploy/container/steward.yaml'), 'utf8');
  const cmd = execForm(lastOf(runtime, 'CMD')?.args ?? '') ?? [];
  const containerConfig = parseWithStubbedSecrets(
    containerConfigText,
    cmd[2] ?? '/etc/steward/steward.yaml',
  ).config;
  return { stages, runtime, containerConfig, containerConfigText };
}

test('container: the Dockerfile is multi-stage, non-root, exec-form, health-checked, and consistent with its config', async () => {
  const { stages, runtime, containerConfig, containerConfigText } = await dockerfileFacts();
  const ignored = dockerignore(await readFile(at('.dockerignore'), 'utf8'));
  for (const p of ['node_modules', 'dist', '.git', '.venv', '.quickstart', 'test', 'agent/x/node_modules'])
    assert.equal(ignored(p), true, `.dockerignore excludes ${p}`);
  for (const p of [
    'agent',
    'bin/steward.js',
    'package.json',
    'package-lock.json',
    'deploy/container/Dockerfile',
  ])
    assert.equal(ignored(p), false, `.dockerignore keeps ${p}`);

  assert.ok(stages.length >= 2, 'multi-stage');
  assert.ok(
    stages.every((s) => s.base === 'node:24-bookworm-slim'),
    `every stage on node:24-bookworm-slim: ${stages.map((s) => s.base)}`,
  );
  const names = stages.map((s) => s.name);
  for (const [i, stage] of stages.entries()) {
    for (const ins of stage.instructions) {
      assert.notEqual(ins.cmd, 'ADD', `Dockerfile:${ins.line}: COPY, not ADD (no URLs, no auto-extraction)`);
      if (ins.cmd !== 'COPY') continue;
      const copy = parseCopy(ins);
      if (copy.from !== undefined) {
        assert.ok(
          names.slice(0, i).includes(copy.from),
          `Dockerfile:${ins.line}: --from names an earlier stage`,
        );
        continue;
      }
      for (const src of copy.sources) {
        assert.ok(!/^[a-z]+:\/\//i.test(src), `Dockerfile:${ins.line}: no URL sources`);
        assert.ok(existsSync(at(src)), `Dockerfile:${ins.line}: ${src} exists in the repository`);
        assert.ok(
          (await contextFiles(src, ignored)).length > 0,
          `Dockerfile:${ins.line}: ${src} is in the build context`,
        );
      }
    }
  }

  const last = (cmd: string): Instruction | undefined => lastOf(runtime, cmd);
  // Non-root, as a number so that Kubernetes' runAsNonRoot can check it.
  const user = last('USER')?.args.split(':')[0];
  assert.ok(
    user !== undefined && /^\d+$/.test(user) && Number(user) !== 0,
    `USER is a non-root UID: ${user}`,
  );
  assert.equal(Number(user), 10001);
  for (const ins of runtime.instructions.filter((i) => i.cmd === 'RUN'))
    assert.doesNotMatch(
      ins.args,
      /apt-get|apk |\bgit\b|curl|wget/,
      `Dockerfile:${ins.line}: runtime installs nothing`,
    );

  // Entry point and command in exec form (signals reach node: SIGTERM = graceful stop).
  const entrypoint = execForm(last('ENTRYPOINT')?.args ?? '');
  assert.deepEqual(entrypoint, ['node', '/opt/steward/bin/steward.js']);
  const cmd = execForm(last('CMD')?.args ?? '');
  assert.deepEqual(cmd, ['run', '-c', '/etc/steward/steward.yaml']);
  assert.equal(last('WORKDIR')?.args, '/opt/steward');

  // The example config matches the image: state.dir is the VOLUME, the admin port is EXPOSEd and health-checked.
  const volumes = execForm(last('VOLUME')?.args ?? '') ?? last('VOLUME')?.args.split(/\s+/) ?? [];
  assert.deepEqual(volumes, [containerConfig.state.dir]);
  assert.equal(containerConfig.admin.listen.host, '0.0.0.0', 'admin.listen on all container interfaces');
  const port = containerConfig.admin.listen.port;
  assert.equal(last('EXPOSE')?.args, String(port));
  assert.ok(
    containerConfig.admin.tokenFile.startsWith(`${containerConfig.state.dir}/`),
    'the generated admin token lives in the state volume',
  );
  const parsed = parseWithStubbedSecrets(containerConfigText, '/etc/steward/steward.yaml');
  for (const f of secretFilesOf(parsed, false))
    assert.equal(dirname(f), '/etc/steward/secrets', `${f} is read from /etc/steward/secrets`);
  assert.equal(containerConfig.providers.file?.root, '/srv/managed');

  const health = last('HEALTHCHECK')?.args ?? '';
  const healthCmd = execForm(health.slice(health.indexOf('CMD') + 3).trim());
  assert.ok(healthCmd, 'HEALTHCHECK CMD in exec form');
  assert.equal(healthCmd[0], 'node', 'the health check uses node (no curl in the slim image)');
  const url = /https?:\/\/[^'"]+/.exec(healthCmd.join(' '))?.[0];
  assert.equal(url, `http://127.0.0.1:${port}/healthz`);
  assert.ok(openGetRoutes.has('/healthz'));
  assert.equal(last('ENV')?.args, 'NODE_ENV=production');
});

/** Snapshot of a tree: relative path → size and mtime, to prove nothing was written there. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const s = await lstat(p);
        out.set(relative(dir, p), `${s.size}:${s.mtimeMs}`);
      }
    }
  };
  await walk(dir);
  return out;
}

test('container: replaying the Dockerfile build gives a production-only layout that runs', {
  timeout: 600_000,
}, async (t) => {
  const { stages, runtime } = await dockerfileFacts();
  const ignored = dockerignore(await readFile(at('.dockerignore'), 'utf8'));
  const base = await mkdtemp(join(tmpdir(), 'steward-image-'));
  let daemon: ChildProcess | undefined;
  t.after(async () => {
    daemon?.kill('SIGKILL');
    await run('rm', ['-rf', base]); // fs.rm takes seconds on two node_modules trees
  });

  // Each stage gets a root directory; absolute paths in the Dockerfile map into it.
  const replayStart = Date.now();
  const roots = new Map<string, string>();
  const timings: string[] = [];
  let rootfs = '';
  let workdir = '/';
  const env: Record<string, string> = {};
  for (const [i, stage] of stages.entries()) {
    rootfs = join(base, `stage-${i}-${stage.name ?? 'final'}`);
    await mkdir(rootfs, { recursive: true });
    if (stage.name) roots.set(stage.name, rootfs);
    workdir = '/';
    const isRuntime = stage === runtime;
    for (const ins of stage.instructions) {
      const inRoot = (p: string): string => join(rootfs, isAbsolute(p) ? p : posix.join(workdir, p));
      if (ins.cmd === 'WORKDIR') {
        workdir = posix.resolve(workdir, ins.args);
        await mkdir(inRoot('.'), { recursive: true });
      } else if (ins.cmd === 'ENV' && isRuntime) {
        const [k, v] = ins.args.split('=');
        env[k!] = v ?? '';
      } else if (ins.cmd === 'COPY') {
        const copy = parseCopy(ins);
        const destIsDir = copy.dest.endsWith('/') || copy.sources.length > 1;
        for (const src of copy.sources) {
          let from: string;
          if (copy.from !== undefined) {
            from = join(roots.get(copy.from)!, src);
            assert.ok(existsSync(from), `Dockerfile:${ins.line}: ${src} exists in stage ${copy.from}`);
          } else from = at(src);
          const to = destIsDir ? join(inRoot(copy.dest), basename(src)) : inRoot(copy.dest);
          await mkdir(dirname(to), { recursive: true });
          if (copy.from !== undefined) {
            // GNU cp: much faster than fs.cp on a node_modules tree.
            const r = await run('cp', ['-a', from, to]);
            assert.equal(r.code, 0, `Dockerfile:${ins.line}: copy ${src}: ${r.stderr}`);
          } else
            for (const f of await contextFiles(src, ignored)) {
              const target = join(to, relative(src, f));
              await mkdir(dirname(target), { recursive: true });
              await cp(at(f), target);
            }
        }
      } else if (ins.cmd === 'RUN' && !isRuntime) {
        // Build-stage commands run as written (npm ci, build, prune), from npm's local cache when it can.
        const started = Date.now();
        const r = await run('sh', ['-c', ins.args], {
          cwd: inRoot('.'),
          env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
          timeoutMs: 300_000,
        });
        assert.equal(r.code, 0, `Dockerfile:${ins.line}: RUN ${ins.args}\n${r.stdout}\n${r.stderr}`);
        timings.push(`RUN ${ins.args}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
    }
  }
  timings.push(`whole build replay: ${((Date.now() - replayStart) / 1000).toFixed(1)} s`);
  for (const line of timings) t.diagnostic(`replayed ${line}`);
  const app = join(rootfs, workdir);

  // The runtime layout: the compiled agent and production dependencies only.
  const pkg = JSON.parse(await readFile(at('package.json'), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  for (const dep of Object.keys(pkg.dependencies))
    assert.ok(existsSync(join(app, 'node_modules', dep, 'package.json')), `runtime has ${dep}`);
  for (const dep of Object.keys(pkg.devDependencies))
    assert.ok(!existsSync(join(app, 'node_modules', dep)), `runtime has no devDependency ${dep}`);
  assert.deepEqual((await readdir(app)).sort(), ['bin', 'dist', 'node_modules', 'package.json']);
  assert.ok(!(await readdir(join(app, 'dist'), { recursive: true })).some((f) => f.endsWith('.ts')));

  // The ENTRYPOINT, as Docker would run it: PATH holds node and nothing else
  // (no git: isomorphic-git is JavaScript), no HOME, no usable TMPDIR.
  const pathDir = join(base, 'path');
  await mkdir(pathDir);
  await symlink(process.execPath, join(pathDir, 'node'));
  const runEnv: NodeJS.ProcessEnv = {
    ...env,
    PATH: pathDir,
    HOME: '/nonexistent',
    TMPDIR: join(base, 'no-tmp-here'),
  };
  assert.equal(runEnv['NODE_ENV'], 'production');
  const entrypoint = execForm(lastOf(runtime, 'ENTRYPOINT')!.args)!;
  const entry = entrypoint.map((a, i) => (i > 0 && isAbsolute(a) ? join(rootfs, a) : a));
  const steward = (args: string[]): Promise<RunResult> =>
    run(entry[0]!, [...entry.slice(1), ...args], { cwd: app, env: runEnv, timeoutMs: 60_000 });

  const before = await snapshot(rootfs);
  const version = await steward(['version']);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), `steward ${pkg.version}`);
  const valid = await steward(['validate', at('examples/quickstart/fleet')]);
  assert.equal(valid.code, 0, `${valid.stdout}${valid.stderr}`);
  assert.match(valid.stderr, /^ok: \d+ resource\(s\)/m);

  // A real daemon from the layout: a local Git source, one File, enforce.
  const work = join(base, 'work');
  const repo = await createTestRepo({ projectRoot: work, name: 'desired' });
  await repo.write(
    'fleet/motd.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: motd }\nspec: { path: etc/motd, content: "from the image\\n" }\n',
  );
  await repo.commit('motd');
  const managed = join(work, 'managed');
  const stateDir = join(work, 'state');
  await mkdir(managed);
  const configFile = join(work, 'steward.yaml');
  await writeFile(
    configFile,
    [
      `source: { url: ${JSON.stringify(repo.workDir)}, ref: main, path: fleet, interval: 1h }`,
      `providers: { file: { root: ${JSON.stringify(managed)} } }`,
      'reconcile: { interval: 1h, mode: enforce }',
      'guardrails: { soak: { observeCycles: 0 } }',
      'admin: { listen: 127.0.0.1:0 }',
      `state: { dir: ${JSON.stringify(stateDir)} }`,
      '',
    ].join('\n'),
  );
  const daemonStart = Date.now();
  const child = spawn(entry[0]!, [...entry.slice(1), 'run', '-c', configFile], {
    cwd: app,
    env: runEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemon = child;
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  let address: string | undefined;
  while (address === undefined) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `the daemon starts:\n${log}`);
    for (const line of log.split('\n')) {
      if (!line.includes('admin API listening')) continue;
      address = (JSON.parse(line) as { address?: string }).address;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let ready = 0;
  while (ready !== 200) {
    assert.ok(Date.now() < deadline, `/readyz turns 200:\n${log}`);
    ready = (await fetch(`${address}/readyz`)).status;
    if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  t.diagnostic(`daemon ready in ${((Date.now() - daemonStart) / 1000).toFixed(1)} s`);
  assert.equal(await readFile(join(managed, 'etc/motd'), 'utf8'), 'from the image\n');
  const token = (await readFile(join(stateDir, 'admin-token'), 'utf8')).trim();
  assert.equal((await stat(join(stateDir, 'admin-token'))).mode & 0o777, 0o600);
  const status = await fetch(`${address}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(status.status, 200);

  // The image's HEALTHCHECK command, verbatim but for the port.
  const health = lastOf(runtime, 'HEALTHCHECK')!.args;
  const healthCmd = execForm(health.slice(health.indexOf('CMD') + 3).trim())!;
  const port = new URL(address).port;
  const probe = healthCmd.map((a) => a.replace('127.0.0.1:7420', `127.0.0.1:${port}`));
  const healthy = await run(probe[0]!, probe.slice(1), { env: runEnv, timeoutMs: 10_000 });
  assert.equal(healthy.code, 0, `HEALTHCHECK passes on a live agent: ${healthy.stderr}`);

  // SIGTERM: graceful stop, exit 0. Then the health check fails.
  child.kill('SIGTERM');
  assert.equal(await exited, 0, `exit 0 on SIGTERM:\n${log}`);
  daemon = undefined;
  const unhealthy = await run(probe[0]!, probe.slice(1), { env: runEnv, timeoutMs: 10_000 });
  assert.equal(unhealthy.code, 1, 'HEALTHCHECK fails once the agent is gone');

  // Read-only root: running wrote nothing into the image's filesystem.
  assert.deepEqual(await snapshot(rootfs), before, 'nothing written under the image root');
});
