<?php
// GET /php/legal/privacy: the current privacy document, one query.
require __DIR__ . '/common.php';

$type = $_GET['type'] ?? 'privacy';
$docs = current_documents(db(), $type);
if (!$docs) {
	reply(404, ['error' => ['code' => 'not_found', 'message' => 'no such document']]);
	exit;
}
$d = $docs[0];
reply(200, ['type' => $d['type'], 'version' => $d['version'], 'content' => $d['content'],
    'contentSha256' => $d['content_sha256'],
    'effectiveAt' => str_replace(' ', 'T', $d['effective_at']) . 'Z']);
