#include "gannet/infer/server.h"

#include "gannet/infer/request_parser.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "gannet/infer/http_transport.h"
#include "gannet/infer/request_parser.h"

namespace gannet::infer {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// An error answered with a given HTTP status (gannet::Error alone means 400), in OpenAI's shape:
// `param` names the request field at fault, `code` is a machine-readable reason (both optional).
class HttpError : public Error {
 public:
  HttpError(int status, std::string type, const std::string& what, std::string param = {}, std::string code = {})
      : Error(what), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type, param, code;
};

// Text the model produced may be invalid UTF-8 (byte-level tokens): JSON gets U+FFFD for it.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

json error_json(const std::string& message, const std::string& type, const std::string& param = {},
                const std::string& code = {}) {
  auto or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"error", {{"message", message}, {"type", type}, {"param", or_null(param)}, {"code", or_null(code)}}}};
}

void send_error(httplib::Response& res, int status, const std::string& type, const std::string& message,
                const std::string& param = {}, const std::string& code = {}) {
  send_json(res, status, error_json(message, type, param, code));
  if (status == 429 || status == 503) res.set_header("Retry-After", "1");
}

json usage_json(const GenerationResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens}};
}

// A generation that did not complete: failed (500) or cancelled by a shutdown (503). OpenAI has
// no finish_reason for either ("stop" and "length" are the ones a completion can have here), so
// they are errors: a non-streaming request gets the status, a stream an error event and no [DONE].
std::optional<HttpError> incomplete(const GenerationResult& r) {
  if (r.finish_reason == "error") return HttpError(500, "server_error", "generation failed: " + r.error);
  if (r.finish_reason == "cancelled")
    return HttpError(503, "unavailable", "the server is shutting down; the generation was cancelled");
  if (r.finish_reason != "stop" && r.finish_reason != "length")
    throw std::logic_error("unexpected finish_reason '" + r.finish_reason + "'");
  return std::nullopt;
}

void prometheus_histogram(std::ostringstream& os, const std::string& name, const std::string& help,
                          const Histogram& h) {
  os << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cum += h.counts[i];
    os << name << "_bucket{le=\"" << h.bounds[i] << "\"} " << cum << "\n";
  }
  os << name << "_bucket{le=\"+Inf\"} " << h.count << "\n";
  os << name << "_sum " << h.sum << "\n" << name << "_count " << h.count << "\n";
}

void prometheus_value(std::ostringstream& os, const std::string& name, const char* type, const std::string& help,
                      double value) {
  os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << value << "\n";
}

std::string metrics_text(const SchedulerStats& s) {
  std::ostringstream os;
  os.precision(9);
  prometheus_value(os, "gannet_slots", "gauge", "Sequences the engine holds at once.", (double)s.slots);
  prometheus_value(os, "gannet_requests_active", "gauge", "Requests holding a slot.", (double)s.requests_active);
  prometheus_value(os, "gannet_requests_queued", "gauge", "Requests waiting for a slot.", (double)s.requests_queued);
  prometheus_value(os, "gannet_requests_total", "counter", "Completion requests accepted.",
                   (double)s.requests_submitted);
  prometheus_value(os, "gannet_requests_rejected_total", "counter", "Requests refused: queue full or shutting down.",
                   (double)s.requests_rejected);
  os << "# HELP gannet_requests_finished_total Finished requests by reason.\n"
     << "# TYPE gannet_requests_finished_total counter\n"
     << "gannet_requests_finished_total{reason=\"stop\"} " << s.finished_stop << "\n"
     << "gannet_requests_finished_total{reason=\"length\"} " << s.finished_length << "\n"
     << "gannet_requests_finished_total{reason=\"cancelled\"} " << s.finished_cancelled << "\n"
     << "gannet_requests_finished_total{reason=\"error\"} " << s.finished_error << "\n";
  prometheus_value(os, "gannet_prompt_tokens_total", "counter", "Prompt tokens prefilled.", (double)s.prompt_tokens);
  prometheus_value(os, "gannet_generated_tokens_total", "counter", "Tokens generated.", (double)s.generated_tokens);
  prometheus_value(os, "gannet_prefill_seconds_total", "counter", "Time in prompt forward passes.", s.prefill_seconds);
  prometheus_value(os, "gannet_decode_seconds_total", "counter", "Time in batched decode steps.", s.decode_seconds);
  prometheus_value(os, "gannet_decode_steps_total", "counter", "Batched decode steps.", (double)s.decode_steps);
  prometheus_value(os, "gannet_decode_rows_total", "counter",
                   "Sequences advanced by decode steps (rows / steps = mean batch).", (double)s.decode_rows);
  prometheus_histogram(os, "gannet_time_to_first_token_seconds", "From request to first token (queue and prefill).",
                       s.time_to_first_token);
  prometheus_histogram(os, "gannet_time_per_output_token_seconds", "Between consecutive tokens of a request.",
                       s.time_per_output_token);
  return os.str();
}

