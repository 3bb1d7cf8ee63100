/* opsd: the master of a prefork FastCGI pool (doc/architecture.md "Processes"; README "The process
 * model and signals"). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/routes.h"
#include "core/authz.h"
#include "http/router.h"
#include "infra/config.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "server/master.h"
#include "server/proctitle.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: opsd [--check-config | --version | --help]\n"
	           "Configuration comes from the environment and OPSD_ENV_FILE; see opsd(8).\n");
}

/* Warnings go to stderr now and, once the log is open, into it as well:
 * SMTP_TEST_MODE on in production must be seen where operators look. */
static char warnings[8][256];
static int nwarnings;

static void print_line(bool is_error, const char *line, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "opsd: %s%s\n", is_error ? "" : "warning: ", line);
	if (!is_error && nwarnings < (int)(sizeof(warnings) / sizeof(warnings[0])))
		snprintf(warnings[nwarnings++], sizeof(warnings[0]), "%s", line);
}

static void print_problem(const char *problem, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "opsd: route table: %s\n", problem);
}

/* fcgi2 treats fd 0 specially and stdio must not land on the listen socket:
 * make sure 0, 1 and 2 are open before anything else is. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
			exit(1);
}

int main(int argc, char **argv)
{
	struct opsd_config *cfg;
	bool check_only = false;
	char err[256];
	int errors;

	ensure_std_fds();
	/* Before the first secret is read: no core file, no /proc/PID/mem or environ for our user.
	 * Every child inherits it (the workers and the jobs process keep it past the drop of
	 * privileges, server/master.c); nginx -t, exec'd with only PATH, gets it back. */
	if (!process_forbid_core_dumps())
		fprintf(stderr, "opsd: warning: cannot turn off core dumps\n");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check-config") == 0) {
			check_only = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("opsd %s\n", PACKAGE_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	proctitle_init(argc, argv);

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return 1;
	errors = config_load(cfg, print_line, NULL);
	if (errors == 0)
		errors += cli_roles_check(cfg, print_line, NULL);
	errors += router_check_table(routes, nroutes, print_problem, NULL);
	if (errors > 0) {
		fprintf(stderr, "opsd: %d configuration problem%s; not starting\n", errors,
		    errors == 1 ? "" : "s");
		config_free(cfg);
		free(cfg);
		return 1;
	}
	if (check_only) {
		printf("opsd: configuration ok\n");
		config_free(cfg);
		free(cfg);
		return 0;
	}
	if (log_open(cfg->log_target, err, sizeof(err)) != 0) {
		fprintf(stderr, "opsd: OPSD_LOG: %s\n", err);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	for (int i = 0; i < nwarnings; i++)
		log_msg(LL_WARN, "config_warning", "%s", warnings[i]);
	return master_run(cfg);
}
