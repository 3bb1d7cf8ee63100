// The Incident screen (runbook 4) in a real browser; t/69-console-incident.t
// runs it after provoking real 429s. Everything comes from the environment:
//   CONSOLE_URL, CONSOLE_SCREENS           as for every browser test (lib.mjs)
//   CONSOLE_SEC_EMAIL/_PASSWORD            a security_admin: the whole runbook
//   CONSOLE_OFFICER_EMAIL/_PASSWORD        a compliance_officer: sees none of it
//   CONSOLE_SUSPECT_ADDR, CONSOLE_SUSPECT_EMAIL
//                                          the address a member's burst came from, the member
//   CONSOLE_ANON_ADDR                      an address whose anonymous burst got 429
//   CONSOLE_COLLEAGUE_EMAIL/_PASSWORD      a member signed in elsewhere, whose sessions are flushed
//   CONSOLE_ORGA_NAME, CONSOLE_ORGC_NAME   the suspect's org (held), an org flushed with its tokens
//   CONSOLE_LEAK_TOKEN_ID                  the id of an API token to revoke by id
//   CONSOLE_OTHER_CIDR                     a range blocked, then lifted
// The blocked address's row turns to "applied" in the nginx column without a reload.
// At the end the security_admin reads the rate limits in force and tightens
// opsd's per-user limit to 6 a minute (t/69-console-incident.t then checks a
// user's burst through the API).
import { env, BASE, browser, check, page, expected, screen, signIn, signOut, run } from './lib.mjs';

const text = async (sel) => (await page.locator(sel).innerText().catch(() => '')) || '';

// Types the reason into the confirmation dialog and presses its button.
async function confirmWith(reason, action, { keyboard = false } = {}) {
	const dlg = page.locator('dialog.confirm');
	await dlg.waitFor();
	await dlg.getByLabel('Reason').fill(reason);
	if (keyboard) {
		await page.keyboard.press('Tab'); // the dialog's action button
		await page.keyboard.press('Enter');
	} else {
		await dlg.getByRole('button', { name: action }).click();
	}
	await dlg.waitFor({ state: 'detached' });
}

async function targetSays(re, name) {
	const st = page.locator('#incident-target-status .form-status');
	await page.locator('#incident-target-status .form-status.ok, #incident-target-status .form-status.error').waitFor().catch(() => {});
	const t = await st.innerText().catch(() => '');
	return check(name, re.test(t) && !/error/.test(await st.getAttribute('class')), t);
}

// "tomorrow at this minute" as the operator types it, in the browser's zone
const tomorrowLocal = () => page.evaluate(() => {
	const d = new Date(Date.now() + 86400e3);
	const p = (n) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
});

