"""cc_grpc_library: C++ (and gRPC) code generated from .proto files with
Debian's protoc and grpc_cpp_plugin, as cmake/CredbrokerProto.cmake does.

Generated files keep the proto's path below its root, under the calling
package, and the library adds that directory to the include path, so code
includes "credbroker/v1/types.pb.h" in both builds.

    cc_grpc_library(
        name = "credbroker_proto",
        protos = [
            proto_files("//protos", ["credbroker/v1/types.proto"], grpc = True),
            proto_files("@grpc_proto//", ["grpc/health/v1/health.proto"], grpc = True),
        ],
    )
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

_PROTOC = "@system_tools//:protoc"
_GRPC_PLUGIN = "@system_tools//:grpc_cpp_plugin"

def proto_files(package, srcs, grpc = False):
    """.proto files `srcs`, relative to `package`, which is also their import
    root (what protoc's -I names); with grpc, service stubs too."""
    return struct(package = package, srcs = srcs, grpc = grpc)

def _label(package, src):
    return package + ":" + src

def _outputs(group):
    outs = []
    for src in group.srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.cc", base + ".pb.h"]
        if group.grpc:
            outs += [base + ".grpc.pb.cc", base + ".grpc.pb.h"]
    return outs

def cc_grpc_library(name, protos, deps = [], **kwargs):
    """One cc_library of the code generated from every group in `protos`
    (a list of proto_files); each group may import from the others."""
    all_labels = []
    roots = []
    for group in protos:
        labels = [_label(group.package, s) for s in group.srcs]
        all_labels += labels

        # The import root: the first file's path with its relative part cut.
        roots.append('r="$(execpath %s)"; r="$${r%%%s}"; I="$$I -I$${r:-.}"' %
                     (labels[0], group.srcs[0]))
    srcs = []
    hdrs = []
    for i, group in enumerate(protos):
        outs = _outputs(group)
        srcs += [o for o in outs if o.endswith(".cc")]
        hdrs += [o for o in outs if o.endswith(".h")]
        plugin = ""
        if group.grpc:
            plugin = ("--plugin=protoc-gen-grpc=$(execpath %s) --grpc_out=$(RULEDIR) " %
                      _GRPC_PLUGIN)
        native.genrule(
            name = "%s_gen_%d" % (name, i),
            srcs = all_labels,
            outs = outs,
            tools = [_PROTOC, _GRPC_PLUGIN],
            cmd = "I=; " + "; ".join(roots) + "; " +
                  "$(execpath %s) $$I --cpp_out=$(RULEDIR) %s%s" % (
                      _PROTOC,
                      plugin,
                      " ".join(["$(execpath %s)" % _label(group.package, s) for s in group.srcs]),
                  ),
            message = "protoc %s" % ", ".join(group.srcs),
        )
    cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        includes = ["."],
        deps = deps + [
            "//third_party/protobuf",
            "//third_party/grpc:grpc++",
        ],
        **kwargs
    )
