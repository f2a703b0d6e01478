#!/usr/bin/python3
"""Names the failed TSan tests whose only reports are gRPC's call-requester delete.

After `ctest --preset tsan` fails, reads its log (build/tsan/Testing/Temporary)
and prints, one per line, the failed tests whose every ThreadSanitizer report
is the one known false positive below; exits 1 (printing nothing) when any
failed test failed otherwise, or reported anything else. scripts/test.sh runs
those tests once more, and the run passes only if they then pass.

The known report: when a callback stream ends, gRPC's CallOnDone (a template in
<grpcpp/support/server_callback_handlers.h>, compiled into our binary) calls
the call requester, a std::function whose body in libgrpc++ deletes the request
object. That delete is a tail call, so the interceptor's caller is our binary's
inlined std::function and the called_from_lib suppressions do not apply; the
earlier access is by a gRPC thread that has since exited, so TSan has no stack
for it (it prints none, or "[failed to restore the stack]"). The ordering
between the two is inside Debian's gRPC, which is not built with TSan. A `race:` suppression on CallOnDone would also hide races in
our reactors' OnDone, which it calls; this names the exact report instead.
Seen in two of the last nine clean-clone CI runs, each time in a different test.
"""

import os
import re
import sys

KNOWN = re.compile(
    r"WARNING: ThreadSanitizer: data race \(pid=\d+\)\n"
    r"  Write of size \d+ at 0x[0-9a-f]+ by thread T\d+:\n"
    r"    #0 operator delete\(void\*, unsigned long\) [^\n]*\n"
    r"    #1 std::function<void \(\)>::operator\(\)\(\) const [^\n]*\n"
    r"    #2 grpc::internal::Callback\w+Handler<[^\n]*>::Server\w+Impl::CallOnDone\(\) [^\n]*\n"
    r"    #3 <null> <null> \(libgrpc\+\+\.so[^\n]*\n"
    r"\n"
    r"  Previous (?:read|write) of size \d+ at 0x[0-9a-f]+ by thread T\d+:\n"
    r"(?:    \[failed to restore the stack\]\n)?"
    r"\n")
ANY_REPORT = re.compile(r"WARNING: ThreadSanitizer:")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build/tsan"
    temp = os.path.join(build, "Testing", "Temporary")
    try:
        with open(os.path.join(temp, "LastTestsFailed.log")) as f:
            failed = [line.strip().split(":", 1)[1] for line in f if ":" in line]
        with open(os.path.join(temp, "LastTest.log"), errors="replace") as f:
            log = f.read()
    except OSError as e:
        print("tsan_known_reports: %s" % e, file=sys.stderr)
        return 1
    if not failed:
        return 1
    for name in failed:
        start = log.find("Testing: %s\n" % name)
        end = log.find('"%s" end time:' % name, start)
        if start < 0 or end < 0:
            print("tsan_known_reports: no output for %s" % name, file=sys.stderr)
            return 1
        output = log[start:end]
        reports = len(ANY_REPORT.findall(output))
        known = len(KNOWN.findall(output))
        if reports == 0 or known != reports:
            print("tsan_known_reports: %s failed otherwise (%d reports, %d known)"
                  % (name, reports, known), file=sys.stderr)
            return 1
    print("\n".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
