// The Users and orgs screen: the orgs (GET /orgs) and the users
// (GET /users), each paged with nextCursor; with users.manage a form that
// creates a user (POST /users: email, name, password, roles, optional
// org); with security.users_disable, Disable and Enable on each user
// (POST /security/users/:id/disable|enable) with the reason from the
// containment form.

import { h, field, formValues, formStatus, showError, showOk, clearErrors, pagedList } from './ui.js';

export async function render(box, ctx) {
	const orgs = ctx.can('orgs.read') ? pagedList(ctx, { id: 'orgs', path: '/orgs', title: 'Orgs', more: 'Next orgs' }, [
		{ head: 'Name', cell: (o) => o.name },
		{ head: 'Slug', cell: (o) => o.slug },
		{ head: 'Database', cell: (o) => o.dbMode },
		{ head: 'Legal hold', cell: (o) => (o.legalHold ? 'yes' : 'no') },
		{ head: 'Id', cell: (o) => h('code', null, o.id) },
	]) : null;
	const contain = ctx.can('security.users_disable') ? containForm() : null;
	const users = ctx.can('users.read') ? pagedList(ctx, { id: 'users', path: '/users', title: 'Users', more: 'Next users' }, [
		{ head: 'Email', cell: (u) => u.email },
		{ head: 'Name', cell: (u) => u.name },
		{ head: 'Roles', cell: (u) => (u.roles || []).join(', ') },
		{ head: 'Org', cell: (u) => (u.orgId ? h('code', null, u.orgId) : '') },
		{ head: 'State', cell: (u) => (u.disabled ? 'disabled' : 'active') },
		...(contain ? [{ head: 'Containment', cell: (u) => containButton(ctx, contain, u) }] : []),
	]) : null;
	if (ctx.can('users.manage')) box.append(createForm(ctx, () => users && users.reload()));
	if (contain) box.append(contain.section);
	for (const l of [users, orgs]) if (l) box.append(l.section);
	for (const l of [users, orgs]) if (l) await l.reload();
}

function containForm() {
	const form = h('form', { id: 'user-contain', novalidate: true },
		field({ label: 'Reason', name: 'reason', hint: 'recorded with the disable or enable (optional)' }),
		formStatus());
	form.addEventListener('submit', (ev) => ev.preventDefault());
	const section = h('section', { 'aria-labelledby': 'user-contain-h' },
		h('h2', { id: 'user-contain-h' }, 'Containment'),
		h('p', null, 'Disable or Enable in the users table acts at once, with this reason.'), form);
	return { section, form };
}

function containButton(ctx, contain, u) {
	const cell = h('span');
	const act = async (disable) => {
		const reason = formValues(contain.form).reason;
		try {
			const r = await ctx.call('POST', `/security/users/${encodeURIComponent(u.id)}/${disable ? 'disable' : 'enable'}`,
				{ body: { reason: reason || null } });
			u.disabled = !!r.disabled;
			showOk(contain.form, `${r.email || u.email}: ${u.disabled ? 'disabled' : 'enabled'}${r.changed === false ? ' (already)' : ''}.`);
			const row = cell.closest('tr');
			if (row) row.children[4].textContent = u.disabled ? 'disabled' : 'active';
			draw();
		} catch (err) {
			showError(contain.form, err);
		}
	};
	const draw = () => cell.replaceChildren(h('button', { type: 'button', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}`,
		onclick: () => act(!u.disabled) }, u.disabled ? 'Enable' : 'Disable'));
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
