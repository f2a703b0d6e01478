#!/usr/bin/env python3
"""Checks that the Bazel build has the same targets and sources as CMake.

CMake: reads CMakeLists.txt from the root down its add_subdirectory() calls
(every branch of every if(), so optional parts such as tests/fuzz count too)
and collects add_library, add_executable, credbroker_test,
credbroker_fuzzer and add_test, with their sources. Sources made by
credbroker_proto_generate count as the .proto files they come from; an
add_test that runs a script counts the script.

Bazel: `bazel query --output=xml` over every package but bazel/ and
third_party/ (the build's own machinery), with the same reading: the .proto
files behind generated sources, the .py script of a Python e2e test.

A target is "dir:name" (the folder of its CMakeLists.txt or BUILD.bazel).
Headers are not compared: CMake lists none. Fails, listing each difference,
when a target is in one build only, is a different kind (library, binary,
test) or has other sources, unless ALLOWED below names it with a reason.
Each Bazel test tagged manual, or skipping cases with --gtest_filter, must
be in ALLOWED too.

Usage: scripts/check_bazel_cmake.py [--bazel bazel] [--cmake-only]
  --cmake-only   print what CMake declares, without running Bazel
"""

import argparse
import fnmatch
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Intentional differences: (side, target pattern) -> reason. side is
# "cmake-only", "bazel-only", "sources" (same target, other sources) or
# "manual" (a Bazel test tagged manual) or "filtered" (a Bazel test that
# skips some of its cases with --gtest_filter). Patterns are fnmatch'ed.
ALLOWED = {
    ("cmake-only", "tests/fuzz:*"):
        "libFuzzer targets need clang and -fsanitize=fuzzer (the fuzz preset, "
        "scripts/fuzz.sh); the Bazel build uses the default gcc toolchain",
    ("cmake-only", ":credbroker_warnings"):
        "an INTERFACE library holding the warning set; Bazel's macros in "
        "bazel/cc.bzl apply the same flags",
    ("cmake-only", "tests/bench:credbroker_bench_smoke"):
        "the benchmark smoke run checks the benchmark's output with "
        "PASS_REGULAR_EXPRESSION; under Bazel the benchmark is built, not run",
    ("filtered", "tests/integration:flow_integration_test"):
        "FlowTest.ConnectionsFromAnotherUserAreRefused runs credctl as uid "
        "65534 with setpriv; Bazel's runfiles are in root's 0700 home, which "
        "that user cannot reach",
    ("filtered", "tests/integration:peer_identity_integration_test"):
        "PeerIdentityTest.AnotherUser* run credctl as uid 65534 with setpriv; "
        "Bazel's runfiles are in root's 0700 home, which that user cannot reach",
}

# Where CMake takes system .proto files from, and Bazel's name for them.
SYSTEM_PROTO_ROOTS = {"/usr/share/grpc-proto/": "@grpc_proto//:"}

# Bazel packages that are the build's own machinery, not CMake's targets.
BAZEL_EXCLUDED = ["//bazel/...", "//third_party/..."]

KIND_OF_BAZEL_RULE = {
    "cc_library": "library",
    "cc_binary": "binary",
    "cc_test": "test",
    "sh_test": "test",
}

HEADER_RE = re.compile(r"\.(h|hh|hpp|inc)$")


# ---------------------------------------------------------------- CMake side

def _strip_comments(text):
    out = []
    for line in text.splitlines():
        in_quote = False
        for i, c in enumerate(line):
            if c == '"':
                in_quote = not in_quote
            elif c == "#" and not in_quote:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _commands(text):
    """Yields (name, [args]) for each command call in a CMakeLists.txt."""
    text = _strip_comments(text)
    pos = 0
    call = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
    while True:
        m = call.search(text, pos)
        if not m:
            return
        depth = 1
        i = m.end()
        while i < len(text) and depth:
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
            i += 1
        body = text[m.end():i - 1]
        pos = i
        args = re.findall(r'"[^"]*"|[^\s"]+', body)
        yield m.group(1).lower(), [a.strip('"') for a in args]


