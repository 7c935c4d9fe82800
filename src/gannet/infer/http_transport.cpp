#include "gannet/infer/http_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "gannet/core/error.h"

namespace gannet::infer {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

thread_local RequestArrival* t_current = nullptr;
// Set while the accepting thread runs a connection it has no thread for: it is refused.
thread_local bool t_refuse = false;

std::string seconds(std::chrono::milliseconds ms) {
  return ms.count() % 1000 == 0 ? str(ms.count() / 1000, " s") : str(ms.count(), " ms");
}

// One thread per connection, at most `max` at once; past that, enqueue() runs the connection on
// the calling (accepting) thread with t_refuse set, which answers 503 without blocking.
class ConnectionThreads : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(size_t max) : max_(max) {}
  ~ConnectionThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    join_finished();
    if (threads_.size() < max_) {
      try {
        const uint64_t id = next_id_++;
        threads_.emplace_back(id, std::thread([this, id, fn] {
                                fn();
                                std::lock_guard<std::mutex> done(mutex_);
                                finished_.push_back(id);
                              }));
        return;
      } catch (const std::system_error&) {  // no thread to be had: refuse, as when full
      }
    }
    lock.unlock();
    t_refuse = true;
    fn();
    t_refuse = false;
  }

  void shutdown() override {
    std::list<std::pair<uint64_t, std::thread>> all;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      all.swap(threads_);
      finished_.clear();
    }
    for (auto& [id, t] : all) t.join();
  }

 private:
  void join_finished() {  // mutex_ held; the finished threads no longer need it
    for (uint64_t id : finished_) {
      auto it = std::find_if(threads_.begin(), threads_.end(), [&](const auto& e) { return e.first == id; });
      it->second.join();
      threads_.erase(it);
    }
    finished_.clear();
  }

  const size_t max_;
  std::mutex mutex_;
  uint64_t next_id_ = 0;
  std::list<std::pair<uint64_t, std::thread>> threads_;
  std::vector<uint64_t> finished_;
};

enum class Ready { yes, timeout, woken, error };

// Waits until `sock` is readable (or closed), `wake_fd` is readable, or `until`.
Ready wait_readable(int sock, int wake_fd, Clock::time_point until) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd fds[2] = {{sock, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, (int)std::clamp<int64_t>(left, 0, 1 << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Ready::error;
    if (fds[1].revents) return Ready::woken;
    if (fds[0].revents) return Ready::yes;
    if (left <= 0) return Ready::timeout;
  }
}

bool wait_writable(int sock, std::chrono::milliseconds timeout) {
  pollfd fd = {sock, POLLOUT, 0};
  int n;
  do n = ::poll(&fd, 1, (int)timeout.count());
  while (n < 0 && errno == EINTR);
  return n > 0 && (fd.revents & POLLOUT);
}

void ip_and_port(const sockaddr_storage& a, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text));
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text));
    port = ntohs(v6.sin6_port);
  }
  ip = text;
}

// A connection's socket as httplib's Stream, for one request at a time: reads wait for the
// request's deadline, the silence allowed, and the shutdown signal, and stop at a byte budget.
// The read buffer outlives each request, so that pipelined requests are kept.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(socket_t sock, int wake_fd, const HttpLimits& limits)
      : sock_(sock), wake_fd_(wake_fd), limits_(limits) {}

  // Waits until `until` for another request to begin (true), or the client to close (true: the
  // read sees it), or a timeout or the shutdown signal (false).
  bool wait_for_request(Clock::time_point until) {
    return off_ < len_ || wait_readable(sock_, wake_fd_, until) == Ready::yes;
  }
  void begin_request(Clock::time_point deadline, RequestArrival* arrival) {
    deadline_ = deadline;
    arrival_ = arrival;
    consumed_ = written_ = 0;
  }
  size_t consumed() const { return consumed_; }
  size_t written() const { return written_; }

  bool is_readable() const override {
    return off_ < len_ || wait_readable(sock_, wake_fd_, next_read_limit()) == Ready::yes;
  }
  bool is_writable() const override { return wait_writable(sock_, limits_.write_timeout) && peer_open(); }

  ssize_t read(char* ptr, size_t size) override {
    if (consumed_ >= limits_.max_request_bytes)
      return fail(413, str("the request is over the limit of ", limits_.max_request_bytes, " bytes"));
    if (off_ == len_) {
      switch (wait_readable(sock_, wake_fd_, next_read_limit())) {
        case Ready::yes:
          break;
        case Ready::timeout:
          return fail(408, Clock::now() >= deadline_
                               ? str("the request did not arrive within ", seconds(limits_.request_timeout))
                               : str("the client sent nothing for ", seconds(limits_.read_timeout)));
        case Ready::woken:
          return fail(503, "the server is shutting down");
        case Ready::error:
          return -1;
      }
      ssize_t n;
      do n = ::recv(sock_, buf_, sizeof(buf_), 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return n < 0 ? -1 : 0;
      off_ = 0;
      len_ = (size_t)n;
    }
    const size_t n = std::min({size, len_ - off_, limits_.max_request_bytes - consumed_});
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    consumed_ += n;
    return (ssize_t)n;
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!wait_writable(sock_, limits_.write_timeout)) return -1;
    ssize_t n;
    do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0) written_ += (size_t)n;
    return n < 0 ? -1 : n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    if (getpeername(sock_, (sockaddr*)&a, &len) == 0) ip_and_port(a, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    if (getsockname(sock_, (sockaddr*)&a, &len) == 0) ip_and_port(a, ip, port);
  }
  socket_t socket() const override { return sock_; }

 private:
  Clock::time_point next_read_limit() const { return std::min(deadline_, Clock::now() + limits_.read_timeout); }

  ssize_t fail(int status, std::string error) {
    if (arrival_ && arrival_->status == 0) arrival_->status = status, arrival_->error = std::move(error);
    return -1;
  }

  // False once the client has closed its end (a streaming response stops then).
  bool peer_open() const {
    pollfd fd = {sock_, POLLIN, 0};
    if (::poll(&fd, 1, 0) <= 0) return true;
    char c;
    const ssize_t n = ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
  }

  const socket_t sock_;
  const int wake_fd_;
  const HttpLimits& limits_;
  Clock::time_point deadline_ = Clock::time_point::max();
  RequestArrival* arrival_ = nullptr;
  size_t consumed_ = 0;  // bytes of this request read
  size_t written_ = 0;   // bytes of its response written
  char buf_[16384];
  size_t off_ = 0, len_ = 0;
};

