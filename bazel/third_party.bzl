"""system_cc_library: a Debian library as a cc_library, with the defines and
link flags pkg-config gives for it (@system_libs, bazel/system.bzl). Its
headers are in /usr/include, which the compiler searches already."""

load("@rules_cc//cc:defs.bzl", "cc_library")
load("@system_libs//:flags.bzl", "PKG_CONFIG")

def system_cc_library(name, module, linkopts = [], **kwargs):
    flags = PKG_CONFIG[module]
    cc_library(
        name = name,
        defines = flags.defines,
        linkopts = linkopts + flags.linkopts,
        **kwargs
    )

def system_version(module):
    """The installed version of a pkg-config module, for a BUILD's notes."""
    return PKG_CONFIG[module].version
