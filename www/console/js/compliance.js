// The Compliance screen (runbook 2, data-subject requests):
// - find a subject's records (POST /compliance/subjects/search: the terms
//   go in the body, never in a URL), paged with nextCursor, each record
//   with its org, its database and its flags;
// - per record, with compliance.strip_pii / compliance.legal_hold: Strip
//   PII (not offered on a held record: the API would refuse it), Hold /
//   Release, and Hold org / Release org
//   (POST /compliance/strip-pii, /compliance/legal-hold), each confirmed by
//   typing the reason, which goes into the request;
// - with compliance.export, the subject's records as one JSON download
//   (GET /compliance/export for each record listed) and an org's records
//   of one entity (GET /export/:entity, JSON or CSV), both fetched through
//   ctx.call (an ended session or the legal gate is met as for any request,
//   then the download goes on) and saved from a Blob;
// - with compliance.archive, a batch archive of an org's records older than
//   a time (POST /compliance/batch-archive): a dry run shows the counts,
//   then the real run, confirmed with its reason, reports what it did next
//   to what the dry run counted;
// - with audit.read, the audit events about one record (GET /audit with
//   about=<id>, paged by ui.js pagedList).
// The requests for exports and events carry record and org ids (opaque
// UUIDs) in their query strings, as the API takes them; emails, names and
// phones only ever travel in a POST body.

import { ApiError, saveBlob } from './api.js';
import { h, field, formValues, formStatus, showError, showOk, clearErrors, table, time, confirmReason, pagedList } from './ui.js';

const ARCHIVE_ENTITIES = ['contacts', 'projects', 'offices', 'users'];
const EXPORT_ENTITIES = ['contacts', 'projects', 'offices'];
const PER_PAGE = ['10', '25', '50', '100'];

// A per-id result of the compliance batch routes, in words.
const RESULT_WORDS = {
	stripped: 'PII stripped',
	already_stripped: 'PII already stripped',
	held: 'now under legal hold',
	released: 'legal hold released',
	already: 'no change (it already was so)',
	legal_hold: 'refused: under legal hold',
	not_found: 'not found',
	org_migrating: 'refused: its org is migrating, try again shortly',
};

export function render(box, ctx) {
	const orgs = orgDirectory(ctx);
	const events = ctx.can('audit.read') ? eventsPanel(ctx) : null;
	box.append(orgs.list, searchPanel(ctx, orgs, events));
	if (ctx.can('compliance.archive')) box.append(archivePanel(ctx, orgs));
	if (ctx.can('compliance.export')) box.append(orgExportPanel(ctx));
	if (events) box.append(events.section);
}

// ---------------------------------------------------------------- helpers

// A field error the console finds itself (before any request), shown as the
// API's are.
function fieldError(form, name, msg) {
	const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
	box.querySelector('.field-error').textContent = msg;
	const input = box.querySelector('input,select,textarea');
	input.setAttribute('aria-invalid', 'true');
	input.focus();
}

// A time the operator typed (RFC 3339, any offset) as the instant it
// denotes: in the local zone, its UTC value on hover; as typed if the
// browser cannot read it.
function instant(typed) {
	const d = new Date(typed);
	return Number.isNaN(d.getTime()) ? h('code', null, typed) : time(d.toISOString());
}

// The orgs the search met: their names (GET /orgs/:id, once each) and a
// datalist of them for the org fields of the archive and export forms.
function orgDirectory(ctx) {
	const cache = new Map();
	const list = h('datalist', { id: 'dsr-orgs' });
	return {
		list,
		get(id) {
			if (!id || !ctx.can('orgs.read')) return Promise.resolve(null);
			if (!cache.has(id)) {
				const p = ctx.call('GET', `/orgs/${encodeURIComponent(id)}`).catch(() => null);
				cache.set(id, p);
				p.then((o) => o && list.append(h('option', { value: id }, o.name)));
			}
			return cache.get(id);
		},
	};
}

const short = (id) => String(id || '').slice(-12);

function database(it) {
	if (it.database === 'dedicated') return h('span', null, 'dedicated ', h('code', null, it.dedicatedDb || ''));
	return it.database === 'control' ? 'control (platform)' : it.database;
}

