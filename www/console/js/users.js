// The Users and orgs screen: the orgs (GET /orgs) and the users
// (GET /users), each paged with nextCursor; an org's users (Users on an
// org's row: GET /orgs/:id/users, paged; a caller bound to an org, such
// as an org_admin, sees its own org's at once). With users.manage a form
// that creates a user (POST /users: email, name, password, roles, optional
// org) and "Change roles" on each user (PATCH /users/:id {roles}), the
// roles offered being the role table GET /auth/me gives (roleTable: every
// role, whether the caller may grant it); with orgs.manage a form that
// creates an org (POST /orgs); with security.users_disable, Disable and
// Enable on each user (POST /security/users/:id/disable|enable), each
// confirmed by typing its reason. "Change roles" shows only on a user
// whose roles the caller may all grant (the API refuses the others), and
// the roles it may not grant cannot be ticked.

import { h, field, formValues, formStatus, showError, showOk, clearErrors, pagedList, confirmReason } from './ui.js';

const state = (u) => h('span', { class: 'user-state' }, u.disabled ? 'disabled' : 'active');

export async function render(box, ctx) {
	const who = ctx.me(); // the role table and the caller's org
	const grantable = new Set((who.roleTable || []).filter((r) => r.grantable).map((r) => r.role));
	const manage = ctx.can('users.manage');
	const editor = manage ? rolesEditor(ctx, () => reloadUsers()) : null;
	const contain = ctx.can('security.users_disable') ? containPanel() : null;
	const roleCell = (u) => h('span', { class: 'user-roles' }, (u.roles || []).join(', '));
	const editCol = editor ? [{ head: 'Roles change', cell: (u) => ((u.roles || []).every((r) => grantable.has(r))
		? h('button', { type: 'button', class: 'secondary', 'aria-label': `Change roles of ${u.email}`,
			onclick: (ev) => editor.edit(u, ev.currentTarget) }, 'Change roles')
		: h('span', { class: 'hint' }, 'not yours to change')) }] : [];
	const users = ctx.can('users.read') ? pagedList(ctx, { id: 'users', path: '/users', title: 'Users', more: 'Next users' }, [
		{ head: 'Email', cell: (u) => u.email },
		{ head: 'Name', cell: (u) => u.name },
		{ head: 'Roles', cell: roleCell },
		{ head: 'Org', cell: (u) => (u.orgId ? h('code', null, u.orgId) : '') },
		{ head: 'State', cell: state },
		...(contain ? [{ head: 'Containment', cell: (u) => containButton(ctx, contain, u) }] : []),
		...editCol,
	]) : null;
	const orgUsers = ctx.can('users.read') && ctx.can('orgs.read') ? orgUsersPanel(ctx, [
		{ head: 'Email', cell: (u) => u.email },
		{ head: 'Name', cell: (u) => u.name },
		{ head: 'Roles', cell: roleCell },
		{ head: 'State', cell: state },
		...editCol,
	]) : null;
	const orgs = ctx.can('orgs.read') ? pagedList(ctx, { id: 'orgs', path: '/orgs', title: 'Orgs', more: 'Next orgs' }, [
		{ head: 'Name', cell: (o) => o.name },
		{ head: 'Slug', cell: (o) => o.slug },
		{ head: 'Database', cell: (o) => o.dbMode },
		{ head: 'Legal hold', cell: (o) => (o.legalHold ? 'yes' : 'no') },
		{ head: 'Id', cell: (o) => h('code', null, o.id) },
		...(orgUsers ? [{ head: 'People', cell: (o) => h('button', { type: 'button', class: 'secondary',
			'aria-label': `Users of ${o.name}`, onclick: () => orgUsers.show(o) }, 'Users') }] : []),
	]) : null;
	async function reloadUsers() {
		await Promise.all([users && users.reload(), orgUsers && orgUsers.reload()]);
	}
	if (manage) box.append(createForm(ctx, () => users && users.reload()));
	if (ctx.can('orgs.manage')) box.append(createOrgForm(ctx, () => orgs && orgs.reload()));
	if (contain) box.append(contain.section);
	if (editor) box.append(editor.section);
	for (const l of [users, orgs, orgUsers]) if (l) box.append(l.section);
	if (editor) editor.setRoleTable(who.roleTable || []);
	for (const l of [users, orgs]) if (l) await l.reload();
	// a caller bound to an org (org_admin) sees its own org's users at once
	const own = who.user && who.user.orgId;
	if (orgUsers && own) {
		const o = await ctx.call('GET', `/orgs/${encodeURIComponent(own)}`).catch(() => ({ id: own, name: 'your org' }));
		await orgUsers.show(o);
	}
}

