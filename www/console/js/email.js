// The Email screen (runbook 5): the SMTP settings the outbox uses
// (GET /email/settings: test mode and the allowlist first, never the
// password, only whether one is set); with email.outbox the outbox
// (GET /email/outbox, a status filter, paged with nextCursor) and Retry on
// a failed message (POST /email/outbox/:id/retry); with email.send_test a
// test message (POST /email/test) whose answer says queued or suppressed.

import { h, field, formValues, formStatus, showError, showOk, clearErrors, table, time } from './ui.js';

const STATUSES = ['all', 'queued', 'sending', 'sent', 'failed', 'suppressed'];

export async function render(box, ctx) {
	let reload = async () => {};
	if (ctx.can('email.outbox')) box.append(await settingsPanel(ctx));
	if (ctx.can('email.send_test')) box.append(testForm(ctx, () => reload()));
	if (ctx.can('email.outbox')) {
		const o = outboxPanel(ctx);
		box.append(o.section);
		reload = o.reload;
		await reload();
	}
}

async function settingsPanel(ctx) {
	const s = await ctx.call('GET', '/email/settings');
	const allow = s.allowlist || [];
	const rows = [
		['Server', s.server ? `${s.server}:${s.port}` : '— (not set)'],
		['Security', s.secure || '—'],
		['User', s.user || '— (no AUTH)'],
		['Password', s.passwordSet ? 'set' : 'not set'],
		['From', s.from || '—'],
	];
	return h('section', { 'aria-labelledby': 'email-settings-h', id: 'email-settings' },
		h('h2', { id: 'email-settings-h' }, 'Settings'),
		h('p', { id: 'email-test-mode', class: s.testMode ? 'notice' : 'notice warn' },
			s.testMode
				? 'Test mode is ON: only the allowlisted addresses below receive mail; every other message is suppressed.'
				: 'Test mode is OFF: every message is sent.'),
		h('h3', null, 'Allowlist'),
		allow.length
			? h('ul', { id: 'email-allowlist' }, allow.map((a) => h('li', null, h('code', null, a))))
			: h('p', { id: 'email-allowlist' }, 'The allowlist is empty.'),
		h('dl', { class: 'settings' }, rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])));
}

function testForm(ctx, reload) {
	const form = h('form', { id: 'email-test', novalidate: true },
		field({ label: 'To', name: 'to', type: 'email', required: true, autocomplete: 'email',
			hint: 'in test mode only an allowlisted address is sent to' }),
		h('button', { type: 'submit' }, 'Send test message'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		try {
			const r = await ctx.call('POST', '/email/test', { body: { to: v.to } });
			showOk(form, r.status === 'suppressed'
				? `Suppressed: ${r.to} is not in the allowlist (test mode); nothing leaves the host.`
				: `Queued: a test message to ${r.to} (${r.status}).`);
			await reload();
		} catch (err) {
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'email-test-h' }, h('h2', { id: 'email-test-h' }, 'Send a test message'), form);
}

function outboxPanel(ctx) {
	const results = h('div', { id: 'email-outbox', 'aria-live': 'polite' });
	const form = h('form', { id: 'email-filter', novalidate: true },
		field({ label: 'Status', name: 'status', type: 'select', options: STATUSES }),
		h('button', { type: 'submit' }, 'Show'),
		formStatus());
	let status = 'all';
	const retry = async (m, cell) => {
		try {
			const r = await ctx.call('POST', `/email/outbox/${encodeURIComponent(m.id)}/retry`);
			cell.replaceChildren(`Retried: ${r.status}`);
		} catch (err) {
			showError(form, err);
		}
	};
	const columns = [
		{ head: 'Created', cell: (m) => time(m.createdAt) },
		{ head: 'To', cell: (m) => m.to || '' },
		{ head: 'Kind', cell: (m) => m.kind || '' },
		{ head: 'Subject', cell: (m) => m.subject || '' },
		{ head: 'Status', cell: (m) => m.status },
		{ head: 'Attempts', cell: (m) => String(m.attempts ?? '') },
		{ head: 'Last error', cell: (m) => [m.lastSmtpStatus, m.lastError].filter((x) => x != null && x !== '').join(' ') },
		{ head: 'Action', cell: (m) => {
			if (m.status !== 'failed') return '';
			const cell = h('span');
			cell.append(h('button', { type: 'button', class: 'retry', 'aria-label': `Retry the message to ${m.to}`,
				onclick: () => retry(m, cell) }, 'Retry'));
			return cell;
		} },
	];
	const page = async (cursor) => {
		const query = { cursor, limit: 50 };
		if (status !== 'all') query.status = status;
		const r = await ctx.call('GET', '/email/outbox', { query });
		const items = r.items || [];
		if (!cursor) results.replaceChildren();
		results.querySelector('.more')?.remove();
		if (!cursor && !items.length) results.append(h('p', null, 'No message.'));
		if (items.length) results.append(table('Outbox messages, newest first', columns, items));
		if (r.nextCursor) {
			results.append(h('button', { type: 'button', class: 'more',
				onclick: () => page(r.nextCursor).catch((e) => showError(form, e)) }, 'Next messages'));
		}
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		status = formValues(form).status || 'all';
		results.replaceChildren(); // the old list goes at once
		try {
			await page(null);
		} catch (err) {
			results.replaceChildren();
			showError(form, err);
		}
	});
	const section = h('section', { 'aria-labelledby': 'email-outbox-h' },
		h('h2', { id: 'email-outbox-h' }, 'Outbox'), form, results);
	return { section, reload: () => page(null) };
}
