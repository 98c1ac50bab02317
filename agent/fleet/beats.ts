/**
 * Heartbeats one at a time. A beat asked for while one is in flight is sent
 * once that one has landed (several such asks make one beat), and each beat
 * reads the agent's figures when it is SENT: an older beat can never land
 * after a newer one and overwrite it (over a pool of connections, two
 * concurrent INSERTs may commit in either order — a healthy beat from a cycle's
 * end landed after the failing one of the check that followed, and hid the
 * failure from the rollout gate until the next cycle).
 */
export interface BeatScheduler {
  /** Sends a beat now, or right after the one in flight. */
  beat(): void;
  /** Stops: no beat starts after this; resolves once the one in flight (if any) has ended. */
  close(): Promise<void>;
}

export function serialBeats(send: () => Promise<void>): BeatScheduler {
  let inFlight: Promise<void> | null = null;
  let again = false;
  let closed = false;
  const run = async () => {
    do {
      again = false;
      await send().catch(() => undefined); // `send` reports its own failures
    } while (again && !closed);
    inFlight = null; // in the same turn as the last check of `again`: an ask after it starts a new run
  };
  return {
    beat() {
      if (closed) return;
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = run();
    },
    async close() {
      closed = true;
      await inFlight;
    },
  };
}