// Disable and Enable act on the row's user after the reason is typed in
// a dialog; the outcome shows here.
function containPanel() {
	const status = formStatus();
	const form = h('form', { id: 'user-contain', novalidate: true }, status);
	form.addEventListener('submit', (ev) => ev.preventDefault());
	const section = h('section', { 'aria-labelledby': 'user-contain-h' },
		h('h2', { id: 'user-contain-h' }, 'Containment'),
		h('p', null, 'Disable or Enable in the users table asks for the reason, then acts at once: disabling ends the user\'s sessions and API tokens.'),
		form);
	return { section, form };
}

function containButton(ctx, contain, u) {
	const cell = h('span');
	const act = async (disable, button) => {
		const reason = await confirmReason({ title: `${disable ? 'Disable' : 'Enable'} ${u.email}?`,
			text: disable ? 'The account can no longer sign in; its sessions and API tokens end now.' : 'The account can sign in again.',
			action: disable ? 'Disable' : 'Enable' });
		if (button.isConnected) button.focus();
		if (reason === null) return;
		try {
			const r = await ctx.call('POST', `/security/users/${encodeURIComponent(u.id)}/${disable ? 'disable' : 'enable'}`,
				{ body: { reason } });
			u.disabled = !!r.disabled;
			showOk(contain.form, `${r.email || u.email}: ${u.disabled ? 'disabled' : 'enabled'}${r.changed === false ? ' (already)' : ''}.`);
			const st = cell.closest('tr')?.querySelector('.user-state');
			if (st) st.textContent = u.disabled ? 'disabled' : 'active';
			draw();
			cell.querySelector('button').focus();
		} catch (err) {
			showError(contain.form, err);
		}
	};
	const draw = () => cell.replaceChildren(h('button', { type: 'button', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}`,
		onclick: (ev) => act(!u.disabled, ev.currentTarget) }, u.disabled ? 'Enable…' : 'Disable…'));
	draw();
	return cell;
}

function createForm(ctx, reload) {
	const form = h('form', { id: 'user-create', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Email', name: 'email', type: 'email', required: true }),
			field({ label: 'Name', name: 'name', required: true }),
			field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'new-password',
				hint: 'empty: the account cannot sign in with a password' }),
			field({ label: 'Roles', name: 'roles', required: true, placeholder: 'member', hint: 'comma-separated' }),
			field({ label: 'Org id (optional)', name: 'orgId' })),
		h('button', { type: 'submit' }, 'Create user'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		const body = { email: v.email, name: v.name, roles: v.roles.split(',').map((x) => x.trim()).filter(Boolean) };
		if (v.password) body.password = v.password;
		if (v.orgId) body.orgId = v.orgId;
		try {
			const r = await ctx.call('POST', '/users', { body });
			showOk(form, `Created ${r.email} (${(r.roles || []).join(', ')}).`);
			form.querySelector('[name=password]').value = '';
			await reload();
		} catch (err) {
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'user-create-h' }, h('h2', { id: 'user-create-h' }, 'Create a user'), form);
}

function createOrgForm(ctx, reload) {
	const form = h('form', { id: 'org-create', novalidate: true },
		h('div', { class: 'grid' },
			field({ label: 'Org name', name: 'name', required: true }),
			field({ label: 'Slug', name: 'slug', required: true, placeholder: 'acme',
				hint: 'lower-case letters, digits and -, 2 to 63; names its database if it moves to one of its own' })),
		h('button', { type: 'submit' }, 'Create org'),
		formStatus());
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const v = formValues(form);
		try {
			const r = await ctx.call('POST', '/orgs', { body: { name: v.name, slug: v.slug } });
			showOk(form, `Created org ${r.name} (${r.slug}).`);
			await reload();
		} catch (err) {
			showError(form, err);
		}
	});
	return h('section', { 'aria-labelledby': 'org-create-h' }, h('h2', { id: 'org-create-h' }, 'Create an org'), form);
}

// "Change roles" on a user opens this form: one checkbox per role of the
// role table, those the caller may not grant disabled and said so. Saving changes the roles at once (PATCH /users/:id),
// which ends the user's sessions and API tokens; then the lists reload.
function rolesEditor(ctx, reload) {
	let roleTable = [];
	const intro = h('p', { id: 'user-roles-intro' }, 'Choose "Change roles" on a user in a list below.');
	const boxes = h('div', { class: 'role-choices' });
	const errId = 'user-roles-err';
	const legend = h('legend', null, 'Roles');
	const set = h('fieldset', { class: 'field', 'data-field': 'roles', disabled: true, 'aria-describedby': `user-roles-hint ${errId}` },
		legend, boxes,
		h('small', { id: 'user-roles-hint', class: 'hint' },
			'The new roles take effect at once: the user\'s sessions and API tokens end. '
			+ 'org_admin and member belong to an org; the others are platform staff.'),
		h('span', { id: errId, class: 'field-error', role: 'alert' }));
	const save = h('button', { type: 'submit', disabled: true }, 'Save roles');
	const cancel = h('button', { type: 'button', class: 'secondary', disabled: true, onclick: () => {
		const back = opener;
		close();
		if (back && back.isConnected) back.focus(); // back where the keyboard was
	} }, 'Cancel');
	const status = formStatus();
	status.setAttribute('tabindex', '-1');
	const form = h('form', { id: 'user-roles', novalidate: true }, intro, set, h('div', { class: 'actions' }, save, cancel), status);
	let user = null, opener = null;
	const draw = () => {
		boxes.replaceChildren(...roleTable.map((r) => {
			const id = `user-role-${r.role}`;
			return h('div', { class: 'check-row' },
				h('input', { id, type: 'checkbox', name: 'roles', value: r.role, disabled: !r.grantable,
					checked: !!user && (user.roles || []).includes(r.role) }),
				h('label', { for: id }, r.role, r.grantable ? '' : h('span', { class: 'hint' }, ' (you cannot grant it)')));
		}));
	};
	const close = () => {
		user = null;
		opener = null;
		legend.textContent = 'Roles';
		intro.textContent = 'Choose "Change roles" on a user in a list below.';
		for (const el of [set, save, cancel]) el.disabled = true;
		draw();
	};
	const edit = (u, from) => {
		user = u;
		opener = from || null;
		clearErrors(form);
		legend.textContent = `Roles of ${u.email}`;
		intro.textContent = `Changing the roles of ${u.name || u.email}${u.orgId ? ' (an org\'s user)' : ''}.`;
		for (const el of [set, save, cancel]) el.disabled = false;
		draw();
		section.scrollIntoView({ block: 'start' });
		boxes.querySelector('input:not(:disabled)')?.focus();
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		if (!user) return;
		clearErrors(form);
		const roles = [...boxes.querySelectorAll('input:checked')].map((el) => el.value);
		try {
			const r = await ctx.call('PATCH', `/users/${encodeURIComponent(user.id)}`, { body: { roles } });
			const email = r.email || user.email;
			close();
			showOk(form, `Roles of ${email}: ${(r.roles || []).join(', ')}. Their sessions and API tokens have ended.`);
			status.focus(); // the controls just closed: the keyboard stays on the outcome
			await reload();
		} catch (err) {
			showError(form, err);
		}
	});
	close();
	const setRoleTable = (t) => {
		roleTable = t;
		if (!user) draw();
	};
	const section = h('section', { id: 'user-roles-section', 'aria-labelledby': 'user-roles-h' },
		h('h2', { id: 'user-roles-h' }, 'Change a user\'s roles'), form);
	return { section, edit, setRoleTable };
}

// One org's users (GET /orgs/:id/users), paged; the org is chosen on the
// orgs list (its id stays in this form, never in the URL).
function orgUsersPanel(ctx, columns) {
	const o = { id: 'org-users', path: null, title: 'Users of an org', more: 'Next users of this org' };
	const list = pagedList(ctx, o, columns);
	list.section.id = 'org-users';
	list.results.append(h('p', null, 'Choose "Users" on an org in the orgs list.'));
	const heading = list.section.querySelector('h2');
	let org = null;
	const show = async (chosen) => {
		org = chosen;
		o.path = `/orgs/${encodeURIComponent(org.id)}/users`;
		o.title = `Users of ${org.name}`;
		o.empty = `${org.name} has no user.`;
		heading.textContent = o.title;
		await list.reload().catch(list.fail);
	};
	return { section: list.section, show, reload: () => (org ? show(org) : null) };
}
