// The Legal screen (runbook 1): whether acceptance is enforced
// (GET /legal/acceptance/status, LEGAL_ENFORCE); every document type with
// its current and scheduled versions (GET /legal, public); a type's
// versions (GET /legal/:type/versions, paged) and what changed between two
// of them side by side (GET /legal/:type/diff); with legal.publish the
// publish form (POST /legal: the effective time entered in the operator's
// zone and sent in UTC, notify); with legal.report the acceptance report
// (GET /legal/acceptance/report?type=).

import { h, field, formValues, formStatus, showError, showOk, clearErrors, table, time, moreButton } from './ui.js';

const when = (v) => (v ? h('span', null, `${v.version} (effective `, time(v.effectiveAt), ')') : '—');
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }); // as ui.js time()

export async function render(box, ctx) {
	// The skeleton first, so that nothing moves when the data arrives.
	const enforcement = h('p', { id: 'legal-enforcement', class: 'notice pending' }, 'Enforcement: checking…');
	const docs = h('section', { 'aria-labelledby': 'legal-docs' },
		h('h2', { id: 'legal-docs' }, 'Documents'), h('p', null, 'Loading the documents…'));
	const versions = versionsPanel(ctx);
	const report = ctx.can('legal.report') ? reportForm(ctx) : null;
	const reload = async (type) => {
		const types = await showDocuments(docs, ctx);
		versions.setTypes(types, type);
		if (report) report.setTypes(types);
		if (type) await versions.show(type);
	};
	box.append(enforcement, docs);
	if (ctx.can('legal.publish')) box.append(publishForm(ctx, reload));
	box.append(versions.section);
	if (report) box.append(report.section);
	await Promise.all([showEnforcement(enforcement, ctx), reload(null)]);
}

// LEGAL_ENFORCE as the API reports it to the signed-in operator.
async function showEnforcement(p, ctx) {
	try {
		const st = await ctx.call('GET', '/legal/acceptance/status');
		const mine = (st.pending || []).length;
		p.className = st.enforced ? 'notice' : 'notice warn';
		p.textContent = st.enforced
			? 'Enforcement is ON (LEGAL_ENFORCE=1): a signed-in user with a pending document is refused '
				+ 'everywhere but the legal, sign-in and containment routes until they accept it.'
			: 'Enforcement is OFF: users are asked to accept new versions, but nobody is refused meanwhile.';
		if (mine) p.textContent += ` You have ${mine} document${mine > 1 ? 's' : ''} to accept.`;
	} catch (err) {
		p.className = 'notice warn';
		p.textContent = `Enforcement: unknown (${err.describe ? err.describe() : String(err)})`;
	}
}

async function showDocuments(section, ctx) {
	const r = await ctx.call('GET', '/legal', { query: { limit: 500 } });
	const items = r.items || [];
	section.replaceChildren(h('h2', { id: 'legal-docs' }, 'Documents'),
		items.length
			? table('Legal documents: current and scheduled versions', [
				{ head: 'Type', cell: (d) => d.type },
				{ head: 'Current version', cell: (d) => when(d.current) },
				{ head: 'Scheduled', cell: (d) => (d.scheduled || []).length ? d.scheduled.map(when) : '—' },
			], items)
			: h('p', null, 'No document has been published yet.'));
	return items.map((d) => d.type);
}

// ---- versions and the side-by-side diff

function versionState(v) {
	if (v.current) return 'current';
	return Date.parse(v.effectiveAt) > Date.now() ? 'scheduled' : 'earlier';
}

const VERSION_COLUMNS = [
	{ head: 'Version', cell: (v) => v.version },
	{ head: 'State', cell: (v) => h('span', { class: `state-${versionState(v)}` }, versionState(v)) },
	{ head: 'Effective', cell: (v) => time(v.effectiveAt) },
	{ head: 'Published', cell: (v) => time(v.publishedAt) },
	{ head: 'Content SHA-256', cell: (v) => h('code', { title: v.contentSha256 || '' }, (v.contentSha256 || '').slice(0, 12)) },
];

