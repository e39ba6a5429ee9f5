/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rtnetlink requests for egressd run (rtnl.h). */
#include "rtnl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* A link name the kernel takes: 1 to IFNAMSIZ - 1 bytes, no '/', no space. */
static bool rtnl_name_ok(const char *s)
{
	size_t n = s ? strnlen(s, IFNAMSIZ) : 0;

	if (n == 0 || n >= IFNAMSIZ)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/' || s[i] == ':' || s[i] <= ' ')
			return false;
	}
	return true;
}

static int rtnl_af(const struct addr *a)
{
	if (!a)
		return -1;
	if (a->family == ADDR_V4)
		return AF_INET;
	if (a->family == ADDR_V6)
		return AF_INET6;
	return -1;
}

static size_t rtnl_alen(const struct addr *a)
{
	return a->family == ADDR_V4 ? 4 : 16;
}

/* Header plus a zeroed family header of `extra` bytes; NULL if too small. */
static struct nlmsghdr *rtnl_put_header(void *buf, size_t len, uint32_t seq, uint16_t type,
                                        uint16_t flags, size_t extra)
{
	if (!buf || len < MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(extra))
		return NULL;
	memset(buf, 0, len); /* attribute padding included: no stack bytes go out */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = seq;
	mnl_nlmsg_put_extra_header(nlh, extra);
	return nlh;
}

struct nlmsghdr *rtnl_msg_veth_new(void *buf, size_t len, uint32_t seq, const char *name,
                                   const char *peer, pid_t peer_pid)
{
	if (!rtnl_name_ok(name) || !rtnl_name_ok(peer) || peer_pid < 0)
		return NULL;
	struct nlmsghdr *nlh = rtnl_put_header(buf, len, seq, RTM_NEWLINK,
	                                       NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifinfomsg));
	if (!nlh)
		return NULL;
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_family = AF_UNSPEC;
	if (!mnl_attr_put_strz_check(nlh, len, IFLA_IFNAME, name))
		return NULL;
	struct nlattr *info = mnl_attr_nest_start_check(nlh, len, IFLA_LINKINFO);
	if (!info || !mnl_attr_put_strz_check(nlh, len, IFLA_INFO_KIND, "veth"))
		return NULL;
	struct nlattr *data = mnl_attr_nest_start_check(nlh, len, IFLA_INFO_DATA);
	struct nlattr *pe = data ? mnl_attr_nest_start_check(nlh, len, VETH_INFO_PEER) : NULL;
	/* The peer: its own ifinfomsg, then its attributes. */
	if (!pe || nlh->nlmsg_len + MNL_ALIGN(sizeof(struct ifinfomsg)) > len)
		return NULL;
	struct ifinfomsg *pifi = (struct ifinfomsg *)((char *)nlh + nlh->nlmsg_len);
	memset(pifi, 0, MNL_ALIGN(sizeof(struct ifinfomsg)));
	pifi->ifi_family = AF_UNSPEC;
	nlh->nlmsg_len += MNL_ALIGN(sizeof(struct ifinfomsg));
	if (!mnl_attr_put_strz_check(nlh, len, IFLA_IFNAME, peer))
		return NULL;
	if (peer_pid > 0 && !mnl_attr_put_u32_check(nlh, len, IFLA_NET_NS_PID, (uint32_t)peer_pid))
		return NULL;
	mnl_attr_nest_end(nlh, pe);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	return nlh;
}

