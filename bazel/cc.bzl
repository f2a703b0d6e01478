"""C++ macros for credbroker's own targets: the one warning set of CMake's
credbroker_warnings (with -Werror, as the ci preset builds), C++17 from
.bazelrc. Generated code (bazel/proto.bzl) is built without it, as in CMake.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

CREDBROKER_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Werror",
]

def credbroker_cc_library(name, copts = [], **kwargs):
    cc_library(name = name, copts = CREDBROKER_COPTS + copts, **kwargs)

def credbroker_cc_binary(name, copts = [], **kwargs):
    cc_binary(name = name, copts = CREDBROKER_COPTS + copts, **kwargs)

def credbroker_cc_test(name, copts = [], deps = [], **kwargs):
    """A gtest executable, as CMake's credbroker_test: gtest, gmock, gtest_main."""
    cc_test(
        name = name,
        copts = CREDBROKER_COPTS + copts,
        deps = deps + ["//third_party/gtest:gtest_main"],
        **kwargs
    )

def credbroker_python_e2e_test(name, script, args = [], data = [], **kwargs):
    """A Python end-to-end test run with /usr/bin/python3 (Debian's
    python3-grpcio lives there), as tests/e2e/CMakeLists.txt runs it.
    `script` is the test's .py file; `args` follow it."""
    native.sh_test(
        name = name,
        srcs = ["//bazel:python_e2e.sh"],
        args = ["$(rootpath %s)" % script] + args,
        data = [script] + data,
        **kwargs
    )