// "application/json", any case, optionally with parameters; a charset must be UTF-8 (JSON's).
bool is_json_media_type(const std::string& content_type) {
  auto trim = [](std::string t) {
    const size_t b = t.find_first_not_of(" \t"), e = t.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
  };
  auto lower = [](std::string t) {
    for (char& ch : t) ch = (char)std::tolower((unsigned char)ch);
    return t;
  };
  std::istringstream parts(content_type);
  std::string part;
  std::getline(parts, part, ';');
  if (lower(trim(part)) != "application/json") return false;
  while (std::getline(parts, part, ';')) {
    const size_t eq = part.find('=');
    if (eq == std::string::npos || lower(trim(part.substr(0, eq))) != "charset") continue;
    std::string charset = lower(trim(part.substr(eq + 1)));
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"')
      charset = charset.substr(1, charset.size() - 2);
    if (charset != "utf-8" && charset != "utf8") return false;
  }
  return true;
}

HttpLimits http_limits(const Scheduler& s, const ServerOptions& o) {
  HttpLimits l;
  const size_t admissible = (size_t)(s.engine().max_sequences() + s.options().max_queued);
  l.max_connections = o.max_connections > 0 ? o.max_connections : std::max<size_t>(256, 2 * admissible);
  l.request_timeout = o.request_timeout;
  l.read_timeout = o.read_timeout;
  l.keep_alive_timeout = o.keep_alive_timeout;
  // Head and chunk framing on top of the body's limit, which read_body enforces exactly.
  l.max_request_bytes = 2 * o.max_body_bytes + (64 << 10);
  return l;
}

}  // namespace

struct Server::Impl {
  Impl(Scheduler& s, const ServerOptions& o)
      : scheduler(s), options(o), http(http_limits(s, o)), seeds(std::random_device{}()) {}

  Scheduler& scheduler;
  ServerOptions options;
  HttpTransport http;
  std::map<std::string, std::string> routes;  // path -> method
  std::atomic<bool> stopping{false};
  std::atomic<int> open_streams{0};
  std::atomic<bool> serving{false};
  std::once_flag stopped;
  std::mutex seed_mutex;
  std::mt19937_64 seeds;
  const std::time_t started = std::time(nullptr);

  uint64_t random_seed() {
    std::lock_guard<std::mutex> lock(seed_mutex);
    return seeds();
  }

  // Runs a handler, turning every exception into a JSON error: nothing a request does reaches
  // httplib (or takes the server down).
  template <class F>
  static void guarded(httplib::Response& res, F f) {
    try {
      f();
    } catch (const HttpError& e) {
      send_error(res, e.status, e.type, e.what(), e.param, e.code);
    } catch (const InvalidField& e) {
      send_error(res, 400, "invalid_request_error", e.what(), e.field);
    } catch (const Overloaded& e) {
      send_error(res, 429, "server_overloaded", e.what());
    } catch (const ShuttingDown& e) {
      send_error(res, 503, "unavailable", e.what());
    } catch (const Error& e) {
      send_error(res, 400, "invalid_request_error", e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, "server_error", e.what());
    } catch (...) {
      send_error(res, 500, "server_error", "unknown error");
    }
  }

