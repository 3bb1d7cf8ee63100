# shellcheck shell=bash disable=SC2034 # arrays are read by the sourcing scripts
# Shared functions for script/server, script/test, script/render-nginx and
# bench/run. Source it; it defines functions and a few variables, runs
# nothing. Every function writes progress to stderr: the scripts' stdout is
# reserved for their one result line ("opsd ready: ...").

OPSD_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OPSD_PROG=${OPSD_PROG:-$(basename "$0")}

# Debian packages, by purpose: build (the libraries of doc/architecture.md), run, test (t/README), bench.
OPSD_PKGS_BUILD=(build-essential autoconf automake libtool pkg-config
	libfcgi-dev libjson-c-dev libmariadb-dev libmariadb-dev-compat
	libesmtp-dev libcmocka-dev libssl-dev)
OPSD_PKGS_RUN=(nginx mariadb-server mariadb-client openssl curl ca-certificates)
OPSD_PKGS_TEST=(perl libio-socket-ssl-perl libnet-ssleay-perl prometheus
	python3-aiosmtpd clang-format nodejs npm chromium slowhttptest)
# hardening-check (devscripts) and systemd-analyze: script/test; lcov: script/coverage.
OPSD_PKGS_TEST+=(devscripts systemd lcov)
# script/fuzz: libFuzzer is in clang's runtime package.
OPSD_PKGS_TEST+=(clang libclang-rt-14-dev)
# script/cluster (t/cluster/): MariaDB's Galera provider; rsync copies a joining node's data.
OPSD_PKGS_TEST+=(galera-4 rsync)
# script/package (the Debian package): dpkg-buildpackage, debhelper (with dh-autoreconf), lintian.
OPSD_PKGS_PACKAGE=(dpkg-dev debhelper lintian)
OPSD_PKGS_BENCH=(wrk gnuplot-nox)

log() { printf '%s: %s\n' "$OPSD_PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$OPSD_PROG" "$*" >&2
	exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root for: $* (run as root or install sudo)"
	fi
}

# Makes a path absolute without requiring it to exist.
abs_path() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$PWD" "${1#./}" ;;
	esac
}

nproc_or_2() { nproc 2>/dev/null || echo 2; }

# ---------------------------------------------------------------- packages

pkg_installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]] ||
		pkg_provided "$1"
}

# pkg_provided NAME: an installed package provides NAME (NodeSource's nodejs
# provides npm and conflicts with Debian's npm package).
pkg_provided() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Provides}\n' 2>/dev/null |
		awk -v p="$1" '$1 == "ii" { for (i = 2; i <= NF; i++) { sub(/,$/, "", $i); if ($i == p) found = 1 } }
			END { exit !found }'
}

_opsd_apt_updated=0
# ensure_packages PKG...: installs the missing ones. OPSD_SKIP_INSTALL=1 skips
# the check (a caller already did it).
ensure_packages() {
	[[ ${OPSD_SKIP_INSTALL:-0} == 1 ]] && return 0
	local p missing=()
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing Debian packages: ${missing[*]}"
	# Debian starts a package's service on install; policy-rc.d answering
	# 101 ("action forbidden") keeps the system mariadb/nginx/prometheus
	# down. Ours is removed afterwards; an existing one is left alone.
	local policy=/usr/sbin/policy-rc.d ours=0 rc=0
	if [[ ! -e $policy ]]; then
		as_root sh -c "printf '#!/bin/sh\n# opsd script/lib.sh: no service starts during install\nexit 101\n' >$policy && chmod 0755 $policy" ||
			die "cannot write $policy"
		ours=1
	fi
	if ((!_opsd_apt_updated)); then
		as_root apt-get -o DPkg::Lock::Timeout=300 update -q >&2 || rc=$?
		_opsd_apt_updated=1
	fi
	if ((rc == 0)); then
		# The lock timeout waits for another apt run instead of failing.
		as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
			install -y -q --no-install-recommends "${missing[@]}" >&2 || rc=$?
	fi
	((ours)) && as_root rm -f "$policy"
	((rc == 0)) || die "apt-get failed to install: ${missing[*]}"
}

# ------------------------------------------------------------------- build

