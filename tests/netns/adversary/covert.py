#!/usr/bin/python3
"""Issue 9, class 9: a covert channel in the headers of SYNs and bare ACKs.

With unknown_ip = verify a SYN to any address passes and the flow stays
undecided until its first payload, so an implant that never sends payload can
still talk to its collector in the headers of the packets that do pass. Each
--probe opens one connection to --dst from raw sockets (the crafted client's
plumbing, evasion/rawtcp.py) and puts --marker where the probe says:

  plain        control: the options Linux sends (MSS, SACK-permitted, timestamps,
               window scale; NOP NOP timestamps on the ACK), no marker anywhere
  ipopt_syn    an IPv4 option (an unassigned type, copied flag clear) on the SYN
  ipopt_ack    a plain SYN, then a bare ACK carrying the IPv4 option
  tcpopt_syn   an experimental TCP option (kind 253, RFC 4727) on the SYN
  tcpopt_ack   a plain SYN, then a bare ACK carrying the TCP option
  tfo_cookie   a SYN without data whose Fast Open option carries the marker as cookie
  eol_tail     the marker after an end-of-options-list in the SYN's option space
  v6_dstopt    IPv6: a destination options header on the SYN with an unknown
               (skippable) option holding the marker
  rr_socket    no raw socket: a kernel TCP socket with IP_OPTIONS record-route whose
               unused slots hold the marker (what an unprivileged process can do)
  ack_train    issue 10: a plain SYN, then --count plain bare ACKs (the options
               Linux sends; data only in the timestamp values, which a plain stack
               fills freely): the kernel passes the first on its own, the engine
               counts every one against bare_packets

After the SYN the client waits for the SYN-ACK (up to --timeout) and, for the
*_ack probes, sends the ACK. Prints JSON {"probe", "sport", "synack": bool,
"reset": bool}. Only documentation addresses are used; this sends to --dst only.
"""
import argparse
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "evasion"))
import rawtcp  # noqa: E402

SYN, ACK, RST = rawtcp.SYN, rawtcp.ACK, rawtcp.RST
LINUX_SYN_OPTS = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + \
    struct.pack("!BBII", 8, 10, 12345, 0) + b"\x01" + b"\x03\x03\x07"


def ts_opts(val, ecr):
    return b"\x01\x01" + struct.pack("!BBII", 8, 10, val, ecr)


def ipv4(src, dst, body, ident, opts=b""):
    """ver|ihl tos total id flags|frag ttl proto csum src dst options (RFC 791)"""
    opts += b"\x00" * (-len(opts) % 4)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | (5 + len(opts) // 4), 0,
                      20 + len(opts) + len(body), ident, 0x4000, 64, 6, 0,
                      socket.inet_aton(src), socket.inet_aton(dst)) + opts
    return hdr[:10] + struct.pack("!H", rawtcp.csum(hdr)) + hdr[12:] + body


