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
// Anything else, a wrong type, or a value outside its range is a 400 naming the field. A full queue
// is a 429, shutting down a 503; errors are {"error": {"message", "type"}}.
//
// A streaming client that disconnects cancels its generation at once (the next write fails; while
// no text is due a comment line is sent each second to find out). A non-streaming request runs to
// its end even if the client has gone.
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
  int http_threads = 0;  // 0: slots + queue + 4, so that every admissible request has one
  size_t max_body_bytes = 1 << 20;
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
  // Refuses new requests (503), lets running ones finish for up to `grace` and cancels the rest
  // (scheduler.stop), then closes the listening socket and makes serve() return. Idempotent;
  // callable from any thread, e.g. a signal-handling one.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = -1;
};

}  // namespace gannet::infer
