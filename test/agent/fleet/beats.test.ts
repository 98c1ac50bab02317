/** Heartbeats one at a time: never two in flight, a burst of asks makes one more beat, nothing after close. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serialBeats } from '../../../agent/fleet/beats.js';

/** A send that waits until released, counting how many run at once. */
function gatedSend() {
  const releases: Array<() => void> = [];
  let running = 0;
  let most = 0;
  let sent = 0;
  const send = () =>
    new Promise<void>((resolve) => {
      running++;
      sent++;
      most = Math.max(most, running);
      releases.push(() => {
        running--;
        resolve();
      });
    });
  const releaseNext = async () => {
    while (releases.length === 0) await new Promise((r) => setImmediate(r));
    releases.shift()!();
  };
  return { send, releaseNext, stats: () => ({ sent, most }) };
}

test('a beat asked for while one is in flight waits for it; a burst of asks makes one beat', async () => {
  const g = gatedSend();
  const b = serialBeats(g.send);
  b.beat(); // in flight
  b.beat();
  b.beat();
  b.beat(); // three asks while the first is in flight
  await g.releaseNext();
  await g.releaseNext(); // the one follow-up
  await b.close();
  assert.deepEqual(g.stats(), { sent: 2, most: 1 });
});

test('a failing send does not stop later beats; nothing is sent after close', async () => {
  let sent = 0;
  const b = serialBeats(async () => {
    sent++;
    throw new Error('database down');
  });
  b.beat();
  await b.close();
  b.beat();
  assert.equal(sent, 1);
  const c = serialBeats(async () => {
    sent++;
  });
  c.beat();
  await c.close();
  c.beat();
  await c.close();
  assert.equal(sent, 2);
});

test('a beat asked for right as the one in flight ends is sent, not lost (whatever the microtask it lands on)', async () => {
  for (let depth = 0; depth < 8; depth++) {
    let sent = 0;
    let b: ReturnType<typeof serialBeats> | undefined;
    b = serialBeats(async () => {
      sent++;
      if (sent !== 1) return;
      // Asked `depth` microtasks after this send returns: around the loop's last look at "again".
      let p: Promise<void> = Promise.resolve();
      for (let i = 0; i < depth; i++) p = p.then(() => undefined);
      void p.then(() => b!.beat());
    });
    b.beat();
    for (let i = 0; i < 50 && sent < 2; i++) await new Promise((r) => setImmediate(r));
    await b.close();
    assert.equal(sent, 2, `the beat asked ${depth} microtasks after the first send ended`);
  }
});