struct nlmsghdr *rtnl_msg_link_del(void *buf, size_t len, uint32_t seq, const char *name)
{
	if (!rtnl_name_ok(name))
		return NULL;
	struct nlmsghdr *nlh =
	    rtnl_put_header(buf, len, seq, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
	if (!nlh || !mnl_attr_put_strz_check(nlh, len, IFLA_IFNAME, name))
		return NULL;
	return nlh;
}

struct nlmsghdr *rtnl_msg_link_up(void *buf, size_t len, uint32_t seq, const char *name)
{
	if (!rtnl_name_ok(name))
		return NULL;
	struct nlmsghdr *nlh =
	    rtnl_put_header(buf, len, seq, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	if (!nlh)
		return NULL;
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (!mnl_attr_put_strz_check(nlh, len, IFLA_IFNAME, name))
		return NULL;
	return nlh;
}

struct nlmsghdr *rtnl_msg_addr_new(void *buf, size_t len, uint32_t seq, unsigned ifindex,
                                   const struct addr *a, unsigned prefix)
{
	int af = rtnl_af(a);
	if (af < 0 || ifindex == 0 || prefix > 8 * rtnl_alen(a))
		return NULL;
	struct nlmsghdr *nlh = rtnl_put_header(buf, len, seq, RTM_NEWADDR,
	                                       NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifaddrmsg));
	if (!nlh)
		return NULL;
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	ifa->ifa_family = (uint8_t)af;
	ifa->ifa_prefixlen = (uint8_t)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	if (!mnl_attr_put_check(nlh, len, IFA_LOCAL, rtnl_alen(a), a->b) ||
	    !mnl_attr_put_check(nlh, len, IFA_ADDRESS, rtnl_alen(a), a->b))
		return NULL;
	return nlh;
}

struct nlmsghdr *rtnl_msg_route_default(void *buf, size_t len, uint32_t seq, const struct addr *gw)
{
	int af = rtnl_af(gw);
	if (af < 0)
		return NULL;
	struct nlmsghdr *nlh = rtnl_put_header(buf, len, seq, RTM_NEWROUTE,
	                                       NLM_F_CREATE | NLM_F_EXCL, sizeof(struct rtmsg));
	if (!nlh)
		return NULL;
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	rtm->rtm_family = (uint8_t)af;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	if (!mnl_attr_put_check(nlh, len, RTA_GATEWAY, rtnl_alen(gw), gw->b))
		return NULL;
	return nlh;
}

int rtnl_parse_ack(const void *buf, size_t n, uint32_t seq)
{
	const struct nlmsghdr *nlh = buf;
	int len = n > (size_t)INT32_MAX ? INT32_MAX : (int)n;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (nlh->nlmsg_seq != seq)
			continue;
		if (nlh->nlmsg_type != NLMSG_ERROR)
			continue;
		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nlmsgerr))
			return -EPROTO;
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
		/* error is 0 (ack) or a negative errno; anything else is not the kernel's */
		if (e->error > 0 || e->error < -4095)
			return -EPROTO;
		return e->error;
	}
	return -EPROTO;
}

int rtnl_talk(struct nlmsghdr *nlh)
{
	char buf[8192]; /* an ack, or an error quoting our request */
	struct mnl_socket *nl;
	int rc;

	if (!nlh)
		return -EINVAL;
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto out;
	}
	/* The reply is bounded in time: a kernel that never answers is an error. */
	struct timeval tv = {.tv_sec = 5};
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	rc = -EPROTO;
	for (int i = 0; i < 16; i++) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		rc = rtnl_parse_ack(buf, (size_t)n, nlh->nlmsg_seq);
		if (rc != -EPROTO)
			break;
	}
out:
	mnl_socket_close(nl);
	return rc;
}

static uint32_t rtnl_seq(void)
{
	return (uint32_t)time(NULL);
}

int rtnl_veth_add(const char *name, const char *peer, pid_t peer_pid)
{
	char buf[RTNL_MSG_MAX];
	return rtnl_talk(rtnl_msg_veth_new(buf, sizeof buf, rtnl_seq(), name, peer, peer_pid));
}

int rtnl_link_del(const char *name)
{
	char buf[RTNL_MSG_MAX];
	return rtnl_talk(rtnl_msg_link_del(buf, sizeof buf, rtnl_seq(), name));
}

int rtnl_link_up(const char *name)
{
	char buf[RTNL_MSG_MAX];
	return rtnl_talk(rtnl_msg_link_up(buf, sizeof buf, rtnl_seq(), name));
}

int rtnl_addr_add(const char *dev, const struct addr *a, unsigned prefix)
{
	char buf[RTNL_MSG_MAX];
	unsigned idx = rtnl_name_ok(dev) ? if_nametoindex(dev) : 0;
	if (idx == 0)
		return -ENODEV;
	return rtnl_talk(rtnl_msg_addr_new(buf, sizeof buf, rtnl_seq(), idx, a, prefix));
}

int rtnl_route_default(const struct addr *gw)
{
	char buf[RTNL_MSG_MAX];
	return rtnl_talk(rtnl_msg_route_default(buf, sizeof buf, rtnl_seq(), gw));
}