function versionsPanel(ctx) {
	const typeField = field({ label: 'Document type', name: 'type', type: 'select', options: [] });
	const typeSelect = typeField.querySelector('select');
	const pick = h('form', { id: 'legal-versions', novalidate: true },
		typeField, h('button', { type: 'submit' }, 'Show versions'), formStatus());
	const results = h('div', { id: 'legal-versions-list', 'aria-live': 'polite' },
		h('p', null, 'Choose a document type to list its versions.'));
	const known = new Set(); // the versions listed so far, offered in the diff form
	const suggestions = h('datalist', { id: 'legal-version-choices' });
	const from = field({ label: 'Old version (left)', name: 'from', required: true });
	const to = field({ label: 'New version (right)', name: 'to', required: true });
	for (const f of [from, to]) f.querySelector('input').setAttribute('list', 'legal-version-choices');
	const diffForm = h('form', { id: 'legal-diff', novalidate: true },
		h('div', { class: 'grid' }, from, to), suggestions,
		h('button', { type: 'submit' }, 'Compare'), formStatus());
	const diffOut = h('div', { id: 'legal-diff-out', 'aria-live': 'polite' });
	let type = null;
	let gen = 0; // a reply for a type no longer shown is dropped

	const page = async (cursor, mine) => {
		const r = await ctx.call('GET', `/legal/${encodeURIComponent(type)}/versions`, { query: { cursor, limit: 50 } });
		if (mine !== gen) return;
		const items = r.items || [];
		if (!cursor) {
			results.replaceChildren();
			known.clear();
			suggestions.replaceChildren();
		}
		results.querySelector('.more')?.remove();
		if (!cursor && !items.length) results.append(h('p', null, 'No version.'));
		if (items.length) results.append(table(`Versions of ${type}, newest effective time first`, VERSION_COLUMNS, items));
		for (const v of items) {
			known.add(v.version);
			suggestions.append(h('option', { value: v.version }));
		}
		if (r.nextCursor) results.append(moreButton('Next versions', () => page(r.nextCursor, mine), (e) => showError(pick, e)));
		if (!cursor) {
			// offer the current version against the one before it
			const cur = items.findIndex((v) => v.current);
			const i = cur >= 0 ? cur : 0;
			to.querySelector('input').value = items[i] ? items[i].version : '';
			from.querySelector('input').value = items[i + 1] ? items[i + 1].version : '';
		}
	};
	const show = async (t) => {
		type = t;
		typeSelect.value = t;
		diffOut.replaceChildren();
		clearErrors(diffForm);
		await page(null, ++gen);
	};
	pick.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(pick);
		const t = formValues(pick).type;
		if (!t) return showError(pick, { fields: { type: 'No document has been published yet.' }, describe: () => 'Choose a document type.' });
		try {
			await show(t);
		} catch (err) {
			results.replaceChildren();
			showError(pick, err);
		}
	});
	diffForm.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(diffForm);
		const v = formValues(diffForm);
		const missing = {};
		if (!type) missing.from = 'Show the versions of a document type first.';
		if (!v.from) missing.from = 'Required: the version on the left.';
		if (!v.to) missing.to = 'Required: the version on the right.';
		if (Object.keys(missing).length) {
			return showError(diffForm, { fields: missing, describe: () => 'Name two versions to compare.' });
		}
		diffOut.replaceChildren(h('p', null, 'Comparing…'));
		try {
			const r = await ctx.call('GET', `/legal/${encodeURIComponent(type)}/diff`, { query: { from: v.from, to: v.to } });
			diffOut.replaceChildren(...diffTable(r));
		} catch (err) {
			diffOut.replaceChildren();
			// a 404 names no field: mark the version(s) not among those listed
			if (err.status === 404) {
				const fields = {};
				for (const k of ['from', 'to']) if (!known.has(v[k])) fields[k] = `${type} has no version ${v[k]}.`;
				return showError(diffForm, { fields, describe: () => (err.describe ? err.describe() : String(err)) });
			}
			showError(diffForm, err);
		}
	});
	const section = h('section', { 'aria-labelledby': 'legal-versions-h' },
		h('h2', { id: 'legal-versions-h' }, 'Versions and changes'),
		pick, results,
		h('h3', null, 'Compare two versions'), diffForm, diffOut);
	const setTypes = (types, preferred) => {
		const keep = preferred || typeSelect.value || types[0] || '';
		typeSelect.replaceChildren(...types.map((t) => h('option', { value: t }, t)));
		if (types.includes(keep)) typeSelect.value = keep;
	};
	return { section, show, setTypes };
}

