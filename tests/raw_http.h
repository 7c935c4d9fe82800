// A raw TCP client on 127.0.0.1, for tests that need what httplib::Client cannot do: trickle a
// request a byte at a time, send a chunked body of any size, hold a connection open and idle.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace gannet::testing {

struct RawConnection {
  explicit RawConnection(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::connect(fd, (sockaddr*)&addr, sizeof(addr)) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~RawConnection() {
    if (fd >= 0) ::close(fd);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool send(const std::string& bytes) const {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += (size_t)n;
    }
    return true;
  }

  // Reads until a whole response has arrived (its head, and a body of its Content-Length), the
  // peer closes, or `timeout`; returns what arrived.
  std::string read_response(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const size_t head_end = received.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const size_t at = lower(received.substr(0, head_end)).find("\r\ncontent-length:");
        const size_t length = at == std::string::npos ? 0 : std::strtoull(received.c_str() + at + 17, nullptr, 10);
        if (received.size() >= head_end + 4 + length) {
          std::string response = received.substr(0, head_end + 4 + length);
          received.erase(0, response.size());
          return response;
        }
      }
      if (!read_some(until)) {
        std::string partial;
        partial.swap(received);
        return partial;
      }
    }
  }

  // True when the peer closes the connection (EOF or reset) within `timeout`; data before that is
  // kept in `received`.
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (read_some(until)) {
    }
    return eof;
  }

  static int status_of(const std::string& response) {
    return response.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(response.c_str() + 9) : -1;
  }

  int fd = -1;
  std::string received;
  bool eof = false;

 private:
  static std::string lower(std::string s) {
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
  }
  // Appends what arrives before `until`; false on timeout, EOF or error (eof set for the latter).
  bool read_some(std::chrono::steady_clock::time_point until) {
    if (eof) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    pollfd p = {fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, (int)left) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof = true;
      return false;
    }
    received.append(buf, (size_t)n);
    return true;
  }
};

}  // namespace gannet::testing
