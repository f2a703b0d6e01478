#include "broker/rpc/server.h"

#include "gtest/gtest.h"

namespace credbroker {
namespace {

TEST(ParseEndpointTest, UnixPaths) {
  absl::StatusOr<Endpoint> ep = ParseEndpoint("unix:/tmp/x/broker.sock", false);
  ASSERT_TRUE(ep.ok());
  EXPECT_TRUE(ep->is_unix);
  EXPECT_EQ(ep->path, "/tmp/x/broker.sock");
  EXPECT_EQ(ep->ToString(), "unix:/tmp/x/broker.sock");
  ASSERT_TRUE(ParseEndpoint("unix:///tmp/y.sock", false).ok());
  EXPECT_EQ(ParseEndpoint("unix:///tmp/y.sock", false)->path, "/tmp/y.sock");
  EXPECT_EQ(ParseEndpoint("unix:relative.sock", false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseEndpointTest, LoopbackTcp) {
  for (const char* spec :
       {"127.0.0.1:7443", "localhost:0", "[::1]:9000", "127.8.9.1:1"}) {
    absl::StatusOr<Endpoint> ep = ParseEndpoint(spec, false);
    ASSERT_TRUE(ep.ok()) << spec << ": " << ep.status();
    EXPECT_FALSE(ep->is_unix);
  }
  EXPECT_EQ(ParseEndpoint("[::1]:9000", false)->ToString(), "[::1]:9000");
}

TEST(ParseEndpointTest, RemoteHostsNeedAllowRemote) {
  for (const char* spec :
       {"0.0.0.0:7443", "192.0.2.1:7443", "[::]:7443", "example.com:1"}) {
    absl::StatusOr<Endpoint> ep = ParseEndpoint(spec, false);
    EXPECT_EQ(ep.status().code(), absl::StatusCode::kFailedPrecondition)
        << spec;
    EXPECT_NE(ep.status().message().find("--allow_remote"),
              absl::string_view::npos);
    EXPECT_TRUE(ParseEndpoint(spec, true).ok()) << spec;
  }
}

TEST(ParseEndpointTest, MalformedEntries) {
  for (const char* spec :
       {"127.0.0.1", "127.0.0.1:port", "127.0.0.1:70000", ":80", "[::1:80"}) {
    EXPECT_EQ(ParseEndpoint(spec, false).status().code(),
              absl::StatusCode::kInvalidArgument)
        << spec;
  }
}

}  // namespace
}  // namespace credbroker
