/**
 * A process whose only work is one alert: it queues it for the receiver at
 * argv[2], awaits `drain()` and prints what happened. Without drain() keeping
 * the process alive, it would exit during the (unref'd) backoff wait.
 */
import { pino } from 'pino';
import { Alerter, type AlertOutcome } from '../../agent/alerts.js';

const url = process.argv[2];
if (!url) throw new Error('usage: alert-drain.ts <receiver url>');
const outcomes: AlertOutcome[] = [];
const alerter = new Alerter({
  receivers: [{ url, secret: null, events: ['frozen'], timeoutMs: 5_000 }],
  log: pino({ level: 'silent' }),
  random: () => 0.99,
  retry: { attempts: 2, baseMs: 300, maxMs: 300 },
  onOutcome: (_, outcome) => outcomes.push(outcome),
});
alerter.handle({ type: 'frozen', reason: 'drain test', by: 'test' });
await alerter.drain();
await alerter.close();
process.stdout.write(`drained ${outcomes.join(',')}\n`);
