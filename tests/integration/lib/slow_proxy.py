#!/usr/bin/env python3
"""A TCP relay that delays every chunk it forwards, both ways (a slow network to Redis).

  slow_proxy.py --listen HOST:PORT --target HOST:PORT --delay-file FILE
      FILE holds the delay in milliseconds and is read again for each chunk, so a test changes
      the delay while connections stay up. Prints "listening" when ready; runs until killed.
"""
import argparse
import asyncio


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def delay_s(path):
    try:
        return max(0.0, float(open(path).read().strip() or 0)) / 1000.0
    except (OSError, ValueError):
        return 0.0


async def pump(reader, writer, path):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            d = delay_s(path)
            if d > 0:
                await asyncio.sleep(d)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--delay-file", required=True)
    a = ap.parse_args()
    target = addr(a.target)

    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection(*target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, uw, a.delay_file), pump(ur, cw, a.delay_file))

    host, port = addr(a.listen)
    server = await asyncio.start_server(handle, host, port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
