// Runbook 2 (compliance and data-subject requests) in the console's
// Compliance screen, in a real browser (t/69-console-dsr.t runs this;
// t/README). Everything comes from the environment:
//   CONSOLE_URL, CONSOLE_SCREENS             as for every browser test (lib.mjs)
//   CONSOLE_COMP_EMAIL/_PASSWORD             a compliance user: searches, strips, holds, archives
//   CONSOLE_OFFICER_EMAIL/_PASSWORD          a compliance_officer: pages, holds and releases,
//                                            holds an org, downloads both exports, reads events
//   CONSOLE_MEMBER_EMAIL/_PASSWORD, CONSOLE_PA_EMAIL/_PASSWORD   roles without compliance.*
//   CONSOLE_SUBJECT_EMAIL/_NAME/_PHONE       the data subject's terms
//   CONSOLE_STRIP_ID, CONSOLE_HOLD_ID, CONSOLE_OFFICE_ID, CONSOLE_DEDICATED_ID, CONSOLE_USER_ID
//                                            records of the subject (the last two: a contact of
//                                            the dedicated org B, the subject's user)
//   CONSOLE_OLD_IDS                          the contacts of org A the archive must take
//   CONSOLE_ORG_A, CONSOLE_ORG_B             the shared org and the dedicated one
//   CONSOLE_RECORDS                          how many records the first search finds
//   CONSOLE_OLDER_THAN                       the archive's cut-off (RFC 3339)
//   CONSOLE_*_REASON, CONSOLE_CASE_REF       what the operators type
import { readFileSync } from 'node:fs';
import { env, BASE, check, context, page, expected, screen, signIn, signOut, run } from './lib.mjs';

const SUBJECT = { email: env.CONSOLE_SUBJECT_EMAIL, name: env.CONSOLE_SUBJECT_NAME, phone: env.CONSOLE_SUBJECT_PHONE };
const OLD = env.CONSOLE_OLD_IDS.split(',');

// Every URL the page asks for: none may hold a term of the subject.
const urls = [];
page.on('request', (r) => urls.push(r.url()));
const digits = SUBJECT.phone.replace(/\D/g, '');
const leaks = () => urls.filter((u) => {
	const d = decodeURIComponent(u).toLowerCase();
	return d.includes(SUBJECT.email.toLowerCase()) || d.includes(SUBJECT.name.toLowerCase().split(' ')[0])
		|| d.includes(SUBJECT.phone) || d.includes(digits);
});

const results = page.locator('#dsr-results');
const row = (id) => results.locator('tr', { hasText: id }).first();
const status = page.locator('#dsr-act .form-status');
const dialog = page.locator('dialog.confirm');
const text = async (l) => (await l.innerText().catch(() => '')) || '';

async function search(terms, perPage) {
	const f = page.locator('#dsr-search');
	for (const k of ['email', 'name', 'phone']) await f.getByLabel(k[0].toUpperCase() + k.slice(1), { exact: true }).fill(terms[k] || '');
	if (perPage) await f.getByLabel('Per page').selectOption(perPage);
	await f.getByRole('button', { name: 'Search' }).click();
}

// Opens a row's action, types the reason in the confirmation and confirms.
async function confirmWith(button, reason, action) {
	await button.click();
	await dialog.waitFor();
	await dialog.getByLabel('Reason').fill(reason);
	await dialog.getByRole('button', { name: action, exact: true }).click();
	await dialog.waitFor({ state: 'detached' }).catch(() => {});
}

// Polls cond() until it holds or 10 s pass.
async function until(cond) {
	for (let i = 0; i < 100 && !(await cond()); i++) await page.waitForTimeout(100);
}

// A download the page starts in click() (which may sign in again on the
// way): its suggested name and its text, or an empty name and text if none
// arrives within 20 s.
async function download(click) {
	const dl = page.waitForEvent('download', { timeout: 20000 }).catch(() => null);
	await click();
	const d = await dl;
	return d ? { name: d.suggestedFilename(), body: readFileSync(await d.path(), 'utf8') } : { name: '', body: '' };
}