# opsd_build FLAVOUR: out-of-tree build in build/default, build/asan or build/coverage.
opsd_build() {
	local flavour=${1:-default} dir args=()
	case $flavour in
	default) ;;
	asan) args=(--enable-sanitizers) ;;
	# script/coverage; -O0 brings false -Wformat-truncation alarms that the default build checks
	coverage) args=(--enable-coverage --disable-werror CFLAGS="-O0 -g") ;;
	*) die "unknown build flavour '$flavour' (default|asan|coverage)" ;;
	esac
	dir=$OPSD_REPO/build/$flavour
	[[ -e $OPSD_REPO/config.status ]] &&
		die "the source tree is configured in place; run 'make distclean' in $OPSD_REPO first"
	if [[ ! -x $OPSD_REPO/configure || $OPSD_REPO/configure.ac -nt $OPSD_REPO/configure ||
		$OPSD_REPO/Makefile.am -nt $OPSD_REPO/configure ]]; then
		log "autoreconf -fi"
		(cd "$OPSD_REPO" && autoreconf -fi) >&2 || die "autoreconf failed"
	fi
	mkdir -p "$dir"
	if [[ ! -f $dir/Makefile ]]; then
		log "configure ${args[*]} (build/$flavour)"
		(cd "$dir" && "$OPSD_REPO/configure" "${args[@]}") >&2 ||
			die "configure failed (build/$flavour/config.log)"
	fi
	log "make (build/$flavour)"
	make -C "$dir" -j"$(nproc_or_2)" >&2 || die "make failed (build/$flavour)"
}

# --------------------------------------------------------------- processes

# proc_alive PID: true while the process runs. A zombie (killed, not yet
# reaped: a daemon's parent is init, which may take its time) has ended.
proc_alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# pid_alive PIDFILE: true when the file names a running process.
pid_alive() {
	local pid
	[[ -s $1 ]] || return 1
	read -r pid <"$1" || return 1
	[[ $pid =~ ^[0-9]+$ ]] && proc_alive "$pid"
}

