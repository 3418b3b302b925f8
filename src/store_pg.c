#include "store_int.h"
#include <errno.h>
int store_pg_open(const struct store_conf *c, bool readonly, struct store **out)
{
	(void)c; (void)readonly; (void)out;
	return -ENOTSUP;
}
