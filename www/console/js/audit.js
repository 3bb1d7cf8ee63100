// The Audit screen (runbook 4, "Audit search"): GET /audit with its
// filters, paged with nextCursor (ui.js pagedList); "Download these events
// as CSV" fetches the same search (format=csv) through ctx.call, so an
// ended session or the legal gate is met as for any request, and saves
// the file; with audit.verify, GET /audit/verify and its result. The
// filters stay in the form and in this module, never in the page's URL or
// in an attribute.

import { saveBlob } from './api.js';
import { h, field, formValues, formStatus, showError, showOk, clearErrors, pagedList, time } from './ui.js';

const FILTERS = [
	{ name: 'action', label: 'Action', hint: 'exact, or a prefix ending in * (legal.*)' },
	{ name: 'actor', label: 'Actor', hint: 'a user id, or a label such as system or cli:root' },
	{ name: 'orgId', label: 'Org id' },
	{ name: 'targetType', label: 'Target type' },
	{ name: 'targetId', label: 'Target id' },
	{ name: 'about', label: 'About (id)', hint: 'events whose target or payload names this id' },
	{ name: 'ip', label: 'IP address or CIDR range' },
	{ name: 'requestId', label: 'Request id' },
	{ name: 'since', label: 'Since', placeholder: '2026-12-01T00:00:00Z', hint: 'RFC 3339, inclusive' },
	{ name: 'until', label: 'Until', placeholder: '2026-12-02T00:00:00Z', hint: 'RFC 3339, exclusive' },
];

const COLUMNS = [
	{ head: 'Time', cell: (e) => time(e.occurredAt) },
	{ head: 'Action', cell: (e) => e.action },
	{ head: 'Actor', cell: (e) => e.actorId || e.actorLabel || '' },
	{ head: 'Org', cell: (e) => e.orgId || '' },
	{ head: 'Target', cell: (e) => [e.targetType, e.targetId].filter(Boolean).join(' ') },
	{ head: 'IP', cell: (e) => e.ip || '' },
	{ head: 'Request', cell: (e) => e.requestId || '' },
	{ head: 'Payload', cell: (e) => (e.payload == null ? '' : h('code', null, JSON.stringify(e.payload))) },
];

export async function render(box, ctx) {
	const csv = h('button', { type: 'button', id: 'audit-csv', class: 'secondary hidden' }, 'Download these events as CSV');
	const form = h('form', { id: 'audit-search', novalidate: true },
		h('div', { class: 'grid' }, FILTERS.map((f) => field(f))),
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search'), csv),
		formStatus());
	const opts = { id: 'audit-events', path: '/audit', title: 'Events', more: 'Next events', empty: 'No event matches.' };
	const list = pagedList(ctx, opts, COLUMNS);
	list.results.append(h('p', null, 'Search to list the events.'));
	let filters = null; // those of the search listed, which the CSV repeats
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		const f = Object.fromEntries(Object.entries(v).filter(([, x]) => x !== ''));
		opts.query = f;
		filters = null;
		csv.classList.add('hidden');
		try {
			await list.reload();
			if (opts.query !== f) return; // another search began meanwhile
			filters = f;
			csv.classList.remove('hidden');
		} catch (err) {
			if (opts.query !== f) return;
			list.results.replaceChildren();
			showError(form, err);
		}
	});
	csv.addEventListener('click', async () => {
		if (!filters || csv.disabled) return;
		clearErrors(form);
		csv.disabled = true;
		try {
			const { blob, filename } = await ctx.call('GET', '/audit', { query: { ...filters, format: 'csv' }, blob: true });
			const name = filename || 'audit.csv';
			saveBlob(blob, name);
			showOk(form, `Downloaded ${name} (${blob.size} bytes).`);
		} catch (err) {
			showError(form, err);
		} finally {
			csv.disabled = false;
		}
	});
	box.append(h('section', { 'aria-label': 'Search' }, form), h('div', { id: 'audit-results' }, list.section));
	if (ctx.can('audit.verify')) box.append(verifyPanel(ctx));
}

// GET /audit/verify answers at most a bounded stretch of the chain per
// call: while `more`, the cursor asks for the next one, with the progress
// shown meanwhile (neutral, not ok: the run is not over). "Verify chain"
// replays the whole chain; the other button only what was appended since
// the newest checkpoint (opsctl audit verify records them).
function verifyPanel(ctx) {
	const status = formStatus();
	const whole = h('button', { type: 'submit', value: 'start' }, 'Verify chain');
	const since = h('button', { type: 'submit', value: 'checkpoint' }, 'Verify since the last checkpoint');
	const form = h('form', { id: 'audit-verify' },
		h('p', null, 'Checks the hash chain of every event still in the log, or only of those appended since the last checkpoint.'),
		whole, ' ', since, status);
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const fromCheckpoint = ev.submitter === since;
		whole.disabled = since.disabled = true;
		try {
			let r = await ctx.call('GET', fromCheckpoint ? '/audit/verify?from=checkpoint' : '/audit/verify');
			while (r.ok && r.more && r.cursor) {
				status.textContent = `Verifying: ${r.checked} events checked, up to seq ${r.toSeq}…`;
				r = await ctx.call('GET', `/audit/verify?cursor=${encodeURIComponent(r.cursor)}`);
			}
			const after = fromCheckpoint && r.checkpoint ? ` since the checkpoint at seq ${r.checkpoint.seq}` : '';
			if (r.ok) showOk(form, `Chain ok: ${r.checked} events checked${after}.`);
			else {
				showError(form, { describe: () => `Chain broken at event ${r.firstBrokenId} (seq ${r.firstBrokenSeq}): ${r.reason || 'hash mismatch'}; ${r.checked} events checked.` });
			}
		} catch (err) {
			showError(form, err);
		} finally {
			whole.disabled = since.disabled = false;
		}
	});
	return h('section', { 'aria-labelledby': 'audit-verify-h' }, h('h2', { id: 'audit-verify-h' }, 'Verify the chain'), form);
}

