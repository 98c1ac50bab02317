import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, prettyLine } from '../../agent/log.js';

test('the real logger censors secrets and file contents, wherever a caller puts them', () => {
  const CANARY = 'AKIA-SECRET-CANARY-log-19c2';
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = createLogger('info', sink);
  log.info({ authorization: `Bearer ${CANARY}` }, 'a');
  log.info({ req: { headers: { authorization: `Bearer ${CANARY}`, 'x-hub-signature-256': CANARY } } }, 'b');
  log.info({ config: { auth: { password: CANARY } }, alert: { secret: CANARY } }, 'c');
  log.info({ resource: { spec: { content: CANARY } }, content: CANARY }, 'd');
  log.info({ event: { resource: { spec: { content: CANARY } } } }, 'e');
  log.info({ resource: 'File/motd', paths: ['replace /spec/content'] }, 'applied');
  assert.equal(lines.length, 6);
  for (const l of lines) assert.ok(!l.includes(CANARY), l);
  assert.match(lines[5]!, /"paths":\["replace \/spec\/content"\]/, 'paths are kept');
});

const sinkOf = (lines: string[]) =>
  new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });

test('prettyLine: time, level, message, then key=value fields (nested ones dotted, odd values quoted)', () => {
  const record = {
    level: 'warn',
    time: '2026-12-02T00:12:34.567Z',
    name: 'steward',
    pid: 42,
    hostname: 'h',
    msg: 'cycles held, frozen by admin-api: incident 7',
    drifted: 3,
    ok: false,
    event: { type: 'frozen', reason: 'two words', by: 'admin-api' },
    codes: ['EACCES', 'ENOENT'],
    path: 'etc/motd',
    empty: {},
    none: null,
  };
  assert.equal(
    prettyLine(record),
    '2026-12-02 00:12:34.567Z WARN  cycles held, frozen by admin-api: incident 7 drifted=3 ok=false event.type=frozen event.reason="two words" event.by=admin-api codes=["EACCES","ENOENT"] path=etc/motd empty={} none=null',
  );
  assert.equal(
    prettyLine({ level: 'info', time: '2026-12-02T00:00:00.000Z', msg: 'two\nlines', v: 'a=b' }),
    '2026-12-02 00:00:00.000Z INFO  two\\nlines v="a=b"',
    'one line per record, whatever a value holds',
  );
  const coloured = prettyLine({ level: 'error', time: '2026-12-02T00:00:00.000Z', msg: 'bad' }, true);
  assert.equal(coloured, '\x1b[2m2026-12-02 00:00:00.000Z\x1b[0m \x1b[31mERROR\x1b[0m bad');
});

test('format pretty writes one readable line per record, redacted as the JSON is; json writes parseable lines', () => {
  const CANARY = 'AKIA-SECRET-CANARY-pretty-77aa';
  const pretty: string[] = [];
  const p = createLogger('info', sinkOf(pretty), { format: 'pretty', colour: false });
  p.info({ resource: 'File/motd', content: CANARY, auth: { password: CANARY } }, 'applied');
  assert.equal(pretty.length, 1);
  assert.match(
    pretty[0]!,
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z INFO {2}applied resource=File\/motd content=\*\*\* auth\.password=\*\*\*\n$/,
  );
  assert.ok(!pretty[0]!.includes(CANARY));

  const json: string[] = [];
  createLogger('info', sinkOf(json), { format: 'json' }).info({ resource: 'File/motd' }, 'applied');
  const rec = JSON.parse(json[0]!) as Record<string, unknown>;
  assert.equal(rec['msg'], 'applied');
  assert.equal(rec['level'], 'info');
  assert.equal(rec['resource'], 'File/motd');
  // Not a terminal: auto is JSON.
  const auto: string[] = [];
  createLogger('info', sinkOf(auto)).info('x');
  assert.equal((JSON.parse(auto[0]!) as { msg: string }).msg, 'x');
});

test('level warn drops info lines, keeps warnings', () => {
  const lines: string[] = [];
  const log = createLogger('warn', sinkOf(lines), { format: 'json' });
  log.info('cycle');
  log.warn('held');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['held'],
  );
});

test('prettyLine: control characters from messages and values are escaped, never written to the terminal', () => {
  // A resource name, an error message or a freeze reason is data: it must not move the cursor, retitle
  // the terminal, clear the screen or overwrite the line (a lone CR) in `--log-format pretty`.
  const hostile = 'File/a\x1b]0;pwned\x07\x1b[2J\rhidden\x9b31m\x7f';
  const line = prettyLine(
    {
      level: 'warn',
      time: '2026-12-02T00:00:00.000Z',
      msg: `drift on ${hostile}`,
      key: hostile,
      nested: { why: hostile, [hostile]: 1 },
    },
    false,
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may be left
  assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/, JSON.stringify(line));
  assert.match(line, /drift on File\/a\\u001b\]0;pwned/);
});
