// The HTTP transport over real sockets on 127.0.0.1, with trivial routes: slow clients are cut off
// and do not starve others, connections past the limit are refused at once, bodies (chunked too)
// obey their limit, bad framing is refused, and close_connections() ends idle connections now.
#include "gannet/infer/http_transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "raw_http.h"

using namespace gannet::infer;
using gannet::testing::RawConnection;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

class HttpTransportTest : public ::testing::Test {
 protected:
  static constexpr size_t kBodyLimit = 1000;

  void start(const HttpLimits& limits) {
    http_ = std::make_unique<HttpTransport>(limits);
    http_->Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi", "text/plain"); });
    http_->Post("/echo", [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& r) {
      std::string body;
      if (!HttpTransport::read_body(req, r, kBodyLimit, body)) {
        res.status = RequestArrival::current()->status;
        res.set_content(RequestArrival::current()->error, "text/plain");
        return;
      }
      res.set_content(body, "text/plain");
    });
    port_ = http_->bind("127.0.0.1", 0);
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { http_->listen_after_bind(); });
    while (!http_->is_running()) std::this_thread::sleep_for(1ms);
  }
  void TearDown() override {
    if (!http_) return;
    http_->close_connections();
    http_->stop();
    thread_.join();
  }

  int get_hello() {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(10, 0);
    auto r = cli.Get("/hello");
    return r ? r->status : -1;
  }

  std::unique_ptr<HttpTransport> http_;
  std::thread thread_;
  int port_ = 0;
};

std::string chunked_post(const std::string& body) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx", body.size());
  return "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(size) + "\r\n" + body +
         "\r\n0\r\n\r\n";
}

}  // namespace

// More trickling clients than the old thread pool had workers (16): a byte each per 200 ms keeps
// any per-read timeout alive, so only the deadline for the whole request cuts them off (408);
// meanwhile a normal request is answered at once.
TEST_F(HttpTransportTest, TricklingClientsAreCutOffAndDoNotStarveOthers) {
  HttpLimits limits;
  limits.request_timeout = 4000ms;
  limits.read_timeout = 2000ms;
  start(limits);
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 40; ++i) slow.push_back(std::make_unique<RawConnection>(port_));
  const std::string head = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  std::atomic<bool> trickling{true};
  const auto started = Clock::now();
  std::thread trickler([&] {
    for (size_t i = 0; trickling; ++i) {
      for (auto& c : slow) c->send(std::string(1, i < head.size() ? head[i] : 'a'));
      std::this_thread::sleep_for(200ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  const auto asked = Clock::now();
  EXPECT_EQ(get_hello(), 200);
  EXPECT_LT(Clock::now() - asked, 2000ms);  // long before the slow ones are cut off

  for (auto& c : slow) {
    const std::string reply = c->read_response(8000ms);
    EXPECT_EQ(RawConnection::status_of(reply), 408) << reply;
    EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
    EXPECT_NE(reply.find("did not arrive within 4 s"), std::string::npos) << reply;
  }
  const auto cut_off = Clock::now() - started;
  trickling = false;
  trickler.join();
  EXPECT_GE(cut_off, 3900ms);
  EXPECT_LT(cut_off, 7000ms);
  for (auto& c : slow) EXPECT_TRUE(c->closed_within(2000ms));
}

// The request line arrives whole, the headers trickle past the deadline: httplib answers that
// itself (a bare 400), and the client still gets 408 with the reason.
TEST_F(HttpTransportTest, HeadersPastTheDeadlineAre408WithTheReason) {
  HttpLimits limits;
  limits.request_timeout = 1000ms;
  limits.read_timeout = 1000ms;
  start(limits);
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\n"));
  std::string reply;
  for (int i = 0; i < 40 && reply.empty(); ++i) {
    c.send("X-Slow: a\r\n");
    reply = c.read_response(100ms);
  }
  EXPECT_EQ(RawConnection::status_of(reply), 408) << reply;
  EXPECT_NE(reply.find("did not arrive within 1 s"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\"invalid_request_error\""), std::string::npos) << reply;
}

TEST_F(HttpTransportTest, SilenceIsCutOffByTheReadTimeout) {
  HttpLimits limits;
  limits.read_timeout = 300ms;
  limits.keep_alive_timeout = 500ms;
  start(limits);
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost:"));
  const auto sent = Clock::now();
  EXPECT_EQ(RawConnection::status_of(c.read_response(3000ms)), 408);
  EXPECT_LT(Clock::now() - sent, 1500ms);
  // A connection that never sends a byte is idle: closed after the keep-alive timeout, silently.
  RawConnection idle(port_);
  EXPECT_TRUE(idle.closed_within(2000ms));
  EXPECT_EQ(idle.received, "");
}

TEST_F(HttpTransportTest, ConnectionsPastTheLimitAre503AtOnce) {
  HttpLimits limits;
  limits.max_connections = 4;
  limits.keep_alive_timeout = 1500ms;
  start(limits);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<RawConnection>(port_));
  std::this_thread::sleep_for(200ms);  // accepted, each on its thread
  RawConnection extra(port_);
  const auto asked = Clock::now();
  const std::string reply = extra.read_response(1000ms);
  EXPECT_EQ(RawConnection::status_of(reply), 503) << reply;
  EXPECT_LT(Clock::now() - asked, 1000ms);
  EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\"error\""), std::string::npos) << reply;
  EXPECT_TRUE(extra.closed_within(1000ms));
  // The idle ones go at their deadline; then there is room again.
  for (auto& c : idle) EXPECT_TRUE(c->closed_within(3000ms));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(get_hello(), 200);
}