function flags(it) {
	const f = [];
	if (it.legalHold) f.push('held');
	if (it.orgLegalHold) f.push('org held');
	if (it.piiStripped) f.push('PII stripped');
	if (it.archived) f.push('archived');
	return f.length ? f.map((x) => h('span', { class: 'flag' }, x)) : 'none';
}

// ---------------------------------------------------------------- subject search and the records

function searchPanel(ctx, orgs, events) {
	const perPage = field({ label: 'Per page', name: 'limit', type: 'select', options: PER_PAGE });
	perPage.querySelector('select').value = '50';
	const form = h('form', { id: 'dsr-search', class: 'wide', novalidate: true },
		h('p', null, 'Any term given finds a record; the terms are sent in the request body, never in a URL.'),
		h('div', { class: 'grid' },
			field({ label: 'Email', name: 'email', type: 'email', hint: 'exact, whatever the case' }),
			field({ label: 'Name', name: 'name', hint: 'the start of the whole name, at least 3 characters' }),
			field({ label: 'Phone', name: 'phone', type: 'tel', hint: 'matched on its digits: +44 … and 0044 … are two spellings' }),
			perPage),
		h('button', { type: 'submit' }, 'Search'),
		formStatus());

	const caseForm = ctx.can('compliance.legal_hold') ? h('form', { id: 'dsr-case', novalidate: true },
		field({ label: 'Case reference (optional)', name: 'caseRef', hint: 'recorded with each legal hold you set below' })) : null;
	if (caseForm) caseForm.addEventListener('submit', (ev) => ev.preventDefault());

	const exportBtn = ctx.can('compliance.export')
		? h('button', { type: 'button', id: 'dsr-subject-export', disabled: true }, 'Download the records listed (JSON)') : null;
	const act = h('div', { id: 'dsr-act' }, formStatus());
	const summary = h('p', { id: 'dsr-summary', role: 'status' }, 'Search to list the records of a data subject.');
	const results = h('div', { id: 'dsr-results', class: 'reserve', 'aria-live': 'polite' });

	let terms = {};
	let limit = 50;
	let rows = []; // { it, flags, org, actions } per record listed
	let more = null;
	let query = 0; // the search listed; a reply to an older one is dropped

	const listed = () => {
		summary.textContent = rows.length
			? `${rows.length} record${rows.length === 1 ? '' : 's'} listed${more ? '; more on the next page' : ''}.`
			: 'No record matches.';
		if (exportBtn) exportBtn.disabled = !rows.length;
	};

	// Redraws the flags and buttons of every row (an org hold changes the
	// rows of that org); the button that had the focus gets it back.
	const redraw = () => {
		const had = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.act : null;
		const hadRow = had ? document.activeElement.closest('tr') : null;
		for (const r of rows) {
			r.flags.replaceChildren(...[flags(r.it)].flat());
			drawActions(r);
			drawOrg(r);
		}
		if (hadRow && !hadRow.contains(document.activeElement)) {
			const again = hadRow.querySelector(`[data-act="${had}"]`) || hadRow.querySelector('button');
			if (again) again.focus();
		}
	};

	const button = (kind, text, label, onclick, cls) =>
		h('button', { type: 'button', class: cls || 'small', 'data-act': kind, 'aria-label': label, onclick }, text);

	const drawActions = (r) => {
		const it = r.it;
		r.actions.replaceChildren(...[
			ctx.can('compliance.strip_pii') && !it.piiStripped && !it.legalHold && !it.orgLegalHold
				? button('strip', 'Strip PII…', `Strip PII from ${it.entity} ${it.id}`, () => strip(r), 'small danger') : null,
			ctx.can('compliance.legal_hold')
				? button('hold', it.legalHold ? 'Release…' : 'Hold…',
					`${it.legalHold ? 'Release the legal hold of' : 'Hold'} ${it.entity} ${it.id}`, () => hold(r, !it.legalHold)) : null,
			events ? button('events', 'Events', `Audit events about ${it.entity} ${it.id}`, () => events.show(it.id)) : null,
		].filter(Boolean));
	};

	const drawOrg = (r) => {
		const it = r.it;
		const orgId = it.entity === 'orgs' ? null : it.orgId;
		if (!orgId) return void r.org.replaceChildren(it.entity === 'orgs' ? 'the org itself' : '— (platform)');
		const name = h('span', { class: 'org-name' });
		orgs.get(orgId).then((o) => o && name.replaceChildren(o.name));
		r.org.replaceChildren(name, ' ', h('code', null, orgId));
		if (ctx.can('compliance.legal_hold')) {
			r.org.append(button('org', it.orgLegalHold ? 'Release org…' : 'Hold org…',
				`${it.orgLegalHold ? 'Release org' : 'Hold org'} ${orgId}`, () => holdOrg(r, !it.orgLegalHold)));
		}
	};

	const resultOf = (answer, id) => ((answer.results || []).find((x) => x.id === id) || {}).result || 'not_found';

	const report = (text, good) => (good ? showOk(act, text) : showError(act, { describe: () => text }));

	async function strip(r) {
		const it = r.it;
		const reason = await confirmReason({
			title: `Strip PII from ${it.entity} …${short(it.id)}`,
			text: `Every personal field of this ${it.entity} record is overwritten as the entity table says; this cannot be undone.`
				+ (it.entity === 'users' ? ' A stripped user is also disabled, and their sessions and API tokens end.' : ''),
			action: 'Strip PII',
		});
		if (!reason) return;
		try {
			const a = await ctx.call('POST', '/compliance/strip-pii', { body: { entity: it.entity, ids: [it.id], reason } });
			const res = resultOf(a, it.id);
			if (res === 'stripped' || res === 'already_stripped') it.piiStripped = true;
			report(`${it.entity} ${it.id}: ${RESULT_WORDS[res] || res}.`, res === 'stripped' || res === 'already_stripped');
			redraw();
		} catch (err) {
			showError(act, err);
		}
	}

	async function setHold(entity, id, on, title) {
		const reason = await confirmReason({
			title,
			text: on
				? 'While held, the record cannot be changed, deleted, stripped, archived or migrated, and audit events about it are kept.'
				: 'Once released, the record can be changed, stripped and archived again.',
			action: on ? 'Hold' : 'Release',
		});
		if (!reason) return null;
		const body = { entity, ids: [id], hold: on, reason };
		const caseRef = caseForm ? formValues(caseForm).caseRef : '';
		if (on && caseRef) body.caseRef = caseRef;
		try {
			const a = await ctx.call('POST', '/compliance/legal-hold', { body });
			const res = resultOf(a, id);
			report(`${entity} ${id}: ${RESULT_WORDS[res] || res}.`, res !== 'not_found');
			return res;
		} catch (err) {
			showError(act, err);
			return null;
		}
	}

	async function hold(r, on) {
		const it = r.it;
		const res = await setHold(it.entity, it.id, on, `${on ? 'Hold' : 'Release the legal hold of'} ${it.entity} …${short(it.id)}`);
		if (res !== 'held' && res !== 'released' && res !== 'already') return;
		it.legalHold = on;
		if (it.entity === 'orgs') for (const x of rows) if (x.it.orgId === it.id) x.it.orgLegalHold = on;
		redraw();
	}

	async function holdOrg(r, on) {
		const orgId = r.it.orgId;
		const res = await setHold('orgs', orgId, on, `${on ? 'Hold' : 'Release the legal hold of'} the org …${short(orgId)} (every record of it)`);
		if (res !== 'held' && res !== 'released' && res !== 'already') return;
		for (const x of rows) {
			if (x.it.orgId === orgId) x.it.orgLegalHold = on;
			if (x.it.entity === 'orgs' && x.it.id === orgId) x.it.legalHold = on;
		}
		redraw();
	}

	const columns = [
		{ head: 'Record', cell: (r) => [r.it.entity, ' ', h('code', null, r.it.id)] },
		{ head: 'Org', cell: (r) => r.org },
		{ head: 'Database', cell: (r) => database(r.it) },
		{ head: 'Matched', cell: (r) => (r.it.matched || []).map((m) => `${m.term} (${m.field})`).join(', ') },
		{ head: 'Flags', cell: (r) => r.flags },
		{ head: 'Actions', cell: (r) => r.actions },
	];

	// A page of search q (its first when cursor is null). Next is disabled
	// while its request is out, so a double click asks once.
	const page = async (cursor, q) => {
		const a = await ctx.call('POST', '/compliance/subjects/search', { body: { ...terms, limit, cursor: cursor || undefined } });
		if (q !== query) return; // another search began meanwhile
		const fresh = (a.items || []).map((it) => ({ it, flags: h('span', { class: 'flags' }), org: h('span', { class: 'org' }),
			actions: h('span', { class: 'row-actions' }) }));
		if (!cursor) {
			rows = [];
			results.replaceChildren();
			clearErrors(act);
		}
		results.querySelector('.more')?.remove();
		rows.push(...fresh);
		more = a.nextCursor || null;
		const list = fresh.length ? table(`The subject's records${cursor ? ' (next page)' : ''}`, columns, fresh) : null;
		if (list) results.append(list);
		if ((a.unsearched || []).length) {
			results.append(h('p', { class: 'notice warn' }, 'Not searched (the database could not be asked): ',
				a.unsearched.map((u) => `org ${u.orgId} (${u.dedicatedDb || u.database})`).join(', '), '. Search again later.'));
		}
		if (more) {
			const next = h('button', { type: 'button', class: 'more' }, 'Next records');
			const after = more;
			next.addEventListener('click', async () => {
				if (next.disabled) return;
				next.disabled = true;
				try {
					await page(after, q);
				} catch (e) {
					if (q === query) showError(act, e);
				} finally {
					next.disabled = false;
				}
			});
			results.append(next);
		}
		redraw();
		listed();
		if (cursor && list) list.focus(); // the Next button is gone: on to the new page
	};

	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		terms = {};
		for (const k of ['email', 'name', 'phone']) if (v[k]) terms[k] = v[k];
		limit = Number(v.limit) || 50;
		summary.textContent = 'Searching…';
		const q = ++query;
		try {
			await page(null, q);
		} catch (err) {
			if (q !== query) return;
			rows = [];
			results.replaceChildren();
			summary.textContent = 'Search to list the records of a data subject.';
			if (exportBtn) exportBtn.disabled = true;
			showError(form, err);
		}
	});

	if (exportBtn) {
		exportBtn.addEventListener('click', async () => {
			const list = rows.map((r) => r.it);
			const out = { exportedAt: new Date().toISOString(), records: [], failed: [] };
			exportBtn.disabled = true;
			report(`Exporting ${list.length} records…`, true);
			try {
				for (const it of list) {
					try {
						out.records.push(await ctx.call('GET', '/compliance/export', { query: { entity: it.entity, id: it.id } }));
					} catch (err) {
						if (!(err instanceof ApiError) || err.status !== 404) throw err;
						out.failed.push({ entity: it.entity, id: it.id, error: err.code });
					}
				}
				const name = `subject-export-${out.exportedAt.slice(0, 10)}.json`;
				saveBlob(new Blob([JSON.stringify(out, null, 2) + '\n'], { type: 'application/json' }), name);
				report(`Downloaded ${name}: ${out.records.length} record${out.records.length === 1 ? '' : 's'}`
					+ (out.failed.length ? `, ${out.failed.length} no longer found` : '')
					+ (more ? ' (more records are on the next page of the search: list them first to include them)' : '') + '.', true);
			} catch (err) {
				showError(act, err);
			} finally {
				exportBtn.disabled = !rows.length;
			}
		});
	}

	return h('section', { 'aria-labelledby': 'dsr-search-h' },
		h('h2', { id: 'dsr-search-h' }, 'Find a data subject'), form,
		h('h2', { id: 'dsr-records-h' }, 'Records'),
		caseForm, summary,
		exportBtn ? h('div', { class: 'actions' }, exportBtn) : null,
		act, results);
}

