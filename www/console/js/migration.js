// The Migration screen (runbook 3: an org's tenant records between the
// shared database and a dedicated one). The orgs with their database mode
// (GET /orgs, paged); Select makes one the selected org: its latest
// migration live (GET /migration/status/:orgId about once a second while it
// runs: a progress bar per table, rows/s, ETA, throttling, phase), Rehearse
// cut-over (POST /migration/finalize with dryRun), Finalize and Abort
// (confirmed by typing the reason, which the request carries), its history
// (GET /migration/history, paged); a form that starts a migration (POST
// /migration/start: direction, chunk size, database name, target URI, dry
// run, legal-hold override, reason); every org's migrations (GET
// /migration, a status filter, paged). The target URI may hold a password:
// it is typed in a password field, sent in the request body only and
// cleared once sent; the API shows targets with the password as ***.
// Polling stops when the migration ends, another org is selected or the
// screen is left. Every answer is for the org it was asked about: one that
// comes back after another org was selected is dropped (each selection has
// its number; the panel takes only documents of the org it shows), so the
// panel never holds one org's migration under another's name, and Finalize
// and Abort name in their confirmation the org whose id they send.

import { h, field, formValues, formStatus, showError, showOk, clearErrors, pagedList, time, confirmReason } from './ui.js';

const DIRECTIONS = ['shared_to_dedicated', 'dedicated_to_shared'];
const STATUSES = ['all', 'pending', 'copying', 'catching_up', 'verifying', 'ready_for_cutover', 'cutting_over',
	'completed', 'aborting', 'aborted', 'failed'];
const TERMINAL = new Set(['completed', 'aborted', 'failed']);
const POLL_MS = 1000;
const REHEARSING = 'Rehearsing the cut-over: catch-up and verification, nothing frozen or switched…';

const NUM = new Intl.NumberFormat();
const num = (n) => (n == null ? '—' : NUM.format(n));
const yes = (b) => (b ? 'yes' : 'no');

