#!/usr/bin/env python3
"""Records a TLS client's first flight and replays it byte for byte (0-RTT replay tests).

  replay.py record --listen HOST:PORT --target HOST:PORT --out FILE
      A one-connection TCP relay: forwards both ways and writes to FILE every byte the client
      sent before the server's first byte (ClientHello and early data). Prints "listening" when
      ready and exits when the connection ends (bounded by --timeout).
  replay.py send --flight FILE --to HOST:PORT [--to HOST:PORT ...] --times N
      Opens N connections, spread over the targets in turn, all at once; sends the flight on each
      and reads what comes for --wait seconds, then closes. Prints one JSON line: connections
      made, failed, and bytes received.
"""
import argparse
import asyncio
import json
import sys


def addr(text):
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


async def record(a):
    flight = bytearray()
    state = {"server_spoke": False}
    done = asyncio.Event()

    async def pump(reader, writer, is_client):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if is_client and not state["server_spoke"]:
                    flight.extend(data)
                if not is_client:
                    state["server_spoke"] = True
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass

    async def handle(creader, cwriter):
        sreader, swriter = await asyncio.open_connection(*addr(a.target))
        await asyncio.gather(pump(creader, swriter, True), pump(sreader, cwriter, False))
        cwriter.close()
        swriter.close()
        done.set()

    host, port = addr(a.listen)
    server = await asyncio.start_server(handle, host, port)
    print("listening", flush=True)
    try:
        await asyncio.wait_for(done.wait(), a.timeout)
    finally:
        server.close()
    with open(a.out, "wb") as f:
        f.write(flight)
    print("recorded %d bytes" % len(flight), flush=True)


async def send_one(target, flight, wait, stats):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr(target)), 5)
    except (OSError, asyncio.TimeoutError):
        stats["failed"] += 1
        return
    stats["connections"] += 1
    writer.write(flight)
    try:
        await writer.drain()
        end = asyncio.get_running_loop().time() + wait
        while True:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                break
            data = await asyncio.wait_for(reader.read(65536), left)
            if not data:
                break
            stats["bytes"] += len(data)
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        writer.close()


async def send(a):
    flight = open(a.flight, "rb").read()
    if not flight:
        sys.exit("empty flight")
    stats = {"connections": 0, "failed": 0, "bytes": 0}
    tasks = [send_one(a.to[i % len(a.to)], flight, a.wait, stats) for i in range(a.times)]
    await asyncio.gather(*tasks)
    print(json.dumps(stats), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--listen", required=True)
    r.add_argument("--target", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("send")
    s.add_argument("--flight", required=True)
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--times", type=int, default=10)
    s.add_argument("--wait", type=float, default=1.0)
    a = ap.parse_args()
    asyncio.run(record(a) if a.cmd == "record" else send(a))


if __name__ == "__main__":
    main()
