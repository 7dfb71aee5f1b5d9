#!/usr/bin/env python3
"""Checks a rendered status page (Chromium's --dump-dom) against /status: every element with a
data-field shows the value of that field, and the page drew its graphs. Prints what it compared;
exit 1 naming each field that differs or is missing.
usage: status_page_check.py DOM.html STATUS.json MIN_FIELDS"""
import html
import json
import re
import sys


def resolve(status, path):
    parts = re.findall(r"TLSv1\.\d|[^.]+", path)  # version names hold a dot
    node = status
    for i, p in enumerate(parts):
        if isinstance(node, list):  # key_list.NAME: the key of that name, or backends.INDEX
            # A name first: a key's name is hex and may be all digits.
            named = next((k for k in node if isinstance(k, dict) and k.get("name") == p), None)
            if named is not None or not p.isdigit():
                node = named
            else:
                node = node[int(p)] if int(p) < len(node) else None
            continue
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def main():
    dom = open(sys.argv[1]).read()
    status = json.load(open(sys.argv[2]))
    need = int(sys.argv[3])
    errors = []
    fields = re.findall(r'data-field="([^"]+)"[^>]*>([^<]*)<', dom)
    compared = 0
    for path, shown in fields:
        want = resolve(status, path)
        if want is None:
            errors.append("%s: not in /status" % path)
            continue
        compared += 1
        if html.unescape(shown).strip() != str(want):
            errors.append("%s: the page shows %r, /status has %r" % (path, shown, want))
    if compared < need:
        errors.append("only %d fields compared, expected at least %d" % (compared, need))
    body = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    lines = len(re.findall(r'<polyline[^>]*points="[^"]+"', body))
    if lines < 2:
        errors.append("the graphs were not drawn (%d lines)" % lines)
    print("%d fields compared, %d lines drawn" % (compared, lines))
    if errors:
        print("\n".join(errors[:20]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
