#!/usr/bin/python3
"""A QUIC client's first flight, without a QUIC stack: one or more Initials.

The ClientHello is OpenSSL's own TLS 1.3 hello (python ssl over a MemoryBIO,
ALPN h3, no middlebox-compatibility session id) with a
quic_transport_parameters extension added, as a QUIC client sends it. It is
carried in CRYPTO frames of QUIC Initial packets (RFC 9000 17.2.2), each
protected with the Initial keys derived from the destination connection id
(RFC 9001 5) and padded to 1200 bytes:

  first(1) version(4) dcid_len(1) dcid scid_len(1) scid token_len(1)=0
  length(2, varint) pn(1..4, header-protected) | AES-128-GCM(frames) tag(16)

--split N spreads the hello over N Initials (CRYPTO frames at increasing
offsets, packet numbers 0..N-1). --tamper flips one ciphertext bit of the
first Initial. --garbage sends one datagram that is not a long header
(carrying an AWS access key id in clear). With --wait S the client waits up to S seconds for a reply
to its first flight and, if one comes, sends --followup datagrams on the
same socket and waits for their replies. --sport binds a fixed source port
(a later run reuses the 4-tuple). Prints one JSON object: what was
sent (length, sha256 per datagram) and how many replies arrived.
"""
import argparse
import hashlib
import hmac
import json
import os
import select
import socket
import ssl
import struct
import sys
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