def dstopt(nh, marker):
    """destination options: next(1) len(1) then option type 0x1e (act 00: skip) len data,
    padded with PadN to a multiple of 8"""
    body = struct.pack("!BB", 0x1e, len(marker)) + marker
    pad = -(2 + len(body)) % 8
    if pad == 1:
        body += b"\x00"
    elif pad:
        body += struct.pack("!BB", 1, pad - 2) + b"\x00" * (pad - 2)
    return struct.pack("!BB", nh, (2 + len(body)) // 8 - 1) + body


class Probe(rawtcp.Client):
    def packet(self, seq, ack, flags, topts=b"", ipopts=b"", v6ext=b""):
        seg = rawtcp.tcp_segment(self.fam, self.src, self.dst, self.sport, self.dport, seq,
                                 ack, flags, b"", topts)
        self.ident = (self.ident + 1) & 0xFFFF or 1
        if self.fam == socket.AF_INET:
            return ipv4(self.src, self.dst, seg, self.ident, ipopts)
        if v6ext:
            body = dstopt(6, v6ext) + seg
            nxt = 60
        else:
            body, nxt = seg, 6
        return struct.pack("!IHBB16s16s", 6 << 28, len(body), nxt, 64,
                           socket.inet_pton(socket.AF_INET6, self.src),
                           socket.inet_pton(socket.AF_INET6, self.dst)) + body

    def tx_pkt(self, pkt, sock=None):
        try:
            (sock or self.tx).sendto(pkt, (self.dst, 0))
        except PermissionError:  # host mode: the OUTPUT hook dropped it
            self.out["eperm"] = self.out.get("eperm", 0) + 1

    def wait_synack(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            seg = self.recv(end - time.monotonic())
            if seg is None:
                return None
            flags, seq, ack, _ = seg
            if flags & RST:
                self.out["reset"] = True
                return None
            if flags & (SYN | ACK) == SYN | ACK:
                self.out["synack"] = True
                return seq
        return None

    def go(self, probe, marker, timeout):
        m = marker
        ipopt = struct.pack("!BB", 0x1e, 2 + len(m)) + m  # class 0, number 30: unassigned
        tcpopt = struct.pack("!BB", 253, 2 + len(m)) + m
        syn_t, syn_ip, syn_ext = LINUX_SYN_OPTS, b"", b""
        if probe == "ipopt_syn":
            syn_ip = ipopt
        elif probe == "tcpopt_syn":
            syn_t = struct.pack("!BBH", 2, 4, 1460) + tcpopt
        elif probe == "tfo_cookie":
            syn_t = struct.pack("!BBH", 2, 4, 1460) + struct.pack("!BB", 34, 2 + len(m)) + m
        elif probe == "eol_tail":
            syn_t = struct.pack("!BBH", 2, 4, 1460) + b"\x00" + m
        elif probe == "v6_dstopt":
            syn_ext = m
        self.tx_pkt(self.packet(self.isn, 0, SYN, syn_t, syn_ip, syn_ext))
        srv = self.wait_synack(timeout)
        if srv is not None:
            ack = (srv + 1) & 0xFFFFFFFF
            a_t, a_ip = ts_opts(12346, 1), b""
            if probe == "ipopt_ack":
                a_ip = ipopt
            elif probe == "tcpopt_ack":
                a_t = ts_opts(12346, 1) + tcpopt
            self.tx_pkt(self.packet(self.isn + 1, ack, ACK, a_t, a_ip))
            for i in range(1, self.count if probe == "ack_train" else 0):
                time.sleep(0.01)
                self.tx_pkt(self.packet(self.isn + 1, ack, ACK, ts_opts(12346 + i, 1)))
            time.sleep(0.3)
            self.tx_pkt(self.packet(self.isn + 1, ack, RST | ACK), self.tx_rst)


def rr_socket(dst, port, marker, timeout):
    """Record route (type 7): len ptr=4 then slots; the unused ones carry the marker."""
    slots = (marker + b"\x00" * 36)[:36]
    opt = struct.pack("!BBB", 7, 3 + len(slots), 4) + slots + b"\x00"
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, opt)
    s.settimeout(timeout)
    out = {"probe": "rr_socket", "synack": False, "reset": False}
    try:
        s.connect((dst, port))
        out["sport"] = s.getsockname()[1]
        out["synack"] = True
    except ConnectionRefusedError:
        out["reset"] = True
    except OSError as e:
        out["error"] = str(e)
    finally:
        s.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--marker", required=True, help="hex")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--count", type=int, default=1, help="ack_train: ACKs to send (<= 200)")
    args = ap.parse_args()
    args.count = max(1, min(args.count, 200))
    marker = bytes.fromhex(args.marker)
    if args.probe == "rr_socket":
        print(json.dumps(rr_socket(args.dst, args.port, marker, args.timeout)))
        return 0
    args.dump = None
    c = Probe(args)
    c.count = args.count
    c.out = {"probe": args.probe, "sport": c.sport, "synack": False, "reset": False}
    c.rst_rule(True)
    try:
        c.go(args.probe, b"" if args.probe == "plain" else marker, args.timeout)
    finally:
        c.rst_rule(False)
    print(json.dumps(c.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
