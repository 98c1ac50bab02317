/**
 * The whole daemon: lock, agent, metrics, admin API (and alerts), started
 * and stopped in the right order. The CLI's `run` and the end-to-end tests
 * both use it.
 */
import { type AdminServer, startAdminServer } from './admin/server.js';
import { Alerter, type OpenAlert } from './alerts.js';
import type { Agent } from './agent.js';
import { buildAgent } from './build.js';
import type { Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { MASS_DRIFT_ACTOR } from './reconciler.js';
import { acquireLock, type Lock } from './state/lock.js';

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
}

export async function startDaemon(config: Config, opts: DaemonOptions = {}): Promise<Daemon> {
  const log = opts.log ?? createLogger(config.log.level);
  const lock: Lock = await acquireLock(config.state.dir);
  let agent: Agent | undefined;
  let admin: AdminServer | undefined;
  try {
    const metrics = new Metrics();
    agent = buildAgent(config, log, {
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      onProviderRequest: (provider, operation) => metrics.providerRequests.inc({ provider, operation }),
    });
    await agent.init();
    const a = agent;
    const control = () =>
      metrics.setControl({ frozen: a.currentState.freeze !== null, observe: a.mode === 'observe' });
    control();
    if (a.source.current) metrics.setRevision(a.source.current.sha);
    a.onCycle((r) => metrics.cycle(r));
    a.onPollOutcome((o) => {
      if (o.kind === 'error') metrics.sourceErrors.inc();
      if (o.kind === 'accepted') metrics.setRevision(o.revision.sha);
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
    admin = await startAdminServer({ agent: a, config, metrics, log });
    log.info(
      {
        config: config.file,
        source: config.source.url.replace(/\/\/[^@/]*@/, '//'),
        ref: config.source.ref,
        mode: a.mode,
        frozen: a.currentState.freeze !== null,
        stateDir: config.state.dir,
        admin: admin.url,
      },
      'steward started',
    );
    if (!opts.manual) await a.start();
    const server = admin;
    return {
      agent: a,
      admin: server,
      metrics,
      alerter,
      async stop() {
        await a.stop();
        await server.close();
        await alerter.drain(5_000); // queued alerts get a moment to leave
        await alerter.close();
        await lock.release();
      },
    };
  } catch (e) {
    await agent?.stop();
    await admin?.close();
    await lock.release();
    throw e;
  }
}
