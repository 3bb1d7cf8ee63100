/* The route table: every endpoint of opsd, one line each. */
#ifndef OPSD_ROUTES_H
#define OPSD_ROUTES_H

#include <stddef.h>

#include "http/router.h"

extern const struct route routes[];
extern const size_t nroutes;
/* routes[i].name for every route, for metric labels. */
const char *const *routes_names(void);

#endif
