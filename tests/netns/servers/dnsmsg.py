"""Minimal DNS wire format for the lab's helpers (stdlib only, bounded).

Header (RFC 1035 4.1.1), 12 bytes:
  +--id(16)--+QR|opcode(4)|AA|TC|RD|RA|Z(3)|rcode(4)+--qd--+--an--+--ns--+--ar--+
A question is a name (length-prefixed labels, 0-terminated), qtype(16), qclass(16).
"""
import struct

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASSES = {"IN": 1, "CH": 3, "HS": 4, "ANY": 255}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class BadMessage(Exception):
    pass


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError("bad label in %r" % name)
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(qid, questions, rd=True):
    """questions: list of (name, qtype name or int, qclass name or int)."""
    flags = 0x0100 if rd else 0
    msg = struct.pack("!HHHHHH", qid, flags, len(questions), 0, 0, 0)
    for name, qtype, qclass in questions:
        qt = TYPES[qtype] if isinstance(qtype, str) else qtype
        qc = CLASSES[qclass] if isinstance(qclass, str) else qclass
        msg += encode_name(name) + struct.pack("!HH", qt, qc)
    return msg


def _name(msg, off, depth=0):
    """Decode a (possibly compressed) name at off; return (name, next offset)."""
    labels = []
    end = None
    for _ in range(128):
        if off >= len(msg):
            raise BadMessage("name runs past the message")
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 == 0xC0:
            if off + 2 > len(msg) or depth > 16:
                raise BadMessage("bad pointer")
            ptr = struct.unpack("!H", msg[off:off + 2])[0] & 0x3FFF
            if end is None:
                end = off + 2
            name, _ = _name(msg, ptr, depth + 1)
            if name:
                labels.append(name)
            off = None
            break
        if n > 63 or off + 1 + n > len(msg):
            raise BadMessage("bad label")
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    else:
        raise BadMessage("too many labels")
    return ".".join(labels), (end if end is not None else off)


def parse(msg):
    if len(msg) < 12:
        raise BadMessage("short header")
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    out = {"id": qid, "qr": bool(flags & 0x8000), "opcode": (flags >> 11) & 0xF,
           "aa": bool(flags & 0x0400), "tc": bool(flags & 0x0200),
           "rd": bool(flags & 0x0100), "rcode": flags & 0xF,
           "rcode_name": RCODES.get(flags & 0xF, str(flags & 0xF)),
           "questions": [], "answers": []}
    for _ in range(qd):
        name, off = _name(msg, off)
        if off + 4 > len(msg):
            raise BadMessage("short question")
        qt, qc = struct.unpack("!HH", msg[off:off + 4])
        off += 4
        out["questions"].append({"name": name, "type": TYPE_NAMES.get(qt, qt), "class": qc})
    for _ in range(an):
        name, off = _name(msg, off)
        if off + 10 > len(msg):
            raise BadMessage("short rr")
        rt, rc, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if off + rdlen > len(msg):
            raise BadMessage("rdata runs past the message")
        rdata = msg[off:off + rdlen]
        if rt == 1 and rdlen == 4:
            value = ".".join(str(b) for b in rdata)
        elif rt == 28 and rdlen == 16:
            import ipaddress
            value = str(ipaddress.IPv6Address(rdata))
        elif rt == 5:
            value, _ = _name(msg, off)
        elif rt == 16:
            value = rdata[1:1 + rdata[0]].decode("ascii", "replace") if rdata else ""
        else:
            value = rdata.hex()
        off += rdlen
        out["answers"].append({"name": name, "type": TYPE_NAMES.get(rt, rt), "ttl": ttl,
                               "value": value})
    return out


def build_answer(query, rcode, answers, aa=True):
    """answers: list of (type int, rdata bytes) for the first question's name."""
    qid, flags = struct.unpack("!HH", query[:4])
    _, off = _name(query, 12)
    question = query[12:off + 4]
    rflags = 0x8000 | (flags & 0x0100) | (0x0400 if aa else 0) | (rcode & 0xF)
    msg = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 0) + question
    for rtype, rdata in answers:
        msg += struct.pack("!HHHIH", 0xC00C, rtype, 1, 60, len(rdata)) + rdata
    return msg
