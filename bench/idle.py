#!/usr/bin/env python3
"""Opens N TLS connections to HOST:PORT (handshakes done, nothing sent), prints "held N",
waits for a line on stdin, then closes them. Bounded: N <= 20000, 60 s to connect.
usage: idle.py PORT N"""
import asyncio
import resource
import ssl
import sys


async def main(port, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(64)

    async def one():
        async with sem:
            return await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                 server_hostname="localhost")
    conns = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n)),
                                                  return_exceptions=True), 60)
    ok = [c for c in conns if not isinstance(c, BaseException)]
    print("held %d" % len(ok), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for _, w in ok:
        w.close()


if __name__ == "__main__":
    n = int(sys.argv[2])
    if not 1 <= n <= 20000:
        sys.exit("N must be 1..20000")
    asyncio.run(main(int(sys.argv[1]), n))
