#!/usr/bin/python3
"""Open N TCP connections to one address and port, one after the other, fast.

  connburst.py --addr 203.0.113.66 --port 80 --count 20 [--send BYTES] [--timeout 2]

Each attempt: connect (optionally send --send and wait for the answer or the
close), then close. Prints {"refused": n, "connected": n, "timeout": n,
"other": n, "elapsed": s}. Bounded: at most 1000 attempts and --timeout each.
"""
import argparse
import json
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--send", default=None)
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    if not 0 < args.count <= 1000:
        ap.error("--count must be 1..1000")
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    out = {"refused": 0, "connected": 0, "timeout": 0, "reset": 0, "other": 0}
    t0 = time.monotonic()
    for _ in range(args.count):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        try:
            s.connect((args.addr, args.port))
            if args.send is not None:
                s.sendall(args.send.encode())
                s.recv(4096)
            out["connected"] += 1
        except ConnectionRefusedError:
            out["refused"] += 1
        except ConnectionResetError:
            out["reset"] += 1
        except socket.timeout:
            out["timeout"] += 1
        except OSError:
            out["other"] += 1
        finally:
            s.close()
    out["elapsed"] = time.monotonic() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
