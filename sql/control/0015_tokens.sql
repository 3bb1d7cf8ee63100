-- The fingerprint of each secret the deployment last ran with (README
-- "Runbook 7"), so that a start or a reload with another SESSION_SECRET is
-- noticed and audited (security.session_secret_rotated) once, whichever
-- process of whichever host sees it first: each compares and sets the row
-- with one conditional UPDATE, and only the one that changed it writes the
-- event. A fingerprint is the first 8 bytes of HMAC-SHA256 keyed by the
-- secret over a constant, never the secret nor a plain hash of it.
--
-- The row exists from the start with no fingerprint: the first process to
-- run records the secret it has without calling it a rotation.
CREATE TABLE secret_fingerprints (
	name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	fingerprint CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NULL,
	previous CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NULL,
	changed_at DATETIME(3) NULL,
	PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO secret_fingerprints (name) VALUES ('session_secret');