// The archive's cut-off as typed with a +02:00 offset: the same instant,
// which the dry run must show as its UTC value, not as the typed text.
const CUT = new Date(env.CONSOLE_OLDER_THAN);
const pad = (x) => String(x).padStart(2, '0');
const at2 = new Date(CUT.getTime() + 2 * 3600e3);
const OLDER_PLUS2 = `${at2.getUTCFullYear()}-${pad(at2.getUTCMonth() + 1)}-${pad(at2.getUTCDate())}T${pad(at2.getUTCHours())}:`
	+ `${pad(at2.getUTCMinutes())}:${pad(at2.getUTCSeconds())}+02:00`;

// The subject searches asking for a next page (a cursor in the body).
const isNext = (req) => req.url().endsWith('/compliance/subjects/search') && /"cursor"/.test(req.postData() || '');
const nextAsked = [];
page.on('request', (r) => isNext(r) && nextAsked.push(r));
const dupes = async () => {
	const ids = await results.locator('tbody tr td:first-child code').allInnerTexts();
	return ids.filter((id, i) => ids.indexOf(id) !== i);
};

await run(async () => {
	// ---- compliance: sign in from the screen's own hash
	expected.push({ path: '/auth/me', status: 401 });
	await page.goto(`${BASE}/console/#/compliance`);
	await signIn(env.CONSOLE_COMP_EMAIL, env.CONSOLE_COMP_PASSWORD, 'compliance');
	await page.locator('#dsr-search').waitFor();
	check('compliance lands on the Compliance screen', (await text(page.locator('#main h1'))) === 'Compliance');
	check('compliance has the Compliance menu entry', /Compliance/.test(await text(page.locator('#nav'))));
	check('compliance sees every section (search, archive, org export, events)',
		(await page.locator('#dsr-archive, #dsr-org-export, #dsr-events-form, #dsr-case').count()) === 4);
	await screen('compliance');

	// bad input: an empty search names the three terms, a short name its field
	expected.push({ path: '/compliance/subjects/search', status: 400 });
	await page.locator('#dsr-search').getByRole('button', { name: 'Search' }).click();
	const err = (n) => page.locator(`#dsr-search [data-field="${n}"] .field-error`);
	await err('email').filter({ hasText: /./ }).waitFor().catch(() => {});
	check('an empty search shows an error next to Email, Name and Phone',
		(await text(err('email'))) && (await text(err('name'))) && (await text(err('phone'))),
		await text(page.locator('#dsr-search')));
	expected.push({ path: '/compliance/subjects/search', status: 400 });
	await search({ name: SUBJECT.name.slice(0, 2) });
	await err('name').filter({ hasText: /./ }).waitFor().catch(() => {});
	check('a two-letter name is refused next to Name', /3|three|characters/i.test(await text(err('name'))) && !(await text(err('email'))),
		await text(page.locator('#dsr-search')));
	await screen('compliance-search-error');

	// the subject by email, name and phone: every record across both orgs
	await search(SUBJECT);
	await row(env.CONSOLE_DEDICATED_ID).waitFor().catch(() => {});
	const listed = await text(results);
	const n = await results.locator('tbody tr').count();
	check(`the search lists the subject's ${env.CONSOLE_RECORDS} records on one page`, n === Number(env.CONSOLE_RECORDS), `${n}\n${listed}`);
	check('the user, both contacts, the office and the dedicated contact are listed',
		[env.CONSOLE_USER_ID, env.CONSOLE_STRIP_ID, env.CONSOLE_HOLD_ID, env.CONSOLE_OFFICE_ID, env.CONSOLE_DEDICATED_ID].every((id) => listed.includes(id)), listed);
	check('the dedicated contact says dedicated with its database', /dedicated\s+\S+\//.test(await text(row(env.CONSOLE_DEDICATED_ID))),
		await text(row(env.CONSOLE_DEDICATED_ID)));
	check('a shared contact says shared', /\bshared\b/.test(await text(row(env.CONSOLE_STRIP_ID))), await text(row(env.CONSOLE_STRIP_ID)));
	check('the user lives in the control database', /control/.test(await text(row(env.CONSOLE_USER_ID))));
	check('the records say which term matched', /email \(email\)/.test(await text(row(env.CONSOLE_STRIP_ID)))
		&& /phone \(phone\)/.test(await text(row(env.CONSOLE_OFFICE_ID))), await text(row(env.CONSOLE_OFFICE_ID)));
	check('no record has a flag yet', /\bnone\b/.test(await text(row(env.CONSOLE_HOLD_ID))));
	check('no term of the subject in the page\'s URL', new URL(page.url()).hash === '#/compliance' && !page.url().includes('@'), page.url());
	await screen('compliance-results');

	// strip PII: a confirmation without a reason is refused, Escape cancels
	await row(env.CONSOLE_STRIP_ID).getByRole('button', { name: /^Strip PII/ }).click();
	await dialog.waitFor();
	await dialog.getByRole('button', { name: 'Strip PII', exact: true }).click();
	check('confirming without a reason is refused in the dialog',
		/reason/i.test(await text(dialog.locator('.field-error'))) && (await dialog.isVisible()), await text(dialog));
	await screen('compliance-confirm');
	await page.keyboard.press('Escape');
	await dialog.waitFor({ state: 'detached' }).catch(() => {});
	check('Escape cancels: nothing stripped', /\bnone\b/.test(await text(row(env.CONSOLE_STRIP_ID))) && !(await text(status)),
		await text(row(env.CONSOLE_STRIP_ID)));
	await confirmWith(row(env.CONSOLE_STRIP_ID).getByRole('button', { name: /^Strip PII/ }), env.CONSOLE_STRIP_REASON, 'Strip PII');
	await status.filter({ hasText: /./ }).waitFor().catch(() => {});
	check('strip PII says stripped', /PII stripped/.test(await text(status)), await text(status));
	check('the row shows PII stripped and no Strip button', /PII stripped/.test(await text(row(env.CONSOLE_STRIP_ID)))
		&& !/null|undefined/.test(await text(row(env.CONSOLE_STRIP_ID)))
		&& (await row(env.CONSOLE_STRIP_ID).getByRole('button', { name: /^Strip PII/ }).count()) === 0, await text(row(env.CONSOLE_STRIP_ID)));

	// hold the other contact, with a case reference
	await page.locator('#dsr-case').getByLabel('Case reference (optional)').fill(env.CONSOLE_CASE_REF);
	await confirmWith(row(env.CONSOLE_HOLD_ID).getByRole('button', { name: /^Hold contacts/ }), env.CONSOLE_HOLD_REASON, 'Hold');
	await row(env.CONSOLE_HOLD_ID).getByRole('button', { name: /^Release/ }).waitFor().catch(() => {});
	check('Hold marks the contact held', /\bheld\b/.test(await text(row(env.CONSOLE_HOLD_ID))) && /now under legal hold/.test(await text(status)),
		`${await text(row(env.CONSOLE_HOLD_ID))}\n${await text(status)}`);
	check('a held record is not offered Strip PII', (await row(env.CONSOLE_HOLD_ID).getByRole('button', { name: /^Strip PII/ }).count()) === 0);
	check('keyboard focus stays on the row after the dialog', await page.evaluate((id) =>
		!!document.activeElement.closest('tr') && document.activeElement.closest('tr').innerText.includes(id), env.CONSOLE_HOLD_ID));
	await screen('compliance-actions');

	// the stripped contact's audit events
	await row(env.CONSOLE_STRIP_ID).getByRole('button', { name: /^Audit events/ }).click();
	await page.locator('#list-dsr-events table').waitFor().catch(() => {});
	const ev = await text(page.locator('#list-dsr-events'));
	check('Events on the stripped contact shows compliance.pii_stripped with the reason typed',
		/compliance\.pii_stripped/.test(ev) && ev.includes(env.CONSOLE_STRIP_REASON), ev);
	check('the events form holds the record id', (await page.locator('#dsr-events-form').getByLabel('Record id').inputValue()) === env.CONSOLE_STRIP_ID);

	// batch archive: bad inputs, the dry run, then the run
	const af = page.locator('#dsr-archive');
	await af.getByLabel('Entity').selectOption('contacts');
	await af.getByLabel('Older than').fill(env.CONSOLE_OLDER_THAN);
	await af.getByRole('button', { name: 'Dry run' }).click();
	check('a dry run without an org is refused next to Org id', /Required/.test(await text(af.locator('[data-field="orgId"] .field-error'))));
	await af.getByLabel('Org id').fill(env.CONSOLE_ORG_A);
	await af.getByLabel('Older than').fill('last year');
	expected.push({ path: '/compliance/batch-archive', status: 400 });
	await af.getByRole('button', { name: 'Dry run' }).click();
	const oerr = af.locator('[data-field="olderThan"] .field-error');
	await oerr.filter({ hasText: /./ }).waitFor().catch(() => {});
	check('a bad Older than is refused next to its field', (await text(oerr)).length > 0, await text(af));
	check('Archive stays disabled without a dry run', await page.locator('#dsr-archive-run').isDisabled());
	await af.getByLabel('Older than').fill(OLDER_PLUS2);
	await af.getByRole('button', { name: 'Dry run' }).click();
	await page.locator('#dsr-dry-run').waitFor().catch(() => {});
	const cutShown = page.locator('#dsr-dry-run time');
	check('the dry run shows a cut-off typed with +02:00 as the instant it denotes, in UTC on hover',
		(await cutShown.getAttribute('datetime').catch(() => '')) === CUT.toISOString()
		&& (await cutShown.getAttribute('title').catch(() => '')) === `${CUT.toISOString()} (UTC)`,
		`${OLDER_PLUS2}: ${await cutShown.evaluate((e) => e.outerHTML).catch(() => 'no <time>')}`);
	const count = async (k) => Number(await text(page.locator(`#dsr-archive-outcome [data-count="${k}"]`)));
	const dryArchived = await count('archived');
	const dryHeld = await count('legal_hold');
	check(`the dry run counts ${OLD.length} to archive and 1 held`, dryArchived === OLD.length && dryHeld === 1,
		await text(page.locator('#dsr-archive-outcome')));
	check('the Archive button names the count', (await text(page.locator('#dsr-archive-run'))) === `Archive ${dryArchived} contacts…`
		&& !(await page.locator('#dsr-archive-run').isDisabled()));
	await screen('compliance-dry-run');
	await confirmWith(page.locator('#dsr-archive-run'), env.CONSOLE_ARCHIVE_REASON, 'Archive');
	await page.locator('#dsr-archived').waitFor().catch(() => {});
	check('the archive reports the dry run\'s count', (await count('archived')) === dryArchived
		&& /as the dry run counted/.test(await text(page.locator('#dsr-archived'))), await text(page.locator('#dsr-archive-outcome')));
	check('Archive is disabled again until the next dry run', await page.locator('#dsr-archive-run').isDisabled());
	await screen('compliance-archived');
	await signOut();

	// ---- compliance_officer: the records now, 10 a page
	await signIn(env.CONSOLE_OFFICER_EMAIL, env.CONSOLE_OFFICER_PASSWORD, 'compliance_officer');
	await page.locator('#dsr-search').waitFor();
	await search(SUBJECT, '10');
	await results.locator('tbody tr').first().waitFor().catch(() => {});
	check('the first page holds 10 records', (await results.locator('tbody tr').count()) === 10, await text(results));
	// a next page still on its way when a new search begins: its reply is
	// dropped (held back here until the new first page is shown)
	let release;
	const holdBack = new Promise((r) => (release = r));
	await page.route('**/compliance/subjects/search', async (route) => {
		if (isNext(route.request())) await holdBack;
		await route.continue();
	});
	const nextOut = page.waitForRequest(isNext);
	await results.getByRole('button', { name: 'Next records' }).click();
	await nextOut;
	check('Next records is disabled while its page is on the way',
		await results.getByRole('button', { name: 'Next records' }).isDisabled().catch(() => false));
	const fresh = page.waitForResponse((r) => r.url().endsWith('/compliance/subjects/search') && !isNext(r.request()));
	const late = page.waitForResponse((r) => isNext(r.request()));
	await page.locator('#dsr-search').getByRole('button', { name: 'Search' }).click();
	await fresh;
	await page.waitForTimeout(200);
	release();
	await late;
	await page.waitForTimeout(300);
	check('the next page of the older search, answered late, is dropped: the new search\'s 10 records and its Next',
		(await results.locator('tbody tr').count()) === 10 && (await results.locator('table').count()) === 1
		&& (await results.getByRole('button', { name: 'Next records' }).isEnabled().catch(() => false)),
		await text(results));
	await page.unroute('**/compliance/subjects/search');
	// a double click on Next records asks for the next page once
	nextAsked.length = 0;
	await results.getByRole('button', { name: 'Next records' }).dblclick();
	await results.locator('tbody tr').nth(10).waitFor().catch(() => {});
	await page.waitForTimeout(500);
	check('a double click on Next records asks once and lists no record twice', nextAsked.length === 1 && (await dupes()).length === 0,
		`${nextAsked.length} requests; twice: ${(await dupes()).join(', ')}`);
	const all = await text(results);
	const total = await results.locator('tbody tr').count();
	check('Next records lists the rest: every record but the stripped one', total === Number(env.CONSOLE_RECORDS) - 1
		&& !all.includes(env.CONSOLE_STRIP_ID), `${total}\n${all}`);
	check('the focus moves to the new page', await page.evaluate(() => document.activeElement.classList.contains('table-wrap')
		&& /next page/.test(document.activeElement.getAttribute('aria-label'))));
	check('no "Next records" after the last page', (await results.getByRole('button', { name: 'Next records' }).count()) === 0);
	check('the held contact is held (not archived)', /\bheld\b/.test(await text(row(env.CONSOLE_HOLD_ID)))
		&& !/archived/.test(await text(row(env.CONSOLE_HOLD_ID))), await text(row(env.CONSOLE_HOLD_ID)));
	check('the old contacts are archived', (await Promise.all(OLD.map(async (id) => /archived/.test(await text(row(id)))))).every(Boolean));
	check('the summary counts the records listed', new RegExp(`^${total} records listed`).test(await text(page.locator('#dsr-summary'))),
		await text(page.locator('#dsr-summary')));

	// hold and release the office; hold the dedicated org
	await confirmWith(row(env.CONSOLE_OFFICE_ID).getByRole('button', { name: /^Hold offices/ }), env.CONSOLE_OFFICE_HOLD_REASON, 'Hold');
	await row(env.CONSOLE_OFFICE_ID).getByRole('button', { name: /^Release/ }).waitFor().catch(() => {});
	check('the office is held', /\bheld\b/.test(await text(row(env.CONSOLE_OFFICE_ID))));
	await confirmWith(row(env.CONSOLE_OFFICE_ID).getByRole('button', { name: /^Release/ }), env.CONSOLE_OFFICE_RELEASE_REASON, 'Release');
	await row(env.CONSOLE_OFFICE_ID).getByRole('button', { name: /^Hold offices/ }).waitFor().catch(() => {});
	check('Release lifts the hold', /legal hold released/.test(await text(status)) && /\bnone\b/.test(await text(row(env.CONSOLE_OFFICE_ID))),
		`${await text(status)}\n${await text(row(env.CONSOLE_OFFICE_ID))}`);
	await confirmWith(row(env.CONSOLE_DEDICATED_ID).getByRole('button', { name: /^Hold org/ }), env.CONSOLE_ORG_HOLD_REASON, 'Hold');
	await row(env.CONSOLE_DEDICATED_ID).getByRole('button', { name: /^Release org/ }).waitFor().catch(() => {});
	check('Hold org marks the dedicated contact org held', /org held/.test(await text(row(env.CONSOLE_DEDICATED_ID))),
		await text(row(env.CONSOLE_DEDICATED_ID)));
	check('the org\'s name is shown', (await text(row(env.CONSOLE_DEDICATED_ID).locator('.org-name'))).length > 0);
	await screen('compliance-officer');

	// the subject export: one JSON file of every record listed
	const sx = await download(() => page.locator('#dsr-subject-export').click());
	let doc = {};
	try {
		doc = JSON.parse(sx.body);
	} catch (e) {
		check('the subject export is JSON', false, `${e}\n${sx.body.slice(0, 300)}`);
	}
	const ids = (doc.records || []).map((r) => r.id);
	check('the subject export is a JSON file named without personal data', /^subject-export-\d{4}-\d{2}-\d{2}\.json$/.test(sx.name), sx.name);
	check('it holds every record listed', ids.length === total && [env.CONSOLE_HOLD_ID, env.CONSOLE_DEDICATED_ID, env.CONSOLE_USER_ID].every((id) => ids.includes(id)),
		JSON.stringify(ids));
	const held = (doc.records || []).find((r) => r.id === env.CONSOLE_HOLD_ID) || {};
	check('the held contact\'s export carries its values', held.entity === 'contacts' && held.record && held.record.email === SUBJECT.email,
		JSON.stringify(held).slice(0, 300));
	check('the status says what was downloaded', /Downloaded subject-export-.*: \d+ records/.test(await text(status)), await text(status));

	// the org export: org A's contacts as CSV
	const of = page.locator('#dsr-org-export');
	expected.push({ path: '/export/contacts', status: 404 });
	await of.getByLabel('Org id').fill('00000000-0000-7000-8000-000000000000');
	await of.getByRole('button', { name: 'Download' }).click();
	await of.locator('.form-status.error').waitFor().catch(() => {});
	check('an export of an unknown org is refused in words', /no such|not found|org/i.test(await text(of.locator('.form-status'))),
		await text(of.locator('.form-status')));
	await of.getByLabel('Entity').selectOption('contacts');
	await of.getByLabel('Org id').fill(env.CONSOLE_ORG_A);
	await of.getByLabel('Format').selectOption('csv');
	const ox = await download(() => of.getByRole('button', { name: 'Download' }).click());
	check('the org export is the contacts CSV of org A', ox.name === `contacts-${env.CONSOLE_ORG_A}.csv` && /^id,/.test(ox.body), `${ox.name}\n${ox.body.slice(0, 200)}`);
	const line = (id) => ox.body.split('\r\n').find((l) => l.startsWith(id)) || '';
	check('it holds the held contact with the subject\'s email', line(env.CONSOLE_HOLD_ID).includes(SUBJECT.email), line(env.CONSOLE_HOLD_ID));
	check('and the stripped contact redacted', /redacted/.test(line(env.CONSOLE_STRIP_ID)) && !line(env.CONSOLE_STRIP_ID).includes(SUBJECT.email),
		line(env.CONSOLE_STRIP_ID));
	check('and the archived ones', OLD.every((id) => line(id)));
	await of.locator('.form-status.ok').waitFor().catch(() => {});
	check('the org export says downloaded', /^Downloaded contacts-/.test(await text(of.locator('.form-status'))));
	await of.getByLabel('Format').selectOption('json');
	const oj = await download(() => of.getByRole('button', { name: 'Download' }).click());
	let ojd = {};
	try {
		ojd = JSON.parse(oj.body);
	} catch {
		ojd = {};
	}
	check('the JSON org export parses and holds the held contact', (ojd.items || []).some((c) => c.id === env.CONSOLE_HOLD_ID), oj.body.slice(0, 200));

	// the held contact's events, paged from the form
	await row(env.CONSOLE_HOLD_ID).getByRole('button', { name: /^Audit events/ }).click();
	await page.locator('#list-dsr-events table').waitFor().catch(() => {});
	const hev = await text(page.locator('#list-dsr-events'));
	check('Events on the held contact shows compliance.legal_hold_set with the reason typed',
		/compliance\.legal_hold_set/.test(hev) && hev.includes(env.CONSOLE_HOLD_REASON), hev);
	check('the events heading has the focus', await page.evaluate(() => document.activeElement.id === 'dsr-events-h'));
	const ef = page.locator('#dsr-events-form');
	await ef.getByLabel('Record id').fill('');
	await ef.getByRole('button', { name: 'Show events' }).click();
	check('Show events without a record id is refused next to it', /Required/.test(await text(ef.locator('[data-field="about"] .field-error'))));
	await ef.getByLabel('Record id').fill(env.CONSOLE_HOLD_ID);
	await ef.getByLabel('Action (optional)').fill('compliance.exported');
	await ef.getByRole('button', { name: 'Show events' }).click();
	await until(async () => !/legal_hold_set/.test(await text(page.locator('#list-dsr-events'))));
	check('an action filter narrows the events to the exports', /compliance\.exported/.test(await text(page.locator('#list-dsr-events')))
		&& !/legal_hold_set/.test(await text(page.locator('#list-dsr-events'))), await text(page.locator('#list-dsr-events')));
	// the office's events (more than a page of 25: the test exported it
	// through the API beforehand): a double click on Next events appends
	// the next page once
	const evList = page.locator('#list-dsr-events');
	await row(env.CONSOLE_OFFICE_ID).getByRole('button', { name: /^Audit events/ }).click();
	await evList.getByRole('button', { name: 'Next events' }).waitFor().catch(() => {});
	const evNext = [];
	const onEv = (r) => r.url().includes('/audit?') && r.url().includes('cursor=') && evNext.push(r.url());
	page.on('request', onEv);
	await evList.getByRole('button', { name: 'Next events' }).dblclick().catch(() => {});
	await evList.locator('table').nth(1).waitFor().catch(() => {});
	await page.waitForTimeout(500);
	page.off('request', onEv);
	check('a double click on Next events asks once and appends one page', evNext.length === 1 && (await evList.locator('table').count()) === 2,
		`${evNext.length} requests, ${await evList.locator('table').count()} tables`);
	await screen('compliance-events');
	check('no request URL held the subject\'s email, name or phone', leaks().length === 0, leaks().join('\n'));
	check('the URL is still only the screen', new URL(page.url()).hash === '#/compliance' && !new URL(page.url()).search, page.url());

	// a download whose session has ended brings the sign-in form over the
	// screen; once signed in again the same download goes on and arrives
	await of.getByLabel('Format').selectOption('csv');
	await context.clearCookies();
	expected.push({ path: '/export/contacts', status: 401 });
	const rx = await download(async () => {
		await of.getByRole('button', { name: 'Download' }).click();
		await page.locator('#gate #sign-in').waitFor().catch(() => {});
		check('a download whose session has ended brings the sign-in form over the screen',
			(await page.locator('#gate').isVisible()) && (await page.locator('#main').isHidden()));
		await signIn(env.CONSOLE_OFFICER_EMAIL, env.CONSOLE_OFFICER_PASSWORD, 'compliance_officer, after a 401 on a download,');
	});
	check('after sign-in the refused download arrives: org A\'s contacts as CSV', rx.name === `contacts-${env.CONSOLE_ORG_A}.csv`
		&& /^id,/.test(rx.body) && (rx.body.split('\r\n').find((l) => l.startsWith(env.CONSOLE_HOLD_ID)) || '').includes(SUBJECT.email),
		`${rx.name}\n${rx.body.slice(0, 200)}`);
	await of.locator('.form-status.ok').waitFor().catch(() => {});
	check('the sign-in is gone and the Compliance screen is back, its form as it was, saying downloaded',
		(await page.locator('#gate').isHidden()) && (await page.locator('#dsr-org-export').isVisible())
		&& (await of.getByLabel('Org id').inputValue()) === env.CONSOLE_ORG_A
		&& /^Downloaded contacts-/.test(await text(of.locator('.form-status'))) && new URL(page.url()).hash === '#/compliance',
		`${page.url()}\n${await text(of.locator('.form-status'))}`);
	await signOut();

	// ---- roles without compliance.*: neither the menu entry nor the screen
	for (const [label, email, pw] of [['member', env.CONSOLE_MEMBER_EMAIL, env.CONSOLE_MEMBER_PASSWORD],
		['platform_admin', env.CONSOLE_PA_EMAIL, env.CONSOLE_PA_PASSWORD]]) {
		await signIn(email, pw, label);
		await page.locator('#main h1', { hasText: 'Compliance' }).waitFor().catch(() => {});
		check(`${label} has no Compliance menu entry`, !/Compliance/.test(await text(page.locator('#nav'))), await text(page.locator('#nav')));
		check(`${label} on #/compliance is told its role has no access, with no form`,
			/does not give access/.test(await text(page.locator('#main'))) && (await page.locator('#dsr-search, #dsr-archive, #dsr-org-export').count()) === 0,
			await text(page.locator('#main')));
		await screen(`compliance-${label.replace('_', '-')}`);
		await signOut();
	}
});
