"""N HTTPS connections from the client namespace, each a fresh TCP
connection (fresh source port), to ADDR with SNI NAME: GET PATH, check the
body. Prints JSON {"ok": n, "failed": [reasons]}. Bounded: --timeout per
connection, --workers threads."""
import argparse
import json
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

ap = argparse.ArgumentParser()
ap.add_argument("--addr", required=True)
ap.add_argument("--name", required=True)
ap.add_argument("--path", default="/file")
ap.add_argument("--expect", required=True)
ap.add_argument("--cafile", required=True)
ap.add_argument("-n", type=int, default=200)
ap.add_argument("--workers", type=int, default=8)
ap.add_argument("--timeout", type=float, default=5)
a = ap.parse_args()
ctx = ssl.create_default_context(cafile=a.cafile)


def one(i):
    try:
        with socket.create_connection((a.addr, 443), timeout=a.timeout) as s:
            with ctx.wrap_socket(s, server_hostname=a.name) as t:
                t.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                           % (a.path, a.name)).encode())
                data = b""
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
        return None if body == a.expect else "body %r" % body[:80]
    except Exception as e:  # noqa: BLE001 (reported, not raised)
        return "%s: %s" % (type(e).__name__, e)


with ThreadPoolExecutor(a.workers) as ex:
    res = list(ex.map(one, range(a.n)))
print(json.dumps({"ok": sum(r is None for r in res), "failed": [r for r in res if r]}))
