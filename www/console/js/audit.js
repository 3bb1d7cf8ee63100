// The Audit screen (runbook 4, "Audit search"): GET /audit with its
// filters, paged with nextCursor; a CSV link to the same search
// (format=csv); with audit.verify, GET /audit/verify and its result. The
// filters stay in the form, never in the page's URL.

import { withQuery } from './api.js';
import { h, field, formValues, formStatus, showError, showOk, clearErrors, table, time } from './ui.js';

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
	const results = h('div', { id: 'audit-results', 'aria-live': 'polite' });
	const csv = h('a', { id: 'audit-csv', class: 'hidden', download: 'audit.csv' }, 'Download these events as CSV');
	const form = h('form', { id: 'audit-search', novalidate: true },
		h('div', { class: 'grid' }, FILTERS.map((f) => field(f))),
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search'), csv),
		formStatus());
	let filters = {};
	const page = async (cursor) => {
		const r = await ctx.call('GET', '/audit', { query: { ...filters, cursor, limit: 50 } });
		const items = r.items || [];
		if (!cursor) results.replaceChildren(h('h2', null, 'Events'));
		results.querySelector('.more')?.remove();
		if (!cursor && !items.length) results.append(h('p', null, 'No event matches.'));
		if (items.length) results.append(table('Audit events, newest first', COLUMNS, items));
		if (r.nextCursor) {
			results.append(h('button', { type: 'button', class: 'more',
				onclick: () => page(r.nextCursor).catch((e) => showError(form, e)) }, 'Next events'));
		}
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		filters = Object.fromEntries(Object.entries(v).filter(([, x]) => x !== ''));
		try {
			await page(null);
			csv.href = withQuery('/audit', { ...filters, format: 'csv' });
			csv.classList.remove('hidden');
		} catch (err) {
			results.replaceChildren();
			csv.classList.add('hidden');
			showError(form, err);
		}
	});
	box.append(h('section', { 'aria-label': 'Search' }, form), results);
	if (ctx.can('audit.verify')) box.append(verifyPanel(ctx));
}

function verifyPanel(ctx) {
	const form = h('form', { id: 'audit-verify' },
		h('p', null, 'Checks the hash chain of every event still in the log.'),
		h('button', { type: 'submit' }, 'Verify chain'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		try {
			const r = await ctx.call('GET', '/audit/verify');
			if (r.ok) showOk(form, `Chain ok: ${r.checked} events checked.`);
			else {
				showError(form, { describe: () => `Chain broken at event ${r.firstBrokenId} (seq ${r.firstBrokenSeq}): ${r.reason || 'hash mismatch'}; ${r.checked} events checked.` });
			}
		} catch (err) {
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'audit-verify-h' }, h('h2', { id: 'audit-verify-h' }, 'Verify the chain'), form);
}

