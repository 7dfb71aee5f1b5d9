#!/usr/bin/env python3
"""Checks the monitoring files against a live server: every metric the Grafana dashboard and the
alert rules use exists in its /metrics, and docs/MONITORING.md documents exactly the metrics it
serves. Prints what it checked; exit 1 naming each metric that is missing or undocumented.
usage: monitoring_check.py METRICS.txt MONITORING.md DASHBOARD.json RULES.yml"""
import json
import re
import sys

NAME = re.compile(r"\btlsresume_[a-z0-9_]+")


def main():
    metrics, doc, dashboard, rules = sys.argv[1:5]
    live = set(re.findall(r"^# TYPE (tlsresume_[a-z0-9_]+) ", open(metrics).read(), re.M))
    if not live:
        sys.exit("no tlsresume metric in %s" % metrics)
    table = [l for l in open(doc) if l.startswith("| `tlsresume_")]
    documented = {re.match(r"\| `(tlsresume_[a-z0-9_]+)`", l).group(1) for l in table}
    d = json.load(open(dashboard))
    errors = []
    if not any(i.get("pluginId") == "prometheus" for i in d.get("__inputs", [])):
        errors.append("%s: no Prometheus data source input (not importable as is)" % dashboard)
    exprs = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            exprs.append(("%s panel %r" % (dashboard, p["title"]), t["expr"]))
    for v in d.get("templating", {}).get("list", []):
        exprs.append(("%s variable %s" % (dashboard, v["name"]), v.get("query", "")))
    exprs.append((rules, open(rules).read()))
    used = 0
    for where, text in exprs:
        for name in NAME.findall(text):
            used += 1
            if name not in live:
                errors.append("%s: %s is not served" % (where, name))
    for name in sorted(live - documented):
        errors.append("%s: %s is served but not documented" % (doc, name))
    for name in sorted(documented - live):
        errors.append("%s: %s is documented but not served" % (doc, name))
    print("%d metrics served, %d documented, %d uses in the dashboard and the rules"
          % (len(live), len(documented), used))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
