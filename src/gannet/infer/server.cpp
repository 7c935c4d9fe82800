#include "gannet/infer/server.h"

#include "gannet/infer/request_parser.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

namespace gannet::infer {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// An error answered with a given HTTP status (gannet::Error alone means 400).
class HttpError : public Error {
 public:
  HttpError(int status, std::string type, const std::string& what)
      : Error(what), status(status), type(std::move(type)) {}
  int status;
  std::string type;
};

// Text the model produced may be invalid UTF-8 (byte-level tokens): JSON gets U+FFFD for it.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

json error_json(const std::string& message, const std::string& type) {
  return {{"error", {{"message", message}, {"type", type}}}};
}

void send_error(httplib::Response& res, int status, const std::string& type, const std::string& message) {
  send_json(res, status, error_json(message, type));
}

json usage_json(const GenerationResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens}};
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

}  // namespace

struct Server::Impl {
  Impl(Scheduler& s, const ServerOptions& o) : scheduler(s), options(o), seeds(std::random_device{}()) {}

  Scheduler& scheduler;
  ServerOptions options;
  httplib::Server http;
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
  httplib::Server::Handler guarded(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const HttpError& e) {
        send_error(res, e.status, e.type, e.what());
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
    };
  }

  json chunk(const std::string& id, const std::string& text, const json& finish_reason) const {
    return {{"id", id},
            {"object", "text_completion"},
            {"created", (int64_t)std::time(nullptr)},
            {"model", options.model_name},
            {"choices",
             json::array({{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}})}};
  }

  void completions(const httplib::Request& req, httplib::Response& res) {
    CompletionRequest c = parse_completion(parse_request_body(req.body), scheduler.tokenizer(), random_seed());
    if (stopping) throw ShuttingDown("the server is shutting down");
    if (!c.max_tokens_given)  // OpenAI's default of 16, or what the context has room for
      c.gen.max_tokens =
          std::max<int64_t>(1, std::min<int64_t>(16, scheduler.max_tokens_for((int64_t)c.gen.prompt.size())));
    std::shared_ptr<Generation> gen = scheduler.submit(std::move(c.gen));
    const std::string id = str("cmpl-", gen->id());
    if (!c.stream) {
      const GenerationResult& r = gen->wait();
      if (r.finish_reason == "error") throw HttpError(500, "server_error", "generation failed: " + r.error);
      if (r.finish_reason == "cancelled")
        throw HttpError(503, "unavailable", "the server is shutting down; the generation was cancelled");
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
          bool ok;
          if (r.finish_reason == "error") {
            ok = event(dump(error_json("generation failed: " + r.error, "server_error")));
          } else {
            json last = chunk(st->id, "", r.finish_reason);
            last["usage"] = usage_json(r);
            ok = event(dump(last));
            if (ok && st->include_usage) {
              json u = chunk(st->id, "", nullptr);
              u["choices"] = json::array();
              u["usage"] = usage_json(r);
              ok = event(dump(u));
            }
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

  void tokenize(const httplib::Request& req, httplib::Response& res) {
    const std::string content = parse_tokenize_request(parse_request_body(req.body));
    send_json(res, 200, {{"tokens", scheduler.tokenizer().encode(content)}});
  }

  void detokenize(const httplib::Request& req, httplib::Response& res) {
    const std::vector<int32_t> ids = parse_detokenize_request(parse_request_body(req.body));
    const int vocab = scheduler.tokenizer().vocab_size();
    for (int32_t id : ids) GANNET_CHECK(id < vocab, "token id ", id, " is outside the vocabulary of ", vocab);
    send_json(res, 200, {{"content", scheduler.tokenizer().decode(ids)}});
  }

  void setup() {
    int threads = options.http_threads;
    if (threads <= 0) threads = (int)(scheduler.engine().max_sequences() + scheduler.options().max_queued + 4);
    http.new_task_queue = [threads] { return new httplib::ThreadPool((size_t)threads); };
    http.set_payload_max_length(options.max_body_bytes);
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second server bind
    // the same port silently.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          if (res.status == 404)
            send_error(res, 404, "not_found_error", str("no route for ", req.method, " ", req.path));
          else if (res.status == 413)
            send_error(res, 413, "invalid_request_error", "the request body is too large");
          else
            send_error(res, res.status, "invalid_request_error", str("HTTP status ", res.status));
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_error(res, 500, "server_error", "internal error");
    });

    http.Post("/v1/completions",
              guarded([this](const httplib::Request& q, httplib::Response& r) { completions(q, r); }));
    http.Post("/tokenize", guarded([this](const httplib::Request& q, httplib::Response& r) { tokenize(q, r); }));
    http.Post("/detokenize", guarded([this](const httplib::Request& q, httplib::Response& r) { detokenize(q, r); }));
    http.Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& r) {
               send_json(r, 200,
                         {{"object", "list"},
                          {"data", json::array({{{"id", options.model_name},
                                                 {"object", "model"},
                                                 {"created", (int64_t)started},
                                                 {"owned_by", "gannet"}}})}});
             }));
    http.Get("/health", guarded([this](const httplib::Request&, httplib::Response& r) {
               if (stopping)
                 send_json(r, 503, {{"status", "shutting down"}});
               else
                 send_json(r, 200, {{"status", "ok"}});
             }));
    http.Get("/metrics", guarded([this](const httplib::Request&, httplib::Response& r) {
               r.set_content(metrics_text(scheduler.stats()), "text/plain; version=0.0.4");
             }));
  }
};

Server::Server(Scheduler& scheduler, const ServerOptions& options) : impl_(std::make_unique<Impl>(scheduler, options)) {
  impl_->setup();
}

Server::~Server() { stop(); }

int Server::bind() {
  const ServerOptions& o = impl_->options;
  GANNET_CHECK(o.port >= 0 && o.port <= 65535, "port must be in 0..65535, got ", o.port);
  if (o.port == 0) {
    port_ = impl_->http.bind_to_any_port(o.host);
    GANNET_CHECK(port_ > 0, "cannot listen on ", o.host, " (any port)");
  } else {
    GANNET_CHECK(impl_->http.bind_to_port(o.host, o.port), "cannot listen on ", o.host, ":", o.port,
                 " (address in use, or not a local address?)");
    port_ = o.port;
  }
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