// An error body in OpenAI's shape.
std::string error_body(int status, const std::string& message) {
  std::string escaped;
  for (char c : message) escaped += c == '"' || c == '\\' ? str('\\', c) : std::string(1, c);
  return str(R"({"error": {"message": ")", escaped, R"(", "type": ")",
             status >= 500 ? "server_error" : "invalid_request_error", R"(", "param": null, )", R"("code": null}})");
}

// Writes a response where httplib writes none (it has no request to answer), without blocking.
void send_bare_error(socket_t sock, int status, const std::string& message) {
  const char* reason = status == 408   ? "Request Timeout"
                       : status == 413 ? "Payload Too Large"
                       : status == 503 ? "Service Unavailable"
                                       : "Bad Request";
  const std::string body = error_body(status, message);
  const std::string reply =
      str("HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
          status == 503 ? "\r\nRetry-After: 1" : "", "\r\nConnection: close\r\n\r\n", body);
  ssize_t ignored = ::send(sock, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)ignored;
}

void refuse(socket_t sock, size_t max_connections) {
  send_bare_error(sock, 503, str("the server has ", max_connections, " connections open; try again later"));
  ::shutdown(sock, SHUT_WR);
  ::close(sock);
}

// Closes a connection whose client may still be sending: after our end is shut, the rest of its
// request is read and dropped for up to a second, so that closing does not reset the connection
// before the client has read the response.
void linger_close(socket_t sock, int wake_fd) {
  ::shutdown(sock, SHUT_WR);
  const auto until = Clock::now() + 1s;
  char sink[16384];
  while (wait_readable(sock, wake_fd, until) == Ready::yes && ::recv(sock, sink, sizeof(sink), 0) > 0) {
  }
  ::close(sock);
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_chunked(const httplib::Request& req) { return req.has_header("Transfer-Encoding"); }  // checked: chunked

}  // namespace

RequestArrival* RequestArrival::current() { return t_current; }

HttpTransport::HttpTransport(const HttpLimits& limits) : limits_(limits) {
  GANNET_CHECK(limits.max_connections >= 1, "http: max_connections must be >= 1");
  GANNET_CHECK(limits.keep_alive_max_requests >= 1, "http: keep_alive_max_requests must be >= 1");
  GANNET_CHECK(limits.request_timeout.count() > 0 && limits.read_timeout.count() > 0 &&
                   limits.write_timeout.count() > 0 && limits.keep_alive_timeout.count() >= 0,
               "http: timeouts must be positive");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  GANNET_CHECK(wake_fd_ >= 0, "http: cannot create an eventfd: ", std::strerror(errno));
  // httplib sets SO_RCVTIMEO/SO_SNDTIMEO on accepted sockets from these, and announces the
  // keep-alive ones in its Keep-Alive header.
  set_read_timeout(limits.read_timeout.count() / 1000, limits.read_timeout.count() % 1000 * 1000);
  set_write_timeout(limits.write_timeout.count() / 1000, limits.write_timeout.count() % 1000 * 1000);
  set_keep_alive_timeout(std::chrono::ceil<std::chrono::seconds>(limits.keep_alive_timeout).count());
  set_keep_alive_max_count(limits.keep_alive_max_requests);
  set_payload_max_length(limits.max_request_bytes);
  new_task_queue = [this] { return new ConnectionThreads(limits_.max_connections); };

  Server::set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (RequestArrival* a = RequestArrival::current())
      a->body_unread =
          is_chunked(req) || req.get_header_value("Content-Length", 0).find_first_not_of('0') != std::string::npos;
    if (check_framing(req, res) == HandlerResponse::Handled) return HandlerResponse::Handled;
    return filter_ ? filter_(req, res) : HandlerResponse::Unhandled;
  });
  // A request that failed to arrive gets its status (httplib's own is a bare 400), and a response
  // after which the connection closes says so.
  set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    const RequestArrival* a = RequestArrival::current();
    if (!a || (!a->body_unread && a->status == 0)) return;
    if (a->status) res.status = a->status;
    // httplib's own answer to headers that did not arrive has no body: give the reason.
    // It has already set Content-Length: 0 by now.
    if (a->status && res.body.empty() && !a->error.empty()) {
      res.set_content(error_body(a->status, a->error), "application/json");
      res.headers.erase("Content-Length");
      res.set_header("Content-Length", std::to_string(res.body.size()));
    }
    res.headers.erase("Keep-Alive");
    res.headers.erase("Connection");
    res.set_header("Connection", "close");
  });
}

