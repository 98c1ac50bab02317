/** `steward run`: the daemon in the foreground until SIGTERM/SIGINT (used by the CLI and the quickstart). */
import type { Config } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger } from './log.js';

/** Runs the agent until SIGTERM/SIGINT; resolves with the exit code. */
export async function runAgent(config: Config): Promise<number> {
  const log = createLogger(config.log.level);
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
