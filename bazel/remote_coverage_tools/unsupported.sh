#!/bin/sh
echo "credbroker: coverage is not supported under Bazel (bazel/remote_coverage_tools is a stub); use CMake" >&2
exit 1
