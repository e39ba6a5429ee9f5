#!/usr/bin/python3
"""Issue 9, class 2: ISN rewind + stale decoy (raw sockets; a gateway client is root).

The crafted client of the evasion suite (evasion/rawtcp.py) with one change:
right after its handshake ACK it sends a SYN with a sequence number far before
the real ISN, then a ClientHello naming --decoy at that old sequence. The
server discards both (old data, outside its window); an engine that re-based
its stream on that SYN decides on the decoy. Then the client goes on as usual
with the real hello naming --sni. Prints rawtcp.py's JSON (+ "injected").

--mode badsum: no rewind; the decoy goes at the real ISN+1 with a wrong TCP
checksum (the server drops it; an engine that does not check decides on it).
"""
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "evasion"))
import rawtcp  # noqa: E402

REWIND = 100000


class Rewind(rawtcp.Client):
    injected = False

    def send(self, seq, flags, data=b"", *a, **kw):
        super().send(seq, flags, data, *a, **kw)
        if flags == rawtcp.ACK and not data and not self.injected and self.rcv_nxt:
            self.injected = True
            self.out["injected"] = True
            if MODE == "badsum":
                decoy = rawtcp.make_hello(DECOY, self.a.cafile)[3]
                seg = bytearray(rawtcp.tcp_segment(self.fam, self.src, self.dst, self.sport,
                                                   self.dport, self.isn + 1, self.rcv_nxt,
                                                   rawtcp.ACK | rawtcp.PSH, decoy))
                seg[16] ^= 0x55
                if self.fam == socket.AF_INET:
                    pkt = rawtcp.ipv4(self.src, self.dst, 6, bytes(seg), 4242)
                else:
                    pkt = rawtcp.ipv6(self.src, self.dst, 6, bytes(seg))
                try:
                    self.tx.sendto(pkt, (self.dst, 0))
                except PermissionError:
                    self.out["eperm"] = self.out.get("eperm", 0) + 1
                time.sleep(0.2)
                return
            base = (self.isn - REWIND) & 0xFFFFFFFF
            super().send(base, rawtcp.SYN, b"", struct.pack("!BBH", 2, 4, 1460))
            time.sleep(0.05)
            decoy = rawtcp.make_hello(DECOY, self.a.cafile)[3]
            super().send((base + 1) & 0xFFFFFFFF, rawtcp.ACK | rawtcp.PSH, decoy)
            time.sleep(0.2)


MODE = "rewind"


def main():
    global DECOY, MODE
    i = sys.argv.index("--decoy")
    DECOY = sys.argv[i + 1]
    del sys.argv[i:i + 2]
    if "--mode" in sys.argv:
        i = sys.argv.index("--mode")
        MODE = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    rawtcp.Client = Rewind
    return rawtcp.main()


if __name__ == "__main__":
    sys.exit(main())
