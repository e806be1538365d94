#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The architecture's arrows, checked on the source tree and the built objects.

    arrows.py [--root DIR] [--build DIR]     check the tree (exit 1 on any violation)
    arrows.py --self-test                    check that each rule catches what it should

Arrows (DESIGN.md): tools -> loader -> maps; bpf -> maps; selftests -> anything.
Never maps -> anything of ours, bpf -> loader or tools, loader -> tools, one command
file -> another. The Makefile's per-part include paths make the compiler refuse most
wrong includes; this checks what include paths cannot:

  include   every #include "..." resolves (as the compiler would: the file's own
            directory, then its part's -I paths) to a file its part may see; no
            relative path that climbs out of a folder ("../")
  internal  outside loader/PART/, only PART's public header loader/PART/vtg_PART.h
  cycle     no cycle between loader parts (PART -> PART' through includes)
  link      (with --build) no loader object uses a symbol defined in tools/, no command
            file (tools/CMD.c for a command CMD) uses a symbol another one defines
  testdecl  (with --build) no library header declares a function the tests define
  prefix    (with --build) every global symbol a library part defines carries the part's
            prefix (PREFIXES): vtg_lat_ for latency, vtg_pol_ for policy, ...; core's are
            vtg_ (and jw_/jr_, the JSON writer and reader) but none of another part's
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE_EXT = ('.c', '.h')
# Folders whose files are ours (a resolved include outside them is a system or build file).
PARTS = ('maps', 'bpf', 'loader', 'tools', 'selftests')


def part_of(rel):
    """'loader/latency/tracer.c' -> 'loader/latency'; 'tools/x.c' -> 'tools'; None if not ours."""
    top = rel.split('/', 1)[0]
    if top not in PARTS:
        return None
    if top == 'loader':
        bits = rel.split('/')
        return 'loader/' + bits[1] if len(bits) > 2 else 'loader'
    return top


def search_path(part, build):
    """The -I directories of a part, as the Makefile sets them (relative to the root)."""
    skel = os.path.join(build, 'skel')
    if part == 'maps':
        return []
    if part == 'bpf':
        return [build, 'bpf', 'maps']
    if part.startswith('loader'):
        return [skel, 'maps', 'loader']
    if part == 'tools':
        return ['maps', 'loader', 'tools']
    return [skel, 'maps', 'loader', 'tools', 'selftests/lib', 'selftests/testbed', 'selftests']


def may_see(src_part, dst_part):
    """Whether a file of src_part may include one of dst_part (ignoring the public-header rule)."""
    top = lambda p: p.split('/', 1)[0]
    s, d = top(src_part), top(dst_part)
    allowed = {
        'maps': {'maps'},
        'bpf': {'bpf', 'maps'},
        'loader': {'loader', 'maps'},
        'tools': {'tools', 'loader', 'maps'},
        'selftests': set(PARTS),
    }
    return d in allowed[s]


def sources(root):
    for top in PARTS:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != 'vmlinux']
            for f in sorted(filenames):
                if f.endswith(SOURCE_EXT):
                    yield os.path.relpath(os.path.join(dirpath, f), root)


def resolve(root, rel, inc, build):
    """Where the compiler finds `inc` included from `rel` (relative path), or None."""
    # The part's own path first (what the compiler does), then every other part's: a name
    # that only another part's path would find is reported by its owner, not dropped, so
    # the check holds even if the Makefile's paths were widened.
    cands = [os.path.dirname(rel)] + search_path(part_of(rel), build) + search_path('selftests', build)
    for d in cands:
        p = os.path.normpath(os.path.join(d, inc))
        full = p if os.path.isabs(p) else os.path.join(root, p)
        if os.path.isfile(full):
            return os.path.relpath(full, root) if not os.path.isabs(p) else p
    return None


def check_includes(root, build):
    errors = []
    edges = {}
    for rel in sources(root):
        src_part = part_of(rel)
        with open(os.path.join(root, rel), encoding='utf-8', errors='replace') as f:
            text = f.read()
        for m in INCLUDE_RE.finditer(text):
            inc = m.group(1)
            line = text.count('\n', 0, m.start()) + 1
            where = f'{rel}:{line}'
            if inc.startswith('../') or '/../' in inc:
                errors.append(f'{where}: include: "{inc}" climbs out of a folder; include by the part\'s path')
                continue
            dst = resolve(root, rel, inc, build)
            if dst is None:
                # Generated files (skeletons, vmlinux.h) before a build; a real miss fails the build.
                continue
            dst_part = part_of(dst)
            if dst_part is None:
                continue
            if not may_see(src_part, dst_part):
                errors.append(f'{where}: include: {src_part} may not include {dst} ({dst_part})')
                continue
            if dst_part.startswith('loader/') and dst_part != src_part and not src_part.startswith('selftests'):
                public = f'{dst_part}/vtg_{dst_part.split("/")[1]}.h'
                if dst != public:
                    errors.append(f'{where}: internal: {dst} is internal to {dst_part}; '
                                  f'include its public header {public}')
            if src_part.startswith('loader/') and dst_part.startswith('loader/') and dst_part != src_part:
                edges.setdefault(src_part, set()).add(dst_part)
    errors += find_cycles(edges)
    return errors


