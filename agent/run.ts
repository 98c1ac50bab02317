/** `steward run`: the daemon in the foreground until SIGTERM/SIGINT (used by the CLI and the quickstart). */
import type { Config } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger, type LogFormat, type LogLevel } from './log.js';

export interface RunOptions {
  /** Overrides log.level (from --log-level or $STEWARD_LOG_LEVEL). */
  logLevel?: LogLevel | undefined;
  /** Overrides log.format (from --log-format). */
  logFormat?: LogFormat | undefined;
}

/** Runs the agent until SIGTERM/SIGINT; resolves with the exit code. */
export async function runAgent(config: Config, opts: RunOptions = {}): Promise<number> {
  const log = createLogger(opts.logLevel ?? config.log.level, undefined, {
    format: opts.logFormat ?? config.log.format,
  });
  const daemon = await startDaemon(config, { log });
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'stopping: finishing the action in flight');
  await daemon.stop();
  log.info('stopped');
  return 0;
}