// The API's diff (a list of {op: '=' | '-' | '+', line}) as two columns:
// the old version on the left, the new one on the right. A run of removed
// and added lines is paired row by row (a changed line reads across). Each
// changed line says what it is in text (a visible − or + and, for screen
// readers, "removed"/"added"), not only by colour.
export function diffRows(lines) {
	const rows = [];
	let i = 0, oldNo = 0, newNo = 0;
	while (i < lines.length) {
		if (lines[i].op === '=') {
			oldNo++;
			newNo++;
			rows.push({ old: { no: oldNo, text: lines[i].line, op: '=' }, new: { no: newNo, text: lines[i].line, op: '=' } });
			i++;
			continue;
		}
		const del = [], add = [];
		for (; i < lines.length && lines[i].op !== '='; i++) (lines[i].op === '-' ? del : add).push(lines[i].line);
		for (let k = 0; k < Math.max(del.length, add.length); k++) {
			rows.push({
				old: k < del.length ? { no: ++oldNo, text: del[k], op: '-' } : null,
				new: k < add.length ? { no: ++newNo, text: add[k], op: '+' } : null,
			});
		}
	}
	return rows;
}

const OPS = {
	'=': { cls: 'diff-same', mark: ' ', say: '' },
	'-': { cls: 'diff-del', mark: '−', say: 'Removed: ' },
	'+': { cls: 'diff-add', mark: '+', say: 'Added: ' },
};

function diffCell(c) {
	if (!c) return h('td', { class: 'diff-empty' }, h('span', { class: 'sr-only' }, 'no line'));
	const op = OPS[c.op];
	return h('td', { class: op.cls, 'data-op': c.op },
		h('span', { class: 'diff-no', 'aria-hidden': 'true' }, String(c.no)),
		h('span', { class: 'diff-mark', 'aria-hidden': 'true' }, op.mark),
		op.say ? h('span', { class: 'sr-only' }, op.say) : null,
		h('span', { class: 'diff-text' }, c.text));
}

function diffTable(r) {
	const lines = r.diff || [];
	const removed = lines.filter((l) => l.op === '-').length;
	const added = lines.filter((l) => l.op === '+').length;
	const summary = h('p', { class: 'diff-summary' },
		removed || added
			? `${r.type}: ${removed} line${removed === 1 ? '' : 's'} removed (−), ${added} added (+) from version ${r.from} to ${r.to}.`
			: `${r.type}: versions ${r.from} and ${r.to} have the same text.`);
	const rows = diffRows(lines);
	const tbl = h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': `Changes from ${r.from} to ${r.to}` },
		h('table', { class: 'diff' },
			h('caption', null, `${r.type}: version ${r.from} (old, left) and version ${r.to} (new, right), line by line`),
			h('thead', null, h('tr', null,
				h('th', { scope: 'col' }, `Old: ${r.from}`),
				h('th', { scope: 'col' }, `New: ${r.to}`))),
			h('tbody', null, rows.map((row) => h('tr', null, diffCell(row.old), diffCell(row.new))))));
	return [summary, tbl];
}

// ---- publish

