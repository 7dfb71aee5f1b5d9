#!/usr/bin/env python3
"""A tiny plain-TCP backend for `make run` and the integration tests.

  backend.py --listen 127.0.0.1:8080 --mode http   answers every request with 200 and a short
                                                   page, then closes (Connection: close)
  backend.py --listen 127.0.0.1:8080 --mode page   as http, but / is an HTML page whose script
                                                   fetches /r1 to /r10 one after the other; every
                                                   answer closes, so each is a new connection
  backend.py --listen 127.0.0.1:8080 --mode reject answers 413 at once and closes without
                                                   reading the rest (an early answer to an upload)
  backend.py --listen 127.0.0.1:8080 --mode count --count N
                                                   says nothing until N bytes came, then
                                                   answers "got N" and closes
  backend.py --listen 127.0.0.1:8080 --mode echo   echoes bytes back until the client half-closes,
                                                   then half-closes too; a connection that starts
                                                   with "GET " is answered as in http mode
  backend.py --listen 127.0.0.1:8080 --mode reset  reads a little, then closes with a TCP reset
  backend.py --listen 127.0.0.1:8080 --mode slow   answers like http, a byte every 0.2 s
  backend.py --listen 127.0.0.1:8080 --mode lines  prints every line received as "line early=E
                                                   TEXT" (E: 1 when the PROXY header said the
                                                   connection began with TLS 1.3 early data) and
                                                   answers "ok TEXT" to each

With --proxy-protocol it expects a PROXY protocol v2 header first and puts the client address it
carries in the answer (http) or prints it (echo); with an SSL TLV (a client certificate), the
http answer says what it carries: "client_cert: cn=NAME conn=0|1 sess=0|1 verify=N sha256=HEX
subject=DN san=SAN". Prints "listening HOST:PORT" when ready.
"""
import argparse
import asyncio
import ipaddress
import socket
import struct
import sys

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


PP2_TYPE_EARLY_DATA = 0xE0
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_CN = 0x22
PP2_TYPE_CERT_SHA256 = 0xE1
PP2_TYPE_CERT_SUBJECT = 0xE2
PP2_TYPE_CERT_SAN = 0xE3


def tlv_list(data):
    """The (type, value) pairs of a run of TLVs."""
    out = []
    while len(data) >= 3:
        kind, length = data[0], struct.unpack("!H", data[1:3])[0]
        out.append((kind, data[3:3 + length]))
        data = data[3 + length:]
    return out


def der_items(data):
    """The (tag, value) items of a run of DER (short and long lengths)."""
    out = []
    while len(data) >= 2:
        tag, length, at = data[0], data[1], 2
        if length & 0x80:
            count = length & 0x7F
            length, at = int.from_bytes(data[2:2 + count], "big"), 2 + count
        out.append((tag, data[at:at + length]))
        data = data[at + length:]
    return out


SAN_KINDS = {0x81: "email", 0x82: "DNS", 0x86: "URI"}


def san_text(der):
    """GeneralNames DER as "email:a, DNS:b" (IP addresses dotted or colon-separated)."""
    names = []
    for _, seq in der_items(der)[:1]:
        for tag, value in der_items(seq):
            if tag == 0x87:
                names.append("IP:%s" % ipaddress.ip_address(value))
            elif tag in SAN_KINDS:
                names.append("%s:%s" % (SAN_KINDS[tag], value.decode(errors="replace")))
    return ", ".join(names)


def read_tlvs(tlvs, info):
    """The early data marker and the client certificate TLVs into info."""
    for kind, value in tlv_list(tlvs):
        if kind == PP2_TYPE_EARLY_DATA and value == b"\x01":
            info["early"] = 1
        elif kind == PP2_TYPE_SSL and len(value) >= 5:
            subs = dict(tlv_list(value[5:]))
            info["cert"] = "cn=%s conn=%d sess=%d verify=%d" % (
                subs.get(PP2_SUBTYPE_SSL_CN, b"-").decode(errors="replace"), value[0] >> 1 & 1,
                value[0] >> 2 & 1, struct.unpack("!I", value[1:5])[0])
        elif kind == PP2_TYPE_CERT_SHA256:
            info["sha256"] = value.hex()
        elif kind == PP2_TYPE_CERT_SUBJECT:
            info["subject"] = value.decode(errors="replace")
        elif kind == PP2_TYPE_CERT_SAN:
            info["san"] = san_text(value)


