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
// a second, none after the end or after leaving the screen. A
// platform_admin has no Migration menu and no controls on #/migration.
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

async function selectOrg(name) {
	const btn = page.getByRole('button', { name: `Select ${name}`, exact: true });
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

	// ---- org A: bad input first
	await selectOrg(env.CONSOLE_ORG_A);
	const form = page.locator('#migration-start');
	check('Select fills the org id', /^[0-9a-f-]{36}$/.test(await form.getByLabel('Org id').inputValue()));
	check('and the direction from the database mode', (await form.getByLabel('Direction').inputValue()) === 'shared_to_dedicated');
	await page.locator('#mig-actions .form-status', { hasText: 'no migration yet' }).waitFor();
	check('an org without a migration says so', true);
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
	const gaps = statusRequests.slice(polls0).map((t, i, a) => (i ? t - a[i - 1] : null)).filter((g) => g !== null);
	check(`the status is polled about once a second (${gaps.length} polls)`, gaps.length >= 3 && Math.min(...gaps) >= 800,
		JSON.stringify(gaps));

	// rehearse, then finalize (an empty reason is refused by the dialog)
	await page.getByRole('button', { name: 'Rehearse cut-over' }).click();
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
	check('Finalize asks for confirmation', /Finalize the migration of/.test(await dlg.innerText()));
	await dlg.getByRole('button', { name: 'Finalize migration' }).click();
	check('  an empty reason is refused', /Type the reason/.test(await dlg.locator('.field-error').innerText()));
	await screen('migration-confirm');
	await confirm('Finalize migration', `console finalize ${R}`);
	await watch(/completed|failed|aborted/, 60000);
	check('the run ends completed on the screen', /Migration shared_to_dedicated: completed/.test(await summary()), await summary());
	check('  with its freeze time', /Freeze\s+[\d,]+ ms/.test(await page.locator('#mig-details').innerText()));
	await page.locator('#mig-org [data-dbmode]', { hasText: 'dedicated' }).waitFor();
	check('the org shows database dedicated', true);
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
	await page.getByRole('button', { name: 'Abort…' }).click();
	await confirm('Abort migration', `console abort ${R}`);
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
	await page.locator('#list-mig-all tbody tr', { hasText: 'completed' }).last().getByRole('button', { name: /Show the org/ }).click();
	await page.locator('#mig-org', { hasText: env.CONSOLE_ORG_A }).waitFor();
	check('Show selects that migration\'s org', true);
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
