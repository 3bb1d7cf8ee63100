// The Incident screen (runbook 4, incident response). Each part shows only
// to a role whose permissions allow it:
// - audit.read: the rate-limited sources, from the audit log's
//   security.rate_limited events (one per source and minute, counting the
//   429s since the previous one), grouped by client address, older pages
//   on demand;
// - system.status: the 429 counters of GET /metrics
//   (opsd_rate_limited_total by layer and route, parsed by prom.js);
// - security.blocklist: block an address or range with a reason and an
//   expiry, the active entries paged with whether nginx has applied each
//   (followed until it has), Remove with a typed reason;
// - compliance.read: find an account or an org by email or name
//   (POST /compliance/subjects/search: the terms travel in the body, never
//   in a URL), or Select an account among the rate-limited sources;
// - on the account or org chosen: flush its sessions (with its API tokens
//   if asked), revoke its API tokens, disable or enable the account, set or
//   release a legal hold — each confirmed by typing the reason, which the
//   request carries into the audit log;
// - every account: flush every session, revoke every API token or one by
//   its id;
// - security.read: the rate limits in force, opsd's and nginx's, each with
//   its source (who set one at run time, when and why), and whether nginx
//   runs nginx's; with security.rate_limits a form that changes them or
//   sets them back to the configuration's, confirmed by typing the reason.

import { h, field, formValues, formStatus, showError, showOk, clearErrors, table, pagedList, time, confirmReason } from './ui.js';
import { parseProm } from './prom.js';