class CMakeTargets:
    def __init__(self):
        self.targets = {}  # "dir:name" -> (kind, set of sources)

    def add(self, key, kind, sources):
        if key in self.targets:
            raise SystemExit("CMake target %s declared twice" % key)
        self.targets[key] = (kind, sources)

    def read(self, rel_dir):
        path = os.path.join(ROOT, rel_dir, "CMakeLists.txt")
        with open(path) as f:
            text = f.read()
        src_dir = os.path.join(ROOT, rel_dir) if rel_dir else ROOT
        variables = {
            "CMAKE_CURRENT_SOURCE_DIR": src_dir,
            "PROJECT_SOURCE_DIR": ROOT,
            "CMAKE_SOURCE_DIR": ROOT,
        }
        generated = {}  # variable holding generated sources -> .proto files
        skip_depth = 0  # inside function()/macro() definitions

        def expand(arg):
            return re.sub(r"\$\{(\w+)\}",
                          lambda m: variables.get(m.group(1), m.group(0)), arg)

        def sources(args):
            out = set()
            for a in args:
                m = re.fullmatch(r"\$\{(\w+)\}", a)
                if m and m.group(1) in generated:
                    out |= generated[m.group(1)]
                    continue
                a = expand(a)
                if "$" in a or a.isupper():
                    continue  # a generator expression or a keyword
                out.add(_normalize(a, src_dir))
            return out

        for name, args in _commands(text):
            if name in ("function", "macro"):
                skip_depth += 1
                continue
            if name in ("endfunction", "endmacro"):
                skip_depth -= 1
                continue
            if skip_depth:
                continue
            key = lambda n: "%s:%s" % (rel_dir, n)
            if name == "set" and args:
                values = args[1:args.index("CACHE")] if "CACHE" in args else args[1:]
                variables[args[0]] = ";".join(expand(v) for v in values)
            elif name == "add_subdirectory":
                self.read(os.path.normpath(os.path.join(rel_dir, expand(args[0]))))
            elif name == "credbroker_proto_generate":
                protos = _section(args, "PROTOS")
                generated[args[0]] = {_normalize(expand(p), src_dir) for p in protos}
            elif name == "add_library":
                rest = [a for a in args[1:]
                        if a not in ("STATIC", "SHARED", "OBJECT", "MODULE", "INTERFACE")]
                self.add(key(args[0]), "library", sources(rest))
            elif name == "add_executable":
                self.add(key(args[0]), "binary", sources(args[1:]))
            elif name == "credbroker_test":
                self.add(key(args[0]), "test", sources(_section(args, "SRCS")))
            elif name == "credbroker_fuzzer":
                self.add(key(args[0]), "binary", sources(_section(args, "SRCS")))
                self.add(key(args[0] + "_corpus"), "test", set())
            elif name == "add_test":
                command = [expand(a) for a in _section(args, "COMMAND")]
                scripts = {_normalize(a, src_dir) for a in command
                           if a.endswith((".py", ".sh"))}
                self.add(key(_section(args, "NAME")[0]), "test", scripts)


def _section(args, keyword):
    """The arguments after `keyword` up to the next all-caps keyword."""
    if keyword not in args:
        return []
    out = []
    for a in args[args.index(keyword) + 1:]:
        if re.fullmatch(r"[A-Z][A-Z_]+", a):
            break
        out.append(a)
    return out


def _normalize(path, src_dir):
    for prefix, label in SYSTEM_PROTO_ROOTS.items():
        if path.startswith(prefix):
            return label + path[len(prefix):]
    full = os.path.normpath(os.path.join(src_dir, path))
    return os.path.relpath(full, ROOT)


# ---------------------------------------------------------------- Bazel side

def _label_path(label):
    """//a/b:c/d.cc -> a/b/c/d.cc; external labels stay labels."""
    if label.startswith("@"):
        return label
    pkg, _, name = label[2:].partition(":")
    return os.path.join(pkg, name) if pkg else name


