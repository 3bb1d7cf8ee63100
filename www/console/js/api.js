// The console's one way to call the API: same-origin, the session cookie,
// X-CSRF-Token on unsafe methods, JSON in and out (or text, or a file, on request). A refusal becomes an
// ApiError carrying the error envelope (code, message, details, requestId)
// and, for a 429, Retry-After. Callers never parse responses themselves.

let csrfToken = null;

export function setCsrfToken(token) {
	csrfToken = token || null;
}

export class ApiError extends Error {
	constructor(status, envelope, retryAfter) {
		const e = (envelope && envelope.error) || {};
		super(e.message || `the server answered ${status}`);
		this.status = status;
		this.code = e.code || 'http_' + status;
		this.details = e.details || {};
		this.requestId = (envelope && envelope.requestId) || null;
		this.retryAfter = retryAfter;
	}

	// { field: message } from details.fields (validation_failed)
	get fields() {
		const f = this.details && this.details.fields;
		return f && typeof f === 'object' ? f : {};
	}

	// The error in words, as the operator reads it.
	describe() {
		let s = this.message;
		if (this.status === 429 && this.retryAfter)
			s = `Too many requests: try again in ${this.retryAfter} s. (${this.message})`;
		else if (this.status === 0) s = 'The server could not be reached: ' + this.message;
		if (this.requestId) s += ` [request ${this.requestId}]`;
		return s;
	}
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

// Builds "path?k=v&…" from an object, leaving out empty values.
export function withQuery(path, query) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(query || {}))
		if (v !== undefined && v !== null && String(v) !== '') q.append(k, String(v));
	const s = q.toString();
	return s ? `${path}?${s}` : path;
}

// text: true reads a successful answer as text (GET /metrics answers the
// Prometheus format); blob: true reads it as a file (a CSV or a streamed
// JSON export) and answers { blob, filename, requestId }: filename is the
// one Content-Disposition names (null if none), requestId the answer's
// X-Request-Id. Either way a refusal is still the JSON error envelope, an
// ApiError, so that ctx.call's recoveries (sign-in again, the legal gate)
// work for downloads too.
export async function api(method, path, { body, query, text, blob } = {}) {
	const headers = { Accept: text ? 'text/plain' : blob ? '*/*' : 'application/json' };
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (UNSAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
	let res;
	try {
		res = await fetch(withQuery(path, query), {
			method,
			headers,
			credentials: 'same-origin',
			cache: 'no-store',
			body: body === undefined ? undefined : JSON.stringify(body),
		});
	} catch (err) {
		throw new ApiError(0, { error: { code: 'network', message: String(err.message || err) } });
	}
	if (text && res.ok) return res.text();
	if (blob && res.ok) {
		let file;
		try {
			file = await res.blob();
		} catch (err) { // the connection broke off while the file streamed
			throw new ApiError(0, { error: { code: 'network', message: String(err.message || err) } });
		}
		return { blob: file, filename: dispositionName(res.headers.get('Content-Disposition')),
			requestId: res.headers.get('X-Request-Id') };
	}
	let data = null;
	const type = res.headers.get('Content-Type') || '';
	if (type.includes('json')) {
		try {
			data = await res.json();
		} catch {
			data = null;
		}
	}
	if (!res.ok) throw new ApiError(res.status, data, res.headers.get('Retry-After'));
	return data;
}

// The file name a Content-Disposition header gives (filename*=UTF-8''… or
// filename="…"), without any directory part; null if none.
export function dispositionName(header) {
	if (!header) return null;
	let name = null;
	const ext = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
	if (ext) {
		try {
			name = decodeURIComponent(ext[1].trim());
		} catch {
			name = null;
		}
	}
	if (!name) {
		const m = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
		if (m) name = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2];
	}
	name = name ? name.split(/[\\/]/).pop().trim() : '';
	return name || null;
}

// Saves a Blob as a file named name: a hidden anchor with download=,
// clicked, then the object URL let go. The one copy every screen's
// download uses.
export function saveBlob(blob, name) {
	const url = URL.createObjectURL(blob);
	const a = document.createElement('a');
	a.href = url;
	a.download = name;
	a.className = 'hidden';
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 30000);
}
