<?php
// bench/php: the reference PHP application of bench/run (BENCH_PHP=1), written
// the way such an application usually is: php-fpm, PDO, one connection per
// request, the queries a straightforward implementation of the same two
// endpoints makes. It reads the stack's opsd.env for the database and the
// session secret (bench/php/start passes its path), and answers the same
// JSON shapes as opsd, so wrk measures the same work on the same nginx.

function env_file(): array
{
	static $env = null;
	if ($env === null) {
		$env = [];
		foreach (file(getenv('OPSD_ENV_FILE'), FILE_IGNORE_NEW_LINES) as $line) {
			if (preg_match("/^([A-Z_]+)='?(.*?)'?$/", $line, $m))
				$env[$m[1]] = $m[2];
		}
	}
	return $env;
}

function db(): PDO
{
	$u = parse_url(env_file()['OPSD_DB_URI']);
	parse_str($u['query'] ?? '', $q);
	$dsn = 'mysql:dbname=' . ltrim($u['path'], '/') . ';charset=utf8mb4;'
	    . (isset($q['socket']) ? 'unix_socket=' . $q['socket'] : 'host=' . $u['host']);
	return new PDO($dsn, urldecode($u['user']), urldecode($u['pass']),
	    [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}

function reply(int $status, $body): void
{
	http_response_code($status);
	header('Content-Type: application/json; charset=utf-8');
	header('Cache-Control: no-store');
	echo json_encode($body, JSON_UNESCAPED_SLASHES), "\n";
}

function b64url_decode(string $s): string
{
	return base64_decode(strtr($s, '-_', '+/'));
}

function uuid_text(string $b): string
{
	$h = bin2hex($b);
	return substr($h, 0, 8) . '-' . substr($h, 8, 4) . '-' . substr($h, 12, 4) . '-'
	    . substr($h, 16, 4) . '-' . substr($h, 20);
}

// The current document of each type, as opsd defines it: the latest
// effective_at that is not in the future.
function current_documents(PDO $db, ?string $type = null): array
{
	$sql = 'SELECT d.id, d.type, d.version, d.content, d.content_sha256, d.effective_at'
	    . ' FROM legal_documents d JOIN (SELECT type, MAX(effective_at) AS at FROM legal_documents'
	    . ' WHERE effective_at <= NOW(3)' . ($type !== null ? ' AND type = ?' : '')
	    . ' GROUP BY type) c ON c.type = d.type AND c.at = d.effective_at ORDER BY d.type';
	$st = $db->prepare($sql);
	$st->execute($type !== null ? [$type] : []);
	return $st->fetchAll(PDO::FETCH_ASSOC);
}
