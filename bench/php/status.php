<?php
// GET /php/legal/acceptance/status: the session cookie checked and looked
// up, then the current documents and the user's acceptances of them. (The
// idle clock is not moved: opsd moves it once a minute, so per request
// neither pays for it.)
require __DIR__ . '/common.php';

$secret = env_file()['SESSION_SECRET'];
$cookie = $_COOKIE['__Host-opsd_session'] ?? '';
$parts = explode('.', $cookie);
$id = count($parts) === 2 ? b64url_decode($parts[0]) : '';
if (strlen($id) !== 32
    || !hash_equals(hash_hmac('sha256', 'session' . $id, $secret, true), b64url_decode($parts[1]))) {
	reply(401, ['error' => ['code' => 'unauthorized', 'message' => 'sign in first']]);
	exit;
}
$db = db();
$st = $db->prepare('SELECT u.id FROM sessions s JOIN users u ON u.id = s.user_id'
    . ' WHERE s.id_hash = ? AND s.expires_at > NOW(3) AND u.disabled_at IS NULL');
$st->execute([hash('sha256', $id, true)]);
$user = $st->fetchColumn();
if ($user === false) {
	reply(401, ['error' => ['code' => 'unauthorized', 'message' => 'sign in first']]);
	exit;
}
$docs = current_documents($db);
$st = $db->prepare('SELECT document_id, accepted_at FROM legal_acceptances WHERE user_id = ?');
$st->execute([$user]);
$accepted = [];
foreach ($st->fetchAll(PDO::FETCH_ASSOC) as $a)
	$accepted[$a['document_id']] = $a['accepted_at'];
$out = [];
foreach ($docs as $d)
	$out[] = ['type' => $d['type'], 'version' => $d['version'], 'documentId' => uuid_text($d['id']),
	    'accepted' => isset($accepted[$d['id']]),
	    'acceptedAt' => isset($accepted[$d['id']]) ? str_replace(' ', 'T', $accepted[$d['id']]) . 'Z' : null];
reply(200, ['documents' => $out, 'pending' => count(array_filter($out, fn($x) => !$x['accepted']))]);