const WINDOWS = { 'last hour': 3600, 'last 24 hours': 86400, 'last 7 days': 7 * 86400 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function render(box, ctx) {
	const target = ctx.can('users.read') || ctx.can('orgs.read') ? targetPanel(ctx) : null;
	const block = ctx.can('security.blocklist') ? blocklistPanel(ctx) : null;
	const sources = ctx.can('audit.read') ? sourcesPanel(ctx, { block, target }) : null;
	const counters = ctx.can('system.status') ? countersPanel(ctx) : null;
	const lookup = target && ctx.can('compliance.read') ? lookupPanel(ctx, target) : null;
	const everyone = ctx.can('security.sessions_flush') || ctx.can('security.tokens_revoke') ? everyonePanel(ctx) : null;
	// last: its table and form grow when they arrive, and nothing is below them
	const limits = ctx.can('security.read') ? limitsPanel(ctx) : null;
	// every section's frame first, so nothing moves when the data arrives
	for (const p of [sources, counters, block, lookup, target, everyone, limits]) if (p) box.append(...p.sections);
	await Promise.all([sources, counters, block, limits].filter(Boolean).map((p) => p.load()));
}

// ---- small parts

function section(id, title, ...children) {
	return h('section', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h`, tabindex: -1 }, title), ...children);
}

function checkbox(name, label) {
	const id = `${name}-${Math.random().toString(36).slice(2, 8)}`;
	return h('div', { class: 'check-row', 'data-field': name },
		h('input', { id, name, type: 'checkbox' }),
		h('label', { for: id }, label),
		h('span', { class: 'field-error', role: 'alert' }));
}

function loading() {
	return h('p', { class: 'muted' }, 'Loading…');
}

// A field error found before asking the server.
function fieldError(form, name, message) {
	showError(form, { fields: { [name]: message }, describe: () => 'Check the field marked.' });
	form.querySelector(`[name="${name}"]`)?.focus();
}

// "2026-12-01 18:30" (or with a T) in the operator's zone → RFC 3339 UTC;
// null when it is not such a time (Feb 30 included).
function localTime(text) {
	const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})$/.exec(text.trim());
	if (!m) return null;
	const [y, mo, d, hh, mi] = m.slice(1).map(Number);
	const t = new Date(y, mo - 1, d, hh, mi);
	if (t.getFullYear() !== y || t.getMonth() !== mo - 1 || t.getDate() !== d || t.getHours() !== hh || t.getMinutes() !== mi) return null;
	return t.toISOString();
}

function plural(n, one, many) {
	return `${n} ${n === 1 ? one : many}`;
}

// ---- rate-limited sources (audit log)

function groupByAddress(events) {
	const by = new Map();
	for (const e of events) {
		const ip = e.ip || 'unknown';
		let g = by.get(ip);
		if (!g) by.set(ip, (g = { ip, events: 0, refused: 0, last: e.occurredAt, sources: new Map(), layers: new Set(), routes: new Set() }));
		const p = e.payload || {};
		g.events++;
		g.refused += Number(p.refusedSinceLastEvent) || 0;
		if (e.occurredAt > g.last) g.last = e.occurredAt;
		const kind = p.source || e.targetType || 'unknown';
		g.sources.set(`${kind} ${e.targetId || ''}`, { kind, id: e.targetId });
		if (p.layer) g.layers.add(p.layer);
		if (p.route) g.routes.add(p.route);
	}
	return [...by.values()].sort((a, b) => b.refused - a.refused || (a.last < b.last ? 1 : -1));
}

function sourcesPanel(ctx, links) {
	const results = h('div', { id: 'incident-sources', class: 'reserve', 'aria-live': 'polite' }, loading());
	const form = h('form', { id: 'incident-window', class: 'inline', novalidate: true },
		field({ label: 'Window', name: 'window', type: 'select', options: Object.keys(WINDOWS) }),
		h('button', { type: 'submit' }, 'Show'),
		formStatus());
	form.querySelector('select').value = 'last 24 hours';
	let events = [];
	let cursor = null;
	let since = null;
	let gen = 0; // a reply to an older Show is dropped
	let busy = false; // one "Next events" at a time: a page counted once
	const emails = new Map(); // user id → email, for the user sources (users.read)
	const columns = [
		{ head: 'Address', cell: (g) => h('code', { class: 'nowrap' }, g.ip) },
		{ head: '429s logged', cell: (g) => String(g.refused) },
		{ head: 'Events', cell: (g) => String(g.events) },
		{ head: 'Sources', cell: (g) => h('ul', { class: 'plain' }, [...g.sources.values()].map((s) => sourceItem(s, links, emails))) },
		{ head: 'Layers', cell: (g) => [...g.layers].join(', ') },
		{ head: 'Routes', cell: (g) => [...g.routes].join(', ') },
		{ head: 'Last seen', cell: (g) => time(g.last) },
		...(links.block ? [{ head: 'Action', cell: (g) => (g.ip === 'unknown' ? '' : h('button', { type: 'button', class: 'secondary small',
			'aria-label': `Block ${g.ip}`, onclick: () => links.block.prefill(g.ip) }, 'Block…')) }] : []),
	];
	const draw = () => {
		const groups = groupByAddress(events);
		const total = groups.reduce((n, g) => n + g.refused, 0);
		results.replaceChildren(...[
			h('p', { id: 'incident-sources-summary' }, groups.length
				? `${plural(total, '429', '429s')} logged from ${plural(groups.length, 'address', 'addresses')} in ${plural(events.length, 'event', 'events')} since `
				: 'No request was refused with 429 since ', time(since), '.'),
			groups.length ? table('Rate-limited sources by client address, most refused first', columns, groups) : null,
			cursor ? h('button', { type: 'button', class: 'more', onclick: (ev) => {
				ev.currentTarget.disabled = true;
				load(true);
			} }, 'Next events (older)') : null,
		].filter(Boolean));
	};
	// the accounts behind user sources, by email (at most 25 looked up a page)
	const resolve = async (items) => {
		if (!links.target || !links.target.canUsers) return;
		const ids = [...new Set(items.filter((e) => e.targetType === 'user' && e.targetId && !emails.has(e.targetId)).map((e) => e.targetId))];
		await Promise.all(ids.slice(0, 25).map(async (id) => {
			try {
				emails.set(id, (await ctx.call('GET', `/users/${encodeURIComponent(id)}`)).email);
			} catch {
				emails.set(id, null); // shown by its id
			}
		}));
	};
	const load = async (more) => {
		if (more && busy) return;
		clearErrors(form);
		const mine = more ? gen : ++gen;
		busy = more;
		try {
			if (!more) {
				since = new Date(Date.now() - 1000 * (WINDOWS[formValues(form).window] || 86400)).toISOString();
				events = [];
				cursor = null;
			}
			const r = await ctx.call('GET', '/audit', { query: { action: 'security.rate_limited', since, limit: 500, cursor: more ? cursor : undefined } });
			await resolve(r.items || []);
			if (mine !== gen) return;
			events.push(...(r.items || []));
			cursor = r.nextCursor || null;
			draw();
		} catch (err) {
			if (mine !== gen) return;
			if (!more) results.replaceChildren();
			else draw(); // the Next button again
			showError(form, err);
		} finally {
			if (more) busy = false;
		}
	};
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		load(false);
	});
	return {
		sections: [section('incident-rl', 'Rate-limited sources',
			h('p', { class: 'hint' }, 'From the audit log: one security.rate_limited event per source and minute, with the 429s counted since the '
				+ 'previous one (a burst shows in full in the next minute\'s event); the counters below count every 429.'),
			form, results)],
		load: () => load(false),
	};
}

function sourceItem(s, links, emails) {
	const who = (s.kind === 'user' && emails.get(s.id)) || s.id;
	const label = s.kind === 'ip' || !s.id ? s.kind : `${s.kind} ${who}`;
	const select = s.kind === 'user' && s.id && links.target && links.target.canUsers
		? h('button', { type: 'button', class: 'secondary small', 'aria-label': `Select the account ${who}`, onclick: () => links.target.selectUser(s.id) }, 'Select')
		: null;
	return h('li', null, h('span', null, label), select);
}

// ---- 429 counters (metrics)

function countersPanel(ctx) {
	const results = h('div', { id: 'incident-counters', class: 'reserve', 'aria-live': 'polite' }, loading());
	const form = h('form', { id: 'incident-counters-refresh', class: 'inline', novalidate: true },
		h('button', { type: 'submit' }, 'Refresh counters'), formStatus());
	const load = async () => {
		clearErrors(form);
		try {
			const samples = parseProm(await ctx.call('GET', '/metrics', { text: true })).filter((s) => s.name === 'opsd_rate_limited_total');
			const totals = {};
			for (const s of samples) totals[s.labels.layer] = (totals[s.labels.layer] || 0) + s.value;
			const rows = samples.filter((s) => s.value > 0).sort((a, b) => b.value - a.value);
			results.replaceChildren(...[
				h('p', { id: 'incident-counters-summary' }, Object.keys(totals).length
					? `Refused with 429 since opsd started on this host: ${Object.entries(totals).map(([l, n]) => `${l} ${n}`).join(', ')}.`
					: 'opsd reports no 429 counter.'),
				rows.length ? table('429s by layer and route (opsd_rate_limited_total)', [
					{ head: 'Layer', cell: (s) => s.labels.layer },
					{ head: 'Route', cell: (s) => s.labels.route },
					{ head: '429s', cell: (s) => String(s.value) },
				], rows) : null,
			].filter(Boolean));
		} catch (err) {
			results.replaceChildren();
			showError(form, err);
		}
	};
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		load();
	});
	return { sections: [section('incident-metrics', '429 counters', form, results)], load };
}

// ---- the blocklist

function blocklistPanel(ctx) {
	const form = h('form', { id: 'block-add', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Address or range (CIDR)', name: 'cidr', required: true, hint: '203.0.113.7, 203.0.113.0/24 or 2001:db8::/32' }),
			field({ label: 'Reason', name: 'reason', required: true, hint: 'recorded with the entry and in the audit log' }),
			field({ label: 'Expires', name: 'expiresAt', placeholder: 'YYYY-MM-DD HH:MM', hint: 'your local time; empty: never' })),
		checkbox('force', 'Block it even if it contains my own address'),
		h('button', { type: 'submit' }, 'Block'),
		formStatus());
	const listStatus = h('div', { id: 'blocklist-status' }, formStatus());
	// nginx's copy of each entry: every host's nginx process applies it within seconds; the
	// cells of pending entries are read again every 2 s and updated in place
	const nginxCells = new Map();
	let follow = null;
	const pending = (e) => !!e.nginx && !e.nginx.applied && e.nginx.hosts > 0;
	const nginxText = (cell, e) => {
		const n = e.nginx || { hosts: 0 };
		const [word, title] = n.applied
			? ['applied', `nginx denies it on every host since ${new Date(n.appliedAt).toLocaleString()} (${n.appliedAt} UTC)`]
			: n.hosts > 0
				? ['pending', `nginx has it on ${n.hostsApplied} of ${n.hosts} host${n.hosts === 1 ? '' : 's'}; opsd refuses it already`]
				: ['by hand', 'no host applies the list to nginx by itself (OPSD_NGINX_APPLY): opsctl blocklist sync-nginx on the host'];
		cell.textContent = word;
		cell.title = title;
		cell.className = `nginx-state nginx-${word.replace(' ', '-')}`;
		return cell;
	};
	const nginxCell = (e) => {
		const cell = nginxText(h('span'), e);
		nginxCells.set(e.id, { cell, e });
		return cell;
	};
	const followNginx = () => {
		if (follow || ![...nginxCells.values()].some((c) => pending(c.e))) return;
		const until = Date.now() + 120000;
		const tick = async () => {
			follow = null;
			if (!list.section.isConnected || Date.now() > until) return;
			try {
				const r = await ctx.call('GET', '/security/blocklist', { query: { limit: 500 } });
				for (const e of r.items || []) {
					const c = nginxCells.get(e.id);
					if (c) nginxText(c.cell, (c.e = e));
				}
			} catch {
				// the next tick asks again
			}
			if (!follow && [...nginxCells.values()].some((c) => pending(c.e))) follow = setTimeout(tick, 2000);
		};
		follow = setTimeout(tick, 1000);
	};
	const list = pagedList(ctx, { id: 'blocklist', path: '/security/blocklist', title: 'Blocked addresses', more: 'Next entries',
		empty: 'No address is blocked.' }, [
		{ head: 'Address or range', cell: (e) => h('code', { class: 'nowrap' }, e.cidr) },
		{ head: 'Reason', cell: (e) => e.reason },
		{ head: 'Expires', cell: (e) => (e.expiresAt ? time(e.expiresAt) : 'never') },
		{ head: 'Added', cell: (e) => time(e.createdAt) },
		{ head: 'By', cell: (e) => e.createdByLabel || '' },
		{ head: 'nginx', cell: nginxCell },
		{ head: 'Action', cell: (e) => h('button', { type: 'button', class: 'danger small', 'aria-label': `Remove the block on ${e.cidr}`,
			onclick: () => remove(e) }, 'Remove…') },
	]);
	list.section.append(listStatus);
	const listHeading = list.section.querySelector('h2');
	listHeading.setAttribute('tabindex', '-1');
	const reload = async () => {
		nginxCells.clear();
		try {
			await list.reload();
			followNginx();
		} catch (err) {
			showError(listStatus, err);
		}
	};
	const remove = async (e) => {
		clearErrors(listStatus);
		const reason = await confirmReason({ title: `Lift the block on ${e.cidr}?`,
			text: 'opsd lets the address in again at once, nginx within seconds (on a host that does not apply the list by itself: after opsctl blocklist sync-nginx).',
			action: 'Remove block' });
		if (!reason) return;
		try {
			await ctx.call('DELETE', `/security/blocklist/${encodeURIComponent(e.id)}`, { body: { reason } });
			nginxCells.clear();
			await list.reload();
			showOk(listStatus, `Lifted the block on ${e.cidr}.`);
			listHeading.focus(); // the row pressed is gone
		} catch (err) {
			showError(listStatus, err);
		}
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		const body = { cidr: v.cidr, reason: v.reason };
		if (v.expiresAt) {
			const at = localTime(v.expiresAt);
			if (!at) return fieldError(form, 'expiresAt', 'a date and time as YYYY-MM-DD HH:MM, in your local time');
			body.expiresAt = at;
		}
		if (v.force) body.force = true;
		try {
			const r = await ctx.call('POST', '/security/blocklist', { body });
			form.reset();
			await reload();
			showOk(form, `Blocked ${r.cidr}${r.expiresAt ? ` until ${new Date(r.expiresAt).toLocaleString()} (${r.expiresAt} UTC)` : ', with no expiry'}: opsd refuses it at once, `
				+ 'nginx within seconds (the nginx column says when).');
		} catch (err) {
			showError(form, err);
		}
	});
	return {
		sections: [section('incident-block', 'Block an address', form), list.section],
		load: reload,
		prefill(ip) {
			form.querySelector('[name=cidr]').value = ip;
			form.scrollIntoView({ block: 'start' });
			form.querySelector('[name=reason]').focus();
		},
	};
}

// ---- finding an account or an org

function lookupPanel(ctx, target) {
	const results = h('div', { id: 'lookup-results', 'aria-live': 'polite' });
	const form = h('form', { id: 'incident-lookup', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Email', name: 'email', type: 'email', hint: 'exact, any case' }),
			field({ label: 'Name', name: 'name', hint: 'the start of a person\'s or an org\'s name, 3 characters or more' })),
		h('button', { type: 'submit' }, 'Find'),
		formStatus());
	let terms = {};
	const details = async (m) => {
		try {
			if (m.entity === 'users') return { ...m, user: await ctx.call('GET', `/users/${encodeURIComponent(m.id)}`) };
			return { ...m, org: await ctx.call('GET', `/orgs/${encodeURIComponent(m.id)}`) };
		} catch {
			return m; // listed by its id only
		}
	};
	const columns = [
		{ head: 'Kind', cell: (m) => (m.entity === 'users' ? 'account' : 'org') },
		{ head: 'Who', cell: (m) => (m.user ? `${m.user.email} (${m.user.name})` : m.org ? m.org.name : h('code', null, m.id)) },
		{ head: 'State', cell: (m) => (m.user ? (m.user.disabled ? 'disabled' : 'active') : m.org ? m.org.dbMode : '') },
		{ head: 'Legal hold', cell: (m) => (m.legalHold ? 'held' : m.orgLegalHold ? 'org held' : 'no') },
		{ head: 'Action', cell: (m) => {
			const can = m.entity === 'users' ? target.canUsers : target.canOrgs;
			if (!can) return '';
			const who = m.user ? m.user.email : m.org ? m.org.name : m.id;
			return h('button', { type: 'button', class: 'secondary small', 'aria-label': `Select ${who}`,
				onclick: () => (m.entity === 'users' ? target.selectUser(m.id) : target.selectOrg(m.id)) }, 'Select');
		} },
	];
	const page = async (cursor) => {
		const r = await ctx.call('POST', '/compliance/subjects/search', { body: { ...terms, limit: 20, cursor: cursor || undefined } });
		const found = await Promise.all((r.items || []).filter((m) => m.entity === 'users' || m.entity === 'orgs').map(details));
		if (!cursor) results.replaceChildren();
		results.querySelector('.more')?.remove();
		if (found.length) results.append(table('Accounts and orgs found', columns, found));
		else if (!cursor) results.append(h('p', null, 'No account or org matches.'));
		if (r.nextCursor) {
			results.append(h('button', { type: 'button', class: 'more',
				onclick: () => page(r.nextCursor).catch((e) => showError(form, e)) }, 'Next matches'));
		}
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		terms = {};
		if (v.email) terms.email = v.email;
		if (v.name) terms.name = v.name;
		if (!v.email && !v.name) return fieldError(form, 'email', 'type an email or a name');
		try {
			await page(null);
		} catch (err) {
			results.replaceChildren();
			showError(form, err);
		}
	});
	return {
		sections: [section('incident-find', 'Find an account or an org',
			h('p', { class: 'hint' }, 'The search is audited (compliance.subjects_searched, without the terms); the terms never enter a URL.'),
			form, results)],
	};
}

// ---- the account or org chosen, and what can be done to it

function targetPanel(ctx) {
	const body = h('div', { id: 'incident-target-body', class: 'reserve' },
		h('p', { class: 'muted' }, 'Choose an account or an org: Find, or Select on a rate-limited account.'));
	const status = h('div', { id: 'incident-target-status' }, formStatus());
	const sec = section('incident-target', 'Contain an account or org', body, status);
	let current = null; // { kind: 'user'|'org', id }

	const act = async (o) => {
		clearErrors(status);
		const reason = await confirmReason(o.confirm);
		if (!reason) return;
		try {
			const r = await o.run(reason);
			await refresh();
			showOk(status, o.done(r));
			sec.querySelector('h2').focus(); // the button pressed was redrawn
		} catch (err) {
			showError(status, err);
		}
	};
	const hold = (entity, id, held, name) => {
		const caseRef = field({ label: 'Case reference (optional)', name: 'caseRef' });
		const button = h('button', { type: 'button', class: held ? 'secondary' : 'danger',
			onclick: () => act({
				confirm: held
					? { title: `Release the legal hold on ${name}?`, text: 'Its records can be changed, stripped and archived again.', action: 'Release hold' }
					: { title: `Set a legal hold on ${name}?`, text: 'Destructive paths (delete, strip PII, archive, retention) refuse it until the hold is released.', action: 'Set hold' },
				run: (reason) => {
					const ref = caseRef.querySelector('input').value.trim();
					return ctx.call('POST', '/compliance/legal-hold', { body: { entity, ids: [id], hold: !held, reason, ...(ref ? { caseRef: ref } : {}) } });
				},
				done: (r) => `${name}: ${((r.results || [])[0] || {}).result || 'done'}.`,
			}) }, held ? 'Release legal hold…' : 'Set legal hold…');
		return h('div', { class: 'actions hold' }, caseRef, button);
	};
	const flush = (scope, id, name) => {
		const tokens = ctx.can('security.tokens_revoke') ? checkbox('tokens', 'Also revoke the API tokens') : null;
		const button = h('button', { type: 'button', class: 'danger', onclick: () => {
			const withTokens = !!(tokens && tokens.querySelector('input').checked);
			return act({
				confirm: { title: `Flush the sessions of ${name}?`,
					text: `Every session ${scope === 'org' ? 'of its users' : 'of the account'} ends at once${withTokens ? ', and the API tokens are revoked' : '; API tokens stay valid'}.`,
					action: 'Flush sessions' },
				run: (reason) => ctx.call('POST', '/security/sessions/flush', { body: { scope, id, reason, ...(withTokens ? { tokens: true } : {}) } }),
				done: (r) => `${name}: flushed ${plural(r.flushed, 'session', 'sessions')}${r.tokensRevoked !== undefined ? `, revoked ${plural(r.tokensRevoked, 'API token', 'API tokens')}` : ''}.`,
			});
		} }, 'Flush sessions…');
		return h('div', { class: 'actions' }, tokens, button);
	};

	const drawUser = (u, held) => {
		const name = u.email;
		const actions = [];
		if (ctx.can('security.sessions_flush')) actions.push(flush('user', u.id, name));
		const row = [];
		if (ctx.can('security.tokens_revoke')) {
			row.push(h('button', { type: 'button', class: 'danger', onclick: () => act({
				confirm: { title: `Revoke every API token of ${name}?`, text: 'Requests with them answer 401 at once.', action: 'Revoke tokens' },
				run: (reason) => ctx.call('POST', '/security/tokens/revoke', { body: { userId: u.id, reason } }),
				done: (r) => `${name}: revoked ${plural(r.revoked, 'API token', 'API tokens')}.`,
			}) }, 'Revoke API tokens…'));
		}
		if (ctx.can('security.users_disable')) {
			const verb = u.disabled ? 'enable' : 'disable';
			row.push(h('button', { type: 'button', class: u.disabled ? 'secondary' : 'danger', onclick: () => act({
				confirm: u.disabled
					? { title: `Enable ${name}?`, text: 'The account can sign in again.', action: 'Enable account' }
					: { title: `Disable ${name}?`, text: 'Its sessions and API tokens end at once and it cannot sign in.', action: 'Disable account' },
				run: (reason) => ctx.call('POST', `/security/users/${encodeURIComponent(u.id)}/${verb}`, { body: { reason } }),
				done: (r) => `${name}: ${r.disabled ? 'disabled' : 'enabled'}${r.changed === false ? ' (already)' : ''}.`,
			}) }, u.disabled ? 'Enable account…' : 'Disable account…'));
		}
		if (row.length) actions.push(h('div', { class: 'actions' }, row));
		if (ctx.can('compliance.legal_hold') && held !== undefined) actions.push(hold('users', u.id, held, name));
		body.replaceChildren(
			h('h3', null, `Account ${u.email}`),
			h('dl', { class: 'settings', id: 'incident-target-facts' },
				h('dt', null, 'Name'), h('dd', null, u.name),
				h('dt', null, 'Roles'), h('dd', null, (u.roles || []).join(', ')),
				h('dt', null, 'State'), h('dd', null, u.disabled ? 'disabled' : 'active'),
				h('dt', null, 'Legal hold'), h('dd', null, held === undefined ? 'unknown' : held ? 'held' : 'no'),
				h('dt', null, 'Org'), h('dd', null, u.orgId
					? [h('code', null, u.orgId), ' ', ctx.can('orgs.read') ? h('button', { type: 'button', class: 'secondary',
						onclick: () => selectOrg(u.orgId) }, 'Select its org') : null]
					: 'none (platform staff)'),
				h('dt', null, 'Id'), h('dd', null, h('code', null, u.id))),
			...actions);
	};
	const drawOrg = (o) => {
		const actions = [];
		if (ctx.can('security.sessions_flush')) actions.push(flush('org', o.id, o.name));
		if (ctx.can('compliance.legal_hold')) actions.push(hold('orgs', o.id, !!o.legalHold, o.name));
		body.replaceChildren(
			h('h3', null, `Org ${o.name}`),
			h('dl', { class: 'settings', id: 'incident-target-facts' },
				h('dt', null, 'Slug'), h('dd', null, o.slug),
				h('dt', null, 'Database'), h('dd', null, o.dbMode),
				h('dt', null, 'Legal hold'), h('dd', null, o.legalHold ? 'held' : 'no'),
				h('dt', null, 'Id'), h('dd', null, h('code', null, o.id))),
			...actions);
	};
	const refresh = async () => {
		if (!current) return;
		if (current.kind === 'user') {
			const u = await ctx.call('GET', `/users/${encodeURIComponent(current.id)}`);
			let held;
			if (ctx.can('compliance.read')) {
				const rec = await ctx.call('GET', `/compliance/records/users/${encodeURIComponent(current.id)}`);
				held = !!rec.legalHold;
			}
			drawUser(u, held);
		} else {
			drawOrg(await ctx.call('GET', `/orgs/${encodeURIComponent(current.id)}`));
		}
	};
	const choose = async (kind, id) => {
		current = { kind, id };
		clearErrors(status);
		try {
			await refresh();
		} catch (err) {
			body.replaceChildren();
			showError(status, err);
		}
		sec.scrollIntoView({ block: 'start' });
		sec.querySelector('h2').focus();
	};
	const selectUser = (id) => choose('user', id);
	const selectOrg = (id) => choose('org', id);
	return { sections: [sec], selectUser, selectOrg, canUsers: ctx.can('users.read'), canOrgs: ctx.can('orgs.read') };
}

// ---- every account at once

function everyonePanel(ctx) {
	const parts = [h('p', { class: 'hint' }, 'These act on every account of the platform, yours included.')];
	const status = h('div', { id: 'incident-all-status' }, formStatus());
	const confirmed = async (confirm, run, done) => {
		clearErrors(status);
		const reason = await confirmReason(confirm);
		if (!reason) return;
		try {
			showOk(status, done(await run(reason)));
		} catch (err) {
			showError(status, err);
		}
	};
	if (ctx.can('security.sessions_flush')) {
		const tokens = ctx.can('security.tokens_revoke') ? checkbox('tokens', 'Also revoke every API token') : null;
		parts.push(h('div', { class: 'actions', id: 'flush-all' }, tokens, h('button', { type: 'button', class: 'danger', onclick: () => {
			const withTokens = !!(tokens && tokens.querySelector('input').checked);
			return confirmed({ title: 'Flush every session?', text: `Every signed-in user must sign in again, you too${withTokens ? '; every API token is revoked' : ''}.`,
				action: 'Flush every session' },
			(reason) => ctx.call('POST', '/security/sessions/flush', { body: { scope: 'all', reason, ...(withTokens ? { tokens: true } : {}) } }),
			(r) => `Flushed ${plural(r.flushed, 'session', 'sessions')}${r.tokensRevoked !== undefined ? `, revoked ${plural(r.tokensRevoked, 'API token', 'API tokens')}` : ''}. `
				+ 'Your session ended too: the next request asks you to sign in.');
		} }, 'Flush every session…')));
	}
	if (ctx.can('security.tokens_revoke')) {
		parts.push(h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger', id: 'revoke-all', onclick: () => confirmed(
			{ title: 'Revoke every API token?', text: 'Every integration using a token answers 401 until it gets a new one.', action: 'Revoke every token' },
			(reason) => ctx.call('POST', '/security/tokens/revoke', { body: { all: true, reason } }),
			(r) => `Revoked ${plural(r.revoked, 'API token', 'API tokens')}.`) }, 'Revoke every API token…')));
		const form = h('form', { id: 'revoke-token', novalidate: true },
			field({ label: 'Token id', name: 'tokenId', required: true, hint: 'a leaked token\'s id (the audit log names it), not its value' }),
			h('button', { type: 'submit', class: 'danger' }, 'Revoke this token…'),
			formStatus());
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			clearErrors(form);
			const id = formValues(form).tokenId;
			if (!UUID.test(id)) return fieldError(form, 'tokenId', 'a token id is a UUID (0190c6a2-…)');
			const reason = await confirmReason({ title: 'Revoke this API token?', text: `Token ${id} answers 401 at once.`, action: 'Revoke token' });
			if (!reason) return;
			try {
				const r = await ctx.call('POST', '/security/tokens/revoke', { body: { tokenId: id, reason } });
				form.reset();
				showOk(form, `Revoked ${plural(r.revoked, 'API token', 'API tokens')}.`);
			} catch (err) {
				showError(form, err);
			}
		});
		parts.push(h('h3', null, 'One API token'), form);
	}
	return { sections: [section('incident-all', 'Every account', ...parts, status)] };
}

// ---- the rate limits in force (runbook 4 step 2)

const SOURCES = { default: 'default', environment: 'environment', env_file: 'env file', runtime: 'set at run time' };

function limitsPanel(ctx) {
	const results = h('div', { id: 'incident-limits', class: 'reserve', 'aria-live': 'polite' }, loading());
	const status = h('div', { id: 'incident-limits-status' }, formStatus());
	const form = ctx.can('security.rate_limits') ? h('form', { id: 'limits-set', novalidate: true }, formStatus()) : null;
	const sec = section('incident-rate-limits', 'Rate limits in force',
		h('p', { class: 'hint' }, 'opsd\'s buckets per signed-in user, API token or anonymous address, and nginx\'s zones per client address. '
			+ 'A value set here is stored: it overrides the configuration\'s until set back, also after a restart.'),
		results, status, form);
	let limits = [];
	const source = (l) => (l.source === 'runtime'
		? [`set at run time by ${l.setByLabel || 'unknown'}, `, time(l.setAt), `: ${l.reason || ''}`]
		: `${SOURCES[l.source] || l.source} (${l.variable})`);
	const columns = [
		{ head: 'Layer', cell: (l) => l.layer },
		{ head: 'Limit', cell: (l) => h('code', { class: 'nowrap' }, l.name) },
		{ head: 'In force', cell: (l) => h('code', { class: 'nowrap' }, String(l.value)) },
		{ head: 'Source', cell: source },
		{ head: 'Configuration\'s', cell: (l) => (l.source === 'runtime' ? `${l.envValue} (${SOURCES[l.envSource] || l.envSource})` : 'the same') },
		{ head: 'What', cell: (l) => l.description },
	];
	const drawForm = () => {
		form.replaceChildren(
			h('h3', null, 'Change the limits'),
			h('p', { class: 'hint' }, 'Type a new value for each limit to change and leave the others empty. Counts are whole numbers '
				+ '(0: no limit for opsd\'s per-minute ones); nginx\'s rates read like 10r/s or 300r/m.'),
			h('div', { class: 'grid' }, limits.map((l) => h('div', null,
				field({ label: `${l.name} (${l.layer})`, name: l.name, placeholder: String(l.value), hint: l.description }),
				l.source === 'runtime' ? checkbox(`clear-${l.name}`, `Back to the configuration's ${l.envValue}`) : null))),
			h('button', { type: 'submit' }, 'Change limits…'),
			formStatus());
	};
	const draw = (doc) => {
		limits = doc.limits || [];
		results.replaceChildren(
			h('p', { id: 'incident-limits-nginx' }, doc.nginxApplied
				? 'nginx runs the nginx values below.'
				: `nginx has not applied the nginx values set at run time yet (generation ${doc.nginxGeneration}, applied `
					+ `${doc.nginxAppliedGeneration}): until then it refuses with the earlier ones.`),
			table('Rate limits in force, by layer', columns, limits));
		if (form) drawForm();
	};
	const load = async () => {
		try {
			draw(await ctx.call('GET', '/security/rate-limits'));
		} catch (err) {
			results.replaceChildren();
			showError(status, err);
		}
	};
	// The body of the PUT: each value typed, checked as its limit takes it,
	// null for a limit set back; null after showing what is wrong.
	const changes = () => {
		const v = formValues(form);
		const body = {};
		for (const l of limits) {
			const t = v[l.name];
			const count = typeof l.envValue === 'number';
			if (v[`clear-${l.name}`]) {
				body[l.name] = null;
			} else if (t && count && /^\d{1,9}$/.test(t)) {
				body[l.name] = Number(t);
			} else if (t && !count && /^[1-9]\d*r\/[sm]$/.test(t)) {
				body[l.name] = t;
			} else if (t) {
				fieldError(form, l.name, count ? 'a whole number' : 'a rate such as 10r/s or 300r/m');
				return null;
			}
		}
		if (!Object.keys(body).length) {
			if (limits.length) fieldError(form, limits[0].name, 'type a new value for at least one limit');
			return null;
		}
		return body;
	};
	form?.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const body = changes();
		if (!body) return;
		const what = Object.entries(body).map(([k, x]) => (x === null ? `${k} back to the configuration's` : `${k} ${x}`)).join(', ');
		const reason = await confirmReason({ title: 'Change the rate limits?',
			text: `${what}. opsd's workers apply theirs within a second; nginx's apply once nginx has been given them.`,
			action: 'Change limits' });
		if (!reason) return;
		try {
			const r = await ctx.call('PUT', '/security/rate-limits', { body: { ...body, reason } });
			draw(r);
			sec.querySelector('h2').focus(); // the button pressed was redrawn
			showOk(form, r.changed
				? `Changed ${plural(r.changed, 'limit', 'limits')}.${r.nginxApplied ? '' : ' nginx runs its earlier values until they are applied to it.'}`
				: 'Nothing changed: those values were in force already.');
		} catch (err) {
			showError(form, err);
		}
	});
	return { sections: [sec], load };
}
