#!/usr/bin/env python3
"""Checks the "trace" member of a `tlsresume check --json --trace` report against what each
kind of handshake must look like on the wire (RFC 5246 full and abbreviated handshakes, RFC
8446 full and PSK handshakes, 0-RTT). Prints one line per phase; exit 1 with the reasons when a
ladder is wrong or a kind of handshake the check should have made is missing.
usage: trace_check.py REPORT.json [--early] [--tls12-renews]"""
import json
import sys


def names(conn, direction, before=True):
    return [e["type"] for e in conn["events"]
            if e["kind"] == "message" and e["dir"] == direction
            and e["after_handshake"] != before]


def records(conn, direction):
    return [e for e in conn["events"] if e["kind"] == "record" and e["dir"] == direction]


def without_ccs(seq):
    return [n for n in seq if n != "ChangeCipherSpec"]


def main():
    report = json.load(open(sys.argv[1]))
    early = "--early" in sys.argv
    trace = report["trace"]
    errors = []
    if trace is None:
        sys.exit("no trace in the report")
    by_phase = {}
    for c in trace["connections"]:
        by_phase.setdefault(c["phase"], []).append(c)

    def want(phase, resumed, check):
        conns = [c for c in by_phase.get(phase, []) if c["handshake"] and c["resumed"] == resumed]
        if not conns:
            errors.append("%s: no %s handshake traced" % (phase, "resumed" if resumed else "full"))
            return
        for c in conns:
            for why in check(c):
                errors.append("%s #%d: %s" % (phase, c["index"], why))
        print("%s: %d %s, %s" % (phase, len(conns), "resumed" if resumed else "full",
                                 " ".join(names(conns[0], "received"))))

    def expect(c, rt, sent, received, optional=()):
        out = []
        if c["round_trips"] != rt:
            out.append("round trips %d, expected %d" % (c["round_trips"], rt))
        s, r = names(c, "sent"), names(c, "received")
        if [n for n in s if n not in optional] != sent:
            out.append("sent %s, expected %s" % (s, sent))
        if [n for n in r if n not in optional] != received:
            out.append("received %s, expected %s" % (r, received))
        if c["bytes_sent"] <= 0 or c["bytes_received"] <= 0:
            out.append("no bytes counted")
        if sum(e["bytes"] for e in records(c, "sent")
               if not e["after_handshake"]) != c["bytes_sent"]:
            out.append("bytes_sent is not the sum of the records sent")
        return out

    full12 = ["ClientHello", "ClientKeyExchange", "ChangeCipherSpec", "Finished"]
    want("TLS 1.2 full handshake, tickets off", False, lambda c: expect(
        c, 2, full12, ["ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone",
                       "ChangeCipherSpec", "Finished"]))
    want("TLS 1.2 full handshake, tickets on", False, lambda c: expect(
        c, 2, full12, ["ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone",
                       "NewSessionTicket", "ChangeCipherSpec", "Finished"]))
    abbreviated = ["ClientHello", "ChangeCipherSpec", "Finished"]
    want("TLS 1.2 session ID", True, lambda c: expect(
        c, 1, abbreviated, ["ServerHello", "ChangeCipherSpec", "Finished"]))
    # A server may renew the ticket of a resumption (RFC 5077 section 3.3).
    want("TLS 1.2 ticket", True, lambda c: expect(
        c, 1, abbreviated, ["ServerHello", "ChangeCipherSpec", "Finished"],
        optional=("NewSessionTicket",)))
    # TLS 1.3: ChangeCipherSpec only for middlebox compatibility (RFC 8446 appendix D.4).
    ccs = ("ChangeCipherSpec",)

    def full13(c):
        out = expect(c, 1, ["ClientHello", "Finished"],
                     ["ServerHello", "EncryptedExtensions", "Certificate", "CertificateVerify",
                      "Finished"], optional=ccs)
        if "NewSessionTicket" not in names(c, "received", before=False):
            out.append("no NewSessionTicket after the handshake")
        return out
    want("TLS 1.3 full handshake", False, full13)
    want("TLS 1.3 ticket, each once as browsers use them", True, lambda c: expect(
        c, 1, ["ClientHello", "Finished"], ["ServerHello", "EncryptedExtensions", "Finished"],
        optional=ccs))

    if early:
        def zero_rtt(c):
            out = expect(c, 1, ["ClientHello", "EndOfEarlyData", "Finished"],
                         ["ServerHello", "EncryptedExtensions", "Finished"], optional=ccs)
            if c["early_data"] != "accepted":
                out.append("early data %s" % c["early_data"])
            first_in = min((e["t_ms"] for e in c["events"] if e["dir"] == "received"),
                           default=None)
            sent_early = [e for e in records(c, "sent") if e["type"] == "application_data"
                          and first_in is not None and e["t_ms"] <= first_in]
            if not sent_early:
                out.append("no application_data record before the server's first flight")
            return out
        want("TLS 1.3 resumption with early data", True, zero_rtt)

    saved = {s["version"]: s for s in trace["saved"]}
    for version, rt in (("TLSv1.2", 1), ("TLSv1.3", 0)):
        s = saved.get(version)
        if s is None or s["saved"] is None:
            errors.append("%s: no saving computed" % version)
            continue
        d = s["saved"]
        if d["round_trips"] != rt or d["messages"] <= 0 or d["bytes"] <= 0:
            errors.append("%s: saved %s, expected %d round trip(s) and fewer messages and bytes"
                          % (version, d, rt))
        print("%s saved: %g round trips, %g messages, %g bytes, %.2f ms" % (
            version, d["round_trips"], d["messages"], d["bytes"], d["ms"]))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