// ---------------------------------------------------------------- batch archive

function archivePanel(ctx, orgs) {
	const org = field({ label: 'Org id', name: 'orgId', required: true, hint: 'an org of the records above, or any org id' });
	org.querySelector('input').setAttribute('list', 'dsr-orgs');
	const run = h('button', { type: 'button', id: 'dsr-archive-run', class: 'danger', disabled: true }, 'Archive…');
	const form = h('form', { id: 'dsr-archive', class: 'wide', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Entity', name: 'entity', type: 'select', options: ARCHIVE_ENTITIES }),
			org,
			field({ label: 'Older than', name: 'olderThan', required: true, placeholder: '2024-01-01T00:00:00Z',
				hint: 'records created before this time (RFC 3339, e.g. Z for UTC)' })),
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Dry run'), run),
		formStatus());
	const outcome = h('div', { id: 'dsr-archive-outcome', class: 'reserve-small', 'aria-live': 'polite' },
		h('p', null, 'A dry run counts what would be archived; then Archive does it.'));
	let dry = null; // { body, counts } of the last dry run

	const same = (a, b) => a.entity === b.entity && a.orgId === b.orgId && a.olderThan === b.olderThan;
	const countsList = (c, verb) => h('dl', { class: 'settings counts' },
		h('dt', null, verb), h('dd', { 'data-count': 'archived' }, String(c.archived ?? 0)),
		h('dt', null, 'Held, skipped'), h('dd', { 'data-count': 'legal_hold' }, String(c.legal_hold ?? 0)),
		h('dt', null, 'Already archived'), h('dd', { 'data-count': 'already_archived' }, String(c.already_archived ?? 0)),
		c.org_migrating ? [h('dt', null, 'Org migrating, untouched'), h('dd', null, String(c.org_migrating))] : null);

	const params = () => {
		const v = formValues(form);
		return { entity: v.entity, orgId: v.orgId, olderThan: v.olderThan };
	};
	const stale = () => {
		if (dry && !same(dry.body, params())) {
			dry = null;
			run.disabled = true;
			run.textContent = 'Archive…';
			outcome.replaceChildren(h('p', null, 'The form changed: run the dry run again.'));
		}
	};
	form.addEventListener('input', stale);
	form.addEventListener('change', stale);

	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		dry = null;
		run.disabled = true;
		run.textContent = 'Archive…';
		const p = params();
		if (!p.orgId) return fieldError(form, 'orgId', 'Required: the org whose records are archived.');
		if (!p.olderThan) return fieldError(form, 'olderThan', 'Required: records created before this time are archived.');
		try {
			const a = await ctx.call('POST', '/compliance/batch-archive', { body: { ...p, reason: 'dry run', dryRun: true } });
			const c = a.counts || {};
			dry = { body: p, counts: c };
			const o = await orgs.get(p.orgId);
			outcome.replaceChildren(
				h('p', { id: 'dsr-dry-run' }, `Dry run: ${p.entity} of ${o ? o.name : 'the org'} `, h('code', null, p.orgId),
					' created before ', instant(p.olderThan), '. Nothing was changed.'),
				countsList(c, 'Would archive'));
			if (c.archived > 0) {
				run.disabled = false;
				run.textContent = `Archive ${c.archived} ${p.entity}…`;
			} else {
				outcome.append(h('p', null, 'Nothing to archive.'));
			}
		} catch (err) {
			outcome.replaceChildren(h('p', null, 'A dry run counts what would be archived; then Archive does it.'));
			showError(form, err);
		}
	});

	run.addEventListener('click', async () => {
		if (!dry || !same(dry.body, params())) return stale();
		const d = dry;
		const reason = await confirmReason({
			title: `Archive ${d.counts.archived} ${d.body.entity}`,
			text: `The ${d.body.entity} of org …${short(d.body.orgId)} created before ${d.body.olderThan}, as the dry run counted; held ones are skipped. Archived records are marked archived, with this reason.`,
			action: 'Archive',
		});
		if (!reason) return;
		clearErrors(form);
		try {
			const a = await ctx.call('POST', '/compliance/batch-archive', { body: { ...d.body, reason, dryRun: false } });
			const c = a.counts || {};
			const as = (c.archived ?? 0) === (d.counts.archived ?? 0);
			dry = null;
			run.disabled = true;
			run.textContent = 'Archive…';
			outcome.replaceChildren(
				h('p', { id: 'dsr-archived', class: as ? 'notice' : 'notice warn' },
					as ? `Archived ${c.archived} ${d.body.entity}, as the dry run counted.`
						: `Archived ${c.archived} ${d.body.entity}; the dry run counted ${d.counts.archived}: records changed in between.`),
				countsList(c, 'Archived'));
			outcome.querySelector('p').setAttribute('tabindex', '-1');
			outcome.querySelector('p').focus();
		} catch (err) {
			showError(form, err);
		}
	});

	return h('section', { 'aria-labelledby': 'dsr-archive-h' },
		h('h2', { id: 'dsr-archive-h' }, 'Batch archive an org\'s records'), form, outcome);
}

