/**
 * The operator CLI against a hostile admin API (a real loopback server): whatever it answers — a freeze
 * reason, a drift name, an error message, a body that is not JSON — reaches the terminal without a control
 * character that would move the cursor, retitle the window, clear the screen or overwrite a line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';

const EVIL = 'x\x1b]0;pwned\x07\x1b[2J\rfake line\x9b31m';
// biome-ignore lint/suspicious/noControlCharactersInRegex: no control character but \n and \t may reach the terminal
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

const status = {
  mode: 'enforce',
  freeze: { frozen: true, reason: EVIL, by: EVIL, since: new Date().toISOString(), until: null, hint: EVIL },
  revision: {
    sha: 'a'.repeat(40),
    fetchedAt: new Date().toISOString(),
    resources: 1,
    verified: null,
    signer: null,
    approved: false,
    rejected: null,
  },
  state: { writable: false, error: EVIL },
  source: { error: { code: 'X', message: EVIL } },
  lastCycle: null,
  cycles: 1,
};
const drift = {
  revision: 'a'.repeat(40),
  at: new Date().toISOString(),
  drift: [
    {
      kind: 'File',
      name: EVIL,
      id: EVIL,
      patch: [{ op: 'replace', path: '/spec/mode', value: EVIL }],
      firstSeen: null,
      attempts: 0,
      state: 'drifted',
      held: null,
    },
  ],
  errors: [{ kind: 'File', name: EVIL, id: null, code: 'E', error: EVIL }],
};

test('status, drift, a refusal and --json print no terminal control characters from the API', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-cli-terminal-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'tok\n');
  const server = createServer((req, res) => {
    const send = (code: number, body: string) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(body);
    };
    if (req.url === '/v1/status') return send(200, JSON.stringify(status));
    if (req.url === '/v1/drift') return send(200, JSON.stringify(drift));
    if (req.url === '/v1/audit') return send(200, `{"records": [], "raw": "${EVIL}"}`); // not JSON
    return send(409, JSON.stringify({ error: { code: `C${EVIL}`, message: EVIL } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const args of [['status'], ['drift'], ['unfreeze'], ['audit', '--json'], ['status', '--json']]) {
    const out: string[] = [];
    const err: string[] = [];
    await main(
      [...args, '--api', api, '--token-file', tokenFile],
      { out: (s) => out.push(s), err: (s) => err.push(s) },
      {},
    );
    const all = [...out, ...err].join('\n');
    assert.ok(all.includes('pwned'), `${args.join(' ')}: the hostile text is shown (escaped): ${all}`);
    assert.doesNotMatch(all, CONTROL, `${args.join(' ')}: ${JSON.stringify(all)}`);
  }
});

test('validate prints a hostile manifest key escaped (a pushed YAML cannot steer the CI log or terminal)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-cli-validate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'a.yaml'),
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a.conf, content: x, "\\e]0;pwned\\a\\e[2J\\r": 1 }\n',
  );
  const lines: string[] = [];
  const code = await main(['validate', dir], { out: (s) => lines.push(s), err: (s) => lines.push(s) }, {});
  assert.equal(code, 1);
  const all = lines.join('\n');
  assert.ok(all.includes('pwned'), all);
  assert.doesNotMatch(all, CONTROL, JSON.stringify(all));
});