await run(async () => {
	// ---- the colleague is signed in elsewhere (another browser profile)
	const elsewhere = await browser.newContext({ ignoreHTTPSErrors: true });
	const login = await elsewhere.request.post(`${BASE}/auth/login`,
		{ data: { email: env.CONSOLE_COLLEAGUE_EMAIL, password: env.CONSOLE_COLLEAGUE_PASSWORD } });
	check('the colleague signs in in another browser profile', login.status() === 200, await login.text());
	const colleagueMe = async () => (await elsewhere.request.get(`${BASE}/auth/me`)).status();
	check('  its session answers GET /auth/me', (await colleagueMe()) === 200);

	// ---- security_admin: sign in on a deep link to the screen
	expected.push({ path: '/auth/me', status: 401 });
	await page.goto(`${BASE}/console/#/incident`);
	await signIn(env.CONSOLE_SEC_EMAIL, env.CONSOLE_SEC_PASSWORD, 'security_admin');
	await page.locator('#incident-sources table').waitFor().catch(() => {});
	check('security_admin lands on the Incident screen', (await text('#main h1')) === 'Incident', await text('#main'));
	check('its menu has Incident', /Incident/.test(await text('#nav')), await text('#nav'));

	// step 1: the rate-limited sources (audit log) and the 429 counters (metrics)
	const addr = env.CONSOLE_SUSPECT_ADDR;
	const srow = page.locator('#incident-sources tbody tr', { hasText: addr }).first();
	const srowText = await srow.innerText().catch(() => '');
	const n429 = Number(await srow.locator('td').nth(1).innerText().catch(() => '0'));
	check(`the sources list ${addr} with the member as a user source (by email)`, srowText.includes(`user ${env.CONSOLE_SUSPECT_EMAIL}`), srowText);
	check('  with its 429s counted', n429 >= 1, srowText);
	check('  refused by opsd on auth_me', /opsd/.test(srowText) && /auth_me/.test(srowText), srowText);
	const arow = await page.locator('#incident-sources tbody tr', { hasText: env.CONSOLE_ANON_ADDR }).first().innerText().catch(() => '');
	check(`the sources list ${env.CONSOLE_ANON_ADDR} as an anonymous (ip) source`, /\bip\b/.test(arow), arow);
	check('the sources say how many 429s in all', /\d+ 429s? logged from \d+ address/.test(await text('#incident-sources-summary')),
		await text('#incident-sources-summary'));
	await page.locator('#incident-counters table').waitFor().catch(() => {});
	const counters = await text('#incident-counters');
	const mrow = await page.locator('#incident-counters tr', { hasText: 'auth_me' }).first().innerText().catch(() => '');
	check('the 429 counters (GET /metrics) show opsd on auth_me', /opsd/.test(mrow) && Number(mrow.trim().split(/\s+/).pop()) >= n429,
		counters);
	check('  and a total per layer', /since opsd started on this host: .*opsd \d+/.test(counters), counters);
	check('the URL names the screen only', new URL(page.url()).hash === '#/incident', page.url());
	await screen('incident');

	// step 3: block the address, from its row, with an expiry (keyboard)
	const bf = page.locator('#block-add');
	await srow.getByRole('button', { name: `Block ${addr}` }).click();
	check('Block… fills the address into the form', (await bf.getByLabel('Address or range (CIDR)').inputValue()) === addr);
	check('  and puts the focus on Reason', await bf.getByLabel('Reason').evaluate((el) => el === document.activeElement));
	await bf.getByLabel('Expires').fill(await tomorrowLocal());
	await bf.getByLabel('Reason').focus();
	await page.keyboard.type('INC-42 credential stuffing');
	await page.keyboard.press('Enter');
	await bf.locator('.form-status.ok').waitFor().catch(() => {});
	check('blocking says until when', new RegExp(`^Blocked ${addr.replace(/\./g, '\\.')}/32 until `).test(await text('#block-add .form-status')),
		await text('#block-add .form-status'));
	await page.locator('#list-blocklist tr', { hasText: `${addr}/32` }).waitFor().catch(() => {});
	const brow = await page.locator('#list-blocklist tr', { hasText: `${addr}/32` }).first().innerText().catch(() => '');
	check('the blocklist shows the entry with its reason and expiry', /INC-42 credential stuffing/.test(brow) && !/never/.test(brow), brow);
	// nginx's copy: the screen reads the pending entry again by itself until nginx has it
	const ncell = page.locator('#list-blocklist tr', { hasText: `${addr}/32` }).first().locator('.nginx-state');
	const t0 = Date.now();
	await ncell.filter({ hasText: /^applied$/ }).waitFor({ timeout: 15000 }).catch(() => {});
	const nstate = await ncell.innerText().catch(() => '');
	const took = (Date.now() - t0) / 1000;
	check(`its nginx column turns to applied by itself within seconds (${took.toFixed(1)} s)`, nstate === 'applied' && took < 15, nstate);
	check('  and says since when on hover', /nginx denies it on every host since/.test((await ncell.getAttribute('title').catch(() => '')) || ''));

	// bad input, next to its field
	const bad = async (cidr, expires, fieldName, re, name) => {
		await bf.getByLabel('Address or range (CIDR)').fill(cidr);
		await bf.getByLabel('Reason').fill('test');
		await bf.getByLabel('Expires').fill(expires);
		expected.push({ path: '/security/blocklist', status: 400 });
		await bf.getByRole('button', { name: 'Block' }).click();
		const err = bf.locator(`[data-field="${fieldName}"] .field-error`);
		await err.filter({ hasText: /./ }).waitFor().catch(() => {});
		const t = await err.innerText().catch(() => '');
		check(name, re.test(t) && (await bf.locator(`[name="${fieldName}"]`).getAttribute('aria-invalid')) === 'true', `${t} | ${await bf.innerText()}`);
	};
	await bad('203.0.113.300', '', 'cidr', /./, 'a malformed address: the error is next to the CIDR field');
	await bad('10.0.0.5/8', '', 'cidr', /10\.0\.0\.0\/8/, 'host bits set: the error next to the field names the network');
	await bad(env.CONSOLE_OTHER_CIDR, '2020-01-01 00:00', 'expiresAt', /future/, 'an expiry in the past: the error is next to Expires');
	// not a time at all: said next to Expires before anything is sent
	await bf.getByLabel('Expires').fill('tomorrow');
	await bf.getByRole('button', { name: 'Block' }).click();
	const xerr = await bf.locator('[data-field="expiresAt"] .field-error').innerText().catch(() => '');
	check('an expiry that is not a time: the error is next to Expires, nothing sent', /YYYY-MM-DD HH:MM/.test(xerr), xerr);
	await screen('incident-block-errors');

	// another range, then lift it with a typed reason (keyboard in the dialog)
	await bf.getByLabel('Expires').fill('');
	await bf.getByLabel('Address or range (CIDR)').fill(env.CONSOLE_OTHER_CIDR);
	await bf.getByLabel('Reason').fill('INC-42 scanner range');
	await bf.getByRole('button', { name: 'Block' }).click();
	await bf.locator('.form-status.ok').waitFor().catch(() => {});
	check('a range with no expiry is blocked', /with no expiry/.test(await text('#block-add .form-status')), await text('#block-add .form-status'));
	const orow = page.locator('#list-blocklist tr', { hasText: env.CONSOLE_OTHER_CIDR }).first();
	await orow.waitFor().catch(() => {});
	check('  listed as never expiring', /never/.test(await orow.innerText().catch(() => '')));
	await orow.getByRole('button', { name: `Remove the block on ${env.CONSOLE_OTHER_CIDR}` }).click();
	await page.locator('dialog.confirm').waitFor();
	check('Remove asks for the reason in a dialog', /Lift the block on/.test(await text('dialog.confirm')));
	await screen('incident-confirm');
	await confirmWith('false positive: partner NAT', 'Remove block', { keyboard: true });
	await page.locator('#blocklist-status .form-status.ok').waitFor().catch(() => {});
	check('removing says so', /Lifted the block on/.test(await text('#blocklist-status')), await text('#blocklist-status'));
	check('  and the range is gone from the list', !(await text('#list-blocklist')).includes(env.CONSOLE_OTHER_CIDR)
		&& (await text('#list-blocklist')).includes(`${addr}/32`), await text('#list-blocklist'));

	// step 4: the colleague's sessions, found by email (in the body, not the URL)
	const lf = page.locator('#incident-lookup');
	await lf.getByLabel('Email').fill(env.CONSOLE_COLLEAGUE_EMAIL);
	await lf.getByRole('button', { name: 'Find' }).click();
	await page.locator('#lookup-results tr', { hasText: env.CONSOLE_COLLEAGUE_EMAIL }).waitFor().catch(() => {});
	await page.getByRole('button', { name: `Select ${env.CONSOLE_COLLEAGUE_EMAIL}` }).click();
	await page.locator('#incident-target h3', { hasText: env.CONSOLE_COLLEAGUE_EMAIL }).waitFor().catch(() => {});
	check('the lookup selects the colleague\'s account', (await text('#incident-target h3')).includes(env.CONSOLE_COLLEAGUE_EMAIL),
		await text('#incident-target'));
	check('  with no email in the URL', !page.url().includes('@') && new URL(page.url()).hash === '#/incident', page.url());
	await page.locator('#incident-target').getByRole('button', { name: 'Flush sessions…' }).click();
	await confirmWith('INC-42 shared laptop', 'Flush sessions');
	await targetSays(/flushed 1 session\b/, 'flushing the colleague\'s sessions says flushed 1 session');
	check('the colleague\'s session elsewhere now answers 401', (await colleagueMe()) === 401);

	// the member of the burst, chosen from the rate-limited sources
	await srow.getByRole('button', { name: `Select the account ${env.CONSOLE_SUSPECT_EMAIL}` }).click();
	await page.locator('#incident-target h3', { hasText: env.CONSOLE_SUSPECT_EMAIL }).waitFor().catch(() => {});
	check('Select on a user source shows that account', (await text('#incident-target h3')).includes(env.CONSOLE_SUSPECT_EMAIL),
		await text('#incident-target'));
	const tgt = page.locator('#incident-target');
	await tgt.getByRole('button', { name: 'Revoke API tokens…' }).click();
	await confirmWith('INC-42 token leaked', 'Revoke tokens');
	await targetSays(/revoked 1 API token\b/, 'revoking the member\'s tokens says revoked 1 API token');
	await tgt.getByRole('button', { name: 'Disable account…' }).click();
	await confirmWith('INC-42 phished', 'Disable account');
	await targetSays(/: disabled\.$/, 'disabling the member says disabled');
	check('  the account shows disabled, with Enable offered', /State\s+disabled/.test(await text('#incident-target-facts'))
		&& (await tgt.getByRole('button', { name: 'Enable account…' }).count()) === 1, await text('#incident-target'));
	await tgt.getByRole('button', { name: 'Set legal hold…' }).click();
	await confirmWith('INC-42 evidence (account)', 'Set hold');
	await targetSays(/: held\.$/, 'a legal hold on the member says held');
	check('  the account shows the hold', /Legal hold\s+held/.test(await text('#incident-target-facts')), await text('#incident-target-facts'));

	// its org, held with a case reference
	await tgt.getByRole('button', { name: 'Select its org' }).click();
	await page.locator('#incident-target h3', { hasText: env.CONSOLE_ORGA_NAME }).waitFor().catch(() => {});
	check('Select its org shows the member\'s org', (await text('#incident-target h3')).includes(env.CONSOLE_ORGA_NAME), await text('#incident-target'));
	await tgt.getByLabel('Case reference (optional)').fill('INC-42');
	await tgt.getByRole('button', { name: 'Set legal hold…' }).click();
	await confirmWith('INC-42 evidence', 'Set hold');
	await targetSays(/: held\.$/, 'a legal hold on the org says held');
	check('  the org shows the hold and offers Release', /Legal hold\s+held/.test(await text('#incident-target-facts'))
		&& (await tgt.getByRole('button', { name: 'Release legal hold…' }).count()) === 1, await text('#incident-target'));
	await screen('incident-target');

	// another org, found by name: its sessions and API tokens in one go
	await lf.getByLabel('Email').fill('');
	await lf.getByLabel('Name').fill(env.CONSOLE_ORGC_NAME);
	await lf.getByLabel('Name').press('Enter');
	await page.getByRole('button', { name: `Select ${env.CONSOLE_ORGC_NAME}` }).click();
	await page.locator('#incident-target h3', { hasText: env.CONSOLE_ORGC_NAME }).waitFor().catch(() => {});
	await tgt.getByLabel('Also revoke the API tokens').check();
	await tgt.getByRole('button', { name: 'Flush sessions…' }).click();
	check('the dialog says the tokens go too', /API tokens are revoked/.test(await text('dialog.confirm')), await text('dialog.confirm'));
	await confirmWith('INC-42 org compromised', 'Flush sessions');
	await targetSays(/flushed 1 session, revoked 1 API token\b/, 'flushing the org with its tokens says flushed 1, revoked 1');

	// one leaked token by its id (a malformed id first, next to its field)
	const rf = page.locator('#revoke-token');
	await rf.getByLabel('Token id').fill('nope');
	await rf.getByRole('button', { name: 'Revoke this token…' }).click();
	const terr = await rf.locator('[data-field="tokenId"] .field-error').innerText().catch(() => '');
	check('a malformed token id: the error is next to Token id, nothing asked or sent', /UUID/.test(terr)
		&& (await page.locator('dialog.confirm').count()) === 0, terr);
	await rf.getByLabel('Token id').fill(env.CONSOLE_LEAK_TOKEN_ID);
	await rf.getByRole('button', { name: 'Revoke this token…' }).click();
	await confirmWith('INC-42 token in a public repo', 'Revoke token');
	await rf.locator('.form-status.ok').waitFor().catch(() => {});
	check('revoking one token by id says revoked 1', /Revoked 1 API token\b/.test(await text('#revoke-token .form-status')),
		await text('#revoke-token .form-status'));
	await screen('incident-all');

	// every session: the operator's own ends too, and the next request signs in again
	await page.locator('#flush-all').getByRole('button', { name: 'Flush every session…' }).click();
	await confirmWith('INC-42 every session out', 'Flush every session');
	await page.locator('#incident-all-status .form-status.ok').waitFor().catch(() => {});
	check('flushing every session says so and warns about the own session',
		/Flushed \d+ sessions?.*Your session ended too/.test(await text('#incident-all-status')), await text('#incident-all-status'));
	expected.push({ path: '/audit', status: 401 });
	await page.locator('#incident-window').getByRole('button', { name: 'Show' }).click();
	await page.locator('#sign-in').waitFor().catch(() => {});
	check('the next request brings the sign-in form', (await page.locator('#sign-in').count()) === 1, await text('#main'));
	await signIn(env.CONSOLE_SEC_EMAIL, env.CONSOLE_SEC_PASSWORD, 'security_admin, after its own flush,');
	await page.locator('#incident-sources table').waitFor().catch(() => {});
	check('  and then the Incident screen again', (await text('#main h1')) === 'Incident' && new URL(page.url()).hash === '#/incident', page.url());
	await signOut();

	// ---- compliance_officer: audit.read and holds, but none of runbook 4's actions
	await signIn(env.CONSOLE_OFFICER_EMAIL, env.CONSOLE_OFFICER_PASSWORD, 'compliance_officer');
	check('compliance_officer has no Incident menu', !/Incident/.test(await text('#nav')), await text('#nav'));
	await page.locator('#main p').first().waitFor().catch(() => {});
	check('  and #/incident says the role has no access', /does not give access/.test(await text('#main')), await text('#main'));
	check('  with no section of the screen', (await page.locator('#incident-rl, #incident-block, #incident-target, #incident-all').count()) === 0);
	await screen('incident-denied');
	await signOut();
	await elsewhere.close();

	// ---- step 2: the rate limits in force, and tightening opsd's per user
	await signIn(env.CONSOLE_SEC_EMAIL, env.CONSOLE_SEC_PASSWORD, 'security_admin, for the rate limits,');
	await page.locator('#incident-limits table').waitFor().catch(() => {});
	const limitRow = (name) => page.locator('#incident-limits tbody tr', { has: page.locator('code', { hasText: new RegExp(`^${name}$`) }) })
		.first().innerText().catch(() => '');
	let lrow = await limitRow('userPerMin');
	check('Rate limits in force: userPerMin 600 from the env file', /\b600\b/.test(lrow) && /env file \(OPSD_RATELIMIT_USER_PER_MIN\)/.test(lrow), lrow);
	lrow = await limitRow('nginxApiRate');
	check('  nginxApiRate with its value and source', /10000r\/s/.test(lrow) && /nginx/.test(lrow) && /environment|env file/.test(lrow), lrow);
	check('  and says nginx runs nginx\'s values', /nginx runs the nginx values/.test(await text('#incident-limits-nginx')), await text('#incident-limits-nginx'));
	const limf = page.locator('#limits-set');
	const user = limf.getByLabel('userPerMin (opsd)');
	const lerr = limf.locator('[data-field="userPerMin"] .field-error');
	await user.fill('six');
	await limf.getByRole('button', { name: 'Change limits…' }).click();
	check('a value that is not a number: said next to userPerMin, nothing asked or sent',
		/whole number/.test(await lerr.innerText().catch(() => '')) && (await page.locator('dialog.confirm').count()) === 0,
		await limf.innerText());
	await user.fill('99999999');
	expected.push({ path: '/security/rate-limits', status: 400 });
	await limf.getByRole('button', { name: 'Change limits…' }).click();
	await confirmWith('INC-42 a typo', 'Change limits');
	await lerr.filter({ hasText: /./ }).waitFor().catch(() => {});
	check('a value out of range: the server\'s reason next to userPerMin', /between 0 and 10000000/.test(await lerr.innerText().catch(() => '')),
		await limf.innerText());
	await user.fill('6');
	await limf.getByRole('button', { name: 'Change limits…' }).click();
	await page.locator('dialog.confirm').waitFor();
	check('the dialog says what changes', /userPerMin 6/.test(await text('dialog.confirm')), await text('dialog.confirm'));
	await confirmWith('INC-42 scraping: 6 a minute per user', 'Change limits', { keyboard: true });
	await limf.locator('.form-status.ok').waitFor().catch(() => {});
	check('tightening says Changed 1 limit', /^Changed 1 limit\./.test(await text('#limits-set .form-status')), await text('#limits-set'));
	lrow = await limitRow('userPerMin');
	check('  the table shows 6, set at run time by security_admin with the reason, over the configuration\'s 600',
		/\b6\b/.test(lrow) && /set at run time by security_admin/.test(lrow) && /INC-42 scraping/.test(lrow) && /600 \(env file\)/.test(lrow), lrow);
	check('  and the form offers to set it back', (await limf.getByLabel('Back to the configuration\'s 600').count()) === 1, await limf.innerText());
	await screen('incident-limits');
	await signOut();
});