HttpTransport::~HttpTransport() { ::close(wake_fd_); }

int HttpTransport::bind(const std::string& host, int port) {
  const int bound = port == 0 ? bind_to_any_port(host) : bind_to_port(host, port) ? port : -1;
  if (bound > 0) ::listen(svr_sock_, SOMAXCONN);  // a listening socket takes a new backlog
  return bound > 0 ? bound : -1;
}

void HttpTransport::close_connections() {
  closing_ = true;
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

httplib::Server::HandlerResponse HttpTransport::check_framing(const httplib::Request& req,
                                                              httplib::Response& res) const {
  RequestArrival* a = RequestArrival::current();
  auto refuse_request = [&](int status, std::string error) {
    if (a) a->status = status, a->error = std::move(error);
    res.status = status;
    return HandlerResponse::Handled;
  };
  const size_t n_length = req.get_header_value_count("Content-Length");
  if (req.has_header("Transfer-Encoding")) {
    const std::string te = req.get_header_value("Transfer-Encoding");
    if (req.get_header_value_count("Transfer-Encoding") > 1 || strcasecmp(te.c_str(), "chunked") != 0)
      return refuse_request(501, str("Transfer-Encoding '", te, "' is not supported (chunked only)"));
    if (n_length > 0) return refuse_request(400, "a request may not have both Content-Length and Transfer-Encoding");
  }
  if (n_length > 1) return refuse_request(400, "a request may have only one Content-Length");
  if (n_length == 1 && !all_digits(req.get_header_value("Content-Length")))
    return refuse_request(400, str("invalid Content-Length '", req.get_header_value("Content-Length"), "'"));
  return HandlerResponse::Unhandled;
}

bool HttpTransport::read_body(const httplib::Request& req, const httplib::ContentReader& reader, size_t max_bytes,
                              std::string& body) {
  RequestArrival none;
  RequestArrival& a = RequestArrival::current() ? *RequestArrival::current() : none;
  body.clear();
  if (!is_chunked(req)) {  // Content-Length, validated by check_framing; none means no body
    const uint64_t length = req.has_header("Content-Length") ? std::stoull(req.get_header_value("Content-Length")) : 0;
    if (length > max_bytes) {
      a.status = 413;
      a.error = str("the request body of ", length, " bytes is over the limit of ", max_bytes, " bytes");
      return false;
    }
    if (length == 0) return true;
  }
  bool over = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (n > max_bytes - body.size()) return !(over = true);
    body.append(data, n);
    return true;
  });
  if (ok && !over) {
    a.body_unread = false;
    return true;
  }
  if (a.status == 0) {
    a.status = over ? 413 : 400;
    a.error = over ? str("the request body is over the limit of ", max_bytes, " bytes")
                   : "the request body is incomplete, or its chunked encoding is malformed";
  }
  return false;
}

bool HttpTransport::process_and_close_socket(socket_t sock) {
  if (t_refuse) {
    refuse(sock, limits_.max_connections);
    return false;
  }
  ConnectionStream conn(sock, wake_fd_, limits_);
  bool ok = true, linger = false;
  for (size_t served = 0; served < limits_.keep_alive_max_requests && !closing_; ++served) {
    // Idle (no request begun) for keep_alive_timeout at most; then request_timeout for the whole
    // request from its first byte.
    if (!conn.wait_for_request(Clock::now() + limits_.keep_alive_timeout)) break;
    RequestArrival arrival;
    conn.begin_request(Clock::now() + limits_.request_timeout, &arrival);
    t_current = &arrival;
    bool client_closes = false;
    ok = process_request(conn, served + 1 == limits_.keep_alive_max_requests, client_closes, nullptr);
    t_current = nullptr;
    // httplib answers nothing when its request line did not arrive whole.
    if (!ok && arrival.status != 0 && conn.consumed() > 0 && conn.written() == 0)
      send_bare_error(sock, arrival.status, arrival.error);
    linger = arrival.body_unread || arrival.status != 0;  // the client may still be sending
    if (!ok || client_closes || arrival.body_unread || arrival.status != 0) break;
  }
  if (linger) {
    linger_close(sock, wake_fd_);
  } else {
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }
  return ok;
}

}  // namespace gannet::infer