function eta(s) {
	if (s == null) return '—';
	if (s < 60) return `${s} s`;
	if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
	return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// Runs fn's calls one after the other: a list reloaded twice shows the
// answer to the later call (the earlier answer cannot land last).
function serial(fn) {
	let last = Promise.resolve();
	return () => (last = last.catch(() => {}).then(fn));
}

function rows(d) {
	return `${num(d.rowsCopied)} of ${num(d.rowsTotal)} (${Math.floor(d.percent || 0)} %)`;
}

// A checkbox with its label and a slot for its field error (ui.js field()
// makes text inputs, selects and textareas).
let boxSeq = 0;
function checkbox(name, label, checked) {
	const id = `mig-${name}-${++boxSeq}`;
	return h('div', { class: 'field mig-check', 'data-field': name },
		h('span', { class: 'mig-check-row' },
			h('input', { id, name, type: 'checkbox', checked, 'aria-describedby': `${id}-err` }),
			h('label', { for: id }, label)),
		h('span', { id: `${id}-err`, class: 'field-error', role: 'alert' }));
}

export async function render(box, ctx) {
	const run = ctx.can('migration.run');
	const state = { org: null };
	const live = statusPanel(box, ctx, run, () => refreshAfterEnd(), () => refreshLists());
	const histOpts = { id: 'mig-history', path: '/migration/history', title: 'History of the selected org',
		more: 'Next migrations of this org', empty: 'This org has no migration yet.', query: null };
	const history = pagedList(ctx, histOpts, [
		{ head: 'Started', cell: (m) => time(m.createdAt) },
		{ head: 'Direction', cell: (m) => m.direction },
		{ head: 'Status', cell: (m) => m.status },
		{ head: 'Dry run', cell: (m) => yes(m.dryRun) },
		{ head: 'Rows', cell: (m) => `${num(m.rowsCopied)} of ${num(m.rowsTotal)}` },
		{ head: 'Freeze', cell: (m) => (m.freezeMs == null ? '' : `${num(m.freezeMs)} ms`) },
		{ head: 'Finished', cell: (m) => time(m.finishedAt) },
		{ head: 'Reason', cell: (m) => m.reason || '' },
		{ head: 'Abort reason', cell: (m) => m.abortReason || '' },
		{ head: 'Error', cell: (m) => m.error || '' },
		{ head: 'Id', cell: (m) => h('code', null, m.id) },
	]);
	history.results.append(h('p', null, 'Select an org to see its migrations.'));
	const reloadHistory = serial(history.reload);

	// The org chosen in a list (Select, Show) or by starting a migration.
	// Each choice has its number: an answer to an older one is dropped.
	let chosen = 0;
	const select = async (org) => {
		const my = ++chosen;
		state.org = org;
		live.setOrg(org);
		if (start) start.setOrg(org);
		histOpts.query = { orgId: org.id };
		try {
			const page = await reloadHistory();
			if (my !== chosen) return;
			if (page && !(page.items || []).length) live.none();
			else live.watch(org.id);
		} catch (err) {
			if (my === chosen) live.failed(err);
		}
	};
	// by id: the org as it is now (a list row may be older than a cut-over)
	const selectById = async (id) => {
		const my = ++chosen;
		let org;
		try {
			org = await ctx.call('GET', `/orgs/${encodeURIComponent(id)}`);
		} catch (err) {
			if (my !== chosen) return;
			live.failed(err);
			document.getElementById('mig-status-h').focus();
			return;
		}
		if (my !== chosen) return;
		const done = select(org);
		document.getElementById('mig-status-h').focus();
		await done;
	};

	const orgs = pagedList(ctx, { id: 'mig-orgs', path: '/orgs', title: 'Orgs', more: 'Next orgs', limit: 25 }, [
		{ head: 'Name', cell: (o) => o.name },
		{ head: 'Slug', cell: (o) => o.slug },
		{ head: 'Database', cell: (o) => h('span', { 'data-dbmode': o.id }, o.dbMode) },
		{ head: 'Legal hold', cell: (o) => yes(o.legalHold) },
		{ head: 'Id', cell: (o) => h('code', null, o.id) },
		{ head: 'Migration', cell: (o) => h('button', { type: 'button', class: 'secondary', 'aria-label': `Select ${o.name}`,
			onclick: () => selectById(o.id) }, 'Select') },
	]);
	const start = run ? startForm(ctx, (doc) => started(doc)) : null;
	const all = allMigrations(ctx, selectById);

	// the sections first, so nothing moves when the data comes
	box.append(orgs.section, live.section);
	if (start) box.append(start.section);
	box.append(history.section, all.section);

	async function started(doc) {
		all.reload().catch(() => {});
		const my = ++chosen;
		if (!state.org || state.org.id !== doc.orgId) {
			const org = await ctx.call('GET', `/orgs/${encodeURIComponent(doc.orgId)}`);
			if (my !== chosen) return; // another org was selected meanwhile
			await select(org);
		} else {
			await reloadHistory();
		}
		if (!state.org || state.org.id !== doc.orgId) return;
		live.show(doc);
		live.watch(doc.orgId);
	}

	// The status changed: the lists show the new one.
	function refreshLists() {
		if (state.org) reloadHistory().catch(() => {});
		all.reload().catch(() => {});
	}

	// A migration ended: its org's mode may have changed; the lists show it.
	async function refreshAfterEnd() {
		if (!state.org) return;
		const my = chosen;
		try {
			const org = await ctx.call('GET', `/orgs/${encodeURIComponent(state.org.id)}`);
			if (my !== chosen) return; // another org was selected meanwhile
			state.org = org;
			live.setOrg(org);
			if (start) start.setOrg(org, true);
			for (const el of box.querySelectorAll(`[data-dbmode="${CSS.escape(org.id)}"]`)) el.textContent = org.dbMode;
			await Promise.all([reloadHistory(), all.reload()]);
		} catch {
			// the next action shows any error
		}
	}

	await Promise.all([orgs.reload(), all.reload()]);
}

// ---------------------------------------------------------------- the selected org, live

function statusPanel(box, ctx, run, onEnd, onChange) {
	const orgLine = h('p', { id: 'mig-org' }, 'No org selected: choose one with Select in the orgs list, or Show in every org\'s migrations.');
	const summary = h('p', { id: 'mig-summary', class: 'mig-summary', role: 'status' });
	const details = h('dl', { class: 'settings mig-details', id: 'mig-details' });
	const overall = h('div', { class: 'mig-tables', id: 'mig-progress' });
	const report = h('div', { id: 'mig-report', class: 'mig-report' });
	const status = formStatus();
	const btn = (label, cls, fn) => h('button', { type: 'button', class: cls, disabled: true, onclick: fn }, label);
	const rehearse = btn('Rehearse cut-over', null, () => doRehearse());
	const finalize = btn('Finalize…', 'danger', () => doFinalize());
	const abort = btn('Abort…', 'danger', () => doAbort());
	const actions = h('div', { class: 'mig-actions', id: 'mig-actions' },
		run ? h('div', { class: 'actions' }, rehearse, finalize, abort) : null, status);
	const body = h('div', { class: 'mig-body hidden' }, summary, overall, details, report);
	const section = h('section', { 'aria-labelledby': 'mig-status-h', id: 'mig-status', class: 'mig-status' },
		h('h2', { id: 'mig-status-h', tabindex: -1 }, 'Selected org'), orgLine, body, actions);

	let gen = 0; // one polling chain at a time: a new watch() ends the old one
	let timer = null;
	let shown = null; // the org the panel is about (setOrg)
	let doc = null; // its latest migration (always of that org)
	const busy = new Set(); // the orgs with a finalize or abort request on its way
	const rehearsing = new Set(); // the orgs with a rehearsal waiting for its report (finalize and abort still work)
	let pollFailed = false;
	// the panel still shows orgId: an answer about it may land
	const here = (orgId) => !!shown && shown.id === orgId && box.isConnected;

	const stop = () => {
		gen++;
		clearTimeout(timer);
		timer = null;
	};
	const onHash = () => {
		if (!box.isConnected) {
			stop();
			window.removeEventListener('hashchange', onHash);
		}
	};
	window.addEventListener('hashchange', onHash);

	function setOrg(org) {
		shown = org;
		orgLine.replaceChildren(h('strong', null, org.name), ` (${org.slug}): database `,
			h('strong', { 'data-dbmode': org.id }, org.dbMode), org.legalHold ? ', on legal hold' : '');
		if (!doc || doc.orgId !== org.id) {
			stop();
			doc = null;
			body.classList.add('hidden');
			summary.textContent = ''; // nothing of the org shown before stays, even hidden
			overall.replaceChildren();
			details.replaceChildren();
			clearErrors(actions);
			report.replaceChildren();
			if (rehearsing.has(org.id)) status.textContent = REHEARSING;
			buttons();
		}
	}

	function none() {
		stop();
		doc = null;
		body.classList.add('hidden');
		status.className = 'form-status';
		status.textContent = 'This org has no migration yet: start one below.';
		buttons();
	}

	function failed(err) {
		showError(actions, err);
	}

	function watch(orgId) {
		if (!here(orgId)) return;
		stop();
		const my = gen;
		let running = false; // seen unfinished: its end refreshes the lists
		const tick = async () => {
			if (my !== gen || !box.isConnected) return;
			let wait = POLL_MS;
			try {
				const d = await ctx.call('GET', `/migration/status/${encodeURIComponent(orgId)}`);
				if (my !== gen || !box.isConnected) return;
				if (pollFailed) clearErrors(actions);
				pollFailed = false;
				show(d);
				if (TERMINAL.has(d.status)) {
					stop();
					if (running) onEnd(d);
					return;
				}
				running = true;
			} catch (err) {
				if (my !== gen || !box.isConnected) return;
				showError(actions, err);
				pollFailed = true;
				if (err.retryAfter) wait = Math.max(wait, Number(err.retryAfter) * 1000 || 0);
			}
			timer = setTimeout(tick, wait);
		};
		tick();
	}

	function show(d) {
		if (!d || !here(d.orgId)) return; // an answer about another org
		const changed = !!doc && doc.id === d.id && doc.status !== d.status;
		doc = d;
		body.classList.remove('hidden');
		const phase = d.phase ? ` (${d.phase})` : '';
		const text = `${d.dryRun ? 'Dry run' : 'Migration'} ${d.direction}: ${d.status}${phase}`;
		if (summary.textContent !== text) summary.textContent = text;
		overall.replaceChildren(
			progressRow('mig-p-all', 'All tables', Math.floor(d.percent || 0), 100, rows(d)),
			...(d.tables || []).map((t) => progressRow(`mig-p-${t.table}`, t.table,
				t.rowsTotal ? t.rowsCopied : Number(!!t.done), t.rowsTotal || 1,
				`${num(t.rowsCopied)} of ${num(t.rowsTotal)}${t.done ? ', copied' : ''}${t.verified ? ', verified' : ''}`)));
		const item = (k, v) => (v === null || v === undefined || v === '' ? [] : [h('dt', null, k), h('dd', null, v)]);
		details.replaceChildren(...[
			item('Status', d.status + phase),
			item('Rows per second', num(d.rowsPerSecond)),
			item('Time left', d.status === 'copying' ? eta(d.etaSeconds) : '—'),
			item('Throttled', d.throttled ? `yes: ${d.throttleReason || 'the source is busy'}` : 'no'),
			item('Changes waiting', d.changelog && d.changelog.pending != null ? num(d.changelog.pending) : null),
			item('Verification', d.verification ? (d.verification.ok ? 'every table matches' : 'differences found') : null),
			item('Freeze', d.freezeMs == null ? null : `${num(d.freezeMs)} ms`),
			item('Target', d.target),
			item('Database', d.dbName),
			item('Chunk size', num(d.chunkSize)),
			item('Dry run', yes(d.dryRun)),
			item('Legal hold overridden', d.overrideLegalHold ? 'yes' : null),
			item('Reason', d.reason),
			item('Abort reason', d.abortReason),
			item('Error', d.error),
			item('Started', time(d.createdAt)),
			item('Updated', time(d.updatedAt)),
			item('Finished', d.finishedAt ? time(d.finishedAt) : null),
			item('Migration id', h('code', null, d.id)),
		].flat());
		if (d.report) report.replaceChildren(...reportView(d.report));
		else if (!rehearsing.has(d.orgId)) report.replaceChildren();
		if (status.textContent.startsWith('This org has no migration')) clearErrors(actions);
		buttons();
		if (changed && !TERMINAL.has(d.status)) onChange(); // the end refreshes them itself
	}

	function buttons() {
		const ready = !!doc && doc.status === 'ready_for_cutover' && !doc.dryRun;
		const sent = !!doc && busy.has(doc.orgId);
		rehearse.disabled = sent || !ready || rehearsing.has(doc.orgId) || doc.phase === 'rehearsal';
		finalize.disabled = sent || !ready;
		abort.disabled = sent || !doc || doc.status === 'aborting' || (TERMINAL.has(doc.status) && doc.status !== 'failed')
			|| (doc.status === 'cutting_over' && doc.phase === 'source_cleanup');
	}

	// fn() runs with orgId in the set (its buttons disabled); its error shows
	// only while the panel still shows that org.
	const act = async (set, orgId, fn) => {
		set.add(orgId);
		buttons();
		try {
			await fn();
		} catch (err) {
			if (here(orgId)) showError(actions, err);
		} finally {
			set.delete(orgId);
			buttons();
		}
	};

	// The org a request acts on, by name: the panel's org, whose id it sends.
	const orgName = (orgId) => (shown && shown.id === orgId ? `${shown.name} (${shown.slug})` : orgId);
	// The panel moved on while a confirmation was open (another org, or
	// another migration): nothing is sent.
	const moved = (d, name) => {
		if (here(d.orgId) && doc && doc.id === d.id) return false;
		if (box.isConnected) showError(actions, new Error(`The selected org or its migration changed while the confirmation was open: nothing was sent for ${name}.`));
		return true;
	};

	function doRehearse() {
		const d = doc;
		return act(rehearsing, d.orgId, async () => {
			clearErrors(actions);
			status.textContent = REHEARSING;
			// the report's room is kept from the click on, so that its arrival
			// does not push the buttons and the screen below it down
			if (!report.childElementCount) report.replaceChildren(h('p', { class: 'hint mig-report-wait' }, 'The rehearsal\'s report will appear here.'));
			report.classList.add('awaiting');
			const done = () => {
				report.classList.remove('awaiting');
				report.querySelector('.mig-report-wait')?.remove();
			};
			const r = await ctx.call('POST', '/migration/finalize', { body: { orgId: d.orgId, dryRun: true } })
				.catch((err) => {
					done();
					throw err;
				});
			if (!here(d.orgId)) return done(); // its report is in the org's status when it is selected again
			if (r.rehearsal) report.replaceChildren(...reportView(r));
			done();
			if (r.rehearsal) {
				showOk(actions, `Rehearsal ${r.ok ? 'ok' : 'NOT ok'}: the cut-over would freeze writes for about ${num(r.expectedFreezeMs)} ms. Nothing was switched.`);
			} else {
				showOk(actions, 'The rehearsal is still running: its report appears here when it ends.');
				show(r);
			}
		});
	}

	async function doFinalize() {
		const d = doc;
		const name = orgName(d.orgId);
		const last = d.report && d.report.rehearsal ? d.report : null;
		const reason = await confirmReason({
			title: `Finalize the migration of ${name}`,
			text: `The org's writes pause while the last changes are replayed and every chunk is verified again${last
				? ` (the last rehearsal expected ${num(last.expectedFreezeMs)} ms)` : ' (no rehearsal yet)'}; then the org is served from ${d.direction === 'shared_to_dedicated' ? d.target || d.dbName : 'the shared database'} and its rows leave the source. Going back takes a new migration.`,
			action: 'Finalize migration',
		});
		if (!reason || moved(d, name)) return;
		await act(busy, d.orgId, async () => {
			clearErrors(actions);
			const r = await ctx.call('POST', '/migration/finalize', { body: { orgId: d.orgId, reason } });
			if (!here(d.orgId)) return;
			showOk(actions, `Cut-over requested: ${r.status}${r.phase ? ` (${r.phase})` : ''}.`);
			show(r);
			watch(d.orgId);
		});
	}

	async function doAbort() {
		const d = doc;
		const name = orgName(d.orgId);
		const reason = await confirmReason({
			title: `Abort the migration of ${name}`,
			text: `The engine stops and removes what this ${d.dryRun ? 'dry run' : 'migration'} created on the target; the source is not touched and the org stays where it is.`,
			action: 'Abort migration',
		});
		if (!reason || moved(d, name)) return;
		await act(busy, d.orgId, async () => {
			clearErrors(actions);
			const r = await ctx.call('POST', '/migration/abort', { body: { orgId: d.orgId, migrationId: d.id, reason } });
			if (!here(d.orgId)) return;
			showOk(actions, `Abort requested: ${r.status}.`);
			show(r);
			watch(d.orgId);
		});
	}

	return { section, setOrg, watch, show, none, failed };
}

// One labelled progress bar (the <progress> element: no inline style).
function progressRow(id, label, value, max, text) {
	const m = Math.max(Number(max) || 0, 1);
	const v = Math.min(Math.max(Number(value) || 0, 0), m);
	return h('div', { class: 'mig-bar' },
		h('span', { id: `${id}-l`, class: 'mig-bar-label' }, label),
		h('progress', { max: m, value: v, 'aria-labelledby': `${id}-l`, 'aria-describedby': `${id}-n` }),
		h('span', { id: `${id}-n`, class: 'mig-bar-text' }, text));
}

// A rehearsal's or a dry run's report, in words and a table.
function reportView(r) {
	const out = [];
	if (r.rehearsal) {
		out.push(h('h3', null, 'Last rehearsal of the cut-over'),
			h('p', { class: r.ok ? 'notice' : 'notice warn', id: 'mig-rehearsal' },
				`${r.ok ? 'OK' : 'NOT OK'}: expected freeze ${num(r.expectedFreezeMs)} ms, ${num(r.changesReplayed)} changes replayed, nothing switched.`,
				r.finishedAt ? [' Finished ', time(r.finishedAt), '.'] : null, r.error ? ` ${r.error}` : null),
			h('ul', { class: 'mig-steps' }, (Array.isArray(r.steps) ? r.steps : []).map((s) => h('li', null,
				`${s.step}: ${s.ok ? 'ok' : 'failed'}, ${num(s.ms)} ms`,
				s.changesReplayed != null ? `, ${num(s.changesReplayed)} changes replayed` : '',
				s.chunks != null ? `, ${num(s.chunks)} chunks, ${num(s.chunksMismatched)} mismatched` : ''))));
		if (r.verification) out.push(verificationTable(r.verification, 'Rehearsal verification per table'));
	} else if (r.dryRun) {
		out.push(h('h3', null, 'Dry-run report'),
			h('p', { class: 'notice', id: 'mig-dryrun' },
				`${num(r.rowsCopied)} rows copied in ${num(r.copyMs)} ms (${num(r.rowsPerSecond)} rows/s), ${num(r.durationMs)} ms in all; the target was ${r.targetCleaned ? 'cleaned' : 'NOT cleaned'}.`));
		if (r.tables) out.push(verificationTable({ tables: r.tables }, 'Dry-run verification per table'));
	}
	return out;
}

function verificationTable(v, caption) {
	const t = Array.isArray(v.tables) ? v.tables : [];
	return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
		h('table', null, h('caption', null, caption),
			h('thead', null, h('tr', null, ['Table', 'Source rows', 'Target rows', 'Chunks', 'Mismatched', 'Match']
				.map((x) => h('th', { scope: 'col' }, x)))),
			h('tbody', null, t.map((e) => h('tr', null,
				h('td', null, e.table), h('td', null, num(e.sourceRows)), h('td', null, num(e.targetRows)),
				h('td', null, num(e.chunks)), h('td', null, num(e.chunksMismatched)), h('td', null, yes(e.match)))))));
}