def find_cycles(edges):
    errors, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                errors.append('cycle: ' + ' -> '.join(cyc))
            elif not state.get(m):
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if not state.get(n):
            visit(n)
    return errors


def nm_symbols(obj):
    """(defined, undefined) global symbol sets of an object file."""
    out = subprocess.run(['nm', '-g', obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        bits = line.split()
        if len(bits) == 2 and bits[0] == 'U':
            undefined.add(bits[1])
        elif len(bits) == 3 and bits[1] in 'TDBRCVWG':
            defined.add(bits[2])
    return defined, undefined


def objects(root, build, sub):
    """The objects of sub/ whose source still exists (a stale object of a moved file is not ours)."""
    obj_root = os.path.join(root, build, 'obj')
    for dirpath, _, filenames in os.walk(os.path.join(obj_root, sub)):
        for f in sorted(filenames):
            o = os.path.join(dirpath, f)
            if f.endswith('.o') and os.path.isfile(os.path.join(root, os.path.relpath(o, obj_root)[:-2] + '.c')):
                yield o


def check_link(root, build):
    errors = []
    tools = {}
    for o in objects(root, build, 'tools'):
        tools[os.path.relpath(o, os.path.join(root, build, 'obj'))[:-2] + '.c'] = nm_symbols(o)
    owner = {}
    for src, (defined, _) in tools.items():
        for s in defined:
            owner[s] = src
    for o in objects(root, build, 'loader'):
        src = os.path.relpath(o, os.path.join(root, build, 'obj'))[:-2] + '.c'
        _, undef = nm_symbols(o)
        for s in sorted(undef & owner.keys()):
            errors.append(f'{src}: link: the library uses {s}, defined in {owner[s]}')
    # A command file defines its command (vtg_cmd_NAME, or cmd_NAME before the option
    # tables); the rest of tools/ (main, cli, renderers) is shared by the commands.
    commands = {src for src, (defined, _) in tools.items()
                if {'vtg_cmd_' + os.path.basename(src)[:-2], 'cmd_' + os.path.basename(src)[:-2]} & defined}
    for src in sorted(commands):
        _, undef = tools[src]
        for s in sorted(undef):
            o = owner.get(s)
            if o and o != src and o in commands:
                errors.append(f'{src}: link: command file calls {s}, defined in command file {o}')
    return errors


# One prefix per module. core's vtg_ is everyone's start, so a core symbol may not carry
# another part's prefix.
PREFIXES = {
    'loader/core': ('vtg_', 'jw_', 'jr_'),
    'loader/latency': ('vtg_lat_',),
    'loader/policy': ('vtg_pol_',),
    'loader/trace': ('vtg_tr_',),
    'loader/count': ('vtg_cnt_',),
    'loader/export': ('vtg_x_',),
    'loader/agent': ('vtg_agent_',),
    'loader/conntest': ('vtg_ct_',),
}


def check_prefixes(root, build):
    errors = []
    others = {p: [x for q, xs in PREFIXES.items() if q != p for x in xs if x != 'vtg_'] for p in PREFIXES}
    for o in objects(root, build, 'loader'):
        src = os.path.relpath(o, os.path.join(root, build, 'obj'))[:-2] + '.c'
        part = part_of(src)
        if part not in PREFIXES:
            errors.append(f'{src}: prefix: {part} is not a known library part (PREFIXES)')
            continue
        for sym in sorted(nm_symbols(o)[0]):
            if part == 'loader/core' and sym == 'vtg':
                continue  # the global options (-j, -p, -v): the tool's one unprefixed name
            if not sym.startswith(PREFIXES[part]) or (part == 'loader/core' and sym.startswith(tuple(others[part]))):
                errors.append(f'{src}: prefix: {sym} does not carry {part}\'s prefix '
                              f'{"/".join(PREFIXES[part])}')
    return errors


def check_test_decls(root, build):
    """No function the tests define is declared in a library header."""
    errors = []
    test_syms = set()
    for o in objects(root, build, 'selftests'):
        test_syms |= nm_symbols(o)[0]
    lib_syms = set()
    for o in objects(root, build, 'loader'):
        lib_syms |= nm_symbols(o)[0]
    test_only = test_syms - lib_syms
    for rel in sources(root):
        if not (rel.startswith('loader/') and rel.endswith('.h')):
            continue
        with open(os.path.join(root, rel), encoding='utf-8', errors='replace') as f:
            text = f.read()
        for name in re.findall(r'\b([A-Za-z_]\w*)\s*\(', text):
            if name in test_only:
                errors.append(f'{rel}: testdecl: declares {name}, which only the tests define')
    return sorted(set(errors))


def run(root, build, with_objects):
    errors = check_includes(root, build)
    if with_objects:
        errors += check_link(root, build)
        errors += check_test_decls(root, build)
        errors += check_prefixes(root, build)
    return errors


def self_test():
    """A miniature tree with one violation of each rule (and a clean variant): each must be caught."""
    cases = {
        'include': {'loader/core/a.c': '#include "cli.h"\n', 'tools/cli.h': ''},
        'include-maps': {'maps/x.h': '#include "core/vtg_core.h"\n', 'loader/core/vtg_core.h': ''},
        'include-bpf': {'bpf/x.bpf.c': '#include "core/vtg_core.h"\n', 'loader/core/vtg_core.h': ''},
        'include-relative': {'tools/a.c': '#include "../loader/core/vtg_core.h"\n',
                             'loader/core/vtg_core.h': ''},
        'internal': {'tools/a.c': '#include "export/prom.h"\n', 'loader/export/prom.h': '',
                     'loader/export/vtg_export.h': ''},
        'cycle': {'loader/a/vtg_a.h': '#include "b/vtg_b.h"\n', 'loader/b/vtg_b.h': '#include "a/vtg_a.h"\n'},
        'link-loader': {'loader/core/a.c': 'void tool_fn(void); void f(void) { tool_fn(); }\n',
                        'tools/cli.c': 'void tool_fn(void) {}\n'},
        'link-command': {'tools/ping.c': 'int vtg_cmd_ping; void lat_fn(void); void p(void) { lat_fn(); }\n',
                         'tools/latency.c': 'int vtg_cmd_latency; void lat_fn(void) {}\n'},
        'testdecl': {'loader/core/vtg_core.h': 'int only_in_tests(void);\n',
                     'selftests/lib/t.c': 'int only_in_tests(void) { return 1; }\n'},
        'prefix': {'loader/latency/a.c': 'int vtg_lat_ok(void) { return 0; } int ct_bad(void) { return 1; }\n'},
        'prefix-core': {'loader/core/a.c': 'int vtg_lat_in_core(void) { return 0; }\n'},
    }
    clean = {'tools/a.c': '#include "core/vtg_core.h"\n#include "cli.h"\n', 'tools/cli.h': '',
             'loader/core/vtg_core.h': '', 'loader/export/vtg_export.h': '#include "core/vtg_core.h"\n',
             'loader/export/sink.c': '#include "vtg_export.h"\n#include "prom.h"\n',
             'loader/export/prom.h': '', 'loader/export/x.c': 'int vtg_x_fn(void) { return 0; }\n',
             'loader/core/c.c': 'int vtg_now(void) { return 0; } int jw_fn(void) { return 0; }\n',
             'maps/m.h': '#include "n.h"\n', 'maps/n.h': '',
             'tools/main.c': 'int cmd_x(void); int main(void) { return cmd_x(); }\n',
             'tools/x.c': 'int draw(void); int cmd_x(void) { return draw(); }\n',
             'tools/x_ui.c': 'int draw(void) { return 0; }\n'}
    failures = 0
    for name, files in list(cases.items()) + [('clean', clean)]:
        with tempfile.TemporaryDirectory() as tmp:
            build = os.path.join(tmp, 'build')
            for rel, text in files.items():
                os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(tmp, rel), 'w') as f:
                    f.write(text)
                if rel.endswith('.c'):
                    obj = os.path.join(build, 'obj', rel[:-2] + '.o')
                    os.makedirs(os.path.dirname(obj), exist_ok=True)
                    subprocess.run(['cc', '-c', '-w', '-x', 'c', '-o', obj, '-'], input='\n'.join(
                        l for l in text.splitlines() if not l.startswith('#include')), text=True, check=True)
            errors = run(tmp, 'build', True)
            rule = name.split('-')[0]
            if name == 'clean':
                ok = not errors
            else:
                ok = any(f': {rule}: ' in e or e.startswith(rule + ':') for e in errors)
            print(f'{"ok  " if ok else "FAIL"} {name}: {errors if errors else "no violation found"}')
            failures += not ok
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--root', default='.')
    ap.add_argument('--build', default='build')
    ap.add_argument('--self-test', action='store_true')
    args = ap.parse_args()
    if args.self_test:
        return 1 if self_test() else 0
    root = os.path.abspath(args.root)
    with_objects = bool(os.path.isdir(os.path.join(root, args.build, 'obj')) and shutil.which('nm'))
    errors = run(root, args.build, with_objects)
    for e in errors:
        print(e)
    print(f'arrows: {len(errors)} violation(s)' + ('' if with_objects else ' (no objects: includes only)'))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
