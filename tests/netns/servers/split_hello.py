#!/usr/bin/python3
"""A TLS client whose ClientHello leaves in several small TCP segments.

The hello is produced with ssl.MemoryBIO (so it is a real, verifiable
handshake), cut into --pieces parts and sent with TCP_NODELAY, one send()
per part, so the filter sees it split across segments. Then the handshake
is completed over the socket and `GET /file` is sent. Prints JSON:
{"result": "ok"|"reset"|"closed"|"timeout"|"error", "segments": N,
 "body": "...", "elapsed": s}.
"""
import argparse
import json
import socket
import ssl
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sni", required=True)
    ap.add_argument("--addr", help="connect here instead of resolving --sni")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--pieces", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=4.0)
    args = ap.parse_args()

    out = {"result": "error", "segments": 0}
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
    addr = args.addr or socket.getaddrinfo(args.sni, args.port, type=socket.SOCK_STREAM)[0][4][0]
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(args.timeout)
    try:
        s.connect((addr, args.port))
        n = max(1, args.pieces)
        cut = [len(hello) * i // n for i in range(n + 1)]
        # The first piece is small so that not even the record header is whole.
        cut[1] = min(cut[1], 3)
        for i in range(n):
            s.send(hello[cut[i]:cut[i + 1]])
            out["segments"] += 1
        body = b""
        done = False
        deadline = t0 + args.timeout
        while time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                out["result"] = "closed"
                break
            inc.write(data)
            if not done:
                try:
                    tls.do_handshake()
                    done = True
                    out["handshake"] = True
                    req = "GET /file HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % args.sni
                    tls.write(req.encode())
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
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    pass
                if b"\r\n\r\n" in body:
                    head, _, rest = body.partition(b"\r\n\r\n")
                    length = None
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    if length is not None and len(rest) >= length:
                        out["result"] = "ok"
                        out["status"] = head.split(b"\r\n")[0].decode("latin-1")
                        out["body"] = rest[:length].decode("latin-1")
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