// A datetime-local value ("2026-12-01T09:30") read in the browser's zone,
// as the UTC time the API takes; null for none or a value it cannot read.
export function localToUtc(value) {
	if (!value) return null;
	const d = new Date(value); // a date-time without offset is local time
	return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function publishForm(ctx, reload) {
	const eff = field({ label: 'Effective at (optional)', name: 'effectiveAt', type: 'datetime-local',
		hint: `In your time zone (${ZONE}). Empty: now. A future time schedules the version.` });
	const effInput = eff.querySelector('input');
	const utc = h('output', { id: 'legal-effective-utc', for: effInput.id, class: 'utc-preview' });
	effInput.setAttribute('aria-describedby', `${effInput.getAttribute('aria-describedby')} legal-effective-utc`);
	eff.querySelector('.field-error').before(utc);
	const sayUtc = () => {
		const u = localToUtc(effInput.value);
		utc.textContent = u ? `Sent as ${u} (UTC).` : 'Sent without a time: effective now.';
	};
	effInput.addEventListener('input', sayUtc);
	effInput.addEventListener('change', sayUtc);
	sayUtc();
	const notifyId = 'legal-notify';
	const notify = h('div', { class: 'field check', 'data-field': 'notify' },
		h('div', { class: 'check-row' },
			h('input', { id: notifyId, name: 'notify', type: 'checkbox', 'aria-describedby': `${notifyId}-hint ${notifyId}-err` }),
			h('label', { for: notifyId }, 'Notify users by email')),
		h('small', { id: `${notifyId}-hint`, class: 'hint' },
			'One email to every active user when it takes effect, through the outbox (test mode and the allowlist apply).'),
		h('span', { id: `${notifyId}-err`, class: 'field-error', role: 'alert' }));
	const form = h('form', { id: 'legal-publish', novalidate: true },
		field({ label: 'Type', name: 'type', required: true, placeholder: 'terms', hint: 'privacy, terms or another document type' }),
		field({ label: 'Version', name: 'version', required: true }),
		field({ label: 'Content', name: 'content', type: 'textarea', required: true }),
		eff, notify,
		h('button', { type: 'submit' }, 'Publish'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		const body = { type: v.type, version: v.version, content: v.content, notify: !!v.notify };
		const at = localToUtc(v.effectiveAt);
		if (v.effectiveAt && !at) {
			return showError(form, { fields: { effectiveAt: 'Not a date and time.' }, describe: () => 'Check the effective time.' });
		}
		if (at) body.effectiveAt = at;
		try {
			const r = await ctx.call('POST', '/legal', { body });
			const what = r.current
				? 'current now'
				: `scheduled: effective ${LOCAL.format(new Date(r.effectiveAt))} (${r.effectiveAt} UTC)`;
			showOk(form, `Published ${r.type || v.type} version ${r.version || v.version}, ${what}.`
				+ (r.notify ? ' Users will be notified by email when it takes effect.' : ''));
			await reload(r.type || v.type);
		} catch (err) {
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'legal-publish-h' }, h('h2', { id: 'legal-publish-h' }, 'Publish a version'), form);
}

// ---- the acceptance report

function reportForm(ctx) {
	const out = h('div', { class: 'report' });
	const typeField = field({ label: 'Type', name: 'type', required: true, hint: 'privacy, terms or another document type' });
	const form = h('form', { id: 'legal-report', novalidate: true },
		typeField,
		field({ label: 'Version (optional)', name: 'version', hint: 'empty: the current version' }),
		h('button', { type: 'submit' }, 'Show report'),
		formStatus());
	let query = {};
	let gen = 0; // a reply to an older Show report is dropped
	const page = async (cursor, mine) => {
		const r = await ctx.call('GET', '/legal/acceptance/report', { query: { ...query, cursor } });
		if (mine !== gen) return;
		const users = (r.pendingUsers && r.pendingUsers.items) || [];
		const next = r.pendingUsers && r.pendingUsers.nextCursor;
		if (!cursor) {
			out.replaceChildren(h('p', { class: 'summary' },
				`${r.type} ${r.version}: ${r.accepted} accepted, ${r.pending} pending.`));
		}
		out.querySelector('.more')?.remove();
		if (users.length) {
			out.append(table('Users who have not accepted yet', [
				{ head: 'Email', cell: (u) => u.email || '' },
				{ head: 'Name', cell: (u) => u.name || '' },
				{ head: 'Id', cell: (u) => u.id },
			], users));
		}
		if (next) out.append(moreButton('More pending users', () => page(next, mine), (e) => showError(form, e)));
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		query = { type: v.type, version: v.version };
		try {
			await page(null, ++gen);
		} catch (err) {
			out.replaceChildren();
			showError(form, err);
		}
	});
	const input = typeField.querySelector('input');
	const setTypes = (types) => {
		if (!input.value && types.length) input.value = types[0];
	};
	const section = h('section', { 'aria-labelledby': 'legal-report-h' }, h('h2', { id: 'legal-report-h' }, 'Acceptance report'), form, out);
	return { section, setTypes };
}
