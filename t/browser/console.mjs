// The console in a real browser (t/68-console.t runs this; t/README):
// Debian's chromium driven by playwright-core, axe-core for accessibility.
// Everything comes from the environment, nothing from the command line:
//   CONSOLE_URL                    https://127.0.0.1:PORT (self-signed)
//   CONSOLE_ADMIN_EMAIL/_PASSWORD  a platform_admin
//   CONSOLE_OFFICER_EMAIL/_PASSWORD a compliance_officer (audit.verify)
//   CONSOLE_MEMBER_EMAIL/_PASSWORD a member
//   CONSOLE_TERMS_VERSION          the terms version to publish
//   CONSOLE_MAIL_ALLOWED/_OTHER    an allowlisted and a non-allowlisted address
//   CONSOLE_MAIL_FAILING           the address of a message already failed
//   CONSOLE_SECURITY_EMAIL/_PASSWORD a security_admin (security.users_disable)
//   CONSOLE_ORG_NAME               an org's name; CONSOLE_NEW_EMAIL/_PASSWORD a user to create
//   CONSOLE_SCREENS                where the screenshots go
// The shared parts (browser, checks, screenshots, sign-in) are in lib.mjs.
import { readFileSync } from 'node:fs';
import { env, BASE, check, context, page, expected, screen, signIn, acceptGate, signOut, run } from './lib.mjs';

// A download the page starts in click(): its suggested name and its text
// (an empty name and text if none arrives within 20 s).
async function download(click) {
	const dl = page.waitForEvent('download', { timeout: 20000 }).catch(() => null);
	await click();
	const d = await dl;
	return d ? { name: d.suggestedFilename(), body: readFileSync(await d.path(), 'utf8') } : { name: '', body: '' };
}

// RFC 4180 text as rows of fields (quoted fields may hold commas, quotes
// and line breaks).
function parseCsv(text) {
	const rows = [];
	let row = [];
	let f = '';
	let quoted = false;
	for (let i = 0; i < text.length; i++) {
		const c = text[i];
		if (quoted) {
			if (c !== '"') f += c;
			else if (text[i + 1] === '"') f += text[i++];
			else quoted = false;
		} else if (c === '"') quoted = true;
		else if (c === ',') {
			row.push(f);
			f = '';
		} else if (c === '\r' || c === '\n') {
			if (c === '\r' && text[i + 1] === '\n') i++;
			row.push(f);
			rows.push(row);
			row = [];
			f = '';
		} else f += c;
	}
	if (f || row.length) rows.push([...row, f]);
	return rows;
}