def bazel_targets(bazel):
    query = "//... " + " ".join("except " + p for p in BAZEL_EXCLUDED)
    result = subprocess.run(
        [bazel, "query", "--output=xml", "--noimplicit_deps", query],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit("bazel query failed")
    rules = ET.fromstring(result.stdout).findall("rule")

    # Generated file -> the .proto it comes from (bazel/proto.bzl's genrules).
    proto_of = {}
    for rule in rules:
        if rule.get("class") != "genrule":
            continue
        protos = [l.get("value") for l in _list(rule, "srcs")]
        for out in rule.findall("rule-output"):
            name = out.get("name")
            base = re.sub(r"(\.grpc)?\.pb\.(cc|h)$", "", name.partition(":")[2])
            for p in protos:
                if re.sub(r"\.proto$", "", p.partition(":")[2]) == base:
                    proto_of[name] = _label_path(p)

    targets = {}
    manual = set()
    filtered = set()
    for rule in rules:
        kind = KIND_OF_BAZEL_RULE.get(rule.get("class"))
        if kind is None:
            continue
        label = rule.get("name")
        key = label[2:]
        srcs = [l.get("value") for l in _list(rule, "srcs")]
        if rule.get("class") == "sh_test":
            # The scripts it runs: a shell test's own (srcs) and those it
            # calls (data); for a Python e2e test the .py in data, srcs
            # being the shared runner in //bazel.
            srcs = [l.get("value") for l in _list(rule, "srcs") + _list(rule, "data")
                    if l.get("value").endswith((".py", ".sh"))
                    and not l.get("value").startswith("//bazel:")]
        sources = {proto_of.get(s, _label_path(s)) for s in srcs}
        targets[key] = (kind, sources)
        tags = [t.get("value") for t in _list(rule, "tags", "string")]
        if "manual" in tags:
            manual.add(key)
        args = [a.get("value") for a in _list(rule, "args", "string")]
        if any(a.startswith("--gtest_filter") for a in args):
            filtered.add(key)
    return targets, manual, filtered


def _list(rule, name, element="label"):
    for lst in rule.findall("list"):
        if lst.get("name") == name:
            return lst.findall(element)
    return []


# ---------------------------------------------------------------- comparison

def _allowed(side, key):
    for (s, pattern), reason in ALLOWED.items():
        if s == side and fnmatch.fnmatchcase(key, pattern):
            return reason
    return None


def compare(cmake, bazel, manual, filtered):
    problems = []
    notes = []

    def report(side, key, message):
        reason = _allowed(side, key)
        if reason:
            notes.append("allowed: %s %s (%s)" % (side, key, reason))
        else:
            problems.append(message)

    for key in sorted(set(cmake) | set(bazel)):
        if key not in bazel:
            report("cmake-only", key,
                   "%s (%s) is in CMake but has no Bazel target" % (key, cmake[key][0]))
            continue
        if key not in cmake:
            report("bazel-only", key,
                   "%s (%s) is in Bazel but not in CMake" % (key, bazel[key][0]))
            continue
        ckind, csrcs = cmake[key]
        bkind, bsrcs = bazel[key]
        if ckind != bkind:
            problems.append("%s is a %s in CMake but a %s in Bazel" % (key, ckind, bkind))
        csrcs = {s for s in csrcs if not HEADER_RE.search(s)}
        bsrcs = {s for s in bsrcs if not HEADER_RE.search(s)}
        if csrcs != bsrcs:
            detail = []
            if csrcs - bsrcs:
                detail.append("only in CMake: " + " ".join(sorted(csrcs - bsrcs)))
            if bsrcs - csrcs:
                detail.append("only in Bazel: " + " ".join(sorted(bsrcs - csrcs)))
            report("sources", key, "%s: sources differ; %s" % (key, "; ".join(detail)))
    for side, keys, what in (
            ("manual", manual, "is tagged manual (not run by bazel test //...)"),
            ("filtered", filtered, "skips test cases with --gtest_filter")):
        for key in sorted(keys):
            report(side, key, "%s %s without a reason in ALLOWED" % (key, what))
    return problems, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bazel", default=os.environ.get("BAZEL", "bazel"))
    parser.add_argument("--cmake-only", action="store_true")
    args = parser.parse_args()

    cmake = CMakeTargets()
    cmake.read("")
    if args.cmake_only:
        for key, (kind, srcs) in sorted(cmake.targets.items()):
            print("%-60s %-8s %s" % (key, kind, " ".join(sorted(srcs))))
        return 0
    bazel, manual, filtered = bazel_targets(args.bazel)
    problems, notes = compare(cmake.targets, bazel, manual, filtered)
    for n in notes:
        print(n if len(n) <= 120 else n[:117] + "...")
    if problems:
        print("\nThe Bazel build and CMake disagree (BUILD.bazel files must list the "
              "targets and sources of the CMakeLists.txt beside them; "
              "see docs/BAZEL.md):", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print("Bazel and CMake agree: %d targets (%d CMake targets allowed to differ)"
          % (len(bazel), len(set(cmake.targets) - set(bazel))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
