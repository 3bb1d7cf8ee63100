#!/usr/bin/python3
"""A real SMTP peer on loopback for opsd's integration tests (t/README).

Built on Debian's python3-aiosmtpd (1.4.x: Controller, SMTP(tls_context=,
require_starttls=, auth_required=, auth_require_tls=, authenticator=)). Run
it with Debian's interpreter, /usr/bin/python3: another python3 on PATH
(pyenv, a venv) does not see the Debian package.

    smtp_peer.py --port 0 --dir DIR [--tls-cert F --tls-key F | --no-starttls]
                 [--auth USER:PASS | --auth-file FILE]
                 [--refuse-rcpt ADDR]... [--tempfail-rcpt ADDR]...

--auth-file names a file read again at every AUTH, so a test changes what
the peer accepts while it runs, as a relay whose credentials are rotated:
each "USER:PASS" line is accepted (several at once during an overlap), and a
line "delay MS" makes each AUTH wait that long before it is judged against
the file as it is then (a test holds a session in AUTH while it changes
things; the wait is logged as an auth_wait event before it starts).

Prints "port N" on stdout once listening, then "ready". Every accepted
message is saved as DIR/<n>.eml (the raw DATA bytes, dot-unstuffed, line
endings as sent) and DIR/<n>.json (mail_from, rcpt_tos, auth_user, tls,
...); the .json is written last (atomically), so its presence means the
message is complete. DIR/events.jsonl records each session step (ehlo,
starttls, auth with its result, mail, rcpt with the code given, data) so a
test can tell "nobody connected" from "AUTH was refused"; no password is ever
written. Numbering goes on from the files already in DIR, so a peer
restarted on the same DIR keeps the earlier messages. SIGTERM or SIGINT
stops it cleanly (exit 0).
"""

import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
import warnings

# aiosmtpd's own deprecation notices (Session.login_data, AUTH without TLS on
# a --no-starttls peer) are noise here
warnings.simplefilter("ignore")

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError as e:  # pragma: no cover
    sys.stderr.write("smtp_peer: aiosmtpd missing (%s); apt-get install python3-aiosmtpd and "
                     "run with /usr/bin/python3\n" % e)
    sys.exit(2)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (int(time.time() * 1000) % 1000)


class Recorder:
    """Numbered message files and the events log, shared by all sessions."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.lock = threading.Lock()
        last = 0
        for name in os.listdir(directory):
            stem, dot, ext = name.partition(".")
            if stem.isdigit() and ext in ("eml", "json"):
                last = max(last, int(stem))
        self.next = last + 1

    def event(self, **kv):
        kv = dict(t=_now(), **kv)
        line = json.dumps(kv, sort_keys=True) + "\n"
        with self.lock:
            with open(os.path.join(self.dir, "events.jsonl"), "a", encoding="utf-8") as f:
                f.write(line)

    def save(self, raw, meta):
        with self.lock:
            n = self.next
            self.next += 1
        base = os.path.join(self.dir, str(n))
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        meta = dict(meta, n=n, size=len(raw), received_at=_now())
        tmp = base + ".json.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f, sort_keys=True, indent=1)
        os.rename(tmp, base + ".json")
        return n


def _b2s(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", errors="replace")
    return v


def _tls_info(session):
    """(active, version, cipher) of the session's TLS (after STARTTLS)."""
    extra = session.ssl
    if not extra:
        return False, None, None
    obj = extra.get("ssl_object") if isinstance(extra, dict) else None
    if obj is None:
        return True, None, None
    cipher = obj.cipher()
    return True, obj.version(), cipher[0] if cipher else None


class Handler:
    def __init__(self, rec, refuse, tempfail):
        self.rec = rec
        self.refuse = {a.lower() for a in refuse}
        self.tempfail = {a.lower() for a in tempfail}

    def _peer(self, session):
        p = session.peer
        return "%s:%s" % (p[0], p[1]) if isinstance(p, tuple) and len(p) >= 2 else str(p)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        tls, _, _ = _tls_info(session)
        self.rec.event(event="ehlo", peer=self._peer(session), helo=hostname, tls=tls,
                       advertised=[r[4:] for r in responses])
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        self.rec.event(event="helo", peer=self._peer(session), helo=hostname)
        return "250 {}".format(server.hostname)

    def handle_STARTTLS(self, server, session, envelope):
        # called (not awaited) once the TLS handshake after STARTTLS is done
        tls, version, cipher = _tls_info(session)
        self.rec.event(event="starttls", peer=self._peer(session), tls=tls, version=version, cipher=cipher)
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self.rec.event(event="mail", peer=self._peer(session), mail_from=address,
                       authenticated=bool(session.authenticated))
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        a = address.lower()
        if a in self.refuse:
            code = "550 5.1.1 no such user"
        elif a in self.tempfail:
            code = "451 4.3.0 try again later"
        else:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            code = "250 OK"
        self.rec.event(event="rcpt", peer=self._peer(session), rcpt=address, code=int(code[:3]))
        return code

    async def handle_DATA(self, server, session, envelope):
        tls, version, cipher = _tls_info(session)
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = _b2s(session.auth_data.login)
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else (envelope.content or "").encode()
        n = self.rec.save(bytes(raw), dict(
            mail_from=envelope.mail_from,
            mail_options=list(envelope.mail_options),
            rcpt_tos=list(envelope.rcpt_tos),
            auth_user=auth_user,
            authenticated=bool(session.authenticated),
            tls=tls,
            tls_version=version,
            tls_cipher=cipher,
            helo=session.host_name,
            peer=self._peer(session),
        ))
        self.rec.event(event="data", peer=self._peer(session), n=n, rcpt_tos=list(envelope.rcpt_tos))
        return "250 2.0.0 OK message %d accepted" % n


