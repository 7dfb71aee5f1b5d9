#!/usr/bin/env python3
"""Rewrites the ticket inside an OpenSSL session PEM (from s_client -sess_out) in place.

  forge_ticket.py IN.pem OUT.pem unknown_key|bad_mac|random
    unknown_key: a key name no server holds; bad_mac: the known name with the rest flipped;
    random: every byte random. The DER structure is left as it is (same length), so OpenSSL
    offers the forged ticket as it would the real one.
"""
import base64
import os
import re
import subprocess
import sys


def ticket_of(pem_path):
    text = subprocess.run(["openssl", "sess_id", "-in", pem_path, "-text", "-noout"],
                          capture_output=True, text=True, check=True).stdout
    m = re.search(r"TLS session ticket:\n((?:\s+[0-9a-f]{4} - .*\n)+)", text)
    if not m:
        sys.exit("no ticket in the session")
    hexs = "".join(re.findall(r" - ((?:[0-9a-f]{2}[ -]){1,16})", m.group(1)))
    return bytes.fromhex(re.sub(r"[ -]", "", hexs))


def main():
    src, dst, how = sys.argv[1:4]
    pem = open(src).read()
    body = re.search(r"-----BEGIN SSL SESSION PARAMETERS-----\n(.*?)-----END", pem, re.S).group(1)
    der = base64.b64decode("".join(body.split()))
    ticket = ticket_of(src)
    at = der.find(ticket)
    if at < 0 or len(ticket) < 32:
        sys.exit("ticket not found in the DER")
    if how == "unknown_key":
        forged = os.urandom(16) + ticket[16:]
    elif how == "bad_mac":
        forged = ticket[:16] + bytes(b ^ 0x5A for b in ticket[16:])
    else:
        forged = os.urandom(len(ticket))
    der = der[:at] + forged + der[at + len(ticket):]
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    open(dst, "w").write("-----BEGIN SSL SESSION PARAMETERS-----\n%s\n"
                         "-----END SSL SESSION PARAMETERS-----\n" % lines)


if __name__ == "__main__":
    main()
