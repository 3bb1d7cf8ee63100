/* bench/floor: the smallest fcgi2 responder worth measuring. The same nginx,
 * the same kind of socket and the same prefork shape as opsd, but no work:
 * bench/run uses it as the floor that opsd's /healthz is compared with.
 *
 * Usage: floor SOCKET_PATH NWORKERS
 * SIGTERM, SIGINT or SIGQUIT to the parent stops the workers and removes
 * the socket. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#define MAX_WORKERS 256
/* The kernel caps it at net.core.somaxconn; a short queue turns bursts into
 * nginx 502s (EAGAIN on a unix socket connect). */
#define LISTEN_BACKLOG 4096

static volatile sig_atomic_t stopping;

static const char reply[] = "Status: 200\r\n"
                            "Content-Type: application/json\r\n"
                            "\r\n"
                            "{\"status\":\"ok\"}";

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

static void on_child(int sig)
{
	(void)sig; /* only wakes sigsuspend */
}

/* No SA_RESTART: a signal must interrupt accept() (doc/architecture.md "Pitfalls of the platform").
 */
static int install(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

static int serve(int sock)
{
	FCGX_Request req;

	if (FCGX_InitRequest(&req, sock, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		fprintf(stderr, "floor: FCGX_InitRequest failed\n");
		return 1;
	}
	while (!stopping && FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(reply, (int)sizeof reply - 1, req.out);
		FCGX_Finish_r(&req);
	}
	FCGX_Free(&req, 1);
	return 0;
}

int main(int argc, char **argv)
{
	pid_t kids[MAX_WORKERS];
	sigset_t block, orig;
	char *end;
	long n;
	int sock, live = 0, status, i;
	pid_t pid;

	if (argc != 3) {
		fprintf(stderr, "usage: floor SOCKET_PATH NWORKERS\n");
		return 2;
	}
	errno = 0;
	n = strtol(argv[2], &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > MAX_WORKERS) {
		fprintf(stderr, "floor: NWORKERS must be 1..%d\n", MAX_WORKERS);
		return 2;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "floor: FCGX_Init failed\n");
		return 1;
	}
	if (unlink(argv[1]) != 0 && errno != ENOENT) {
		fprintf(stderr, "floor: unlink %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* Pass this fd to FCGX_InitRequest: fd 0 would mean CGI mode. */
	sock = FCGX_OpenSocket(argv[1], LISTEN_BACKLOG);
	if (sock < 0) {
		fprintf(stderr, "floor: cannot listen on %s\n", argv[1]);
		return 1;
	}
	/* nginx workers may run as another user. */
	if (chmod(argv[1], 0666) != 0) {
		fprintf(stderr, "floor: chmod %s: %s\n", argv[1], strerror(errno));
		return 1;
	}

	/* After FCGX_Init, which installs its own SIGTERM handler. */
	if (install(SIGTERM, on_stop) != 0 || install(SIGINT, on_stop) != 0 ||
	    install(SIGQUIT, on_stop) != 0 || install(SIGCHLD, on_child) != 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "floor: sigaction: %s\n", strerror(errno));
		return 1;
	}
	/* Blocked until sigsuspend, so that a stop between the check and the
	 * wait is not lost. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &orig);

	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid < 0) {
			fprintf(stderr, "floor: fork: %s\n", strerror(errno));
			stopping = 1;
			break;
		}
		if (pid == 0) {
			sigprocmask(SIG_SETMASK, &orig, NULL);
			return serve(sock);
		}
		kids[live++] = pid;
	}

	while (!stopping && live > 0) {
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < live; i++) {
				if (kids[i] == pid) {
					kids[i] = kids[--live];
					break;
				}
			}
			fprintf(stderr, "floor: worker %d exited\n", (int)pid);
		}
		if (!stopping && live > 0)
			sigsuspend(&orig);
	}

	for (i = 0; i < live; i++)
		kill(kids[i], SIGTERM);
	while (live > 0) {
		if (wait(&status) > 0)
			live--;
		else if (errno != EINTR)
			break;
	}
	close(sock);
	unlink(argv[1]);
	return 0;
}