// ---------------------------------------------------------------- start

function startForm(ctx, started) {
	const chunk = field({ label: 'Chunk size', name: 'chunkSize', value: '1000', hint: 'rows per chunk, 1 to 100000' });
	chunk.querySelector('input').inputMode = 'numeric';
	const form = h('form', { id: 'migration-start', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Org id', name: 'orgId', required: true, hint: 'Select in the orgs list fills it' }),
			field({ label: 'Direction', name: 'direction', type: 'select', options: DIRECTIONS, required: true }),
			chunk,
			field({ label: 'Database name (optional)', name: 'dbName', hint: 'the dedicated database; empty: org_<slug>' }),
			field({ label: 'Target URI (optional)', name: 'targetUri', type: 'password', autocomplete: 'off',
				hint: 'mysql://user:password@host[:port]; empty: the server\'s dedicated database URI. Sent once, stored sealed, shown as user:***' }),
			field({ label: 'Reason (optional)', name: 'reason', hint: 'recorded in the status and the audit log' })),
		checkbox('dryRun', 'Dry run: copy and verify, then clean the target; nothing switches', true),
		checkbox('overrideLegalHold', 'Override a legal hold (audited; the holds travel with the rows)', false),
		h('button', { type: 'submit' }, 'Start migration'),
		formStatus());
	const uri = form.querySelector('[name=targetUri]');
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		const body = { orgId: v.orgId, direction: v.direction, dryRun: v.dryRun };
		if (v.chunkSize !== '') body.chunkSize = /^-?\d+(\.\d+)?$/.test(v.chunkSize) ? Number(v.chunkSize) : v.chunkSize;
		if (v.dbName) body.dbName = v.dbName;
		if (v.targetUri) body.targetUri = v.targetUri;
		if (v.overrideLegalHold) body.overrideLegalHold = true;
		if (v.reason) body.reason = v.reason;
		try {
			const r = await ctx.call('POST', '/migration/start', { body });
			uri.value = ''; // the password it may hold leaves the page
			showOk(form, `Started ${r.dryRun ? 'a dry run' : 'a migration'} ${r.direction} into ${r.target || r.dbName || 'the shared database'}: ${r.status}.`);
			await started(r);
		} catch (err) {
			showError(form, err);
		}
	});
	const setOrg = (org, keep) => {
		form.querySelector('[name=orgId]').value = org.id;
		if (!keep) form.querySelector('[name=direction]').value = org.dbMode === 'dedicated' ? 'dedicated_to_shared' : 'shared_to_dedicated';
	};
	const section = h('section', { 'aria-labelledby': 'migration-start-h' },
		h('h2', { id: 'migration-start-h' }, 'Start a migration'),
		h('p', null, 'A dry run first: it takes the whole path into the target and verifies it, then cleans up. A real run stops at ready_for_cutover until you finalize it.'),
		form);
	return { section, setOrg };
}