// ---------------------------------------------------------------- org export

function orgExportPanel(ctx) {
	const org = field({ label: 'Org id', name: 'orgId', required: true, hint: 'an org of the records above, or any org id' });
	org.querySelector('input').setAttribute('list', 'dsr-orgs');
	const form = h('form', { id: 'dsr-org-export', class: 'wide', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Entity', name: 'entity', type: 'select', options: EXPORT_ENTITIES }),
			org,
			field({ label: 'Format', name: 'format', type: 'select', options: ['json', 'csv'] })),
		h('button', { type: 'submit' }, 'Download'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		if (!v.orgId) return fieldError(form, 'orgId', 'Required: the org whose records are exported.');
		try {
			const { blob, filename, requestId } = await ctx.call('GET', `/export/${encodeURIComponent(v.entity)}`,
				{ query: { orgId: v.orgId, format: v.format }, blob: true });
			// A streamed JSON export that broke off does not end its array.
			if (v.format === 'json' && !/\]\}\s*$/.test(await blob.slice(Math.max(0, blob.size - 8)).text())) {
				throw new ApiError(500, { error: { code: 'export_incomplete', message: 'the export broke off before its end' }, requestId });
			}
			const name = filename || `${v.entity}-${v.orgId}.${v.format}`;
			saveBlob(blob, name);
			showOk(form, `Downloaded ${name} (${blob.size} bytes).`);
		} catch (err) {
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'dsr-org-export-h' },
		h('h2', { id: 'dsr-org-export-h' }, 'Export an org\'s records'), form);
}

