#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Checks vantage record streams (JSON Lines) against the record contract.

Every line must be one JSON object (no duplicate keys, no NaN) whose "type" names a
schema file loader/export/schema/TYPE.schema.json, and which that schema accepts
(the envelope included). A type without a schema is a failure. Each failure is
printed as FILE:LINE: TYPE: why; the exit status is 1 when any line failed, 2 for a
usage error or a broken schema.

Usage:
  validate_records.py [--schema-dir DIR] [--summary COMMAND] [--types T1,T2] [FILE|-]...
  validate_records.py [--schema-dir DIR] --check-schemas

  --summary COMMAND  the stream ends with its one closing record, a summary of COMMAND
                     (and has no other summary)
  --types T1,T2      these record types occur in the stream (so an empty run cannot pass)
  --check-schemas    check the schema files themselves (against the JSON Schema
                     meta-schema, and the rules every record schema follows)

Works with Debian 12's python3-jsonschema (4.10, RefResolver) and later versions
(the referencing library).
"""
import argparse
import glob
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write("validate_records.py: python3-jsonschema is missing (make deps installs it)\n")
    sys.exit(2)

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "loader", "export", "schema")
ENVELOPE = "envelope.schema.json"
SHARED = ("envelope.schema.json", "defs.schema.json")


def load_schemas(d):
    schemas = {}
    for path in sorted(glob.glob(os.path.join(d, "*.schema.json"))):
        with open(path, encoding="utf-8") as f:
            try:
                schemas[os.path.basename(path)] = json.load(f)
            except ValueError as e:
                raise SystemExit("validate_records.py: %s: not JSON: %s" % (path, e))
    if ENVELOPE not in schemas:
        raise SystemExit("validate_records.py: no %s in %s" % (ENVELOPE, d))
    return schemas


def make_validator(schemas, name):
    """A draft 2020-12 validator of schemas[name] whose relative $refs ("defs.schema.json#/...")
    resolve to the other files by name."""
    cls = jsonschema.Draft202012Validator
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
    except ImportError:
        resolver = jsonschema.RefResolver(base_uri=name, referrer=schemas[name], store=dict(schemas))
        return cls(schemas[name], resolver=resolver)
    registry = Registry().with_resources(
        [(n, Resource.from_contents(s, default_specification=DRAFT202012)) for n, s in schemas.items()])
    return cls(schemas[name], registry=registry)


def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError("duplicate key \"%s\"" % k)
        seen[k] = v
    return seen


def no_constant(name):
    raise ValueError("%s is not JSON" % name)


def where(err):
    path = "/".join(str(p) for p in err.absolute_path)
    return ("at %s: " % path) if path else ""


class Checker:
    def __init__(self, schemas):
        self.schemas = schemas
        self.validators = {}
        self.failures = 0

    def fail(self, name, lineno, what):
        self.failures += 1
        print("%s:%d: %s" % (name, lineno, what))

    def line(self, name, lineno, text):
        """Checks one line; returns the record (a dict) or None."""
        if not text.strip():
            self.fail(name, lineno, "empty line")
            return None
        try:
            rec = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
        except ValueError as e:
            self.fail(name, lineno, "not a JSON record: %s" % e)
            return None
        if not isinstance(rec, dict):
            self.fail(name, lineno, "not a JSON object")
            return None
        rtype = rec.get("type")
        if not isinstance(rtype, str) or not rtype:
            self.fail(name, lineno, "no \"type\" (every record carries the envelope: v, type, ts_ns, time, source)")
            return None
        file = rtype + ".schema.json"
        if file in SHARED or file not in self.schemas:
            self.fail(name, lineno, "%s: unknown record type (no loader/export/schema/%s)" % (rtype, file))
            return None
        v = self.validators.get(file)
        if v is None:
            v = self.validators[file] = make_validator(self.schemas, file)
        errs = sorted(v.iter_errors(rec), key=lambda e: (list(e.absolute_path), e.message))
        # A field that fails its own check is also "unevaluated": name it once.
        if any(e.validator != "unevaluatedProperties" for e in errs):
            errs = [e for e in errs if e.validator != "unevaluatedProperties"]
        for e in errs[:5]:
            self.fail(name, lineno, "%s: %s%s" % (rtype, where(e), e.message))
        if len(errs) > 5:
            self.fail(name, lineno, "%s: and %d more" % (rtype, len(errs) - 5))
        return rec

    def stream(self, name, f, summary=None, types=None):
        seen = set()
        summaries = []
        last = None
        n = 0
        for n, text in enumerate(f, 1):
            rec = self.line(name, n, text.rstrip("\n"))
            if rec is None:
                continue
            seen.add(rec["type"])
            last = (n, rec)
            if rec["type"] == "summary":
                summaries.append(n)
        if not n:
            self.fail(name, 0, "no records")
        for t in types or []:
            if t not in seen:
                self.fail(name, n, "no %s record in the stream" % t)
        if summary:
            if not last or last[1].get("type") != "summary":
                self.fail(name, n, "the last record is not the closing summary (command %s)" % summary)
            elif last[1].get("command") != summary:
                self.fail(name, last[0], "the summary is of %r, not %r" % (last[1].get("command"), summary))
            if len(summaries) > 1:
                self.fail(name, summaries[0], "%d summary records (one closes a stream)" % len(summaries))


def field_kinds(s):
    """True when a property schema says what its value is."""
    return any(k in s for k in ("type", "const", "enum", "$ref", "anyOf", "oneOf"))


def check_props(file, where_, props, problems):
    for k, s in props.items():
        if k == "type" and where_ == "":
            continue
        if not isinstance(s, dict):
            problems.append("%s: %s%s: not a schema" % (file, where_, k))
            continue
        if "description" not in s and "$ref" not in s:
            problems.append("%s: %s%s: no description" % (file, where_, k))
        if not field_kinds(s):
            problems.append("%s: %s%s: no type" % (file, where_, k))
        if "properties" in s:
            check_props(file, where_ + k + ".", s["properties"], problems)
        items = s.get("items")
        if isinstance(items, dict) and "properties" in items:
            check_props(file, where_ + k + "[].", items["properties"], problems)


def check_schemas(schemas):
    problems = []
    meta = jsonschema.Draft202012Validator
    for file, s in schemas.items():
        try:
            meta.check_schema(s)
        except jsonschema.SchemaError as e:
            problems.append("%s: not a valid JSON Schema: %s" % (file, e.message))
            continue
        if s.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
            problems.append("%s: $schema is not draft 2020-12" % file)
        if not s.get("description"):
            problems.append("%s: no description" % file)
        if file == "defs.schema.json":
            for k, d in s.get("$defs", {}).items():
                if "description" not in d:
                    problems.append("%s: $defs/%s: no description" % (file, k))
                if "properties" in d:
                    check_props(file, "$defs/%s." % k, d["properties"], problems)
            continue
        check_props(file, "", s.get("properties", {}), problems)
        if file == ENVELOPE:
            continue
        name = file[:-len(".schema.json")]
        if s.get("title") != name:
            problems.append("%s: title is not %r" % (file, name))
        if s.get("properties", {}).get("type") != {"const": name}:
            problems.append("%s: properties.type is not {\"const\": %r}" % (file, name))
        if {"$ref": ENVELOPE} not in s.get("allOf", []):
            problems.append("%s: allOf does not include the envelope" % file)
        if s.get("unevaluatedProperties") is not False:
            problems.append("%s: unevaluatedProperties is not false (unknown fields must fail)" % file)
        if not s.get("x-commands"):
            problems.append("%s: x-commands (the commands that write it) missing" % file)
        for k, d in s.get("$defs", {}).items():
            check_props(file, "$defs/%s." % k, d.get("properties", {}), problems)
        try:
            make_validator(schemas, file).iter_errors({}).__next__()
        except StopIteration:
            problems.append("%s: accepts an empty object" % file)
        except Exception as e:  # an unresolvable $ref shows here
            problems.append("%s: %s" % (file, e))
    for p in problems:
        print(p)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description="Check vantage record streams against loader/export/schema.")
    ap.add_argument("--schema-dir", default=DEFAULT_DIR)
    ap.add_argument("--summary", metavar="COMMAND")
    ap.add_argument("--types", metavar="T1,T2", default="")
    ap.add_argument("--check-schemas", action="store_true")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    schemas = load_schemas(a.schema_dir)
    if a.check_schemas:
        return check_schemas(schemas)
    ck = Checker(schemas)
    types = [t for t in a.types.split(",") if t]
    for path in a.files or ["-"]:
        if path == "-":
            ck.stream("<stdin>", sys.stdin, a.summary, types)
            continue
        try:
            with open(path, encoding="utf-8", errors="strict") as f:
                ck.stream(path, f, a.summary, types)
        except UnicodeDecodeError as e:
            ck.fail(path, 0, "not UTF-8: %s" % e)
        except OSError as e:
            print("%s: %s" % (path, e.strerror))
            return 2
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
