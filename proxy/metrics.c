/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * GET /metrics in the Prometheus text format. The daemon hands us a
 * snapshot callback; we only format and serve.
 */
#include "metrics.h"
#include "core/addr.h"
#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct metrics {
	struct evhttp *http;
	metrics_collect_fn collect;
	void *arg;
};

static const char *const verdict_label[5] = {
    [VERDICT_PASS] = "pass",
    [VERDICT_ALLOW] = "allow",
    [VERDICT_DENY] = "deny",
    [VERDICT_DROP] = "drop",
    [VERDICT_INSPECT] = "inspect",
};

static int head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0
	           ? -ENOMEM
	           : 0;
}

#define ADD(...)                                                                                   \
	do {                                                                                       \
		if (evbuffer_add_printf(out, __VA_ARGS__) < 0)                                     \
			return -ENOMEM;                                                            \
	} while (0)

int metrics_render(const struct metrics_snapshot *s, struct evbuffer *out)
{
	if (head(out, "egressd_build_info", "gauge", "Build information; always 1.") < 0)
		return -ENOMEM;
	ADD("egressd_build_info{version=\"%s\"} 1\n", EGRESSD_VERSION);

	if (head(out, "egressd_packets_total", "counter",
	         "Verdicts given to queued packets, by verdict.") < 0)
		return -ENOMEM;
	for (unsigned v = 0; v < 5; v++)
		ADD("egressd_packets_total{verdict=\"%s\"} %llu\n", verdict_label[v],
		    (unsigned long long)s->packets[v]);

	if (head(out, "egressd_flows_total", "counter",
	         "Flows decided, by decision and deny reason (audit mode counts would-be "
	         "denials).") < 0)
		return -ENOMEM;
	ADD("egressd_flows_total{decision=\"allow\",reason=\"\"} %llu\n",
	    (unsigned long long)s->flows_allow);
	for (unsigned r = 1; r < REASON_COUNT_; r++)
		ADD("egressd_flows_total{decision=\"deny\",reason=\"%s\"} %llu\n",
		    reason_name((enum reason)r), (unsigned long long)s->flows_deny[r]);

	if (head(out, "egressd_dns_queries_total", "counter",
	         "Client DNS queries, by decision (fail: upstream failure).") < 0)
		return -ENOMEM;
	ADD("egressd_dns_queries_total{decision=\"allow\"} %llu\n",
	    (unsigned long long)s->dns_allowed);
	ADD("egressd_dns_queries_total{decision=\"deny\"} %llu\n",
	    (unsigned long long)s->dns_denied);
	ADD("egressd_dns_queries_total{decision=\"fail\"} %llu\n",
	    (unsigned long long)s->dns_failed);

	if (head(out, "egressd_queue_dropped_total", "counter",
	         "Packets the kernel dropped before egressd saw them (queue or socket full).") < 0)
		return -ENOMEM;
	ADD("egressd_queue_dropped_total %llu\n", (unsigned long long)s->queue_dropped);

	if (head(out, "egressd_bindings", "gauge",
	         "Live address-to-name bindings learnt from DNS answers.") < 0)
		return -ENOMEM;
	ADD("egressd_bindings %llu\n", (unsigned long long)s->bindings);

	if (head(out, "egressd_flows_tracked", "gauge", "Flows in the flow table.") < 0)
		return -ENOMEM;
	ADD("egressd_flows_tracked %llu\n", (unsigned long long)s->flows_tracked);

	if (head(out, "egressd_log_write_errors_total", "counter",
	         "Event log lines lost to failed or short writes.") < 0)
		return -ENOMEM;
	ADD("egressd_log_write_errors_total %llu\n", (unsigned long long)s->log_write_errors);

	if (head(out, "egressd_dns_answers_dropped_total", "counter",
	         "Upstream DNS answers dropped because their question was not the one sent "
	         "(0x20 case): forged, or an upstream that does not keep the case.") < 0)
		return -ENOMEM;
	ADD("egressd_dns_answers_dropped_total %llu\n",
	    (unsigned long long)s->dns_answers_dropped);

	if (head(out, "egressd_dns_client_limited_total", "counter",
	         "One DNS client over a per-client limit: TCP connections closed at accept "
	         "(tcp_connections), queries refused while it had its share in flight (inflight), "
	         "TCP connections closed with a query unfinished 10 s after its first byte "
	         "(tcp_query_time).") < 0)
		return -ENOMEM;
	ADD("egressd_dns_client_limited_total{limit=\"tcp_connections\"} %llu\n",
	    (unsigned long long)s->dns_limited_conns);
	ADD("egressd_dns_client_limited_total{limit=\"inflight\"} %llu\n",
	    (unsigned long long)s->dns_limited_inflight);
	ADD("egressd_dns_client_limited_total{limit=\"tcp_query_time\"} %llu\n",
	    (unsigned long long)s->dns_limited_slow);
	if (head(out, "egressd_log_dropped_total", "counter",
	         "Event log lines dropped because the queue to the log writer was full.") < 0)
		return -ENOMEM;
	ADD("egressd_log_dropped_total %llu\n", (unsigned long long)s->log_dropped);

	if (s->nworkers) {
		if (head(out, "egressd_worker_packets_total", "counter",
		         "Queued packets each worker thread decided (worker = its index).") < 0)
			return -ENOMEM;
		for (unsigned i = 0; i < s->nworkers && i < METRICS_MAX_WORKERS; i++)
			ADD("egressd_worker_packets_total{worker=\"%u\"} %llu\n", i,
			    (unsigned long long)s->worker_packets[i]);
	}
	return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (!path || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "Not Found");
		return;
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	struct metrics_snapshot s;
	memset(&s, 0, sizeof(s));
	m->collect(m->arg, &s);
	struct evbuffer *body = evbuffer_new();
	if (!body || metrics_render(&s, body) < 0) {
		evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, "Out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

struct metrics *metrics_new(struct event_base *base, const struct conf_endpoint *ep,
                            metrics_collect_fn collect, void *arg, char *err, size_t errlen)
{
	char host[ADDR_STRLEN + 1];
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->collect = collect;
	m->arg = arg;
	m->http = evhttp_new(base);
	if (!m->http) {
		snprintf(err, errlen, "metrics: evhttp_new failed");
		goto fail;
	}
	/* A scraper sends a small GET: refuse anything large or slow. */
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 1024);
	evhttp_set_timeout(m->http, 10);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(m->http, on_request, m);
	addr_str(&ep->addr, host);
	struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(m->http, host, ep->port);
	if (!bound) {
		snprintf(err, errlen, "metrics: cannot listen on %s%s%s:%u: %s",
		         ep->addr.family == ADDR_V6 ? "[" : "", host,
		         ep->addr.family == ADDR_V6 ? "]" : "", ep->port, strerror(errno));
		goto fail;
	}
	/* 127/8 arriving on another interface (route_localnet=1, as kube-proxy
	 * sets it) must not reach a loopback listener: only lo may. */
	if (ep->addr.family == ADDR_V4 && ep->addr.b[0] == 127 &&
	    setsockopt(evhttp_bound_socket_get_fd(bound), SOL_SOCKET, SO_BINDTODEVICE, "lo",
	               sizeof("lo")) == -1) {
		snprintf(err, errlen, "metrics: cannot bind %s:%u to lo: %s", host, ep->port,
		         strerror(errno));
		goto fail;
	}
	return m;
fail:
	metrics_free(m);
	return NULL;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->http)
		evhttp_free(m->http);
	free(m);
}
