#!/usr/bin/env python3
"""Replaces what a document holds between <!-- NAME:begin --> and <!-- NAME:end --> with the
content of a file (the tables a benchmark, soak or fuzz run writes into docs/).

  doc_section.py DOC NAME CONTENT_FILE
"""
import sys

doc_path, name, content_path = sys.argv[1:4]
content = open(content_path).read()
doc = open(doc_path).read()
begin, end = "<!-- %s:begin -->\n" % name, "<!-- %s:end -->" % name
if begin not in doc or end not in doc:
    sys.exit("error doc_section: %s has no %s section" % (doc_path, name))
a, b = doc.index(begin) + len(begin), doc.index(end)
open(doc_path, "w").write(doc[:a] + content + doc[b:])
