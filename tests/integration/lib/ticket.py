"""What a 48-byte key file (name | HMAC | AES: Apache's and Node's layout) says of the ticket in
an `openssl s_client -sess_out` session file: whether the ticket names that key, whether its
body opens under the key's AES-128 half (padding and an ASN.1 SEQUENCE inside), and whether its
HMAC-SHA256 checks under the key's HMAC half (RFC 5077's layout: name, IV, body, MAC).
usage: python3 ticket.py SESSION_PEM KEYFILE      prints "name=yes|no opens=yes|no mac=yes|no"
"""
import hashlib
import hmac
import re
import subprocess
import sys


def ticket_bytes(session_pem):
    text = subprocess.run(["openssl", "sess_id", "-in", session_pem, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    m = re.search(r"TLS session ticket:\n((?: +[0-9a-f]{4} - .*\n)+)", text)
    if not m:
        sys.exit("ticket.py: %s holds no ticket" % session_pem)
    out = b""
    for line in m.group(1).splitlines():
        hexpart = line.split(" - ", 1)[1][:47]
        out += bytes.fromhex(hexpart.replace("-", " ").replace(" ", ""))
    return out


def main():
    t = ticket_bytes(sys.argv[1])
    key = open(sys.argv[2], "rb").read()
    if len(key) != 48:
        sys.exit("ticket.py: %s is not a 48-byte key" % sys.argv[2])
    name, mac_key, aes_key = key[:16], key[16:32], key[32:48]
    iv, body, mac = t[16:32], t[32:-32], t[-32:]
    dec = subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-K", aes_key.hex(), "-iv",
                          iv.hex()], input=body, capture_output=True)
    opens = dec.returncode == 0 and dec.stdout[:1] == b"\x30"
    checks = hmac.compare_digest(hmac.new(mac_key, t[:-32], hashlib.sha256).digest(), mac)
    yn = lambda b: "yes" if b else "no"
    print("name=%s opens=%s mac=%s" % (yn(t[:16] == name), yn(opens), yn(checks)))


main()
