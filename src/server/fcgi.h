/* FastCGI ↔ struct req: the only place that touches fcgi2 streams. */
#ifndef OPSD_FCGI_H
#define OPSD_FCGI_H

#include <fcgiapp.h>
#include <signal.h>
#include <stdbool.h>

#include "http/http.h"

struct req;

/* Accepts the next connection and checks its FastCGI framing before libfcgi
 * parses it: libfcgi trusts the peer's name/value lengths and aborts the
 * process when one asks for gigabytes. The stream up to the end of PARAMS is
 * peeked (not consumed), so libfcgi then reads it as usual from the fd,
 * which the caller hands over in FCGX_Request.ipcFd. The worker keeps its
 * stop signal blocked; wait_mask (the mask without it) applies only while
 * waiting for a connection. Returns the fd, or -1:
 * errno EINTR (a signal), or EAGAIN when the connection was refused (bad
 * framing, a peer not in allowed_clients) and the caller should go on. */
int fcgi_accept_checked(int listen_fd, const char *allowed_clients, const sigset_t *wait_mask);

/* Copies every param into r->arena (params die at FCGX_Finish_r), fills the
 * named fields, and reads the body up to max_body bytes. A larger body is
 * drained (so nginx can read our answer) and reported as BODY_TOO_BIG. */
enum body_state fcgi_read_request(FCGX_Request *fr, struct req *r, size_t max_body);
/* Writes the status line and headers (for streamed replies, without a
 * Content-Length). */
void fcgi_write_head(FCGX_Request *fr, const struct req *r, bool with_length);
/* Writes status line, headers and body of r's reply (nothing when it was
 * streamed). */
void fcgi_write_reply(FCGX_Request *fr, const struct req *r, bool head_only);

#endif