# stop_pidfile PIDFILE SIGNAL TIMEOUT [NAME]: sends SIGNAL, waits for exit,
# then SIGTERM and finally SIGKILL. Removes a stale pid file.
stop_pidfile() {
	local f=$1 sig=$2 timeout=$3 name=${4:-$(basename "$1" .pid)} pid i
	if ! pid_alive "$f"; then
		rm -f "$f"
		return 0
	fi
	read -r pid <"$f"
	log "stopping $name (pid $pid, SIG$sig)"
	kill -s "$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		proc_alive "$pid" || break
		sleep 0.1
	done
	if proc_alive "$pid"; then
		log "$name did not stop in ${timeout}s: SIGTERM"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			proc_alive "$pid" || break
			sleep 0.1
		done
	fi
	if proc_alive "$pid"; then
		log "$name still alive: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	# The daemon removes its pid file on a clean exit; a killed one cannot.
	[[ -e $f ]] && ! pid_alive "$f" && rm -f "$f"
	return 0
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local port i low=32768 _
	# below the kernel's ephemeral range, which outgoing connections take from:
	# a port chosen now and bound later (a Galera node's IST port) stays free
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	((low > 12000)) || low=32768
	for ((i = 0; i < 200; i++)); do
		port=$((10000 + RANDOM % (low - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	die "no free port found"
}

# wait_https URL [TIMEOUT] [STATUS]: waits until URL answers with STATUS
# (default 200) over HTTPS (self-signed: -k).
wait_https() {
	local url=$1 timeout=${2:-60} want=${3:-200} code i
	for ((i = 0; i < timeout * 5; i++)); do
		code=$(curl -sk -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null) || true
		[[ $code == "$want" ]] && return 0
		sleep 0.2
	done
	return 1
}

# ---------------------------------------------------------------------- TLS

# ensure_tls_cert VAR: a self-signed certificate for localhost/127.0.0.1,
# made once (825 days: the longest lifetime clients accept).
ensure_tls_cert() {
	local dir=$1/tls
	[[ -s $dir/cert.pem && -s $dir/key.pem ]] && return 0
	mkdir -p "$dir"
	log "creating a self-signed certificate in $dir"
	(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 825 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-addext "basicConstraints=critical,CA:FALSE" \
		-addext "extendedKeyUsage=serverAuth" \
		-keyout "$dir/key.pem" -out "$dir/cert.pem") >/dev/null 2>&1 ||
		die "openssl could not create the certificate in $dir"
	chmod 0600 "$dir/key.pem"
	chmod 0644 "$dir/cert.pem"
}

# ------------------------------------------------------------------ MariaDB

# The private MariaDB under $VAR (README "The two commands"): own datadir, unix socket only,
# no system service, no /etc/mysql configuration (--no-defaults).
mysql_sock() { printf '%s/run/mysqld.sock\n' "$1"; }

# mysql_admin VAR [mariadb args...]: the server's OS-socket-authenticated
# admin (root when we are root, else the user who initialised the datadir).
mysql_admin() {
	local var=$1
	shift
	mariadb --no-defaults --socket="$(mysql_sock "$var")" -u"$(id -un)" "$@"
}

mysql_running() {
	pid_alive "$1/run/mysqld.pid" && mysql_admin "$1" -Nse 'SELECT 1' >/dev/null 2>&1
}

# mysql_init VAR: $VAR/mysql initialised when empty (mariadb-install-db), the
# directories made and owned by the server's user. Sets MYSQL_USER_ARGS, what
# mariadbd needs to run as that user (--user=mysql when we are root).
MYSQL_USER_ARGS=()
mysql_init() {
	local var=$1 data=$1/mysql run=$1/run logf=$1/log/mysqld.log tmp=$1/mysql-tmp
	local init_args=()
	# A private tmpdir: two servers initialised at the same moment (parallel
	# test stacks) otherwise collide on the names of their temporary tables
	# in /tmp, and mariadb-install-db fails.
	mkdir -p "$data" "$run" "$var/log" "$tmp"
	touch "$logf"
	MYSQL_USER_ARGS=()
	if ((EUID == 0)); then
		# mariadbd refuses to run as root without being told; use the
		# packaged mysql user, like the system service does.
		MYSQL_USER_ARGS=(--user=mysql)
		chown -R mysql:mysql "$data"
		chown mysql:mysql "$run" "$logf" "$tmp"
	else
		# Our own user owns everything; it is also the socket-auth admin.
		init_args=(--auth-root-socket-user="$(id -un)")
	fi
	[[ -z $(ls -A "$data") ]] || return 0
	log "initialising MariaDB in $data"
	mariadb-install-db --no-defaults --datadir="$data" --tmpdir="$tmp" "${MYSQL_USER_ARGS[@]}" \
		"${init_args[@]}" --auth-root-authentication-method=socket \
		--skip-test-db --skip-name-resolve >>"$logf" 2>&1 ||
		die "mariadb-install-db failed; see $logf"
	((EUID == 0)) && chown -R mysql:mysql "$data"
	return 0
}

# mysql_server_args VAR: mariadbd's arguments for $VAR's server, after the
# defaults option (its datadir, socket, pid file, log, sizing), in MYSQL_ARGS.
MYSQL_ARGS=()
mysql_server_args() {
	local var=$1
	MYSQL_ARGS=("${MYSQL_USER_ARGS[@]}"
		--datadir="$var/mysql" --tmpdir="$var/mysql-tmp" --socket="$var/run/mysqld.sock"
		--pid-file="$var/run/mysqld.pid" --log-error="$var/log/mysqld.log"
		--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
		--default-time-zone=+00:00 --skip-name-resolve --performance-schema=OFF
		--innodb-buffer-pool-size="${OPSD_MYSQL_BUFFER_POOL:-64M}"
		--innodb-log-file-size="${OPSD_MYSQL_LOG_FILE_SIZE:-48M}"
		--innodb-flush-log-at-trx-commit=2 --max-connections=500)
}

# mysql_launch VAR DEFAULTS [ARG...]: starts mariadbd on $VAR's datadir,
# socket, pid file and log (DEFAULTS: --no-defaults or --defaults-file=F, which
# mariadbd wants first; ARGs after ours) and waits until it answers
# (OPSD_MYSQL_START_TIMEOUT seconds, default 60). Call mysql_init first.
mysql_launch() {
	local var=$1 defaults=$2 run=$1/run logf=$1/log/mysqld.log pid i
	shift 2
	if pid_alive "$run/mysqld.pid"; then
		die "mariadbd (pid $(cat "$run/mysqld.pid")) runs but does not answer on $run/mysqld.sock; see $logf"
	fi
	rm -f "$run/mysqld.pid" "$run/mysqld.sock" "$run/mysqld.sock.lock"
	log "starting MariaDB (socket $run/mysqld.sock)"
	mysql_server_args "$var"
	# setsid: Ctrl-C in a foreground script/server reaches the script, which
	# stops the services in order, not every process of the terminal.
	setsid mariadbd "$defaults" "${MYSQL_ARGS[@]}" "$@" </dev/null >>"$logf" 2>&1 &
	pid=$!
	for ((i = 0; i < ${OPSD_MYSQL_START_TIMEOUT:-60} * 10; i++)); do
		mysql_admin "$var" -Nse 'SELECT 1' >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 30 "$logf" >&2
	die "MariaDB did not come up on $run/mysqld.sock; see $logf"
}

# mysql_start VAR: initialises $VAR/mysql when empty and starts mariadbd on its
# socket only. Sized for a laptop and for test stacks that run side by side;
# OPSD_MYSQL_BUFFER_POOL (64M) and OPSD_MYSQL_LOG_FILE_SIZE (48M) give the
# benchmarks' bulk work room.
mysql_start() {
	local var=$1
	if mysql_running "$var"; then
		log "MariaDB already running (pid $(cat "$var/run/mysqld.pid"))"
		return 0
	fi
	mysql_init "$var"
	mysql_launch "$var" --no-defaults --skip-networking
}

# mysql_bootstrap VAR [HOST...]: database opsd and user opsd at each HOST
# (default localhost, the socket's; a client over TCP on loopback is
# 127.0.0.1, as --skip-name-resolve leaves it) with the password generated
# once into $VAR/db-password (0600). Prints nothing; see mysql_uri.
mysql_bootstrap() {
	local var=$1 pw host sql=
	shift
	(($#)) || set -- localhost
	if [[ ! -s $var/db-password ]]; then
		(umask 077 && openssl rand -hex 24 >"$var/db-password") ||
			die "cannot write $var/db-password"
	fi
	chmod 0600 "$var/db-password"
	read -r pw <"$var/db-password"
	# Hex password: nothing to escape in SQL or in the URI. ALL on `org\_%`
	# covers CREATE/DROP DATABASE of the dedicated tenant DBs (org_...).
	for host in "$@"; do
		sql+="CREATE USER IF NOT EXISTS 'opsd'@'$host' IDENTIFIED BY '$pw';
ALTER USER 'opsd'@'$host' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON \`opsd\`.* TO 'opsd'@'$host';
GRANT ALL PRIVILEGES ON \`org\\_%\`.* TO 'opsd'@'$host';
"
	done
	mysql_admin "$var" <<-SQL || die "cannot create database/user opsd"
		CREATE DATABASE IF NOT EXISTS opsd CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
		$sql
	SQL
}

# mysql_uri VAR [DB]: the URI opsd uses for the private server (DB empty →
# no database, the form of OPSD_DEDICATED_DB_URI).
mysql_uri() {
	local pw
	read -r pw <"$1/db-password"
	printf 'mysql://opsd:%s@localhost/%s?socket=%s\n' "$pw" "${2-opsd}" "$(mysql_sock "$1")"
}

mysql_stop() {
	stop_pidfile "$1/run/mysqld.pid" TERM 60 mariadbd
	rm -f "$1/run/mysqld.sock"
}

# --------------------------------------------------------------- env files

# The file format opsd reads (README "Configuration"): KEY=VALUE lines, blank
# lines and '#' comments, an optional "export ", values bare (a '#' after a
# blank starts a comment), '...' (literal) or "..." (\" \\ \$ \` \n escapes).
OPSD_ENV_LINE_RE='^[[:blank:]]*(export[[:blank:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$'

# env_unquote RAW: the value of RAW (what follows KEY=) as opsd reads it, in REPLY.
env_unquote() {
	local s=$1 i c
	REPLY=
	case ${s:0:1} in
	"'")
		s=${s:1}
		REPLY=${s%%"'"*}
		;;
	'"')
		for ((i = 1; i < ${#s}; i++)); do
			c=${s:i:1}
			[[ $c == '"' ]] && break
			if [[ $c == "\\" ]] && ((i + 1 < ${#s})); then
				i=$((i + 1))
				c=${s:i:1}
				[[ $c == n ]] && c=$'\n'
			fi
			REPLY+=$c
		done
		;;
	*)
		for ((i = 1; i < ${#s}; i++)); do
			if [[ ${s:i:1} == '#' && ${s:i-1:1} == [[:blank:]] ]]; then
				s=${s:0:i}
				break
			fi
		done
		REPLY=${s%"${s##*[![:blank:]]}"}
		;;
	esac
}

# env_quote NAME VALUE: the line NAME=VALUE in REPLY, single-quoted unless the
# value holds a ' (then double-quoted with escapes). Fails on a newline.
env_quote() {
	local v=$2
	[[ $v != *$'\n'* ]] || return 1
	if [[ $v != *"'"* ]]; then
		REPLY="$1='$v'"
	else
		v=${v//\\/\\\\}
		v=${v//\"/\\\"}
		v=${v//\$/\\\$}
		v=${v//\`/\\\`}
		REPLY="$1=\"$v\""
	fi
}

# env_file_read FILE ARRAY: fills the associative array ARRAY with FILE's
# pairs (of a repeated key, the last line wins, as in opsd). No file: nothing.
env_file_read() {
	local file=$1 line key
	local -n env_read_into=$2
	[[ -e $file ]] || return 0
	[[ -r $file ]] || die "cannot read $file"
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%$'\r'}
		[[ $line =~ $OPSD_ENV_LINE_RE ]] || continue
		key=${BASH_REMATCH[2]}
		env_unquote "${BASH_REMATCH[3]}"
		env_read_into["$key"]=$REPLY
	done <"$file"
}

# env_file_set FILE NAME...: sets each NAME to the value of the variable NAME:
# the last line assigning it is replaced, or a line is appended. Every other
# line (comments, variables nobody here knows) stays as it was. FILE is
# replaced whole, mode 0600. Fails, changing nothing, on a value with a newline.
env_file_set() {
	local file=$1 name i tmp lines=()
	shift
	[[ -e $file ]] && mapfile -t lines <"$file"
	for name in "$@"; do
		if ! env_quote "$name" "${!name-}"; then
			log "$name: a value cannot span lines"
			return 1
		fi
		for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
			[[ ${lines[i]} =~ $OPSD_ENV_LINE_RE && ${BASH_REMATCH[2]} == "$name" ]] && break
		done
		if ((i >= 0)); then lines[i]=$REPLY; else lines+=("$REPLY"); fi
	done
	tmp=$(mktemp "$file.XXXXXX") || return 1
	chmod 0600 "$tmp"
	((${#lines[@]} == 0)) || printf '%s\n' "${lines[@]}" >"$tmp"
	mv -f "$tmp" "$file"
}

# env_is_secret NAME: its value is never printed (README "Configuration":
# passwords, secrets, keys and URIs that may hold a password).
env_is_secret() { [[ $1 =~ PASS|SECRET|KEY|TOKEN|URI ]]; }

# -------------------------------------------------------------------- tests

# opsd_test_node_modules: the node modules of the tests, as package-lock.json
# pins them. The API document's checks (t/98-openapi.t) run on node: an
# OpenAPI 3.1 validator and ajv. The console's browser tests (t/68, t/69-*):
# playwright-core and axe-core driving Debian's chromium, so nothing may
# download a browser.
opsd_test_node_modules() {
	log "npm ci (t/openapi, t/browser)"
	npm ci --no-audit --no-fund --prefix "$OPSD_REPO/t/openapi" >&2 &&
		PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --prefix "$OPSD_REPO/t/browser" >&2
}

# opsd_test_suite SCRATCH: the integration tests (script/test, script/coverage)
# against build/$OPSD_BUILD, which the caller built and exported with
# OPSD_SKIP_INSTALL=1 OPSD_SKIP_BUILD=1. PROVE_ARGS (e.g. "t/10-basics.t")
# narrows the run to one prove without -j. 1 when a test failed.
opsd_test_suite() {
	local scratch=$1 rc=0 prove_args early late
	# Every stack copies its logs to the archive and every test registers the
	# secrets and PII it used (t/lib/OpsdTest.pm); t/99-logs.t, last, checks
	# them all. Every request and answer is recorded in exchanges/ (bodies
	# hold passwords: outside the archive t/99 searches); t/98-openapi.t
	# checks them against the API document.
	mkdir -p "$scratch/archive" "$scratch/exchanges"
	chmod 0777 "$scratch/archive"
	export OPSD_TEST_ARCHIVE=$scratch/archive OPSD_TEST_ARCHIVE_REQUIRED=1
	export OPSD_TEST_EXCHANGES=$scratch/exchanges
	(
		cd "$OPSD_REPO" || exit 1
		if [[ -n ${PROVE_ARGS:-} ]]; then
			read -ra prove_args <<<"$PROVE_ARGS"
			prove --timer -I t/lib "${prove_args[@]}" || rc=1
		else
			# Each file has its own stack on its own ports and directories, and
			# waits on its daemons far more than it computes: OPSD_TEST_JOBS files
			# run at once. The two that read what all the others left
			# (t/98-openapi.t the recorded exchanges, t/99-logs.t the log
			# archive) run after them.
			late=(t/98-openapi.t t/99-logs.t)
			mapfile -t early < <(printf '%s\n' t/*.t | grep -vxF -e "${late[0]}" -e "${late[1]}")
			prove --timer -j"${OPSD_TEST_JOBS:-2}" -I t/lib "${early[@]}" || rc=1
			prove --timer -I t/lib "${late[@]}" || rc=1
		fi
		exit "$rc"
	)
}
