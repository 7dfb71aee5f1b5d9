#!/usr/bin/env python3
"""Validates a JSON document against the JSON Schema block of a Markdown file.
Supports the subset the project's schemas use: type, properties, required, items, enum,
additionalProperties. usage: schema_check.py SCHEMA.md DOCUMENT.json"""
import json
import re
import sys

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def type_ok(value, name):
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def check(value, schema, path, errors):
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(type_ok(value, n) for n in names):
            errors.append("%s: %r is not %s" % (path, value, "/".join(names)))
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r not in %r" % (path, value, schema["enum"]))
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append("%s: missing %s" % (path, key))
        props = schema.get("properties", {})
        for key, sub in value.items():
            if key in props:
                check(sub, props[key], path + "." + key, errors)
            elif schema.get("additionalProperties") is False:
                errors.append("%s: unexpected %s" % (path, key))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], "%s[%d]" % (path, i), errors)


def main():
    text = open(sys.argv[1]).read()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    if len(blocks) != 1:
        print("expected one ```json block in", sys.argv[1])
        return 2
    schema = json.loads(blocks[0])
    doc = json.load(open(sys.argv[2]))
    errors = []
    check(doc, schema, "$", errors)
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
