#!/usr/bin/python3
"""A TLS client whose ClientHello rides in the SYN: the kernel's own TCP Fast Open.

sendto(MSG_FASTOPEN) on an unconnected socket puts the first bytes into the
SYN (the namespace needs net.ipv4.tcp_fastopen with 0x1|0x4: client, no
cookie). The rest is an ordinary handshake and `GET /file`. Prints JSON:
{"result": "ok"|"reset"|"refused"|"closed"|"timeout"|"tls_error"|"error",
 "handshake": bool, "body": "...", "elapsed": s}.
"""
import argparse
import json
import socket
import ssl
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sni", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--timeout", type=float, default=4.0)
    args = ap.parse_args()

    out = {"result": "error", "handshake": False}
    t0 = time.monotonic()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.cafile)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outb, server_hostname=args.sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outb.read()
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    body = b""
    try:
        n = s.sendto(hello, socket.MSG_FASTOPEN, (args.addr, args.port))
        out["syn_bytes"] = n
        if n < len(hello):
            s.sendall(hello[n:])
        deadline = t0 + args.timeout
        done = False
        while time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                out["result"] = "closed"
                break
            inc.write(data)
            if not done:
                try:
                    tls.do_handshake()
                    done = out["handshake"] = True
                    tls.write(("GET /file HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                               % args.sni).encode())
                except ssl.SSLWantReadError:
                    pass
            pending = outb.read()
            if pending:
                s.sendall(pending)
            if done:
                try:
                    while True:
                        chunk = tls.read(65536)
                        if not chunk:
                            break
                        body += chunk
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    pass
                head, sep, rest = body.partition(b"\r\n\r\n")
                if sep:
                    length = [int(x.split(b":")[1]) for x in head.split(b"\r\n")
                              if x.lower().startswith(b"content-length:")]
                    if length and len(rest) >= length[0]:
                        out["result"] = "ok"
                        out["body"] = rest[:length[0]].decode("latin-1")
                        break
        else:
            out["result"] = "timeout"
    except ConnectionResetError:
        out["result"] = "reset"
    except ConnectionRefusedError:
        out["result"] = "refused"
    except socket.timeout:
        out["result"] = "timeout"
    except ssl.SSLError as e:
        out["result"] = "tls_error"
        out["error"] = str(e)
    except OSError as e:
        out["result"] = "error"
        out["error"] = str(e)
    finally:
        s.close()
    out["elapsed"] = time.monotonic() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
