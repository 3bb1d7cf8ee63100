/* The env file (README "Configuration"): KEY=value lines, optionally
 * quoted, with comments and blank lines; read by config_load and opsctl
 * (infra/config.h, config_read_env_file). */
#include "infra/config.h"
#include "lib/secret.h"
#include "lib/util.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENV_FILE_MAX (1024 * 1024)

/* Parses one line in place; *key is NULL for a blank or comment line.
 * Returns false on a malformed line. */
static bool parse_line(char *line, char **key, char **value)
{
	*key = NULL;
	line += strspn(line, " \t");
	if (*line == '\0' || *line == '#')
		return true;
	if (strncmp(line, "export", 6) == 0 && (line[6] == ' ' || line[6] == '\t'))
		line += 6 + strspn(line + 6, " \t");
	char *k = line;
	if (!isalpha((unsigned char)*k) && *k != '_')
		return false;
	while (isalnum((unsigned char)*line) || *line == '_')
		line++;
	if (*line != '=')
		return false;
	*line++ = '\0';
	char *v = line, *w = line, *rest;
	if (*line == '"' || *line == '\'') {
		char q = *line++;
		/* "..." takes backslash escapes of \" \\ \$ \` and \n; '...' is literal */
		for (; *line != q; line++) {
			if (*line == '\0')
				return false;
			if (q == '"' && *line == '\\' && line[1] != '\0') {
				line++;
				*w++ = *line == 'n' ? '\n' : *line;
				continue;
			}
			*w++ = *line;
		}
		rest = line + 1 + strspn(line + 1, " \t");
		if (*rest != '\0' && *rest != '#')
			return false;
		*w = '\0';
	} else {
		/* unquoted: a " #" starts a comment, trailing blanks go */
		for (rest = line; *rest != '\0'; rest++)
			if (*rest == '#' && rest > line && (rest[-1] == ' ' || rest[-1] == '\t'))
				break;
		while (rest > line && (rest[-1] == ' ' || rest[-1] == '\t'))
			rest--;
		*rest = '\0';
	}
	*key = k;
	*value = v;
	return true;
}

int config_parse_env_text(char *data, const char *name, bool private_file, env_pair_fn fn,
    void *ctx, char *err, size_t err_len)
{
	/* First pass: syntax and the permission rule, so fn sees all or nothing. */
	struct pairs p = {NULL, 0, 0};
	size_t lineno = 0;
	for (char *line = data, *next; line != NULL; line = next) {
		char *k, *v;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		lineno++;
		if (!parse_line(line, &k, &v)) {
			snprintf(err, err_len, "%s:%zu: expected KEY=VALUE", name, lineno);
			pairs_free(&p);
			return -1;
		}
		if (k == NULL)
			continue;
		if (config_is_secret(k) && *v != '\0' && !private_file) {
			snprintf(err, err_len,
			    "%s: holds %s but is accessible by group or others (chmod 600)", name,
			    k);
			pairs_free(&p);
			return -1;
		}
		size_t before = p.n;
		pairs_add(k, v, &p);
		if (p.n == before) {
			snprintf(err, err_len, "%s: out of memory", name);
			pairs_free(&p);
			return -1;
		}
	}
	for (size_t i = 0; i < p.n; i += 2)
		fn(p.kv[i], p.kv[i + 1], ctx);
	int count = (int)(p.n / 2);
	pairs_free(&p);
	return count;
}

int config_read_env_file(const char *path, env_pair_fn fn, void *ctx, char *err, size_t err_len)
{
	struct stat st;
	char *data = NULL;
	size_t size = 0, got = 0;
	int count = -1, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > ENV_FILE_MAX) {
		snprintf(err, err_len, "%s: not a regular file of at most 1 MiB", path);
		goto fail;
	}
	size = (size_t)st.st_size;
	if ((data = malloc(size + 1)) == NULL) {
		snprintf(err, err_len, "%s: out of memory", path);
		goto fail;
	}
	while (got < size) {
		ssize_t r = read(fd, data + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, err_len, "cannot read %s: %s", path,
			    r < 0 ? strerror(errno) : "file shrank");
			goto fail;
		}
		got += (size_t)r;
	}
	data[size] = '\0';
	if (memchr(data, '\0', size) != NULL) {
		snprintf(err, err_len, "%s: contains a NUL byte", path);
		goto fail;
	}

	count = config_parse_env_text(data, path, (st.st_mode & 077) == 0, fn, ctx, err, err_len);
fail:
	secret_wipe(data, size);
	free(data);
	close(fd);
	return count;
}
