// cpp-httplib's Server (0.11, Debian's) with its connection handling replaced through the hook its
// SSL server uses (process_and_close_socket), to bound what a client can hold:
//
//   - Each connection has its own thread, up to max_connections; one more is answered 503 at once
//     on the accepting thread, so that slow or idle clients never starve a pool of workers.
//   - A request's head and body must arrive within request_timeout of its first byte, with no
//     silence longer than read_timeout: a client trickling a byte a second is cut off (408)
//     instead of holding its thread. A connection with no request begun (new, or kept alive)
//     closes after keep_alive_timeout.
//   - A request's bytes on the wire (head, body and chunk framing) are capped at
//     max_request_bytes (413): httplib 0.11 buffers a header line, and a chunked body, whole.
//   - Idle keep-alive connections wait on both the socket and a shutdown signal:
//     close_connections() closes them, and drops requests still arriving, at once.
//   - Bodies are read by the handler (read_body, with a byte limit that chunked uploads obey too);
//     a connection closes after a response whose request body was not read to its end (a 413,
//     415 or 404 answered before it), lingering up to a second so that the client reads it.
//   - Framing httplib would misread is refused before routing: a malformed or repeated
//     Content-Length, a Transfer-Encoding other than chunked, both at once (400 / 501).
//
// A failure the transport detects sets RequestArrival's status and error; the server's error
// handler turns them into its error response (httplib itself reports them as a bare 400).
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>

namespace gannet::infer {

struct HttpLimits {
  size_t max_connections = 256;
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds write_timeout{5000};  // a client not reading its response is dropped
  std::chrono::milliseconds keep_alive_timeout{5000};
  size_t keep_alive_max_requests = 100;
  size_t max_request_bytes = (2 << 20) + (64 << 10);
};

// The request being served on this thread, shared by the transport and the handlers.
struct RequestArrival {
  int status = 0;            // when non-zero, the request failed to arrive: answer this status...
  std::string error;         // ...with this message
  bool body_unread = false;  // part of a body is still on the wire: close after the response
  // The request of the calling thread's connection; null outside a request.
  static RequestArrival* current();
};

class HttpTransport : public httplib::Server {
 public:
  explicit HttpTransport(const HttpLimits& limits);
  ~HttpTransport() override;
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Binds host:port (0: any free port) and returns the port, or -1. The listening queue holds
  // SOMAXCONN connections (httplib's is 5: a burst of clients past it was reset).
  int bind(const std::string& host, int port);

  // Runs after the transport's own checks, before routing (httplib's pre-routing handler, which
  // the transport keeps for itself).
  void set_request_filter(HandlerWithResponse filter) { filter_ = std::move(filter); }

  // Reads the request's body, at most max_bytes of it (chunked or not; a larger Content-Length is
  // refused unread). False when it did not arrive whole: RequestArrival::current() says why.
  static bool read_body(const httplib::Request& req, const httplib::ContentReader& reader, size_t max_bytes,
                        std::string& body);

  // Closes idle connections and drops requests still arriving, now and from now on; responses
  // being computed or written go on. Call before stop(), so that stop() waits for no idle client.
  void close_connections();
  const HttpLimits& limits() const { return limits_; }

 private:
  bool process_and_close_socket(socket_t sock) override;
  HandlerResponse check_framing(const httplib::Request& req, httplib::Response& res) const;

  const HttpLimits limits_;
  HandlerWithResponse filter_;
  int wake_fd_ = -1;  // an eventfd, readable once close_connections() was called
  std::atomic<bool> closing_{false};
};

}  // namespace gannet::infer
