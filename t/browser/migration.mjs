// The Migration screen in a real browser (t/69-console-migration.t runs
// this; t/README). Everything comes from the environment:
//   CONSOLE_URL, CONSOLE_SCREENS        as for every browser test (lib.mjs)
//   CONSOLE_SUPER_EMAIL/_PASSWORD       the superadmin (migration.run)
//   CONSOLE_PLATFORM_EMAIL/_PASSWORD    a platform_admin (no migration.run)
//   CONSOLE_ORG_A, CONSOLE_ORG_B        the names of the two orgs to move
//   CONSOLE_TARGET_URI                  a dedicated target URI with a password
//   CONSOLE_TARGET_PASSWORD             that password (it must never show)
//   CONSOLE_DB_A                        the database name for org A
//   CONSOLE_REASON                      a tag for the reasons typed
// The superadmin: a bad chunk size and a bad target URI next to their
// fields; org A a dry run to completed (its report), then a real run with a
// target URI while the Perl test edits A's contacts: live progress, the
// rehearsal's report, Finalize (the confirmation refuses an empty reason)
// to completed; org B a run aborted while it copies (after leaving the
// screen and coming back). The lists: orgs paged,
// history, every org's migrations with a status filter. Polling about once
// a second, none after the end or after leaving the screen. Late answers
// (held back with page.route): "Next orgs" clicked twice appends its page
// once; a rehearsal of A answered after B was selected, a history of A
// answered after B was selected again, an abort of B answered after A was
// selected: the panel shows the org selected and nothing of the other; a
// panel that changes under an open confirmation sends nothing. The
// confirmations name the org whose id they send. A platform_admin has no
// Migration menu and no controls on #/migration.
import { env, BASE, check, page, expected, screen, signIn, signOut, run, partShot } from './lib.mjs';

const PW = env.CONSOLE_TARGET_PASSWORD;
const R = env.CONSOLE_REASON;

// what the page sent and logged: no request URL and no console message may
// hold the target's password
const statusRequests = [];
const urls = [];
const logs = [];
page.on('request', (r) => {
	urls.push(r.url());
	if (r.url().includes('/migration/status/')) statusRequests.push(Date.now());
});
page.on('console', (m) => logs.push(m.text()));

const summary = () => page.locator('#mig-summary').innerText().catch(() => '');

// Waits until the summary matches re (or a time limit), taking samples of
// the progress bars and the details as the operator saw them.
async function watch(re, ms, samples = []) {
	const end = Date.now() + ms;
	for (;;) {
		const s = await page.evaluate(() => ({
			summary: document.getElementById('mig-summary')?.textContent || '',
			bars: [...document.querySelectorAll('#mig-progress progress')].map((p) => ({
				label: p.closest('.mig-bar').querySelector('.mig-bar-label').textContent, value: p.value, max: p.max })),
			details: document.getElementById('mig-details')?.innerText || '',
		}));
		samples.push(s);
		if (re.test(s.summary) || Date.now() > end) return samples;
		await page.waitForTimeout(150);
	}
}

// Polls cond (an async function) until it is true or ms have passed.
async function until(cond, ms) {
	const end = Date.now() + ms;
	while (!(await cond()) && Date.now() < end) await page.waitForTimeout(100);
}

