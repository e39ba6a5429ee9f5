#!/usr/bin/python3
"""Send one UDP datagram from --src:--sport to --dst:--dport (issue 9, class 1).

Run as root where --src is a local address; a raw socket writes the UDP
header, so --src:--sport may already be held by a server socket (the lab's
UDP recorder on the allowed server's address and port 443). The lab uses
it to play the server speaking first after the client's conntrack entry is
gone. Prints {"sent": N}.
"""
import argparse
import json
import socket
import struct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--sport", type=int, required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--dport", type=int, required=True)
    ap.add_argument("--payload", default="late server datagram")
    args = ap.parse_args()
    data = args.payload.encode()
    v6 = ":" in args.dst
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_UDP)
    if v6:
        # the kernel fills the UDP checksum (offset 6 in the header we write)
        s.setsockopt(socket.IPPROTO_IPV6, 7, 6)  # IPV6_CHECKSUM
    s.bind((args.src, 0))
    # IPv4: checksum 0 (none), which UDP over IPv4 allows
    hdr = struct.pack("!HHHH", args.sport, args.dport, 8 + len(data), 0)
    n = s.sendto(hdr + data, (args.dst, 0))
    print(json.dumps({"sent": n}))


if __name__ == "__main__":
    main()