TEST_F(HttpTransportTest, BodiesObeyTheLimitChunkedOrNot) {
  start(HttpLimits{});
  RawConnection c(port_);
  // At the limit: read whole, and the connection stays open for the next request.
  ASSERT_TRUE(c.send(chunked_post(std::string(kBodyLimit, 'x'))));
  std::string reply = c.read_response(3000ms);
  EXPECT_EQ(RawConnection::status_of(reply), 200) << reply;
  EXPECT_NE(reply.find("\r\n\r\n" + std::string(kBodyLimit, 'x')), std::string::npos);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(RawConnection::status_of(c.read_response(3000ms)), 200);
  // One byte over, chunked: 413, and the connection closes (the rest of the body is unread).
  ASSERT_TRUE(c.send(chunked_post(std::string(kBodyLimit + 1, 'x'))));
  reply = c.read_response(3000ms);
  EXPECT_EQ(RawConnection::status_of(reply), 413) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_TRUE(c.closed_within(3000ms));
  // A Content-Length over the limit is refused before a byte of the body is sent.
  RawConnection d(port_);
  ASSERT_TRUE(d.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"));
  reply = d.read_response(3000ms);
  EXPECT_EQ(RawConnection::status_of(reply), 413) << reply;
  EXPECT_NE(reply.find("1001 bytes is over the limit of 1000"), std::string::npos) << reply;
  // Malformed chunk framing is a 400.
  RawConnection e(port_);
  ASSERT_TRUE(e.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
  EXPECT_EQ(RawConnection::status_of(e.read_response(3000ms)), 400);
}

// A request over max_request_bytes on the wire (here: an endless header line, which httplib
// would buffer whole) is cut off with a 413.
TEST_F(HttpTransportTest, RequestsOverTheByteLimitAre413) {
  HttpLimits limits;
  limits.max_request_bytes = 64 << 10;
  start(limits);
  RawConnection c(port_);
  c.send("GET /hello HTTP/1.1\r\nX-Big: " + std::string(100 << 10, 'a'));
  EXPECT_EQ(RawConnection::status_of(c.read_response(3000ms)), 413);
}

TEST_F(HttpTransportTest, FramingHttplibWouldMisreadIsRefused) {
  start(HttpLimits{});
  auto status = [&](const std::string& request) {
    RawConnection c(port_);
    c.send(request);
    return RawConnection::status_of(c.read_response(3000ms));
  };
  EXPECT_EQ(status("POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(
      status("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
      400);
  EXPECT_EQ(status("POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"), 400);
  EXPECT_EQ(status("POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(status("POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 200);
  // No Content-Length and no Transfer-Encoding: no body (httplib would read until the client
  // closes).
  EXPECT_EQ(status("POST /echo HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
}

// Idle keep-alive connections and requests still arriving end at once; listen returns at once.
TEST_F(HttpTransportTest, CloseConnectionsEndsIdleOnesAtOnce) {
  HttpLimits limits;
  limits.keep_alive_timeout = 30000ms;
  limits.request_timeout = 30000ms;
  limits.read_timeout = 30000ms;
  start(limits);
  RawConnection idle(port_), arriving(port_);
  ASSERT_TRUE(idle.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string reply = idle.read_response(3000ms);
  EXPECT_EQ(RawConnection::status_of(reply), 200);
  EXPECT_NE(reply.find("Keep-Alive: timeout=30, max=100"), std::string::npos) << reply;
  ASSERT_TRUE(arriving.send("GET /hello HTTP/1.1\r\nHo"));
  std::this_thread::sleep_for(100ms);
  const auto closing = Clock::now();
  http_->close_connections();
  EXPECT_TRUE(idle.closed_within(1000ms));
  EXPECT_TRUE(arriving.closed_within(1000ms));
  http_->stop();
  thread_.join();
  EXPECT_LT(Clock::now() - closing, 1000ms);
  http_.reset();
}
