/**
 * What to tell an operator when the mass-drift halt froze the agent: the
 * exact command that lets the change through. The first start of a real
 * config is the common case (creating most resources is mass drift, by
 * design), so a change that mostly creates says so.
 */

/** An op list (raw or display form) that creates its resource: `/spec/ensure` set to `present`. */
export function createsResource(patch: ReadonlyArray<{ path: string; value?: unknown }>): boolean {
  return patch.some((op) => op.path === '/spec/ensure' && op.value === 'present');
}

/** A path as a shell word: left alone when plain, else single-quoted. */
function shellWord(s: string): string {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** `steward approve <sha> -c <config>` (no `-c` when the config is embedded or unknown). */
export function approveCommand(sha: string, configFile: string | null): string {
  return `steward approve ${sha}${configArg(configFile)}`;
}

/** ` -c <file>` for a real (absolute) config path, else nothing. */
function configArg(configFile: string | null): string {
  return configFile?.startsWith('/') ? ` -c ${shellWord(configFile)}` : '';
}

/**
 * The hint of a mass-drift freeze: `creates` of the `drifted` resources would be created. Says what to
 * run if the change is intended, and what to do if it is not.
 */
export function massDriftHint(
  sha: string,
  configFile: string | null,
  creates: number,
  drifted: number,
): string {
  const approve = approveCommand(sha, configFile);
  const unfreeze = `steward unfreeze${configArg(configFile)}`;
  const first =
    drifted > 0 && creates * 2 > drifted
      ? `${creates} of the ${drifted} changes create a resource (a first start?): check them with steward drift, then run ${approve}`
      : `if this change is intended, run ${approve}`;
  return `${first}; if it is not, fix Git, then run ${unfreeze}`;
}