def read_auth_file(path):
    """(accepted (user, password) pairs, delay in seconds) from an --auth-file."""
    pairs, delay = set(), 0.0
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if line.startswith("delay "):
                    delay = int(line[6:]) / 1000.0
                elif ":" in line:
                    u, _, p = line.partition(":")
                    pairs.add((u, p))
    except OSError:
        pass
    return pairs, delay


def make_authenticator(rec, user, password, auth_file=None):
    def authenticator(server, session, envelope, mechanism, auth_data):
        login = pw = None
        if isinstance(auth_data, LoginPassword):
            login, pw = _b2s(auth_data.login), _b2s(auth_data.password)
        if auth_file:
            _, delay = read_auth_file(auth_file)
            if delay > 0:
                rec.event(event="auth_wait", user=login, ms=int(delay * 1000))
                time.sleep(delay)   # blocks the peer's loop: every session waits
            ok = (login, pw) in read_auth_file(auth_file)[0]
        else:
            ok = login == user and pw == password
        rec.event(event="auth", mechanism=mechanism, user=login, ok=ok,
                  tls=_tls_info(session)[0])
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)
    return authenticator


class PortZeroController(Controller):
    """Controller that may bind port 0: the real port is read back from the
    listening socket before start() makes its own trigger connection."""

    def _create_server(self):
        coro = super()._create_server()

        async def bind():
            srv = await coro
            self.port = srv.sockets[0].getsockname()[1]
            return srv
        return bind()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--no-starttls", action="store_true",
                    help="plain server: STARTTLS is not advertised (certificate options ignored)")
    ap.add_argument("--auth", metavar="USER:PASS")
    ap.add_argument("--auth-file", metavar="FILE")
    ap.add_argument("--refuse-rcpt", action="append", default=[], metavar="ADDR")
    ap.add_argument("--tempfail-rcpt", action="append", default=[], metavar="ADDR")
    ap.add_argument("--hostname", default="localhost", help="name in the banner and EHLO reply")
    args = ap.parse_args()

    rec = Recorder(args.dir)
    handler = Handler(rec, args.refuse_rcpt, args.tempfail_rcpt)
    kwargs = dict(hostname=args.host, port=args.port, server_hostname=args.hostname,
                  ready_timeout=10.0)
    tls_on = False
    if not args.no_starttls and (args.tls_cert or args.tls_key):
        if not (args.tls_cert and args.tls_key):
            ap.error("--tls-cert and --tls-key go together")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # STARTTLS (RFC 3207) on the plain port: tls_context, not ssl_context
        # (Controller's ssl_context would be implicit TLS, which libESMTP lacks)
        kwargs.update(tls_context=ctx, require_starttls=True)
        tls_on = True
    if args.auth and args.auth_file:
        ap.error("--auth and --auth-file exclude each other")
    if args.auth_file:
        kwargs.update(authenticator=make_authenticator(rec, None, None, args.auth_file),
                      auth_required=True, auth_require_tls=tls_on)
    elif args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user:
            ap.error("--auth wants USER:PASS")
        kwargs.update(authenticator=make_authenticator(rec, user, password),
                      auth_required=True, auth_require_tls=tls_on)
    else:
        kwargs.update(auth_require_tls=tls_on)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    controller = PortZeroController(handler, **kwargs)
    try:
        controller.start()
    except Exception as e:
        sys.stderr.write("smtp_peer: cannot listen on %s:%d: %s\n" % (args.host, args.port, e))
        return 1
    rec.event(event="listening", port=controller.port, starttls=tls_on,
              auth=bool(args.auth or args.auth_file),
              refuse=args.refuse_rcpt, tempfail=args.tempfail_rcpt)
    sys.stdout.write("port %d\n" % controller.port)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stop.wait()
    controller.stop()
    rec.event(event="stopped", port=controller.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