// ---------------------------------------------------------------- audit events about a record

function eventsPanel(ctx) {
	const form = h('form', { id: 'dsr-events-form', class: 'wide', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Record id', name: 'about', required: true, hint: 'events whose target or payload names this id' }),
			field({ label: 'Action (optional)', name: 'action', hint: 'exact, or a prefix ending in * (compliance.*)' })),
		h('button', { type: 'submit' }, 'Show events'),
		formStatus());
	const columns = [
		{ head: 'Time', cell: (e) => time(e.occurredAt) },
		{ head: 'Action', cell: (e) => e.action },
		{ head: 'Actor', cell: (e) => e.actorLabel || e.actorId || '' },
		{ head: 'Target', cell: (e) => [e.targetType, e.targetId].filter(Boolean).join(' ') },
		{ head: 'Payload', cell: (e) => (e.payload == null ? '' : h('code', null, JSON.stringify(e.payload))) },
	];
	// the list (#list-dsr-events) under its heading (#dsr-events-h), the
	// form between them
	const opts = { id: 'dsr-events', path: '/audit', title: 'Audit events about a record',
		more: 'Next events', empty: 'No event names this record.', limit: 25 };
	const list = pagedList(ctx, opts, columns);
	const heading = list.section.querySelector('h2');
	heading.setAttribute('tabindex', '-1');
	heading.after(form);
	list.results.classList.add('reserve-small');
	list.results.append(h('p', null, 'Events on a record above fills the id in.'));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		if (!v.about) return fieldError(form, 'about', 'Required: the id of a record.');
		opts.query = { about: v.about };
		if (v.action) opts.query.action = v.action;
		try {
			await list.reload();
		} catch (err) {
			list.results.replaceChildren();
			showError(form, err);
		}
	});
	return {
		section: list.section,
		show(id) {
			form.querySelector('[name=about]').value = id;
			form.querySelector('[name=action]').value = '';
			heading.scrollIntoView({ block: 'start' });
			heading.focus();
			form.requestSubmit();
		},
	};
}
