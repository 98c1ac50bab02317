// The steward dashboard (docs/dashboard.md). Plain browser ESM, no build step, no dependencies.
//
// Everything shown comes from Git and from the managed hosts: it is hostile text. It is only ever put
// into the page as text (textContent, createElement); never as HTML.
//
// The token is kept in sessionStorage (this tab only), sent only as `Authorization: Bearer` to this
// origin, and never put in a URL.

const TOKEN_KEY = 'steward.adminToken';
const POLL_MS = 5000;

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
};

/** A new element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const shortSha = (sha) => (typeof sha === 'string' ? sha.slice(0, 12) : '—');
const when = (iso) => {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
};

// ---------------------------------------------------------------------------
// token and API
// ---------------------------------------------------------------------------

const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A call to this agent's admin API with the bearer token; an error answer throws ApiError (its code and message). */
async function api(method, path, body, tokenValue = token.get()) {
  const headers = { authorization: `Bearer ${tokenValue ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
    redirect: 'error',
  });
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = json?.error;
    throw new ApiError(
      res.status,
      typeof err?.code === 'string' ? err.code : `HTTP_${res.status}`,
      typeof err?.message === 'string' ? err.message : `HTTP ${res.status}`,
    );
  }
  return json;
}

// ---------------------------------------------------------------------------
// views
// ---------------------------------------------------------------------------

/** Back to the prompt: nothing the last token could read stays in the page. */
function showLogin(message = '') {
  stopPolling();
  lastStatus = null;
  shown.clear();
  for (const id of ['status-list', 'drift-list', 'drift-errors', 'audit-list', 'fleet-body'])
    $(id).replaceChildren();
  for (const id of ['drift-summary', 'action-result']) $(id).textContent = '';
  for (const id of ['status-error', 'drift-error', 'audit-error', 'fleet-error']) sectionError(id, '');
  delete document.body.dataset.loaded;
  $('app').hidden = true;
  $('forget').hidden = true;
  $('banner').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  const input = $('token');
  input.value = '';
  input.focus();
}

function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('forget').hidden = false;
}

/** A row of the status list: a term and its description (text or nodes). */
const row = (term, ...desc) => [h('dt', {}, term), h('dd', {}, ...desc)];

function renderStatus(s) {
  const list = $('status-list');
  const f = s.freeze ?? {};
  const rev = s.revision ?? {};
  const c = s.lastCycle;
  const rows = [
    ...row('Mode', h('strong', { id: 'status-mode' }, String(s.mode))),
    ...row(
      'Freeze',
      f.frozen
        ? h(
            'span',
            { id: 'status-freeze', class: 'bad' },
            `frozen: ${f.reason ?? ''}`,
            f.by ? ` (by ${f.by}` : ' (',
            `, since ${when(f.since)}`,
            f.until ? `, until ${when(f.until)}` : '',
            ')',
          )
        : h('span', { id: 'status-freeze', class: 'good' }, 'not frozen'),
    ),
    ...row(
      'Revision',
      h('code', { id: 'status-revision', title: rev.sha ?? '' }, shortSha(rev.sha)),
      rev.signer ? ` signed by ${rev.signer}` : '',
      rev.verified === true
        ? ' (verified)'
        : rev.verified === false
          ? ' (NOT verified)'
          : ' (unverified source)',
      rev.approved ? ', approved' : '',
      rev.fetchedAt ? `, fetched ${when(rev.fetchedAt)}` : '',
      `, ${rev.resources ?? 0} resources`,
    ),
  ];
  if (rev.rejected)
    rows.push(
      ...row(
        'Rejected revision',
        h('code', {}, shortSha(rev.rejected.sha)),
        ` at ${when(rev.rejected.at)}: `,
        h(
          'ul',
          {},
          (rev.rejected.problems ?? []).map((p) => h('li', {}, String(p))),
        ),
      ),
    );
  rows.push(
    ...row(
      'Last cycle',
      c
        ? `${when(c.startedAt)} (${c.durationMs} ms): ${c.managed} managed, ${c.drifted} drifted, ${c.applied} applied, ${c.failed} failed, ${c.observeErrors} observe errors${
            Object.keys(c.held ?? {}).length
              ? `, held: ${Object.entries(c.held)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}`
              : ''
          }${c.soaking ? ', soaking' : ''}`
        : 'none yet',
    ),
    ...row(
      'State',
      s.state?.writable
        ? h('span', { class: 'good' }, 'writable')
        : h('span', { class: 'bad' }, `NOT writable: ${s.state?.error ?? ''} (acting on nothing)`),
    ),
  );
  if (s.source?.error)
    rows.push(
      ...row('Source', h('span', { class: 'bad' }, `${s.source.error.code}: ${s.source.error.message}`)),
    );
  rows.push(
    ...row(
      'Approvals',
      (s.approvals ?? []).length === 0
        ? 'none'
        : h(
            'ul',
            {},
            s.approvals.map((a) =>
              h(
                'li',
                {},
                h('code', {}, shortSha(a.sha)),
                ` by ${a.by} at ${when(a.at)}`,
                a.resources === null ? '' : ` (${a.resources} resources)`,
              ),
            ),
          ),
    ),
  );
  list.replaceChildren(...rows);

  const banner = $('banner');
  banner.hidden = !f.frozen;
  banner.textContent = f.frozen ? `FROZEN: ${f.reason ?? ''}` : '';
  $('unfreeze-button').disabled = !f.frozen;
  $('approve-button').disabled = !f.frozen || !rev.sha;
  $('approve-button').title = f.frozen ? '' : 'approving happens while unfreezing: the agent is not frozen';
  $('mode-observe').disabled = s.mode === 'observe';
  $('mode-enforce').disabled = s.mode === 'enforce';
}

const digestText = (d) => (d ? `sha256:${String(d.sha256).slice(0, 12)} (${d.bytes} bytes)` : 'none');

/** One display op (agent/patch-view.ts): a line diff, digests, or the JSON value. */
function renderOp(op) {
  const head = h(
    'div',
    { class: 'op-head' },
    h('span', { class: 'op' }, String(op.op)),
    ' ',
    h('code', {}, String(op.path)),
  );
  if ('before' in op || 'after' in op) {
    head.append(` ${digestText(op.before)} → ${digestText(op.after)}`);
    if (typeof op.diff !== 'string')
      return h(
        'div',
        { class: 'op-item' },
        head,
        h('p', { class: 'muted' }, 'contents not shown (sensitive, or too large to diff): digests only'),
      );
    const pre = h('pre', { class: 'diff' });
    for (const line of op.diff.replace(/\n$/, '').split('\n')) {
      const cls = line.startsWith('@@')
        ? 'hunk'
        : line.startsWith('+')
          ? 'add'
          : line.startsWith('-')
            ? 'del'
            : 'ctx';
      pre.append(h('span', { class: cls }, line), '\n');
    }
    return h('div', { class: 'op-item' }, head, pre);
  }
  if ('value' in op) head.append(' = ', h('code', { class: 'value' }, JSON.stringify(op.value)));
  return h('div', { class: 'op-item' }, head);
}

/** Drifted resources the operator collapsed (kind/name). */
const collapsed = new Set();

function renderDrift(d) {
  const drift = Array.isArray(d.drift) ? d.drift : [];
  $('drift-summary').textContent =
    d.revision === null
      ? 'No cycle has run yet.'
      : `${drift.length} drifted at revision ${shortSha(d.revision)} (cycle of ${when(d.at)})`;
  const items = drift.map((r) => {
    const key = `${r.kind}/${r.name}`;
    const item = h(
      'details',
      { class: `drift-item state-${r.state}`, open: !collapsed.has(key) },
      h(
        'summary',
        {},
        h('span', { class: 'res' }, `${r.kind}/${r.name}`),
        r.id ? h('code', { class: 'res-id' }, String(r.id)) : '',
        h('span', { class: `state state-${r.state}` }, String(r.state)),
        r.held ? h('span', { class: 'held' }, `held: ${r.held}`) : '',
      ),
      h(
        'p',
        { class: 'muted' },
        `first seen ${when(r.firstSeen)}, ${r.attempts} ${r.attempts === 1 ? 'attempt' : 'attempts'}`,
      ),
      (r.patch ?? []).map(renderOp),
    );
    // Collapsed stays collapsed across refreshes.
    item.addEventListener('toggle', () => {
      if (item.open) collapsed.delete(key);
      else collapsed.add(key);
    });
    return item;
  });
  $('drift-list').replaceChildren(...items);
  const errors = Array.isArray(d.errors) ? d.errors : [];
  $('drift-errors').replaceChildren(
    ...(errors.length === 0
      ? []
      : [
          h('h3', {}, 'Could not observe'),
          h(
            'ul',
            {},
            errors.map((e) =>
              h('li', {}, `${e.kind}/${e.name}: `, h('code', {}, String(e.code)), ` ${e.error}`),
            ),
          ),
        ]),
  );
}

function renderAudit(a) {
  const records = Array.isArray(a.records) ? a.records : [];
  $('audit-list').replaceChildren(
    ...(records.length === 0
      ? [h('li', { class: 'muted' }, 'no actions yet')]
      : records.map((r) =>
          h(
            'li',
            { class: `outcome-${r.outcome}` },
            h('time', { datetime: r.at }, when(r.at)),
            ' ',
            h('span', { class: `outcome outcome-${r.outcome}` }, String(r.outcome)),
            ' ',
            h('span', { class: 'res' }, `${r.kind}/${r.name}`),
            ` at ${shortSha(r.revision)}`,
            r.signer ? ` (signed by ${r.signer})` : '',
            r.outcome === 'started' ? '' : ` in ${r.durationMs} ms`,
            r.error ? h('span', { class: 'bad' }, `: ${r.error}`) : '',
            (r.patch ?? []).length
              ? h('span', { class: 'muted' }, ` — ${r.patch.map((op) => `${op.op} ${op.path}`).join(', ')}`)
              : '',
          ),
        )),
  );
  if (a.skipped?.length)
    $('audit-list').append(h('li', { class: 'bad' }, `${a.skipped.length} unreadable audit lines skipped`));
}

/** A table: a header row of column names, then one row of cells (text or nodes) per item. */
const table = (columns, rows) =>
  h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map(({ cls, cells }) =>
        h(
          'tr',
          { class: cls },
          cells.map((c) => (c instanceof Node && c.nodeName === 'TD' ? c : h('td', {}, c))),
        ),
      ),
    ),
  );

const yesNo = (v, goodWhen = true) => h('td', { class: v === goodWhen ? 'good' : 'bad' }, v ? 'yes' : 'no');

function renderFleet(f) {
  const section = $('fleet');
  if (f === null) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const parts = [h('p', {}, `backend ${f.backend}, this agent: `, h('code', {}, String(f.self)))];
  if (f.rollout) {
    parts.push(h('h3', {}, 'Rollout of ', h('code', {}, shortSha(f.rollout.revision))));
    const halt = f.rollout.halted;
    if (halt)
      parts.push(
        h(
          'p',
          { class: 'bad', id: 'fleet-halted' },
          `halted at ${when(halt.at)}: ${halt.reason} (agents: ${halt.agents.join(', ')}; checks: ${halt.checks.join(', ')})`,
        ),
      );
    parts.push(
      table(
        ['wave', 'state', 'agents', 'opened', 'bake until'],
        f.rollout.waves.map((w) => ({
          cls: `wave wave-${w.state}`,
          cells: [String(w.index), String(w.state), w.agents.join(', '), when(w.openedAt), when(w.bakeUntil)],
        })),
      ),
    );
  }
  parts.push(
    table(
      ['agent', 'revision', 'wave', 'healthy', 'alive', 'frozen', 'drifted', 'last seen', 'failing checks'],
      (f.agents ?? []).map((a) => ({
        cls: 'fleet-agent',
        cells: [
          String(a.id),
          h('code', {}, shortSha(a.revision)),
          a.wave === null ? '—' : String(a.wave),
          yesNo(a.healthy),
          yesNo(a.alive),
          yesNo(a.frozen, false),
          String(a.drifted),
          when(a.lastSeenAt),
          (a.health ?? [])
            .filter((c) => !c.ok)
            .map((c) => `${c.name}: ${c.detail}`)
            .join('; '),
        ],
      })),
    ),
  );
  $('fleet-body').replaceChildren(...parts);
}

// ---------------------------------------------------------------------------
// refresh and polling
// ---------------------------------------------------------------------------

let pollTimer = null;
let lastStatus = null;

const dialogOpen = () => $('confirm').open;

/** Each section from its own call: one that fails shows why (the last answer stays), the others still render. */
const SECTIONS = [
  {
    path: '/v1/status',
    error: 'status-error',
    render: (v) => {
      lastStatus = v;
      renderStatus(v);
    },
  },
  { path: '/v1/drift', error: 'drift-error', render: (v) => renderDrift(v) },
  { path: '/v1/audit?limit=50', error: 'audit-error', render: (v) => renderAudit(v) },
  // 404: this agent has no fleet (the section is hidden).
  {
    path: '/v1/fleet',
    error: 'fleet-error',
    render: (v) => renderFleet(v),
    absent: () => renderFleet(null),
    failed: () => {
      $('fleet').hidden = false;
    },
  },
];

/** The last answer rendered, per section path (JSON text). */
const shown = new Map();

/** Shows (or clears) a section's error, touching the live region only when the text changes. */
function sectionError(id, message) {
  const el = $(id);
  if (el.textContent !== message) el.textContent = message;
  el.hidden = message === '';
}

async function refresh() {
  const results = await Promise.allSettled(SECTIONS.map((s) => api('GET', s.path)));
  const refused = results.some(
    (r) => r.status === 'rejected' && r.reason instanceof ApiError && r.reason.status === 401,
  );
  if (refused) {
    token.forget();
    showLogin('The agent refused the token (401): enter it again.');
    return;
  }
  results.forEach((r, i) => {
    const s = SECTIONS[i];
    if (r.status === 'fulfilled') {
      // An unchanged answer is not rendered again: focus, selection and scroll stay where they are.
      const text = JSON.stringify(r.value);
      if (text !== shown.get(s.path)) s.render(r.value);
      shown.set(s.path, text);
      sectionError(s.error, '');
    } else if (s.absent && r.reason instanceof ApiError && r.reason.status === 404) {
      shown.delete(s.path);
      s.absent();
      sectionError(s.error, '');
    } else {
      const e = r.reason;
      s.failed?.();
      sectionError(
        s.error,
        `Could not refresh this section (${e instanceof ApiError ? `${e.code}: ` : ''}${e.message}); what is shown may be out of date.`,
      );
    }
  });
  document.body.dataset.loaded = 'true';
}

function schedule() {
  stopPolling();
  pollTimer = setTimeout(async () => {
    // Paused while a dialog is open (what it confirms must not change under it) or the tab is hidden.
    if (!dialogOpen() && !document.hidden && token.get()) await refresh();
    if (token.get()) schedule();
  }, POLL_MS);
}

function stopPolling() {
  if (pollTimer !== null) clearTimeout(pollTimer);
  pollTimer = null;
}

/** Announces an action's result (aria-live). */
function say(text, bad = false) {
  const el = $('action-result');
  el.textContent = text;
  el.className = bad ? 'result bad' : 'result good';
}

async function act(what, method, path, body) {
  try {
    await api(method, path, body);
    say(`${what}: done.`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      token.forget();
      showLogin('The agent refused the token (401): enter it again.');
      return false;
    }
    say(`${what} failed: ${e.code ?? 'error'}: ${e.message}`, true);
    return false;
  }
  await refresh();
  return true;
}

// ---------------------------------------------------------------------------
// the confirmation dialog
// ---------------------------------------------------------------------------

/** Asks before an action; resolves true on Confirm. `check` requires ticking a box first. */
function confirmAction({ title, text, ok, check }) {
  const dialog = $('confirm');
  $('confirm-h').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = ok;
  const box = $('confirm-check');
  box.checked = false;
  $('confirm-check-row').hidden = !check;
  $('confirm-check-label').textContent = check ?? '';
  const okButton = $('confirm-ok');
  okButton.disabled = Boolean(check);
  box.onchange = () => {
    okButton.disabled = !box.checked;
  };
  return new Promise((resolve) => {
    const done = (v) => {
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      if (!v) say(`${title} Cancelled: nothing was changed.`);
      resolve(v);
    };
    okButton.onclick = () => done(true);
    $('confirm-cancel').onclick = () => done(false);
    dialog.onclose = () => done(false); // Escape
    dialog.showModal();
    (check ? box : $('confirm-cancel')).focus();
  });
}

// ---------------------------------------------------------------------------
// wiring
// ---------------------------------------------------------------------------

async function signIn(value) {
  try {
    await api('GET', '/v1/status', undefined, value);
  } catch (e) {
    $('login-error').textContent =
      e instanceof ApiError && e.status === 401
        ? 'That token was refused (401). Use the contents of admin.tokenFile.'
        : `Could not reach the agent: ${e.message}`;
    return;
  }
  token.set(value);
  $('token').value = '';
  showApp();
  await refresh();
  schedule();
}

function wire() {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = $('token').value.trim();
    if (value) void signIn(value);
  });
  $('forget').addEventListener('click', () => {
    token.forget();
    showLogin('Token forgotten.');
  });
  $('freeze-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const reason = $('freeze-reason').value.trim();
    const dur = $('freeze-for').value.trim();
    if (!reason) {
      say('A freeze needs a reason.', true);
      $('freeze-reason').focus();
      return;
    }
    if (await act('Freeze', 'POST', '/v1/freeze', dur ? { reason, for: dur } : { reason })) {
      $('freeze-reason').value = '';
      $('freeze-for').value = '';
    }
  });
  $('unfreeze-button').addEventListener('click', async () => {
    const ok = await confirmAction({
      title: 'Unfreeze?',
      text: 'The agent will act on drift again (within its guardrails).',
      ok: 'Unfreeze',
    });
    if (ok) await act('Unfreeze', 'POST', '/v1/unfreeze');
  });
  $('approve-button').addEventListener('click', async () => {
    const sha = lastStatus?.revision?.sha;
    if (!sha) return;
    const ok = await confirmAction({
      title: 'Approve and unfreeze?',
      text: `Unfreezes and exempts revision ${sha} from the mass-drift halt until its drift has converged (the rate cap still applies). Review the drift below first.`,
      ok: 'Approve and unfreeze',
      check: `I have reviewed the drift of ${shortSha(sha)}`,
    });
    if (ok) await act(`Approve ${shortSha(sha)}`, 'POST', '/v1/unfreeze', { approveRevision: sha });
  });
  $('reconcile-button').addEventListener('click', () => void act('Cycle requested', 'POST', '/v1/reconcile'));
  $('mode-observe').addEventListener(
    'click',
    () => void act('Mode observe', 'PUT', '/v1/mode', { mode: 'observe' }),
  );
  $('mode-enforce').addEventListener('click', async () => {
    const ok = await confirmAction({
      title: 'Switch to enforce?',
      text: 'The agent will revert drift to what Git says (within its guardrails).',
      ok: 'Enforce',
    });
    if (ok) await act('Mode enforce', 'PUT', '/v1/mode', { mode: 'enforce' });
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && token.get() && !dialogOpen()) void refresh();
  });
}

wire();
if (token.get()) {
  showApp();
  void refresh().then(() => {
    if (token.get()) schedule();
  });
} else showLogin();