  // A POST route: the handler gets the body, read whole (at most max_body_bytes) before it runs.
  using BodyHandler = std::function<void(const httplib::Request&, httplib::Response&, const std::string& body)>;
  void post(const std::string& path, BodyHandler f) {
    routes[path] = "POST";
    http.Post(path,
              [this, f](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
                guarded(res, [&] {
                  std::string body;
                  if (!HttpTransport::read_body(req, reader, options.max_body_bytes, body)) {
                    const RequestArrival* a = RequestArrival::current();
                    throw HttpError(a->status, a->status >= 500 ? "server_error" : "invalid_request_error", a->error);
                  }
                  f(req, res, body);
                });
              });
  }
  void get(const std::string& path, httplib::Server::Handler f) {
    routes[path] = "GET";
    http.Get(path, [f](const httplib::Request& req, httplib::Response& res) { guarded(res, [&] { f(req, res); }); });
  }

  // Before routing, and before any body is read: the path, the method and the Content-Type.
  httplib::Server::HandlerResponse filter(const httplib::Request& req, httplib::Response& res) const {
    const auto route = routes.find(req.path);
    if (route == routes.end()) {
      send_error(res, 404, "invalid_request_error", str("no route for ", req.method, " ", req.path));
    } else if (req.method != route->second && !(req.method == "HEAD" && route->second == "GET")) {
      send_error(res, 405, "invalid_request_error", str(req.path, " takes ", route->second, ", not ", req.method));
      res.set_header("Allow", route->second);
    } else if (req.method == "POST" && !is_json_media_type(req.get_header_value("Content-Type"))) {
      const std::string got = req.get_header_value("Content-Type");
      send_error(res, 415, "invalid_request_error",
                 str("the request body must be JSON, with Content-Type: application/json; got ",
                     got.empty() ? std::string("none") : "'" + got + "'"));
    } else {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    return httplib::Server::HandlerResponse::Handled;
  }

  json chunk(const std::string& id, const std::string& text, const json& finish_reason) const {
    return {{"id", id},
            {"object", "text_completion"},
            {"created", (int64_t)std::time(nullptr)},
            {"model", options.model_name},
            {"choices",
             json::array({{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}})}};
  }

  void completions(const httplib::Request&, httplib::Response& res, const std::string& body) {
    CompletionRequest c = parse_completion(parse_request_body(body), scheduler.tokenizer(), random_seed());
    if (stopping) throw ShuttingDown("the server is shutting down");
    if (!c.max_tokens_given)  // OpenAI's default of 16, or what the context has room for
      c.gen.max_tokens =
          std::max<int64_t>(1, std::min<int64_t>(16, scheduler.max_tokens_for((int64_t)c.gen.prompt.size())));
    std::shared_ptr<Generation> gen = scheduler.submit(std::move(c.gen));
    const std::string id = str("cmpl-", gen->id());
    if (!c.stream) {
      const GenerationResult& r = gen->wait();
      if (std::optional<HttpError> e = incomplete(r)) throw *e;
      json j = chunk(id, r.text, r.finish_reason);
      j["usage"] = usage_json(r);
      send_json(res, 200, j);
      return;
    }
    struct Stream {
      std::shared_ptr<Generation> gen;
      std::string id;
      bool include_usage;
      std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
    };
    auto st = std::make_shared<Stream>(Stream{gen, id, c.include_usage});
    open_streams++;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, st](size_t, httplib::DataSink& sink) -> bool {
          auto event = [&](const std::string& data) {
            std::string e = "data: " + data + "\n\n";
            return sink.write(e.data(), e.size());
          };
          std::string piece;
          const bool more = st->gen->next_text(piece, 100ms);
          const auto now = std::chrono::steady_clock::now();
          // A failed write means the client has gone: cancel the generation now.
          if (!piece.empty()) {
            if (!event(dump(chunk(st->id, piece, nullptr)))) return false;
            st->last_write = now;
          }
          if (more) {
            if (now - st->last_write > 1s) {  // probe the connection while no text is due
              static const std::string ping = ": ping\n\n";
              if (!sink.write(ping.data(), ping.size())) return false;
              st->last_write = now;
            }
            return true;
          }
          const GenerationResult& r = st->gen->wait();
          if (std::optional<HttpError> e = incomplete(r)) {
            event(dump(error_json(e->what(), e->type)));
            sink.done();  // without [DONE]: the completion is not complete
            return true;
          }
          json last = chunk(st->id, "", r.finish_reason);
          last["usage"] = usage_json(r);
          bool ok = event(dump(last));
          if (ok && st->include_usage) {
            json u = chunk(st->id, "", nullptr);
            u["choices"] = json::array();
            u["usage"] = usage_json(r);
            ok = event(dump(u));
          }
          if (!ok || !event("[DONE]")) return false;
          sink.done();
          return true;
        },
        [this, st](bool) {
          st->gen->cancel();  // no effect when it has finished
          open_streams--;
        });
  }

  void tokenize(const httplib::Request&, httplib::Response& res, const std::string& body) {
    const std::string content = parse_tokenize_request(parse_request_body(body));
    send_json(res, 200, {{"tokens", scheduler.tokenizer().encode(content)}});
  }

  void detokenize(const httplib::Request&, httplib::Response& res, const std::string& body) {
    const std::vector<int32_t> ids = parse_detokenize_request(parse_request_body(body));
    const int vocab = scheduler.tokenizer().vocab_size();
    for (int32_t id : ids) GANNET_CHECK(id < vocab, "token id ", id, " is outside the vocabulary of ", vocab);
    send_json(res, 200, {{"content", scheduler.tokenizer().decode(ids)}});
  }

  void setup() {
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second server bind
    // the same port silently.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http.set_request_filter([this](const httplib::Request& req, httplib::Response& res) { return filter(req, res); });
    // Statuses httplib or the transport set without a body (a request that arrived too slowly,
    // too large or malformed) get the JSON error shape too.
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      const RequestArrival* a = RequestArrival::current();
      const int status = a && a->status ? a->status : res.status;
      send_error(res, status, status >= 500 ? "server_error" : "invalid_request_error",
                 a && a->status ? a->error : str("HTTP status ", status));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_error(res, 500, "server_error", "internal error");
    });

    using namespace std::placeholders;
    post("/v1/completions", std::bind(&Impl::completions, this, _1, _2, _3));
    post("/tokenize", std::bind(&Impl::tokenize, this, _1, _2, _3));
    post("/detokenize", std::bind(&Impl::detokenize, this, _1, _2, _3));
    get("/v1/models", [this](const httplib::Request&, httplib::Response& r) {
      send_json(r, 200,
                {{"object", "list"},
                 {"data", json::array({{{"id", options.model_name},
                                        {"object", "model"},
                                        {"created", (int64_t)started},
                                        {"owned_by", "gannet"}}})}});
    });
    get("/health", [this](const httplib::Request&, httplib::Response& r) {
      if (stopping)
        send_json(r, 503, {{"status", "shutting down"}});
      else
        send_json(r, 200, {{"status", "ok"}});
    });
    get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(metrics_text(scheduler.stats()), "text/plain; version=0.0.4");
    });
  }
};

