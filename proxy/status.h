/* egressd status: a live view of the metrics endpoint (issue 13). */
#ifndef EGRESSD_STATUS_H
#define EGRESSD_STATUS_H
#include <stddef.h>
#include <stdint.h>

#define STATUS_MAX_REASONS 32
#define STATUS_MAX_WORKERS 64

struct status_snap {
	double t; /* seconds (monotonic) when scraped */
	char version[32];
	uint64_t allow, deny;
	struct { char reason[40]; uint64_t n; } reasons[STATUS_MAX_REASONS];
	size_t nreasons;
	uint64_t dns_allow, dns_deny, dns_fail;
	uint64_t queue_dropped, bindings, flows_tracked, log_dropped;
	uint64_t workers[STATUS_MAX_WORKERS];
	unsigned nworkers; /* highest worker label + 1 */
};

/* Parse Prometheus text. 0, or -EINVAL when no egressd_ sample was found. */
int status_parse(const char *text, size_t len, struct status_snap *out);

struct status_rates {
	int have;          /* 0 if no previous scrape (or no time elapsed) */
	double allow_ps, deny_ps, dns_ps;
	double worker_ps[STATUS_MAX_WORKERS];
};
/* Rates between two scrapes; a counter that went down (restart) counts from 0. */
void status_rates(const struct status_snap *prev, const struct status_snap *cur,
                  struct status_rates *r);

/* Render into buf (NUL-terminated, '\n' line ends): at most height lines (0 =
 * unlimited) of at most width columns (0 = unlimited). Returns the length. */
size_t status_render(char *buf, size_t cap, unsigned width, unsigned height, const char *src,
                     const struct status_snap *prev, const struct status_snap *cur);

int cmd_status(int argc, char **argv);
#endif