async def read_proxy_header(reader, info=None):
    head = await reader.readexactly(16)
    if head[:12] != SIG or head[12] != 0x21:
        raise ValueError("bad PROXY v2 header")
    length = struct.unpack("!H", head[14:16])[0]
    body = await reader.readexactly(length)
    if head[13] == 0x11:
        if info is not None:
            read_tlvs(body[12:], info)
        src = ipaddress.ip_address(body[0:4])
        port = struct.unpack("!H", body[8:10])[0]
        return "%s:%d" % (src, port)
    if head[13] == 0x21:
        if info is not None:
            read_tlvs(body[36:], info)
        src = ipaddress.ip_address(body[0:16])
        port = struct.unpack("!H", body[32:34])[0]
        return "[%s]:%d" % (src, port)
    return "unknown"


# The page of --mode page: ten resources fetched in turn, each over a new connection (the
# server closes every one), then the count of answers in #done.
PAGE = b"""<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
<p id="done">pending</p><script>
(async () => {
  let n = 0;
  for (let i = 1; i <= 10; i++) {
    const r = await fetch('/r' + i, {cache: 'no-store'});
    if ((await r.text()).includes('hello from the backend')) n++;
  }
  document.getElementById('done').textContent = 'fetched ' + n;
})();
</script></body></html>
"""


def handler(mode, proxy_protocol, count=0):
    async def handle(reader, writer):
        client = "-"
        info = {"early": 0}
        try:
            if proxy_protocol:
                client = await read_proxy_header(reader, info)
            if mode == "reset":
                await reader.read(4)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if mode == "slow":
                await reader.readuntil(b"\r\n\r\n")
                for b in b"HTTP/1.0 200 OK\r\n\r\nslow answer\n":
                    writer.write(bytes([b]))
                    await writer.drain()
                    await asyncio.sleep(0.2)
                return
            if mode == "lines":
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    text = line.rstrip(b"\r\n").decode(errors="replace")
                    print("line early=%d %s" % (info["early"], text), flush=True)
                    writer.write(b"ok " + line)
                    await writer.drain()
                return
            if mode == "count":
                total = 0
                while total < count:
                    data = await reader.read(65536)
                    if not data:
                        break
                    total += len(data)
                writer.write(b"got %d\n" % total)
                await writer.drain()
                return
            if mode == "reject":
                await reader.read(4)
                writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                await writer.drain()
                return
            first = await reader.read(4)
            if mode == "echo" and first != b"GET ":
                if proxy_protocol:
                    print("proxy client=%s" % client, flush=True)
                writer.write(first)
                while first:
                    data = await reader.read(65536)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
                writer.write_eof()
            else:
                request = first + await reader.readuntil(b"\r\n\r\n")
                line = request.split(b"\r\n", 1)[0].decode(errors="replace")
                kind = b"text/plain"
                body = ("hello from the backend\nrequest: %s\nclient: %s\n" % (line, client)).encode()
                if "cert" in info:
                    body += ("client_cert: %s sha256=%s subject=%s san=%s\n" % (
                        info["cert"], info.get("sha256", "-"), info.get("subject", "-"),
                        info.get("san", "-"))).encode()
                if mode == "page" and line.split(" ")[1:2] == ["/"]:
                    kind, body = b"text/html", PAGE
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                             b"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                             % (kind, len(body)) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
    return handle


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:8080")
    ap.add_argument("--mode", choices=["http", "page", "echo", "reject", "count", "lines", "reset", "slow"],
                    default="http")
    ap.add_argument("--proxy-protocol", action="store_true")
    ap.add_argument("--count", type=int, default=0)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(handler(args.mode, args.proxy_protocol, args.count), host.strip("[]"),
                                        int(port), backlog=1024)
    addr = server.sockets[0].getsockname()
    print("listening %s:%d" % (addr[0], addr[1]), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
