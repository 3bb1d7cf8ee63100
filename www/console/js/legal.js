// The Legal screen (runbook 1): every document type with its current and
// scheduled versions (GET /legal, public); with legal.publish the publish
// form (POST /legal); with legal.report the acceptance report
// (GET /legal/acceptance/report?type=).

import { h, field, formValues, formStatus, showError, showOk, clearErrors, table, time } from './ui.js';

const when = (v) => (v ? h('span', null, `${v.version} (effective `, time(v.effectiveAt), ')') : '—');

export async function render(box, ctx) {
	const list = h('section', { 'aria-labelledby': 'legal-docs' });
	box.append(list);
	const types = await showDocuments(list, ctx);
	if (ctx.can('legal.publish')) box.append(publishForm(ctx, () => showDocuments(list, ctx)));
	if (ctx.can('legal.report')) box.append(reportForm(ctx, types));
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

function publishForm(ctx, reload) {
	const form = h('form', { id: 'legal-publish', novalidate: true },
		field({ label: 'Type', name: 'type', required: true, placeholder: 'terms', hint: 'privacy, terms or another document type' }),
		field({ label: 'Version', name: 'version', required: true }),
		field({ label: 'Content', name: 'content', type: 'textarea', required: true }),
		field({ label: 'Effective at (optional)', name: 'effectiveAt', placeholder: '2026-12-01T00:00:00Z',
			hint: 'RFC 3339 in UTC; empty: now. A future time schedules the version.' }),
		h('button', { type: 'submit' }, 'Publish'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		const body = { type: v.type, version: v.version, content: v.content };
		if (v.effectiveAt) body.effectiveAt = v.effectiveAt;
		try {
			const r = await ctx.call('POST', '/legal', { body });
			showOk(form, `Published ${r.type || v.type} version ${r.version || v.version}.`);
			await reload();
		} catch (err) {
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'legal-publish-h' }, h('h2', { id: 'legal-publish-h' }, 'Publish a version'), form);
}

function reportForm(ctx, types) {
	const out = h('div', { class: 'report' });
	const form = h('form', { id: 'legal-report', novalidate: true },
		field({ label: 'Type', name: 'type', required: true, value: types[0], hint: 'privacy, terms or another document type' }),
		field({ label: 'Version (optional)', name: 'version', hint: 'empty: the current version' }),
		h('button', { type: 'submit' }, 'Show report'),
		formStatus());
	let query = {};
	const page = async (cursor) => {
		const r = await ctx.call('GET', '/legal/acceptance/report', { query: { ...query, cursor } });
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
		if (next) out.append(h('button', { type: 'button', class: 'more', onclick: () => page(next).catch((e) => showError(form, e)) }, 'More pending users'));
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		query = { type: v.type, version: v.version };
		try {
			await page(null);
		} catch (err) {
			out.replaceChildren();
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'legal-report-h' }, h('h2', { id: 'legal-report-h' }, 'Acceptance report'), form, out);
}
