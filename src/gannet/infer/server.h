// The HTTP server over a Scheduler (cpp-httplib): OpenAI's completions API, plus llama.cpp-style
// tokenize/detokenize, health and Prometheus metrics.
//
//   POST /v1/completions   OpenAI completion (JSON, or server-sent events with "stream": true)
//   GET  /v1/models        the one model served
//   GET  /health           {"status": "ok"} (503 while shutting down)
//   GET  /metrics          Prometheus text: requests, tokens, time to first token, time per token
//   POST /tokenize         {"content": text} -> {"tokens": [ids]}
//   POST /detokenize       {"tokens": [ids]} -> {"content": text}
//
// Request fields of /v1/completions, and the policy for fields OpenAI clients send:
//   prompt             a string, an array of token ids, or an array holding one of those (batches
//                      of several prompts are refused); an empty prompt becomes the end-of-text token
//                      when the tokenizer has one
//   max_tokens         default 16 (fewer when the context has no room for 16); prompt + max_tokens
//                      must fit the context, and max_tokens the server's --max-tokens-limit
//   temperature (1), top_p (1), top_k (0 = off), repetition_penalty (1 = off), seed (random when
//   absent), stop (a string or an array of strings), stream (false), ignore_eos (false)
//   model, user                    accepted and ignored (one model per server)
//   stream_options                 {"include_usage": bool}: a last chunk with usage and no choices
//   n, best_of                     1 only
//   logprobs, suffix, logit_bias   null only (logit_bias: also {})
//   echo                           false only
//   frequency_penalty, presence_penalty   0 only (use repetition_penalty)
// Anything else, a wrong type, or a value outside its range (a number too large for any type,
// like 1e999, too) is a 400 naming the field in the message and in "param". A full queue is a
// 429, shutting down a 503 (both with Retry-After); errors are OpenAI's
// {"error": {"message", "type", "param", "code"}}.
//
// HTTP: POST bodies must be Content-Type application/json (parameters allowed; a charset must be
// utf-8), else 415, and at most max_body_bytes, chunked or not (413). An unknown path is a 404, a
// known one with the wrong method a 405. Requests that arrive too slowly get a 408, and
// connections past max_connections a 503 (the transport, http_transport.h, enforces both).
//
// finish_reason is OpenAI's "stop" or "length" only. A streaming client that disconnects cancels
// its generation at once (the next write fails; while no text is due a comment line is sent each
// second to find out). A generation cancelled by shutdown, or failed, ends its stream with an
// error event ({"error": ...}) and no [DONE] (which marks a complete stream only), or answers a
// non-streaming request with a 503 (500 for a failure). A non-streaming request runs to its end
// even if the client has gone.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "gannet/infer/scheduler.h"

namespace gannet::infer {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see bind())
  std::string model_name = "gannet";
  // Connections served at once, each on its own thread; one more is answered 503 at once.
  // 0: max(256, 2 * (slots + queue)), so that every admissible request has room to spare.
  size_t max_connections = 0;
  size_t max_body_bytes = 1 << 20;  // 413 beyond, chunked or not
  // A request's head and body must arrive within request_timeout of its first byte, with no
  // silence longer than read_timeout (408 otherwise); see http_transport.h.
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds keep_alive_timeout{5000};  // an idle connection closes after this
};

class Server {
 public:
  // The scheduler must outlive the server.
  Server(Scheduler& scheduler, const ServerOptions& options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and returns the port (the chosen one for port 0). Throws gannet::Error when
  // the address cannot be bound.
  int bind();
  // Serves requests until stop(); bind() first.
  void serve();
  // Refuses new requests (503) and closes idle keep-alive connections (and connections opened
  // from now on, until the listening socket closes) at once, lets running
  // generations finish for up to `grace` and cancels the rest (scheduler.stop), then closes the
  // listening socket and makes serve() return. Idempotent; callable from any thread, e.g. a
  // signal-handling one.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = -1;
};

}  // namespace gannet::infer