V1, V2 = 0x00000001, 0x6B3343CF
SALT = {V1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
        V2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")}
LABEL = {V1: b"quic ", V2: b"quicv2 "}
DATAGRAM = 1200


# ---- TLS ClientHello -----------------------------------------------------

def openssl_hello(sni):
    """The handshake message (type 1) OpenSSL writes as a TLS 1.3 client."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h3"])
    ctx.options &= ~ssl.OP_ENABLE_MIDDLEBOX_COMPAT
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    recs, hs = out.read(), b""
    # records: type(1) version(2) length(2) fragment
    while recs:
        typ, _, ln = struct.unpack("!BHH", recs[:5])
        if typ != 22:
            raise SystemExit("quic_client: unexpected TLS record type %d" % typ)
        hs += recs[5:5 + ln]
        recs = recs[5 + ln:]
    if hs[0] != 1 or int.from_bytes(hs[1:4], "big") != len(hs) - 4:
        raise SystemExit("quic_client: OpenSSL did not write one ClientHello")
    return hs


def add_transport_params(hs, scid):
    """Append quic_transport_parameters (0x39) to the hello's extensions.

    body: version(2) random(32) session_id<1> suites<2> compression<1>
          extensions<2>
    """
    body = hs[4:]
    i = 2 + 32
    i += 1 + body[i]
    i += 2 + int.from_bytes(body[i:i + 2], "big")
    i += 1 + body[i]
    exts = body[i + 2:i + 2 + int.from_bytes(body[i:i + 2], "big")]

    def tp(pid, val):
        return bytes([pid, len(val)]) + val
    params = (tp(0x01, b"\x80\x00\x75\x30")            # max_idle_timeout 30000
              + tp(0x04, b"\x80\x10\x00\x00")           # initial_max_data
              + tp(0x08, b"\x40\x64")                   # initial_max_streams_bidi 100
              + tp(0x0F, scid))                         # initial_source_connection_id
    exts += struct.pack("!HH", 0x39, len(params)) + params
    body = body[:i] + struct.pack("!H", len(exts)) + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


# ---- QUIC Initial --------------------------------------------------------

def expand_label(secret, label, length):
    """HKDF-Expand-Label with an empty context (one block is enough here)."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    return hmac.new(secret, info + b"\x01", hashlib.sha256).digest()[:length]


def initial_keys(dcid, version):
    initial = hmac.new(SALT[version], dcid, hashlib.sha256).digest()   # HKDF-Extract
    client = expand_label(initial, b"client in", 32)
    lab = LABEL[version]
    return (expand_label(client, lab + b"key", 16), expand_label(client, lab + b"iv", 12),
            expand_label(client, lab + b"hp", 16))


def crypto_frame(off, data):
    # type 0x06, offset and length as 2-byte varints (0b01 prefix)
    return b"\x06" + struct.pack("!HH", 0x4000 | off, 0x4000 | len(data)) + data


def initial(dcid, scid, version, pn, frames, pn_len=2):
    key, iv, hp = initial_keys(dcid, version)
    first = 0xC0 | (0x10 if version == V2 else 0x00) | (pn_len - 1)
    head = struct.pack("!BI", first, version) + bytes([len(dcid)]) + dcid + \
        bytes([len(scid)]) + scid + b"\x00"
    # pad the plaintext so that the whole datagram is DATAGRAM bytes
    plen = DATAGRAM - len(head) - 2 - pn_len - 16
    if len(frames) > plen:
        raise SystemExit("quic_client: frames do not fit one Initial")
    frames += bytes(plen - len(frames))
    hdr = head + struct.pack("!H", 0x4000 | (pn_len + plen + 16)) + pn.to_bytes(pn_len, "big")
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    ct = AESGCM(key).encrypt(nonce, frames, hdr)
    # header protection: sample 4 bytes after the packet number's start
    sample = ct[4 - pn_len:4 - pn_len + 16]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    pkt = bytearray(hdr + ct)
    pkt[0] ^= mask[0] & 0x0F
    for k in range(pn_len):
        pkt[len(hdr) - pn_len + k] ^= mask[1 + k]
    assert len(pkt) == DATAGRAM
    return bytes(pkt)


def first_flight(sni, version, split):
    dcid, scid = os.urandom(8), os.urandom(8)
    hello = add_transport_params(openssl_hello(sni), scid)
    cut = [len(hello) * k // split for k in range(split + 1)]
    out = [initial(dcid, scid, version, k, crypto_frame(cut[k], hello[cut[k]:cut[k + 1]]))
           for k in range(split)]
    return out, {"dcid": dcid.hex(), "hello_len": len(hello)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--sni", default="")
    ap.add_argument("--version", choices=["v1", "v2"], default="v1")
    ap.add_argument("--split", type=int, default=1)
    ap.add_argument("--garbage", action="store_true")
    ap.add_argument("--tamper", action="store_true")
    ap.add_argument("--wait", type=float, default=0.0)
    ap.add_argument("--followup", type=int, default=0)
    ap.add_argument("--sport", type=int, default=0, help="bind this source port (SO_REUSEADDR)")
    args = ap.parse_args()

    if args.garbage:
        # first byte 0x17 (top bit clear): not a QUIC long header
        grams, info = [b"\x17\x03\x03" + b"&key=AKIAIOSFODNN7EXAMPLE" * 30], {}
    else:
        ver = V2 if args.version == "v2" else V1
        grams, info = first_flight(args.sni, ver, max(1, args.split))
        if args.tamper:
            # one ciphertext bit: the AEAD tag no longer matches
            d = bytearray(grams[0])
            d[600] ^= 0x01
            grams[0] = bytes(d)
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if args.sport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", args.sport))
    s.connect((args.addr, args.port))
    sent = []

    def send(d):
        s.send(d)
        sent.append({"len": len(d), "sha256": hashlib.sha256(d).hexdigest()})

    def replies(want, timeout):
        got, deadline = 0, time.monotonic() + timeout
        while got < want:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            try:
                s.recv(65536)
            except OSError:        # ICMP unreachable: no more replies
                break
            got += 1
        return got

    for d in grams:
        send(d)
    info["replies"] = replies(1, args.wait) if args.wait > 0 else 0
    info["followup_replies"] = 0
    if info["replies"] and args.followup:
        for k in range(args.followup):
            # a short-header packet: 0b01xxxxxx, the server's (unknown) dcid, junk
            send(b"\x41" + os.urandom(8) + bytes([k]) * 40)
        info["followup_replies"] = replies(args.followup, args.wait)
    info["sent"] = sent
    json.dump(info, sys.stdout)
    print()


if __name__ == "__main__":
    main()