await run(async () => {
	// ---- platform_admin: sign in from a deep link, back to that screen
	expected.push({ path: '/auth/me', status: 401 });
	await page.goto(`${BASE}/console/#/legal`);
	await page.locator('#sign-in').waitFor();
	await screen('sign-in');
	await signIn(env.CONSOLE_ADMIN_EMAIL, env.CONSOLE_ADMIN_PASSWORD, 'platform_admin');
	await page.locator('#legal-publish').waitFor();
	check('after sign-in the Legal screen the URL named is shown', (await page.locator('#main h1').innerText()) === 'Legal');
	const nav = await page.locator('#nav').innerText();
	check('platform_admin menu has Legal and Audit', /Legal/.test(nav) && /Audit/.test(nav), nav);
	await screen('legal');

	// a field error next to its field: no version
	const form = page.locator('#legal-publish');
	await form.getByLabel('Type').fill('terms');
	await form.getByLabel('Content').fill('Terms of the console test.\nSecond line.');
	expected.push({ path: '/legal', status: 400 });
	await form.getByRole('button', { name: 'Publish' }).click();
	const verr = form.locator('[data-field="version"] .field-error');
	await verr.filter({ hasText: /./ }).waitFor().catch(() => {});
	check('a publish without version shows the field error next to Version', (await verr.innerText()).length > 0,
		await form.innerText());
	await screen('legal-error');

	// publish
	const version = env.CONSOLE_TERMS_VERSION;
	await form.getByLabel('Version').fill(version);
	await form.getByRole('button', { name: 'Publish' }).click();
	await form.locator('.form-status.ok').waitFor().catch(() => {});
	check('publish through the Legal screen says so', /Published terms version/.test(await form.locator('.form-status').innerText()),
		await form.locator('.form-status').innerText());
	await page.locator('table', { hasText: version }).waitFor().catch(() => {});
	check('the documents table shows the new current version', /terms/.test(await page.locator('section table').first().innerText())
		&& (await page.locator('section table').first().innerText()).includes(version));

	// the same version again: 409 in words
	expected.push({ path: '/legal', status: 409 });
	await form.getByRole('button', { name: 'Publish' }).click();
	await form.locator('.form-status.error').waitFor().catch(() => {});
	check('publishing it again shows the refusal in words', /already|exists|version/i.test(await form.locator('.form-status').innerText()),
		await form.locator('.form-status').innerText());

	// the acceptance report
	const rep = page.locator('#legal-report');
	await rep.getByLabel('Type').fill('terms');
	await rep.getByRole('button', { name: 'Show report' }).click();
	await page.locator('.report .summary').waitFor().catch(() => {});
	check('the acceptance report shows counts', /accepted, \d+ pending/.test(await page.locator('.report').innerText()),
		await page.locator('.report').innerText());
	await screen('legal-report');

	// ---- Audit: legal.* finds legal.updated; no verify for this role
	await page.getByRole('link', { name: 'Audit' }).click();
	await page.locator('#audit-search').waitFor();
	check('platform_admin sees no Verify (audit.verify is not its)', (await page.locator('#audit-verify').count()) === 0);
	// the session ends under the operator's feet: sign in again, back on Audit
	await context.clearCookies();
	expected.push({ path: '/audit', status: 401 });
	await page.getByLabel('Action').fill('legal.*');
	await page.getByLabel('Action').press('Enter');
	await signIn(env.CONSOLE_ADMIN_EMAIL, env.CONSOLE_ADMIN_PASSWORD, 'platform_admin, after a 401,');
	await acceptGate('platform_admin'); // the terms it published are pending for it too
	await page.locator('#audit-search').waitFor().catch(() => {});
	check('after the 401 and sign-in the Audit screen is back', (await page.locator('#main h1').innerText()) === 'Audit'
		&& new URL(page.url()).hash === '#/audit', page.url());
	await page.locator('#audit-results table').waitFor().catch(() => {});
	check('the search refused by the 401 went on after sign-in, its filter kept',
		(await page.getByLabel('Action').inputValue()) === 'legal.*'
		&& /legal\.updated/.test(await page.locator('#audit-results').innerText().catch(() => '')),
		await page.locator('#main').innerText());
	await page.getByLabel('Action').fill('legal.*');
	await page.getByLabel('Action').press('Enter');
	await page.locator('#audit-results table').waitFor().catch(() => {});
	const events = await page.locator('#audit-results').innerText().catch(() => '');
	check('audit search action=legal.* shows legal.updated', /legal\.updated/.test(events) && events.includes(version), events);
	// the CSV: the same search, fetched by the button and saved from a Blob;
	// the filters never in the page (no link holds them)
	check('no link or attribute holds the search as CSV', (await page.locator('[href*="format=csv"]').count()) === 0);
	const csvFile = await download(() => page.getByRole('button', { name: 'Download these events as CSV' }).click());
	const csvRows = parseCsv(csvFile.body);
	const act = (csvRows[0] || []).indexOf('action');
	check('the CSV download is a CSV file of the same search (legal.* only, legal.updated among them)',
		/^audit-[0-9T-]+Z\.csv$/.test(csvFile.name) && act >= 0 && csvRows.length > 1
		&& csvRows.slice(1).every((r) => /^legal\./.test(r[act])) && csvRows.slice(1).some((r) => r[act] === 'legal.updated'),
		`${csvFile.name}\n${csvFile.body.slice(0, 300)}`);
	await page.locator('#audit-search .form-status.ok').waitFor().catch(() => {});
	check('the search form says what was downloaded', (await page.locator('#audit-search .form-status').innerText()).startsWith(`Downloaded ${csvFile.name}`),
		await page.locator('#audit-search .form-status').innerText());
	// the session ends before the download: sign in again, then the same CSV
	// arrives (not the error envelope saved as a file)
	await context.clearCookies();
	expected.push({ path: '/audit', status: 401 });
	const again = await download(async () => {
		await page.getByRole('button', { name: 'Download these events as CSV' }).click();
		await signIn(env.CONSOLE_ADMIN_EMAIL, env.CONSOLE_ADMIN_PASSWORD, 'platform_admin, after a 401 on the CSV download,');
	});
	check('after the 401 and sign-in the CSV download arrives with the events', /^id,/.test(again.body)
		&& /legal\.updated/.test(again.body) && !/"error"/.test(again.body.slice(0, 200)), again.body.slice(0, 300));
	check('and the sign-in over the screen is gone, the Audit screen shown', await page.locator('#gate').isHidden()
		&& await page.locator('#audit-search').isVisible());
	expected.push({ path: '/audit', status: 400 });
	await page.getByLabel('Since').fill('yesterday');
	await page.getByRole('button', { name: 'Search' }).click();
	const serr = page.locator('[data-field="since"] .field-error');
	await serr.filter({ hasText: /./ }).waitFor().catch(() => {});
	check('a bad since shows its error next to Since', (await serr.innerText()).length > 0, await page.locator('#audit-search').innerText());
	check('the URL holds no filter', new URL(page.url()).hash === '#/audit' && !page.url().includes('legal.'), page.url());
	await screen('audit');

	// ---- Email: test mode and allowlist, test sends, the outbox, Retry
	await page.getByRole('link', { name: 'Email' }).click();
	await page.locator('#email-settings').waitFor();
	await page.locator('#email-outbox table, #email-outbox p').first().waitFor().catch(() => {});
	const mode = await page.locator('#email-test-mode').innerText();
	check('the Email screen says test mode is on', /Test mode is ON/.test(mode), mode);
	const allow = await page.locator('#email-allowlist').innerText();
	check('the Email screen lists the allowlist', allow.includes('allowed@example.test') && allow.includes('@allowed.test'), allow);
	check('the Email screen shows no password', /Password\s*not set/.test(await page.locator('#email-settings').innerText()),
		await page.locator('#email-settings').innerText());
	await screen('email');
	const tf = page.locator('#email-test');
	expected.push({ path: '/email/test', status: 400 });
	await tf.getByRole('button', { name: 'Send test message' }).click();
	const terr = tf.locator('[data-field="to"] .field-error');
	await terr.filter({ hasText: /./ }).waitFor().catch(() => {});
	check('a test without To shows the field error next to To', (await terr.innerText()).length > 0, await tf.innerText());
	const outboxHas = async (addr, status) => {
		const row = page.locator('#email-outbox tr', { hasText: addr }).first();
		await row.waitFor().catch(() => {});
		const t = await row.innerText().catch(() => '');
		return status ? t.includes(status) : t.includes(addr);
	};
	await tf.getByLabel('To').fill(env.CONSOLE_MAIL_ALLOWED);
	await tf.getByLabel('To').press('Enter');
	await tf.locator('.form-status.ok').waitFor().catch(() => {});
	check('a test to an allowlisted address says queued', /^Queued/.test(await tf.locator('.form-status').innerText()),
		await tf.locator('.form-status').innerText());
	check('the outbox lists it', await outboxHas(env.CONSOLE_MAIL_ALLOWED), await page.locator('#email-outbox').innerText());
	await tf.getByLabel('To').fill(env.CONSOLE_MAIL_OTHER);
	await tf.getByRole('button', { name: 'Send test message' }).click();
	await tf.locator('.form-status.ok', { hasText: 'Suppressed' }).waitFor().catch(() => {});
	check('a test to another address says suppressed', /^Suppressed/.test(await tf.locator('.form-status').innerText()),
		await tf.locator('.form-status').innerText());
	check('the outbox lists it as suppressed', await outboxHas(env.CONSOLE_MAIL_OTHER, 'suppressed'), await page.locator('#email-outbox').innerText());
	await page.locator('#email-filter').getByLabel('Status').selectOption('failed');
	await page.locator('#email-filter').getByRole('button', { name: 'Show' }).click();
	await page.locator('#email-outbox tr', { hasText: env.CONSOLE_MAIL_FAILING }).first().waitFor().catch(() => {});
	const failedList = await page.locator('#email-outbox').innerText();
	check('the failed filter lists the failed message and no suppressed one', failedList.includes(env.CONSOLE_MAIL_FAILING)
		&& !failedList.includes(env.CONSOLE_MAIL_OTHER), failedList);
	await screen('email-outbox');
	const frow = page.locator('#email-outbox tr', { hasText: env.CONSOLE_MAIL_FAILING }).first();
	await frow.getByRole('button', { name: 'Retry' }).click();
	await frow.getByText(/Retried: /).waitFor().catch(() => {});
	check('Retry on the failed message queues it again', /Retried: queued/.test(await frow.innerText().catch(() => '')),
		await page.locator('#email-outbox').innerText());
	check('the URL holds no address', new URL(page.url()).hash === '#/email' && !page.url().includes('@'), page.url());

	// ---- Users and orgs: the lists, create a user (a missing name first)
	await page.getByRole('link', { name: 'Users and orgs' }).click();
	await page.locator('#list-orgs table').waitFor().catch(() => {});
	check('the orgs list shows the test org', (await page.locator('#list-orgs').innerText()).includes(env.CONSOLE_ORG_NAME),
		await page.locator('#list-orgs').innerText().catch(() => ''));
	check('platform_admin sees no containment (security.users_disable is not its)', (await page.locator('#user-contain').count()) === 0);
	const uf = page.locator('#user-create');
	await uf.getByLabel('Email').fill(env.CONSOLE_NEW_EMAIL);
	await uf.getByLabel('Roles').fill('platform_admin');
	await uf.getByLabel('Password', { exact: true }).fill(env.CONSOLE_NEW_PASSWORD);
	expected.push({ path: '/users', status: 400 });
	await uf.getByRole('button', { name: 'Create user' }).click();
	const nerr = uf.locator('[data-field="name"] .field-error');
	await nerr.filter({ hasText: /./ }).waitFor().catch(() => {});
	check('a user without name shows the field error next to Name', (await nerr.innerText()).length > 0, await uf.innerText());
	await uf.getByLabel('Name').fill('Console New');
	await uf.getByLabel('Password', { exact: true }).fill(env.CONSOLE_NEW_PASSWORD);
	await uf.getByRole('button', { name: 'Create user' }).click();
	await uf.locator('.form-status.ok').waitFor().catch(() => {});
	check('creating a user says so', /^Created /.test(await uf.locator('.form-status').innerText()), await uf.locator('.form-status').innerText());
	await page.locator('#list-users tr', { hasText: env.CONSOLE_NEW_EMAIL }).first().waitFor().catch(() => {});
	check('the users list shows the new user', (await page.locator('#list-users').innerText()).includes(env.CONSOLE_NEW_EMAIL));
	await screen('users');
	await signOut();
	await screen('signed-out');

	// ---- compliance_officer: verify the chain. It signs in on #/users (the
	// admin's last screen), whose GET /users the legal gate refuses (403)
	// until it accepts the terms.
	expected.push({ path: '/users', status: 403 });
	await signIn(env.CONSOLE_OFFICER_EMAIL, env.CONSOLE_OFFICER_PASSWORD, 'compliance_officer');
	await acceptGate('compliance_officer');
	await page.goto(`${BASE}/console/#/audit`);
	// a 429 in words with its Retry-After (answered here by the test)
	await page.route('**/audit/verify', (r) => r.fulfill({ status: 429, contentType: 'application/json',
		headers: { 'Retry-After': '7' },
		body: JSON.stringify({ error: { code: 'rate_limited', message: 'too many requests', details: { layer: 'opsd' } }, requestId: 'r429' }) }));
	expected.push({ path: '/audit/verify', status: 429 });
	await page.getByRole('button', { name: 'Verify chain' }).click();
	await page.locator('#audit-verify .form-status.error').waitFor().catch(() => {});
	check('a 429 shows its Retry-After', /try again in 7 s/.test(await page.locator('#audit-verify .form-status').innerText()),
		await page.locator('#audit-verify .form-status').innerText());
	await page.unroute('**/audit/verify');
	await page.getByRole('button', { name: 'Verify chain' }).click();
	const vs = page.locator('#audit-verify .form-status');
	await page.locator('#audit-verify .form-status.ok, #audit-verify .form-status.error').waitFor().catch(() => {});
	check('verify chain shows ok', /Chain ok: \d+ events checked/.test(await vs.innerText()), await vs.innerText());
	await screen('audit-verify');
	// a long chain comes a stretch per call: the console follows the cursor
	// to the end (both answers given here by the test)
	const stretch = (o) => JSON.stringify({ ok: true, fromSeq: 1, checkpoint: null, ...o });
	await page.route(/\/audit\/verify$/, (r) => r.fulfill({ status: 200, contentType: 'application/json',
		body: stretch({ checked: 100000, toSeq: 100000, more: true, cursor: 'c-1' }) }));
	await page.route(/\/audit\/verify\?cursor=c-1$/, (r) => r.fulfill({ status: 200, contentType: 'application/json',
		body: stretch({ checked: 150000, toSeq: 150000, more: false, cursor: null }) }));
	await page.getByRole('button', { name: 'Verify chain' }).click();
	await page.locator('#audit-verify .form-status.ok').filter({ hasText: '150000' }).waitFor().catch(() => {});
	check('verify chain follows the cursor to the end', /Chain ok: 150000 events checked/.test(await vs.innerText()), await vs.innerText());
	await page.unroute(/\/audit\/verify$/);
	await page.unroute(/\/audit\/verify\?cursor=c-1$/);
	await page.getByRole('button', { name: 'Verify since the last checkpoint' }).click();
	await page.locator('#audit-verify .form-status.ok, #audit-verify .form-status.error').waitFor().catch(() => {});
	check('verify since the last checkpoint shows ok', /Chain ok: \d+ events checked/.test(await vs.innerText()), await vs.innerText());
	await signOut();

	// ---- member: no publish form, no Audit menu
	await signIn(env.CONSOLE_MEMBER_EMAIL, env.CONSOLE_MEMBER_PASSWORD, 'member');
	await acceptGate('member');
	await page.goto(`${BASE}/console/#/legal`);
	await page.locator('h1', { hasText: 'Legal' }).waitFor();
	await page.locator('section table').first().waitFor().catch(() => {});
	check('member sees no publish form', (await page.locator('#legal-publish').count()) === 0);
	check('member sees no acceptance report', (await page.locator('#legal-report').count()) === 0);
	check('member menu has no Audit', !/Audit/.test(await page.locator('#nav').innerText()), await page.locator('#nav').innerText());
	check('member menu has no Email', !/Email/.test(await page.locator('#nav').innerText()), await page.locator('#nav').innerText());
	check('member menu has no Users and orgs', !/Users/.test(await page.locator('#nav').innerText()), await page.locator('#nav').innerText());
	await screen('member-legal');
	await page.goto(`${BASE}/console/#/audit`);
	await page.locator('h1', { hasText: 'Audit' }).waitFor();
	check('member on #/audit gets no search form', (await page.locator('#audit-search').count()) === 0);
	await screen('member-audit');

	// ---- the member's session ends mid-screen and someone else signs in:
	// the screen is drawn afresh for the security_admin (its own menu), not
	// left as the member had it, and the member's request is not sent again
	await context.clearCookies();
	expected.push({ path: '/legal/acceptance/status', status: 401 });
	await page.getByRole('link', { name: 'Legal' }).click(); // the screen reads the member's acceptance state
	await page.locator('#gate #sign-in').waitFor();
	check('a 401 mid-screen asks to sign in again over it', /Sign in again/.test(await page.locator('#gate').innerText()));
	await signIn(env.CONSOLE_SECURITY_EMAIL, env.CONSOLE_SECURITY_PASSWORD, 'security_admin, over the member\'s screen,');
	await acceptGate('security_admin');
	await page.locator('#legal-versions').waitFor().catch(() => {});
	await page.locator('#nav a', { hasText: 'Incident' }).waitFor().catch(() => {});
	const navNow = await page.locator('#nav').innerText();
	check('another user signing in gets the screen afresh, with its own menu', /Incident/.test(navNow)
		&& (await page.locator('#main h1').innerText()) === 'Legal' && await page.locator('#main').isVisible(), navNow);
	await page.goto(`${BASE}/console/#/users`);
	const urow = page.locator('#list-users tr', { hasText: env.CONSOLE_NEW_EMAIL }).first();
	await urow.waitFor().catch(() => {});
	check('security_admin sees no create form (users.manage is not its)', (await page.locator('#user-create').count()) === 0);
	const confirmWith = async (reason) => {
		const dlg = page.locator('dialog.confirm');
		await dlg.waitFor();
		await dlg.getByLabel('Reason').fill(reason);
		await dlg.getByLabel('Reason').press('Tab');
		await page.keyboard.press('Enter'); // the focused confirm button
	};
	await urow.getByRole('button', { name: 'Disable' }).click();
	await page.locator('dialog.confirm').waitFor();
	await screen('users-contain-confirm');
	await confirmWith('console test containment');
	await urow.getByRole('button', { name: 'Enable' }).waitFor().catch(() => {});
	check('Disable, confirmed with a reason, marks the user disabled', /disabled/.test(await urow.innerText()), await urow.innerText());
	await screen('users-contain');
	await urow.getByRole('button', { name: 'Enable' }).click();
	await confirmWith('console test: contained, cleared');
	await urow.getByRole('button', { name: 'Disable' }).waitFor().catch(() => {});
	check('Enable marks the user active again', /active/.test(await urow.innerText()), await urow.innerText());
});
