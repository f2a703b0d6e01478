#!/usr/bin/python3
"""Instructions per call of credbrokerd, or of the bench's echo server, under callgrind.

Starts the server under `valgrind --tool=callgrind` on a temporary directory,
makes --warmup untimed calls, zeroes the counters (callgrind_control -z),
makes --calls calls from --threads client threads, dumps the counters
(callgrind_control -d) and prints the server's user-space instructions per
call (every thread). On a quiet machine the count repeats within about 0.5%
between runs, which throughput on a shared machine does not: use it to
compare two builds. Idle work (gRPC's timers and pollers) is counted too, so
a busy machine, which makes the run longer, adds a little.

  scripts/callgrind_calls.py --server build-bench/broker/credbrokerd --call get
  scripts/callgrind_calls.py --server build-bench/tests/bench/credbroker_bench --call echo

Needs valgrind, protoc with grpc_python_plugin and python3-grpcio (Debian's).
Talks to the server over a Unix socket only.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate_stubs(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    protos = sorted(glob.glob(os.path.join(SOURCE, "protos/credbroker/v1/*.proto")))
    rpc = sorted(glob.glob(os.path.join(SOURCE, "third_party/googleapis/google/rpc/*.proto")))
    echo = os.path.join(SOURCE, "tests/bench/protos/credbroker/bench/v1/echo.proto")
    subprocess.run(["protoc", "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    "--python_out=" + out_dir, "--grpc_python_out=" + out_dir,
                    "-I", os.path.join(SOURCE, "protos"),
                    "-I", os.path.join(SOURCE, "third_party/googleapis"),
                    "-I", os.path.join(SOURCE, "tests/bench/protos")] + protos + rpc + [echo],
                   check=True, timeout=120)
    sys.path.insert(0, out_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True,
                        help="credbrokerd, or credbroker_bench for --call echo")
    parser.add_argument("--call", choices=["get", "validate", "echo"], default="get")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--profiles", type=int, default=20,
                        help="credentials stored and read in turn (get, validate)")
    parser.add_argument("--reply_bytes", type=int, default=186,
                        help="echo answer size; 186 is GetCredential's here")
    parser.add_argument("--keep", help="copy the callgrind dump here")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="cb-callgrind.")
    try:
        generate_stubs(os.path.join(work, "stubs"))
        import grpc
        from credbroker.bench.v1 import echo_pb2, echo_pb2_grpc
        from credbroker.v1 import credential_service_pb2 as cs
        from credbroker.v1 import credential_service_pb2_grpc as cs_grpc

        data = os.path.join(work, "data")
        os.mkdir(data, 0o700)
        out = os.path.join(work, "callgrind.out")
        if args.call == "echo":
            sock = os.path.join(work, "echo.sock")
            argv = [args.server, "--echo_server", sock]
        else:
            sock = os.path.join(data, "broker.sock")
            argv = [args.server, "--data_dir", data, "--key_source=file"]
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                line = server.stdout.readline()
                if not line or time.monotonic() > deadline:
                    sys.exit("the server did not print ready under valgrind")
                if "ready" in line:
                    break
            channel = grpc.insecure_channel("unix:" + sock)
            if args.call == "echo":
                stub = echo_pb2_grpc.EchoStub(channel)
                metadata = [("authorization", "Bearer " + "x" * 43)]
                message = echo_pb2.EchoMessage(payload=b"x" * 4, reply_bytes=args.reply_bytes)

                def one(i):
                    stub.Echo(message, metadata=metadata, timeout=60)
            else:
                with open(os.path.join(data, "approver.token")) as f:
                    metadata = [("authorization", "Bearer " + f.read().strip())]
                stub = cs_grpc.CredentialServiceStub(channel)
                for i in range(args.profiles):
                    put = cs.PutCredentialRequest(provider="aws", profile="p%d" % i)
                    put.values["access_key_id"] = "AKIAIOSFODNN7EXAMPL%d" % (i % 10)
                    put.values["secret_access_key"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
                    stub.PutCredential(put, metadata=metadata, timeout=60)

                def one(i):
                    profile = "p%d" % (i % args.profiles)
                    if args.call == "get":
                        stub.GetCredential(cs.GetCredentialRequest(provider="aws", profile=profile),
                                           metadata=metadata, timeout=60)
                    else:
                        stub.ValidateCredential(
                            cs.ValidateCredentialRequest(provider="aws", profile=profile),
                            metadata=metadata, timeout=60)
            for i in range(args.warmup):
                one(i)
            subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(one, range(args.calls)))
            subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        finally:
            server.terminate()
            server.wait(timeout=60)
        dumps = sorted(glob.glob(out + ".*"), key=os.path.getmtime)
        if not dumps:
            sys.exit("callgrind wrote no dump")
        total = None
        with open(dumps[0]) as f:  # The first dump: the one asked for.
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
                    break
        if total is None:
            sys.exit("no total in " + dumps[0])
        if args.keep:
            shutil.copy(dumps[0], args.keep)
        print("%s: %d calls from %d threads, %.0f instructions per call (server user space)"
              % (args.call, args.calls, args.threads, total / args.calls))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