// ---------------------------------------------------------------- every org's migrations

function allMigrations(ctx, selectById) {
	const filter = h('form', { id: 'mig-all-filter', novalidate: true },
		field({ label: 'Status', name: 'status', type: 'select', options: STATUSES }),
		h('button', { type: 'submit' }, 'Show'),
		formStatus());
	let reload = null;
	const opts = { id: 'mig-all', path: '/migration', title: 'Every org\'s migrations', more: 'Next migrations',
		empty: 'No migration.', query: {} };
	const list = pagedList(ctx, opts, [
		{ head: 'Started', cell: (m) => time(m.createdAt) },
		{ head: 'Org', cell: (m) => h('code', null, m.orgId) },
		{ head: 'Direction', cell: (m) => m.direction },
		{ head: 'Status', cell: (m) => m.status + (m.phase ? ` (${m.phase})` : '') },
		{ head: 'Dry run', cell: (m) => yes(m.dryRun) },
		{ head: 'Progress', cell: (m) => `${Math.floor(m.percent || 0)} %` },
		{ head: 'Finished', cell: (m) => time(m.finishedAt) },
		{ head: 'Reason', cell: (m) => m.reason || '' },
		{ head: 'Org view', cell: (m) => h('button', { type: 'button', class: 'secondary',
			'aria-label': `Show the org of migration ${m.id}`, onclick: () => selectById(m.orgId) }, 'Show') },
	]);
	filter.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(filter);
		const s = formValues(filter).status;
		opts.query = s && s !== 'all' ? { status: s } : {};
		try {
			await reload();
		} catch (err) {
			showError(filter, err);
		}
	});
	reload = serial(list.reload);
	list.section.insertBefore(filter, list.results);
	return { section: list.section, reload };
}
