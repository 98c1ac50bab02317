/**
 * Test helper: real signing keys (ssh-keygen, GnuPG with a temporary
 * GNUPGHOME) and real signed commits (`git commit -S`), in the isolated git
 * environment of git-repo.ts. Call `stopGpg` for every GnuPG home made, so no
 * gpg-agent outlives the test.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import isogit from 'isomorphic-git';
import { git, isolatedGitEnv } from './git-repo.js';

export function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { env: isolatedGitEnv(env), encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

export type SshKeyType = 'ed25519' | 'ecdsa-256' | 'ecdsa-384' | 'ecdsa-521' | 'rsa';

export interface SshKey {
  privatePath: string;
  publicPath: string;
  /** `keytype base64 comment`, as in the .pub file. */
  publicLine: string;
  /** `SHA256:...` as ssh-keygen -l prints it. */
  fingerprint: string;
}

/** `ssh-keygen -t <type> -N ''` into `dir/<name>`. */
export async function makeSshKey(dir: string, name: string, type: SshKeyType): Promise<SshKey> {
  await mkdir(dir, { recursive: true });
  const privatePath = join(dir, name);
  const [t, bits] = type.startsWith('ecdsa-')
    ? ['ecdsa', type.slice(6)]
    : [type, type === 'rsa' ? '3072' : ''];
  const args = ['-q', '-t', t, '-N', '', '-C', `${name}@test`, '-f', privatePath];
  if (bits) args.push('-b', bits);
  await run('ssh-keygen', args);
  const publicLine = (await readFile(`${privatePath}.pub`, 'utf8')).trim();
  const fingerprint = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${privatePath}.pub`])).split(
    ' ',
  )[1]!;
  return { privatePath, publicPath: `${privatePath}.pub`, publicLine, fingerprint };
}

/** An allowed-signers line for `key`. */
export function allowedSignersLine(principal: string, key: SshKey, options = ''): string {
  const [type, b64] = key.publicLine.split(' ');
  return `${principal}${options ? ` ${options}` : ''} ${type} ${b64}`;
}

export interface GpgKey {
  home: string;
  fingerprint: string;
  /** The primary key's armored public key (gpg --export --armor). */
  armoredPublic: string;
}

/** A GnuPG home with one ed25519 primary key (`expire` as gpg takes it: `1d`, `never`; `usage`: `sign` or `cert`). */
export async function makeGpgKey(
  home: string,
  uid: string,
  expire = 'never',
  usage = 'sign',
): Promise<GpgKey> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const env = { GNUPGHOME: home };
  await run('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', usage, expire], env);
  const colons = await run('gpg', ['--batch', '--with-colons', '--list-keys', uid], env);
  const fingerprint = colons
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9]!;
  const armoredPublic = await run('gpg', ['--batch', '--armor', '--export', fingerprint], env);
  return { home, fingerprint, armoredPublic };
}

/** Revokes the key with the revocation certificate gpg made, and returns the revoked public key. */
export async function revokeGpgKey(key: GpgKey): Promise<string> {
  const env = { GNUPGHOME: key.home };
  const cert = await readFile(join(key.home, 'openpgp-revocs.d', `${key.fingerprint}.rev`), 'utf8');
  // gpg prefixes the armor with ':' so the certificate is not imported by accident.
  await run('gpg', ['--batch', '--import'], env, cert.replace(/^:-----BEGIN/m, '-----BEGIN'));
  return run('gpg', ['--batch', '--armor', '--export', key.fingerprint], env);
}

/** Stops the gpg-agent (and other daemons) of a GnuPG home. */
export async function stopGpg(home: string): Promise<void> {
  if (fs.existsSync(home)) await run('gpgconf', ['--kill', 'all'], { GNUPGHOME: home });
}

/** A new repository (work tree only) in `dir`. */
export async function initRepo(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await git(dir, ['init', '--quiet', '-b', 'main']);
}

export type Signing =
  | { format: 'ssh'; key: SshKey; program?: string }
  | { format: 'openpgp'; key: GpgKey }
  | { format: 'none' };

/** Writes a file, commits everything with `git commit -S` as `signing` says; returns the sha. */
export async function commitSigned(
  dir: string,
  signing: Signing,
  message: string,
  opts: { file?: string; date?: string } = {},
): Promise<string> {
  await writeFile(join(dir, opts.file ?? 'state.txt'), `${message}\n`);
  await git(dir, ['add', '-A']);
  const env: Record<string, string> = {};
  if (opts.date) {
    env['GIT_COMMITTER_DATE'] = opts.date;
    env['GIT_AUTHOR_DATE'] = opts.date;
  }
  let config: string[] = [];
  let sign = ['-S'];
  if (signing.format === 'ssh') {
    config = ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${signing.key.privatePath}`];
    if (signing.program) config.push('-c', `gpg.ssh.program=${signing.program}`);
  } else if (signing.format === 'openpgp') {
    config = [
      '-c',
      'gpg.format=openpgp',
      '-c',
      'gpg.program=gpg',
      '-c',
      `user.signingkey=${signing.key.fingerprint}`,
    ];
    env['GNUPGHOME'] = signing.key.home;
  } else sign = ['--no-gpg-sign'];
  await git(dir, [...config, 'commit', '--quiet', '--allow-empty', ...sign, '-m', message], env);
  return git(dir, ['rev-parse', 'HEAD']);
}

/** A wrapper for gpg.ssh.program that signs with namespace `namespace` instead of git's `git`. */
export async function sshProgramWithNamespace(dir: string, namespace: string): Promise<string> {
  const path = join(dir, `ssh-keygen-${namespace}.sh`);
  const script = `#!/bin/sh
# Replaces "-n git" by "-n ${namespace}" and runs the real ssh-keygen.
for a in "$@"; do
  if [ "$prev" = "-n" ]; then a="${namespace}"; fi
  set -- "$@" "$a"; shift; prev="$a"
done
exec ssh-keygen "$@"
`;
  await writeFile(path, script);
  await chmod(path, 0o755);
  return path;
}

/** The raw bytes of commit `oid`, read with isomorphic-git. */
export async function readRawCommit(dir: string, oid: string): Promise<Uint8Array> {
  const { object } = await isogit.readObject({ fs, gitdir: join(dir, '.git'), oid, format: 'content' });
  return object as Uint8Array;
}

/** Writes `raw` as a commit object (git hash-object) and returns its oid. */
export async function writeRawCommit(dir: string, raw: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      ['hash-object', '-t', 'commit', '-w', '--stdin'],
      { cwd: dir, env: isolatedGitEnv(), encoding: 'utf8' },
      (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout.trim())),
    );
    child.stdin!.end(Buffer.from(raw));
  });
}
