// Runbook 1 (Legal) and the Users and orgs screen in a real browser
// (t/69-console-legal-users.t runs this; t/README). The browser runs in a
// zone other than UTC (TZ, set by the Perl test, reaches chromium), so the
// effective time typed in the operator's zone must reach the API in UTC.
// Everything comes from the environment:
//   CONSOLE_URL, CONSOLE_SCREENS               as for console.mjs (lib.mjs)
//   CONSOLE_ZONE                               the zone chromium runs in
//   CONSOLE_ADMIN_EMAIL/_PASSWORD              a platform_admin
//   CONSOLE_OFFICER_EMAIL/_PASSWORD            a compliance_officer
//   CONSOLE_MEMBER_EMAIL/_PASSWORD             a member of the org
//   CONSOLE_ORGADMIN_EMAIL/_PASSWORD           an org_admin of the org
//   CONSOLE_TARGET_EMAIL                       the member whose roles change
//   CONSOLE_ORG_NAME                           the org's name
//   CONSOLE_NEW_ORG_NAME/_SLUG                 the org to create
//   CONSOLE_V1, CONSOLE_V2, CONSOLE_V3         terms versions: first current,
//                                              scheduled (with notify), then current
//   CONSOLE_V2_LOCAL, CONSOLE_V2_UTC           V2's effective time as typed
//                                              (datetime-local) and in UTC
import { env, BASE, check, page, expected, screen, signIn, signOut, run } from './lib.mjs';

const TEXT1 = 'Terms of the console test.\nKeep this line.\nOld clause: 30 days.\nLast line.';
const TEXT3 = 'Terms of the console test.\nKeep this line.\nNew clause: 14 days.\nAdded clause.\nLast line.';
const TEXT2 = 'Terms of the console test.\nScheduled far ahead.';

const text = async (sel) => (await page.locator(sel).innerText().catch(() => '')).trim();

// LEGAL_ENFORCE=1: the gate shows the pending terms; accept with the keyboard.
async function acceptTerms(label, version) {
	const gate = page.locator('#gate');
	await gate.locator('pre').waitFor();
	const t = await gate.innerText();
	check(`${label} is asked to accept terms ${version} with its text`, t.includes(`terms, version ${version}`)
		&& t.includes('New clause: 14 days.'), t);
	await page.keyboard.press('Enter'); // the focused Accept button
	await gate.waitFor({ state: 'hidden' }).catch(() => {});
	check(`${label} accepts and the gate closes`, await gate.isHidden());
}

async function publish(form, { type, version, content, local, notify }) {
	await form.getByLabel('Type').fill(type);
	await form.getByLabel('Version').fill(version);
	await form.getByLabel('Content').fill(content);
	await form.getByLabel('Effective at (optional)').fill(local || '');
	await form.getByLabel('Notify users by email').setChecked(!!notify);
	await form.getByRole('button', { name: 'Publish' }).click();
	await form.locator('.form-status.ok, .form-status.error').waitFor();
	return form.locator('.form-status').innerText();
}