// At 390 px nothing may stick out sideways (a table scrolls inside its
// .table-wrap).
async function fitsNarrow(label) {
	await page.setViewportSize({ width: 390, height: 844 });
	const r = await page.evaluate(() => {
		const w = document.documentElement.clientWidth;
		// boxes that stick out, and text that sticks out of its box
		const all = [...document.querySelectorAll('body *')].filter((e) => !e.parentElement.closest('.table-wrap')
			&& (e.getBoundingClientRect().right > w + 1
				|| (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0)));
		return { sw: document.documentElement.scrollWidth, w, all: all.slice(0, 12).map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}.${e.className} right ${Math.round(e.getBoundingClientRect().right)}${e.parentElement.closest('.table-wrap') ? ' (in a table-wrap)' : ''}`) };
	});
	await page.setViewportSize({ width: 1280, height: 800 });
	check(`${label}: nothing wider than the 390 px screen`, r.sw <= r.w, r.all.join('\n'));
}

// Holds back the answers to the requests that match (a URL predicate):
// each is fetched from the server, then given to the page once release()
// is called; off() removes the hold.
async function hold(match) {
	let release;
	const gate = new Promise((r) => (release = r));
	const seen = [];
	const handler = async (route) => {
		seen.push(route.request().url());
		const res = await route.fetch({ timeout: 60000 });
		await gate;
		await route.fulfill({ response: res });
	};
	await page.route(match, handler);
	return { seen, release, off: () => page.unroute(match, handler) };
}
const api = (path) => (url) => url.pathname === path;

// The panel holds no migration (nothing of another org's).
async function panelEmpty() {
	return page.evaluate(() => ({
		hidden: !!document.querySelector('#mig-status .mig-body.hidden'),
		summary: document.getElementById('mig-summary').textContent,
		report: document.getElementById('mig-report').textContent,
		status: document.querySelector('#mig-actions .form-status').textContent,
	}));
}

async function selectOrg(name) {
	const btn = page.getByRole('button', { name: `Select ${name}`, exact: true }).first();
	for (let i = 0; i < 5 && !(await btn.count()); i++) {
		const n = await page.locator('#list-mig-orgs tbody tr').count();
		await page.getByRole('button', { name: 'Next orgs' }).click();
		await until(async () => (await page.locator('#list-mig-orgs tbody tr').count()) > n, 5000);
	}
	await btn.click();
	await page.locator('#mig-org', { hasText: name }).waitFor();
}

async function startMigration(o) {
	const f = page.locator('#migration-start');
	await f.getByLabel('Chunk size').fill(String(o.chunk));
	await f.getByLabel('Database name (optional)').fill(o.dbName || '');
	await f.getByLabel('Target URI (optional)').fill(o.uri || '');
	await f.getByLabel('Reason (optional)').fill(o.reason || '');
	await f.getByLabel(/^Dry run/).setChecked(!!o.dryRun);
	await f.getByRole('button', { name: 'Start migration' }).click();
}

async function confirm(action, reason) {
	const dlg = page.locator('dialog.confirm');
	await dlg.waitFor();
	if (reason === null) return dlg;
	await dlg.getByLabel('Reason').fill(reason);
	await dlg.getByRole('button', { name: action }).click();
	await dlg.waitFor({ state: 'detached' });
	return dlg;
}

await run(async () => {
	// ---- the superadmin, from a deep link
	expected.push({ path: '/auth/me', status: 401 });
	await page.goto(`${BASE}/console/#/migration`);
	await signIn(env.CONSOLE_SUPER_EMAIL, env.CONSOLE_SUPER_PASSWORD, 'superadmin');
	await page.locator('#migration-start').waitFor();
	check('the superadmin\'s menu has Migration', /Migration/.test(await page.locator('#nav').innerText()));
	check('the screen is #/migration', (await page.locator('#main h1').innerText()) === 'Migration' && new URL(page.url()).hash === '#/migration');
	await page.locator('#list-mig-orgs table').waitFor();
	check('the orgs list is paged (Next orgs)', await page.getByRole('button', { name: 'Next orgs' }).isVisible());
	check('the orgs list shows the database mode', /shared/.test(await page.locator('#list-mig-orgs').innerText()));
	await screen('migration');

	// "Next orgs" clicked twice while its page is on its way: the page comes once
	{
		const rowsOf = () => page.locator('#list-mig-orgs tbody tr td:first-child').allInnerTexts();
		const n0 = (await rowsOf()).length;
		const next = await hold((u) => u.pathname === '/orgs' && u.searchParams.has('cursor'));
		const more = page.getByRole('button', { name: 'Next orgs' });
		await more.dblclick();
		await page.waitForTimeout(300);
		await more.click({ timeout: 500 }).catch(() => {}); // a third time, if it is still there
		next.release();
		await until(async () => (await rowsOf()).length > n0, 5000);
		await page.waitForTimeout(500);
		await next.off();
		const names = await rowsOf();
		check('"Next orgs" clicked twice: its page is appended once', names.length > n0 && new Set(names).size === names.length,
			`${next.seen.length} requests for the next page; ${names.length} rows, ${new Set(names).size} different`);
		// the held page landed long after the click: not a shift a prompt answer makes
		await page.evaluate(() => (window.__opsdShift = { score: 0, nodes: [] }));
	}

	// ---- org A: bad input first
	await selectOrg(env.CONSOLE_ORG_A);
	const form = page.locator('#migration-start');
	check('Select fills the org id', /^[0-9a-f-]{36}$/.test(await form.getByLabel('Org id').inputValue()));
	check('and the direction from the database mode', (await form.getByLabel('Direction').inputValue()) === 'shared_to_dedicated');
	const noneYet = page.locator('#mig-actions .form-status', { hasText: 'no migration yet' });
	await noneYet.waitFor().catch(() => {});
	check('an org without a migration says so', await noneYet.isVisible(), await page.locator('#mig-status').innerText());
	const idA = await form.getByLabel('Org id').inputValue();
	expected.push({ path: '/migration/start', status: 400 });
	await startMigration({ chunk: 0, dryRun: true });
	const chunkErr = form.locator('[data-field="chunkSize"] .field-error');
	await chunkErr.filter({ hasText: /./ }).waitFor();
	check('chunk size 0: the error is next to Chunk size', /100000|between|integer/.test(await chunkErr.innerText()), await chunkErr.innerText());
	check('  and the field is marked invalid', (await form.getByLabel('Chunk size').getAttribute('aria-invalid')) === 'true');
	await screen('migration-bad-input');
	expected.push({ path: '/migration/start', status: 400 });
	await startMigration({ chunk: 100, dryRun: true, uri: `mysql://u:${PW}@/nohost` });
	const uriErr = form.locator('[data-field="targetUri"] .field-error');
	await uriErr.filter({ hasText: /./ }).waitFor();
	check('a target URI without a host: the error is next to Target URI', (await uriErr.innerText()).length > 0);
	check('  the page shows no password', !(await page.locator('body').innerText()).includes(PW));

	// ---- org A: the dry run to completed
	await startMigration({ chunk: 100, dryRun: true, reason: `console dry run ${R}` });
	await page.locator('#migration-start .form-status.ok').waitFor();
	check('the dry run starts', /Started a dry run/.test(await form.locator('.form-status').innerText()), await form.locator('.form-status').innerText());
	const dry = await watch(/completed/, 30000);
	check('the dry run ends completed on the screen', /Dry run shared_to_dedicated: completed/.test(await summary()), await summary());
	await page.locator('#mig-dryrun').waitFor();
	check('its report: rows copied, the target cleaned', /rows copied/.test(await page.locator('#mig-dryrun').innerText())
		&& /cleaned/.test(await page.locator('#mig-dryrun').innerText()), await page.locator('#mig-dryrun').innerText());
	check('every table at 100 % at the end', dry.at(-1).bars.length === 4 && dry.at(-1).bars.every((b) => b.value === b.max),
		JSON.stringify(dry.at(-1).bars));
	await page.locator('#list-mig-history tr', { hasText: 'completed' }).first().waitFor();
	await screen('migration-dry-run');

	// ---- org A: the real run, with a target URI, while the test edits A
	await startMigration({ chunk: 2, dryRun: false, uri: env.CONSOLE_TARGET_URI, dbName: env.CONSOLE_DB_A, reason: `console run ${R}` });
	await page.locator('#migration-start .form-status.ok').waitFor();
	check('the real run starts', /Started a migration/.test(await form.locator('.form-status').innerText()), await form.locator('.form-status').innerText());
	check('the target URI field is cleared once sent', (await form.getByLabel('Target URI (optional)').inputValue()) === '');
	const polls0 = statusRequests.length;
	const samples = await watch(/copying/, 15000);
	await page.waitForTimeout(1500);
	const copying = /copying/.test(await summary());
	if (copying) await screen('migration-copying');
	await watch(/ready_for_cutover|failed|aborted/, 60000, samples);
	check('the run reaches ready_for_cutover on the screen', /Migration shared_to_dedicated: ready_for_cutover/.test(await summary()), await summary());
	const partial = samples.filter((s) => s.bars.some((b) => b.label === 'contacts' && b.value > 0 && b.value < b.max));
	check('the contacts bar was seen part-way (live progress)', partial.length > 0, JSON.stringify(samples.slice(0, 5)));
	check('rows per second shown while copying', samples.some((s) => /Rows per second\s+[1-9]/.test(s.details)),
		samples.map((s) => s.details).slice(-3).join('\n---\n'));
	check('the time left shown while copying', samples.some((s) => /Time left\s+\d+ (s|min)/.test(s.details)));
	check('the throttling state shown', samples.some((s) => /Throttled\s+no/.test(s.details)));
	check('the target shown with its password hidden', /Target\s+mysql:\/\/[^:\s]+:\*\*\*@/.test(await page.locator('#mig-details').innerText()),
		await page.locator('#mig-details').innerText());
	// the page keeps polling at ready_for_cutover: a run that got there in
	// less than a few seconds still shows the cadence
	for (let i = 0; i < 40 && statusRequests.length - polls0 < 4; i++) await page.waitForTimeout(250);
	const gaps = statusRequests.slice(polls0).map((t, i, a) => (i ? t - a[i - 1] : null)).filter((g) => g !== null);
	check(`the status is polled about once a second (${gaps.length} polls)`, gaps.length >= 3 && Math.min(...gaps) >= 800,
		JSON.stringify(gaps));

	// rehearse, and select org B before its answer comes: the answer is A's
	// and stays out of B's panel
	const rehearsal = await hold(api('/migration/finalize'));
	const rehearsed = page.waitForResponse((r) => r.url().includes('/migration/finalize'), { timeout: 60000 });
	await page.getByRole('button', { name: 'Rehearse cut-over' }).click();
	await page.locator('#mig-actions .form-status', { hasText: 'Rehearsing' }).waitFor();
	await selectOrg(env.CONSOLE_ORG_B);
	await noneYet.waitFor().catch(() => {});
	rehearsal.release();
	await rehearsed;
	await page.waitForTimeout(500);
	await rehearsal.off();
	let p = await panelEmpty();
	check('a rehearsal of A answered while B is selected: the panel shows B, nothing of A',
		(await page.locator('#mig-org').innerText()).includes(env.CONSOLE_ORG_B) && p.hidden && !p.report
		&& !/Rehearsal/.test(p.status) && !/ready_for_cutover/.test(p.summary), JSON.stringify(p));
	check('  and no action for B', await page.getByRole('button', { name: 'Finalize…' }).isDisabled()
		&& await page.getByRole('button', { name: 'Abort…' }).isDisabled());

	// a history of A answered after B was selected again: no polling of A
	{
		const late = await hold((u) => u.pathname === '/migration/history' && u.searchParams.get('orgId') === idA);
		const answered = page.waitForResponse((r) => r.url().includes('/migration/history') && r.url().includes(idA));
		await page.getByRole('button', { name: `Select ${env.CONSOLE_ORG_A}`, exact: true }).click();
		await until(async () => late.seen.length > 0, 5000);
		await selectOrg(env.CONSOLE_ORG_B);
		const polls = statusRequests.length;
		late.release();
		await answered;
		await page.waitForTimeout(2500);
		await late.off();
		p = await panelEmpty();
		const polledA = urls.filter((u) => u.includes(`/migration/status/${idA}`)).length;
		check('a history of A answered after B was selected: B\'s panel, no polling of A',
			(await page.locator('#mig-org').innerText()).includes(env.CONSOLE_ORG_B) && p.hidden
			&& statusRequests.length === polls, `${statusRequests.length - polls} status requests; ${JSON.stringify(p)}; A polled ${polledA} times in all`);
	}

	// back to A: the rehearsal's report is in its status
	await selectOrg(env.CONSOLE_ORG_A);
	await page.locator('#mig-rehearsal').waitFor({ timeout: 30000 });
	const reh = await page.locator('#mig-rehearsal').innerText();
	check('the rehearsal\'s report: expected freeze, nothing switched', /expected freeze [\d,]+ ms/.test(reh) && /nothing switched/.test(reh), reh);
	check('  its steps', /connect: ok/.test(await page.locator('#mig-report').innerText()));
	check('  still ready_for_cutover', /ready_for_cutover/.test(await summary()), await summary());
	await fitsNarrow('the live status with the rehearsal\'s report');
	await screen('migration-ready');
	await partShot('migration-ready', '#mig-status');
	await page.getByRole('button', { name: 'Finalize…' }).click();
	const dlg = await confirm('Finalize migration', null);
	check('Finalize asks for confirmation, naming org A', (await dlg.locator('h2').innerText()).includes(`Finalize the migration of ${env.CONSOLE_ORG_A}`),
		await dlg.locator('h2').innerText());
	await dlg.getByRole('button', { name: 'Finalize migration' }).click();
	check('  an empty reason is refused', /Type the reason/.test(await dlg.locator('.field-error').innerText()));
	await screen('migration-confirm');
	await confirm('Finalize migration', `console finalize ${R}`);
	await watch(/completed|failed|aborted/, 60000);
	check('the run ends completed on the screen', /Migration shared_to_dedicated: completed/.test(await summary()), await summary());
	check('  with its freeze time', /Freeze\s+[\d,]+ ms/.test(await page.locator('#mig-details').innerText()));
	const dedicated = page.locator('#mig-org [data-dbmode]', { hasText: 'dedicated' });
	await dedicated.waitFor().catch(() => {});
	check('the org shows database dedicated', await dedicated.isVisible(), await page.locator('#mig-org').innerText());
	const after = statusRequests.length;
	await page.waitForTimeout(2500);
	check('no polling after the migration ended', statusRequests.length === after, `${statusRequests.length - after} more`);
	await page.locator('#list-mig-history tbody tr').nth(1).waitFor();
	check('the history lists the run and the dry run', (await page.locator('#list-mig-history tbody tr').count()) === 2);
	await screen('migration-completed');

	// ---- org B: leave the screen while it copies (the polling stops), come
	// back, abort (Escape cancels first)
	await selectOrg(env.CONSOLE_ORG_B);
	check('Select of a shared org sets shared_to_dedicated', (await form.getByLabel('Direction').inputValue()) === 'shared_to_dedicated');
	await startMigration({ chunk: 1, dryRun: false, reason: `console run B ${R}` });
	await page.locator('#migration-start .form-status.ok', { hasText: 'Started a migration' }).waitFor();
	await watch(/copying/, 15000);
	await page.getByRole('link', { name: 'Audit' }).click();
	await page.locator('#audit-search').waitFor();
	await page.waitForTimeout(300); // a request already on its way may end
	const left = statusRequests.length;
	await page.waitForTimeout(2500);
	check('no polling once the screen is left', statusRequests.length === left, `${statusRequests.length - left} more`);
	await page.getByRole('link', { name: 'Migration' }).click();
	await page.locator('#list-mig-orgs table').waitFor();
	await selectOrg(env.CONSOLE_ORG_B);
	await watch(/copying/, 5000);
	check('back on the screen, org B still copying', /copying/.test(await summary()), await summary());
	await page.getByRole('button', { name: 'Abort…' }).click();
	await confirm('Abort migration', null);
	await page.keyboard.press('Escape');
	await page.locator('dialog.confirm').waitFor({ state: 'detached' });
	check('Escape cancels the abort', /copying|catching_up|verifying/.test(await summary()), await summary());

	// the panel changes to A under B's open confirmation: nothing is sent
	const aborts = [];
	page.on('request', (r) => r.url().includes('/migration/abort') && aborts.push(r.url()));
	{
		const orgA = await hold(api(`/orgs/${idA}`));
		await page.getByRole('button', { name: `Select ${env.CONSOLE_ORG_A}`, exact: true }).click();
		await page.getByRole('button', { name: 'Abort…' }).click();
		const d = await confirm('Abort migration', null);
		check('Abort asks for confirmation, naming org B', (await d.locator('h2').innerText()).includes(`Abort the migration of ${env.CONSOLE_ORG_B}`),
			await d.locator('h2').innerText());
		orgA.release();
		await page.locator('#mig-org', { hasText: env.CONSOLE_ORG_A }).waitFor().catch(() => {});
		await orgA.off();
		await confirm('Abort migration', `console moved ${R}`);
		await page.waitForTimeout(500);
		const st = await page.locator('#mig-actions .form-status').innerText();
		check('the panel changed to A under the open confirmation: no abort is sent',
			aborts.length === 0 && /nothing was sent for .*Console Mig B/.test(st), `${aborts.length} abort requests; ${st}`);
	}

	// B aborted, its answer held back until A is selected: A's panel stays A's
	await selectOrg(env.CONSOLE_ORG_B);
	await watch(/copying|catching_up|verifying/, 5000);
	const abortHeld = await hold(api('/migration/abort'));
	const aborted = page.waitForResponse((r) => r.url().includes('/migration/abort'), { timeout: 30000 });
	await page.getByRole('button', { name: 'Abort…' }).click();
	await confirm('Abort migration', `console abort ${R}`);
	await selectOrg(env.CONSOLE_ORG_A);
	await watch(/completed/, 5000);
	abortHeld.release();
	await aborted;
	await page.waitForTimeout(1500);
	await abortHeld.off();
	const mine = await page.locator('#mig-details').innerText();
	check('an abort of B answered while A is selected: A\'s completed run, nothing of B\'s',
		/Migration shared_to_dedicated: completed/.test(await summary()) && !mine.includes(`console abort ${R}`)
		&& !/Abort requested/.test(await page.locator('#mig-actions .form-status').innerText()), `${await summary()}\n${mine}`);
	check('  and the panel names A', (await page.locator('#mig-org').innerText()).includes(env.CONSOLE_ORG_A));
	await selectOrg(env.CONSOLE_ORG_B);
	await watch(/aborted|completed|failed/, 30000);
	check('org B\'s run ends aborted on the screen', /aborted/.test(await summary()), await summary());
	check('  with the abort reason', (await page.locator('#mig-details').innerText()).includes(`console abort ${R}`));
	check('  no action is left but none', await page.getByRole('button', { name: 'Abort…' }).isDisabled()
		&& await page.getByRole('button', { name: 'Finalize…' }).isDisabled());

	// ---- every org's migrations, filtered
	const filter = page.locator('#mig-all-filter');
	await filter.getByLabel('Status').selectOption('aborted');
	await filter.getByRole('button', { name: 'Show' }).click();
	const allRows = page.locator('#list-mig-all tbody tr');
	await until(async () => (await allRows.count()) === 1, 5000);
	const rows = await allRows.allInnerTexts();
	check('the aborted filter lists org B\'s run only', rows.length === 1 && /aborted/.test(rows[0]), rows.join('\n'));
	await filter.getByLabel('Status').selectOption('all');
	await filter.getByRole('button', { name: 'Show' }).click();
	await until(async () => (await allRows.count()) === 3, 5000);
	check('every org\'s migrations: three', (await allRows.count()) === 3);

	// a next page of the older query that comes after the list was shown
	// again with another filter is dropped (three migrations fill no page:
	// the first page is given a cursor, and its next page is made up)
	{
		let sample = null;
		let open;
		const gate = new Promise((r) => (open = r));
		const isFirst = (u) => u.pathname === '/migration' && !u.searchParams.has('cursor') && !u.searchParams.has('status');
		const isNext = (u) => u.pathname === '/migration' && u.searchParams.get('cursor') === 'older-query';
		const first = async (route) => {
			const res = await route.fetch();
			const j = await res.json();
			sample = (j.items || [])[0];
			await route.fulfill({ response: res, json: { ...j, nextCursor: 'older-query' } });
		};
		const next = async (route) => {
			await gate;
			await route.fulfill({ json: { items: [{ ...sample, id: 'stale', reason: 'a page of the older query' }], nextCursor: null } });
		};
		await page.route(isFirst, first);
		await page.route(isNext, next);
		await filter.getByRole('button', { name: 'Show' }).click();
		const moreM = page.getByRole('button', { name: 'Next migrations' });
		await moreM.waitFor().catch(() => {});
		const nextAsked = page.waitForRequest((r) => r.url().includes('cursor=older-query'));
		const nextAnswered = page.waitForResponse((r) => r.url().includes('cursor=older-query'));
		await moreM.click();
		await nextAsked;
		await filter.getByLabel('Status').selectOption('aborted');
		await filter.getByRole('button', { name: 'Show' }).click();
		await until(async () => (await allRows.count()) === 1, 5000);
		open();
		await nextAnswered;
		await page.waitForTimeout(500);
		await page.unroute(isFirst, first);
		await page.unroute(isNext, next);
		const text = await page.locator('#list-mig-all').innerText();
		check('a next page of the older query answered after the filter changed: not appended',
			(await allRows.count()) === 1 && !text.includes('a page of the older query'), text);
		await filter.getByLabel('Status').selectOption('all');
		await filter.getByRole('button', { name: 'Show' }).click();
		await until(async () => (await allRows.count()) === 3, 5000);
	}
	await page.locator('#list-mig-all tbody tr', { hasText: 'completed' }).last().getByRole('button', { name: /Show the org/ }).click();
	const shownA = page.locator('#mig-org', { hasText: env.CONSOLE_ORG_A });
	await shownA.waitFor().catch(() => {});
	check('Show selects that migration\'s org', await shownA.isVisible(), await page.locator('#mig-org').innerText());
	await screen('migration-lists');

	// nothing of the password anywhere, nothing but the screen in the URL
	check('no request URL holds the target\'s password', !urls.some((u) => u.includes(PW) || u.includes(encodeURIComponent(PW))));
	check('no console message holds it', !logs.some((l) => l.includes(PW)));
	check('the page\'s HTML does not hold it', !(await page.content()).includes(PW));
	check('the URL names the screen only', new URL(page.url()).hash === '#/migration' && !new URL(page.url()).search);

	await signOut();

	// ---- a platform_admin: no menu entry, no controls
	await signIn(env.CONSOLE_PLATFORM_EMAIL, env.CONSOLE_PLATFORM_PASSWORD, 'platform_admin');
	await page.locator('#nav a').first().waitFor();
	check('platform_admin\'s menu has no Migration', !/Migration/.test(await page.locator('#nav').innerText()), await page.locator('#nav').innerText());
	await page.locator('#main h1', { hasText: 'Migration' }).waitFor();
	check('on #/migration it is told its role has no access', /does not give access/.test(await page.locator('#main').innerText()));
	check('  no start form, no Finalize or Abort', (await page.locator('#migration-start').count()) === 0
		&& (await page.getByRole('button', { name: /Finalize|Abort|Rehearse/ }).count()) === 0);
	await screen('migration-denied');
});
