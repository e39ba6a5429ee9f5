/* egressd status: a live view of the metrics endpoint (issue 13). */
#ifndef EGRESSD_STATUS_H
#define EGRESSD_STATUS_H
#include <stddef.h>
#include <stdint.h>

#define STATUS_MAX_REASONS 32
#define STATUS_MAX_WORKERS 64
#define STATUS_MAX_NAMES 64
#define STATUS_LOG_TAIL (256u << 10) /* bytes of the event log read */

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
	/* Not from the metrics: denied names counted in the tail of the event log
	 * (status_log_names); nnames = 0 and no log_src: not shown. */
	struct { char name[64]; uint64_t n; } names[STATUS_MAX_NAMES];
	size_t nnames;
	char log_src[160];
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

/* Count the denied names ("deny" name, else dst; "dns_deny" qname) in the
 * last tail bytes of the JSON-lines event log at path (a partial first line is
 * skipped; lines that are not JSON are ignored). 0 or -errno. Keeps s's metrics. */
int status_log_names(const char *path, size_t tail, struct status_snap *s);

int cmd_status(int argc, char **argv);
#endif