await run(async () => {
	const zone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
	check(`the browser runs in ${env.CONSOLE_ZONE}, not UTC`, zone === env.CONSOLE_ZONE, zone);

	// ---- platform_admin: enforcement, publish (current, scheduled with notify, current), versions, diff
	expected.push({ path: '/auth/me', status: 401 });
	await page.goto(`${BASE}/console/#/legal`);
	await signIn(env.CONSOLE_ADMIN_EMAIL, env.CONSOLE_ADMIN_PASSWORD, 'platform_admin');
	const form = page.locator('#legal-publish');
	await form.waitFor();
	await page.locator('#legal-enforcement:not(.pending)').waitFor();
	check('the Legal screen says enforcement is on', /Enforcement is ON/.test(await text('#legal-enforcement')),
		await text('#legal-enforcement'));

	let st = await publish(form, { type: 'terms', version: env.CONSOLE_V1, content: TEXT1 });
	check('the first version is published and current', st.includes(`Published terms version ${env.CONSOLE_V1}, current now`), st);

	// the effective time in the operator's zone, and the UTC value shown before sending
	const eff = form.getByLabel('Effective at (optional)');
	await eff.fill(env.CONSOLE_V2_LOCAL);
	const preview = await text('#legal-effective-utc');
	check('the UTC value that will be sent is shown', preview === `Sent as ${env.CONSOLE_V2_UTC} (UTC).`, preview);
	const hint = await form.locator('[data-field="effectiveAt"] .hint').innerText();
	check('the effective time says it is read in the operator\'s zone', hint.includes(env.CONSOLE_ZONE), hint);

	// a past effective time: refused, next to its field, nothing published
	expected.push({ path: '/legal', status: 400 });
	st = await publish(form, { type: 'terms', version: 'past-1', content: TEXT2, local: '2020-01-01T10:00' });
	const perr = await form.locator('[data-field="effectiveAt"] .field-error').innerText();
	check('a past effective time is refused next to Effective at', /future/.test(perr), `${perr} / ${st}`);
	await screen('legal-past-error');

	st = await publish(form, { type: 'terms', version: env.CONSOLE_V2, content: TEXT2, local: env.CONSOLE_V2_LOCAL, notify: true });
	check('the scheduled version with notify says scheduled and notified', st.includes(`Published terms version ${env.CONSOLE_V2}, scheduled`)
		&& st.includes(`${env.CONSOLE_V2_UTC} UTC`) && /notified by email/.test(st), st);
	const docs = page.locator('section[aria-labelledby="legal-docs"] table');
	await docs.filter({ hasText: env.CONSOLE_V2 }).waitFor();
	const row = await docs.locator('tr', { hasText: 'terms' }).innerText();
	const sched = await docs.locator('tr', { hasText: 'terms' }).locator('td').nth(2).innerText();
	check('the documents table shows it as scheduled, the first version still current', sched.includes(env.CONSOLE_V2)
		&& (await docs.locator('tr', { hasText: 'terms' }).locator('td').nth(1).innerText()).includes(env.CONSOLE_V1), row);
	const title = await docs.locator('tr', { hasText: 'terms' }).locator('td').nth(2).locator('time').getAttribute('title');
	check('its time carries the UTC value on hover', title === `${env.CONSOLE_V2_UTC} (UTC)`, title);
	await screen('legal-scheduled');

	st = await publish(form, { type: 'terms', version: env.CONSOLE_V3, content: TEXT3 });
	check('the third version becomes current', st.includes(`Published terms version ${env.CONSOLE_V3}, current now`), st);

	// the versions of terms (shown after the publish; Show versions lists them again)
	const vform = page.locator('#legal-versions');
	await vform.getByLabel('Document type').selectOption('terms');
	await vform.getByRole('button', { name: 'Show versions' }).click();
	const vlist = page.locator('#legal-versions-list table');
	await vlist.filter({ hasText: env.CONSOLE_V1 }).waitFor();
	const state = async (v) => (await vlist.locator('tr', { hasText: v }).locator('td').nth(1).innerText()).trim();
	const states = [await state(env.CONSOLE_V1), await state(env.CONSOLE_V2), await state(env.CONSOLE_V3)];
	check('the versions list says earlier, scheduled, current', states.join(' ') === 'earlier scheduled current', states.join(' '));
	check('no version of the refused publish', !(await vlist.innerText()).includes('past-1'));
	await screen('legal-versions');

	// the side-by-side diff of the first and the third version
	const dform = page.locator('#legal-diff');
	await dform.getByLabel('Old version (left)').fill(env.CONSOLE_V1);
	await dform.getByLabel('New version (right)').fill(env.CONSOLE_V3);
	await dform.getByRole('button', { name: 'Compare' }).click();
	const diff = page.locator('#legal-diff-out table.diff');
	await diff.waitFor();
	const heads = await diff.locator('thead th').allInnerTexts();
	check('the diff has an old and a new column', heads.join('|') === `Old: ${env.CONSOLE_V1}|New: ${env.CONSOLE_V3}`, heads.join('|'));
	const cell = (col, t) => diff.locator(`tbody tr td:nth-child(${col})`, { hasText: t });
	const removed = cell(1, 'Old clause: 30 days.');
	check('the removed line is in the old column, marked removed by class and text',
		(await removed.count()) === 1 && /diff-del/.test(await removed.getAttribute('class'))
		&& /Removed:/.test(await removed.innerText()) && /−/.test(await removed.innerText()), await diff.innerText());
	check('the removed line is not in the new column', (await cell(2, 'Old clause').count()) === 0);
	for (const t of ['New clause: 14 days.', 'Added clause.']) {
		const added = cell(2, t);
		check(`"${t}" is in the new column, marked added by class and text`, (await added.count()) === 1
			&& /diff-add/.test(await added.getAttribute('class')) && /Added:/.test(await added.innerText()), await diff.innerText());
		check(`"${t}" is not in the old column`, (await cell(1, t).count()) === 0);
	}
	check('the changed line reads across: old and new clause on one row',
		(await diff.locator('tbody tr', { hasText: 'Old clause: 30 days.' }).innerText()).includes('New clause: 14 days.'));
	check('an unchanged line is in both columns, unmarked', (await cell(1, 'Keep this line.').count()) === 1
		&& (await cell(2, 'Keep this line.').count()) === 1 && /diff-same/.test(await cell(2, 'Keep this line.').getAttribute('class')));
	const summary = await text('#legal-diff-out .diff-summary');
	check('the diff says how many lines were removed and added', /1 line removed .*2 added/.test(summary), summary);
	await screen('legal-diff');

	// a version that does not exist: the refusal in words, next to its field
	expected.push({ path: '/legal/terms/diff', status: 404 });
	await dform.getByLabel('New version (right)').fill('no-such-version');
	await dform.getByRole('button', { name: 'Compare' }).click();
	await dform.locator('.form-status.error').waitFor();
	const derr = await dform.locator('[data-field="to"] .field-error').innerText();
	check('a diff against a missing version says so next to New version', derr.includes('no version no-such-version'),
		`${derr} / ${await dform.locator('.form-status').innerText()}`);
	check('and the old column\'s field has no error', (await dform.locator('[data-field="from"] .field-error').innerText()) === '');
	check('the refusal is in words', /no such version/.test(await dform.locator('.form-status').innerText()));
	await screen('legal-diff-error');

	// ---- Users and orgs: the admin now has the new terms to accept
	expected.push({ path: '/users', status: 403 });
	await page.getByRole('link', { name: 'Users and orgs' }).click();
	await acceptTerms('platform_admin', env.CONSOLE_V3);
	const trow = page.locator('#list-users tr', { hasText: env.CONSOLE_TARGET_EMAIL });
	await trow.waitFor();
	const editor = page.locator('#user-roles');
	check('the role editor waits for a user', await editor.locator('fieldset').evaluate((el) => el.disabled));
	await trow.getByRole('button', { name: `Change roles of ${env.CONSOLE_TARGET_EMAIL}` }).click();
	const legend = await editor.locator('legend').innerText();
	check('the role editor names the user', legend === `Roles of ${env.CONSOLE_TARGET_EMAIL}`, legend);
	const choices = await editor.locator('.role-choices label').allInnerTexts();
	check('the editor offers every role of the role table, in order', choices.map((c) => c.split(' ')[0]).join(',')
		=== 'superadmin,platform_admin,compliance,compliance_officer,security_admin,org_admin,member', choices.join(','));
	check('roles the admin may not grant say so', choices.filter((c) => /cannot grant/.test(c)).map((c) => c.split(' ')[0]).join(',')
		=== 'superadmin,compliance,compliance_officer,security_admin', choices.join(','));
	check('the user\'s roles are ticked', await editor.getByLabel('member', { exact: true }).isChecked()
		&& !(await editor.getByLabel('org_admin', { exact: true }).isChecked()));
	check('the keyboard lands on the first role it may grant', await editor.getByLabel('platform_admin', { exact: true }).evaluate((el) => el === document.activeElement));
	// the roles the admin may not grant cannot be ticked, and a user holding
	// one has no Change roles at all (the API would refuse either)
	const locked = await editor.locator('.role-choices input:disabled').evaluateAll((els) => els.map((el) => el.value).join(','));
	check('roles the admin may not grant cannot be ticked', locked === 'superadmin,compliance,compliance_officer,security_admin', locked);
	const orow = page.locator('#list-users tr', { hasText: env.CONSOLE_OFFICER_EMAIL });
	await orow.waitFor().catch(() => {});
	check('a compliance_officer\'s row offers the admin no Change roles', (await orow.getByRole('button', { name: /^Change roles/ }).count()) === 0
		&& /not yours to change/.test(await orow.innerText()), await orow.innerText().catch(() => ''));
	await screen('users-roles-locked');
	// no role at all: a field error next to the roles
	expected.push({ path: '/users/', status: 400 });
	for (const el of await editor.locator('.role-choices input').all()) await el.setChecked(false);
	await editor.getByRole('button', { name: 'Save roles' }).click();
	await editor.locator('[data-field="roles"] .field-error').filter({ hasText: /./ }).waitFor();
	check('no role at all shows the error next to the roles', (await editor.locator('[data-field="roles"] .field-error').innerText()).length > 0);
	// member → org_admin
	await editor.getByLabel('org_admin', { exact: true }).check();
	await editor.getByRole('button', { name: 'Save roles' }).click();
	await editor.locator('.form-status.ok').waitFor();
	check('the role change says so', (await editor.locator('.form-status').innerText()).includes(`Roles of ${env.CONSOLE_TARGET_EMAIL}: org_admin.`),
		await editor.locator('.form-status').innerText());
	await trow.locator('.user-roles', { hasText: /^org_admin$/ }).waitFor().catch(() => {});
	check('the users list shows the new roles', (await trow.locator('.user-roles').innerText()) === 'org_admin', await trow.innerText());
	check('the editor is closed again', await editor.locator('fieldset').evaluate((el) => el.disabled));
	check('the keyboard stays on the outcome', await editor.locator('.form-status').evaluate((el) => el === document.activeElement));
	await screen('users-roles');
	// Cancel (with the keyboard) leaves the roles and goes back to the button that opened the editor
	const mbtn = page.locator('#list-users tr', { hasText: env.CONSOLE_MEMBER_EMAIL }).getByRole('button', { name: /^Change roles/ });
	await mbtn.focus();
	await page.keyboard.press('Enter');
	await editor.getByLabel('org_admin', { exact: true }).check();
	await editor.getByRole('button', { name: 'Cancel' }).focus();
	await page.keyboard.press('Enter');
	check('Cancel closes the editor and returns to its button', await editor.locator('fieldset').evaluate((el) => el.disabled)
		&& await mbtn.evaluate((el) => el === document.activeElement));

	// an invalid role in the create form: next to Roles
	const uf = page.locator('#user-create');
	await uf.getByLabel('Email').fill('nobody-created@example.test');
	await uf.getByLabel('Name').fill('Not Created');
	await uf.getByLabel('Roles').fill('member, wizard');
	expected.push({ path: '/users', status: 400 });
	await uf.getByRole('button', { name: 'Create user' }).click();
	const rerr = uf.locator('[data-field="roles"] .field-error');
	await rerr.filter({ hasText: /./ }).waitFor();
	check('an unknown role is refused next to Roles', /unknown role: wizard/.test(await rerr.innerText()), await rerr.innerText());

	// an org's users
	await page.getByRole('button', { name: `Users of ${env.CONSOLE_ORG_NAME}` }).click();
	await page.locator('#org-users h2', { hasText: env.CONSOLE_ORG_NAME }).waitFor();
	await page.locator('#list-org-users table').waitFor();
	const ou = await text('#list-org-users');
	const target = await page.locator('#list-org-users tr', { hasText: env.CONSOLE_TARGET_EMAIL }).innerText().catch(() => '');
	check('the org\'s users are listed, the changed roles with them', ou.includes(env.CONSOLE_MEMBER_EMAIL)
		&& ou.includes(env.CONSOLE_ORGADMIN_EMAIL) && target.includes('org_admin'), ou);
	check('no one of another org is listed', !ou.includes(env.CONSOLE_ADMIN_EMAIL), ou);
	await screen('users-org-users');

	// create an org: a bad slug next to its field, then the org
	const of = page.locator('#org-create');
	await of.getByLabel('Org name').fill(env.CONSOLE_NEW_ORG_NAME);
	await of.getByLabel('Slug').fill('Not A Slug');
	expected.push({ path: '/orgs', status: 400 });
	await of.getByRole('button', { name: 'Create org' }).click();
	const serr = of.locator('[data-field="slug"] .field-error');
	await serr.filter({ hasText: /./ }).waitFor();
	check('a bad slug is refused next to Slug', /lower-case/.test(await serr.innerText()), await serr.innerText());
	await of.getByLabel('Slug').fill(env.CONSOLE_NEW_ORG_SLUG);
	await of.getByRole('button', { name: 'Create org' }).click();
	await of.locator('.form-status.ok').waitFor();
	check('creating an org says so', (await of.locator('.form-status').innerText()).includes(`Created org ${env.CONSOLE_NEW_ORG_NAME}`));
	await page.locator('#list-orgs tr', { hasText: env.CONSOLE_NEW_ORG_SLUG }).waitFor().catch(() => {});
	check('the orgs list shows it', (await text('#list-orgs')).includes(env.CONSOLE_NEW_ORG_SLUG), await text('#list-orgs'));
	check('the URL names only the screen', new URL(page.url()).hash === '#/users' && !page.url().includes('@'), page.url());
	await screen('users-org-create');
	await signOut();

	// ---- compliance_officer: the report, no publish form, no role editor
	expected.push({ path: '/users', status: 403 });
	await signIn(env.CONSOLE_OFFICER_EMAIL, env.CONSOLE_OFFICER_PASSWORD, 'compliance_officer');
	await acceptTerms('compliance_officer', env.CONSOLE_V3);
	await page.locator('#list-users table').waitFor();
	check('compliance_officer sees no role editor and no create forms', (await page.locator('#user-roles, #user-create, #org-create').count()) === 0);
	check('nor a Change roles button', (await page.getByRole('button', { name: /^Change roles/ }).count()) === 0);
	await screen('users-officer');
	await page.getByRole('link', { name: 'Legal' }).click();
	await page.locator('#legal-report').waitFor();
	check('compliance_officer sees no publish form', (await page.locator('#legal-report').count()) === 1 && (await page.locator('#legal-publish').count()) === 0);
	// the form names the first document type once the list has loaded (a
	// slow build loads it after the form appears): report on that type
	await page.waitForFunction(() => document.querySelector('#legal-report input[name="type"]')?.value);
	await page.locator('#legal-report').getByRole('button', { name: 'Show report' }).click();
	await page.locator('.report .summary').waitFor();
	const rep = await text('.report .summary');
	check('the report counts the admin and the officer as accepted', rep.startsWith(`terms ${env.CONSOLE_V3}: 2 accepted`), rep);
	await screen('legal-officer');
	await signOut();

	// ---- org_admin (signs in on Legal, whose reads the gate lets through)
	await signIn(env.CONSOLE_ORGADMIN_EMAIL, env.CONSOLE_ORGADMIN_PASSWORD, 'org_admin');
	await acceptTerms('org_admin', env.CONSOLE_V3);
	await page.goto(`${BASE}/console/#/users`);
	await page.locator('#list-org-users table').waitFor();
	const own = await text('#org-users');
	check('org_admin sees its own org\'s users at once', own.includes(`Users of ${env.CONSOLE_ORG_NAME}`)
		&& own.includes(env.CONSOLE_MEMBER_EMAIL), own);
	check('org_admin\'s orgs list holds its org only', !(await text('#list-orgs')).includes(env.CONSOLE_NEW_ORG_SLUG), await text('#list-orgs'));
	check('org_admin sees no role editor and no create forms', (await page.locator('#user-roles, #user-create, #org-create').count()) === 0);
	await screen('users-org-admin');
	await signOut();

	// ---- member: enforcement and versions, no publish form, no role editor
	await signIn(env.CONSOLE_MEMBER_EMAIL, env.CONSOLE_MEMBER_PASSWORD, 'member');
	await acceptTerms('member', env.CONSOLE_V3);
	await page.goto(`${BASE}/console/#/legal`);
	await page.locator('#legal-enforcement:not(.pending)').waitFor();
	await page.locator('section[aria-labelledby="legal-docs"] table').waitFor();
	check('member sees enforcement on', /Enforcement is ON/.test(await text('#legal-enforcement')));
	check('member sees no publish form and no report', (await page.locator('#legal-publish, #legal-report').count()) === 0);
	check('member menu has no Users and orgs', !/Users/.test(await text('#nav')), await text('#nav'));
	await page.locator('#legal-versions').getByRole('button', { name: 'Show versions' }).click();
	await page.locator('#legal-versions-list table').waitFor();
	check('member can list the versions', (await text('#legal-versions-list')).includes(env.CONSOLE_V2));
	await screen('legal-member');
	await page.goto(`${BASE}/console/#/users`);
	await page.locator('h1', { hasText: 'Users and orgs' }).waitFor();
	check('member on #/users gets no list and no role editor', (await page.locator('#user-roles, #list-users').count()) === 0);
	await signOut();
});
