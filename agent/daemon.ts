/**
 * The whole daemon: lock, agent, metrics, admin API (and alerts), started
 * and stopped in the right order. The CLI's `run` and the end-to-end tests
 * both use it.
 */
import { type AdminServer, readAdminSecrets, startAdminServer } from './admin/server.js';
import { Alerter, type OpenAlert } from './alerts.js';
import type { Agent } from './agent.js';
import { buildAgent, buildGate, buildStore } from './build.js';
import { connectFleet, type JoinedFleet } from './fleet/connect.js';
import type { FleetSource } from './fleet/registry.js';
import type { HealthSource } from './health/types.js';
import { selfFleet } from './fleet/view.js';
import type { Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { displayUrl } from './source/http-client.js';
import { MASS_DRIFT_ACTOR } from './reconciler.js';
import { acquireLock, checkStateDir, type Lock } from './state/lock.js';

export interface Daemon {
  agent: Agent;
  admin: AdminServer;
  metrics: Metrics;
  alerter: Alerter;
  /** Graceful: no new action starts, the one in flight finishes, state is flushed, the API closes. */
  stop(): Promise<void>;
}

export interface DaemonOptions {
  log?: Logger;
  clock?: () => number;
  random?: () => number;
  /** Skip the initial poll and timers (tests drive cycles themselves). */
  manual?: boolean;
  /** Where the heartbeat (and so the rollout gate) reads this agent's health; default: its `health:` checks. */
  health?: HealthSource;
}

export async function startDaemon(config: Config, opts: DaemonOptions = {}): Promise<Daemon> {
  const log = opts.log ?? createLogger(config.log.level);
  // Everything that can fail is checked before anything is created: the state dir and the admin
  // secrets are read-only checks, then the admin port is bound (serving 503 until `open()`), and
  // only then are the lock, the state and a generated token file written.
  await checkStateDir(config.state.dir);
  const secrets = await readAdminSecrets(config, log);
  const metrics = new Metrics();
  const store = buildStore(config, log);
  const gate = buildGate(config, store);
  const agent: Agent = buildAgent(config, log, {
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.random ? { random: opts.random } : {}),
    onProviderRequest: (provider, operation) => metrics.providerRequests.inc({ provider, operation }),
    store,
    ...(gate ? { gate } : {}),
    onShards: (held) => metrics.setShardsHeld(held.length),
  });
  let fleet: FleetSource = selfFleet(agent, config.agent);
  let joined: JoinedFleet | undefined;
  const admin: AdminServer = await startAdminServer({
    agent,
    config,
    metrics,
    log,
    secrets,
    fleet: { view: () => fleet.view() },
  });
  let lock: Lock | undefined;
  try {
    lock = await acquireLock(config.state.dir);
    await agent.init();
    // The heartbeat, and so the rollout gate, reads the agent's own `health:` checks (a test may give its own).
    joined = await connectFleet(config, agent, store, log, opts.health ?? agent.health);
    fleet = joined;
    const beats = joined;
    await agent.startShards(); // fleet.shards: a count the fleet's database does not pin stops the start
    const a = agent;
    const control = () =>
      metrics.setControl({ frozen: a.currentState.freeze !== null, observe: a.mode === 'observe' });
    control();
    metrics.setWindow(a.window.open);
    if (a.source.current) metrics.setRevision(a.source.current.sha, a.source.current.verified === true);
    a.onCycle((r) => metrics.cycle(r));
    metrics.healthChecks(a.healthChecks.map((c) => c.name));
    a.onHealthResult((r) => metrics.health(r));
    a.onPollOutcome((o) => {
      if (o.kind === 'error') metrics.sourceErrors.inc();
      if (o.kind === 'accepted') metrics.setRevision(o.revision.sha, o.revision.verified === true);
    });
    a.onEvent((e) => {
      metrics.event(e);
      if (
        e.type === 'frozen' ||
        e.type === 'unfrozen' ||
        e.type === 'mass_drift_frozen' ||
        e.type === 'mode_changed'
      )
        control();
      if (e.type === 'window_override' || e.type === 'window_override_ended')
        metrics.setWindow(a.window.open);
    });
    const freeze = a.currentState.freeze;
    const initiallyOpen: OpenAlert[] = freeze
      ? [{ event: freeze.by === MASS_DRIFT_ACTOR ? 'mass_drift_frozen' : 'frozen' }]
      : [];
    const alerter = new Alerter({
      receivers: config.alerts,
      log,
      onOutcome: (event, outcome) => metrics.alerts.inc({ event, outcome }),
      revision: () => a.source.current?.sha ?? null,
      initiallyOpen,
    });
    a.onEvent((e) => alerter.handle(e));
    await admin.open();
    log.info(
      {
        config: config.file,
        source: config.source.kind === 'http' ? displayUrl(config.source.url) : config.source.url,
        ref: config.source.ref,
        mode: a.mode,
        frozen: a.currentState.freeze !== null,
        stateDir: config.state.dir,
        backend: config.state.backend,
        agent: config.agent.id,
        admin: admin.url,
      },
      'steward started',
    );
    a.startHealth(); // also in manual mode: checks never make the agent act, and tests read them
    if (!opts.manual) await a.start();
    const server = admin;
    const held = lock;
    return {
      agent: a,
      admin: server,
      metrics,
      alerter,
      async stop() {
        await beats.close(); // before the store's pool ends
        await a.stop();
        await server.close();
        await alerter.drain(5_000); // queued alerts get a moment to leave
        await alerter.close();
        await held.release();
      },
    };
  } catch (e) {
    await joined?.close();
    await agent.stop();
    await admin.close();
    await lock?.release();
    throw e;
  }
}