Server::Server(Scheduler& scheduler, const ServerOptions& options) : impl_(std::make_unique<Impl>(scheduler, options)) {
  impl_->setup();
}

Server::~Server() { stop(); }

int Server::bind() {
  const ServerOptions& o = impl_->options;
  GANNET_CHECK(o.port >= 0 && o.port <= 65535, "port must be in 0..65535, got ", o.port);
  port_ = impl_->http.bind(o.host, o.port);
  GANNET_CHECK(port_ > 0, "cannot listen on ", o.host, ":", o.port, " (address in use, or not a local address?)");
  return port_;
}

void Server::serve() {
  GANNET_CHECK(port_ >= 0, "Server::serve: bind() first");
  impl_->serving = true;
  if (!impl_->stopping) impl_->http.listen_after_bind();
  impl_->serving = false;
}

void Server::stop(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  std::call_once(s.stopped, [&] {
    s.stopping = true;
    s.http.close_connections();  // idle keep-alive clients and requests still arriving
    // Running generations finish (or are cancelled) first, so that their clients get a complete
    // answer; streams then send their last chunk before the sockets close.
    s.scheduler.stop(grace);
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    while (s.open_streams > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    // listen_after_bind() may not have started its loop yet.
    while (s.serving && !s.http.is_running()) std::this_thread::sleep_for(1ms);
    s.http.stop();
  });
}

}  // namespace gannet::infer
