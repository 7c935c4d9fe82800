// Continuous batching over an Engine: requests wait in a queue, join the running batch between
// decode steps when a KV-cache slot is free, and leave it when they finish or are cancelled. Each
// new prompt is prefilled alone (one forward call), then every active sequence advances by one
// token in a single batched decode call. Because the engine computes decode rows independently
// and each sequence samples from its own seeded Sampler, a request's tokens do not depend on what
// else is batched with it.
//
// All engine work happens on the scheduler's own thread. Callers submit() from any thread and get
// a Generation: a handle to stream text from, wait on, or cancel.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/data/text_tokenizer.h"
#include "gannet/infer/engine.h"
#include "gannet/infer/sampler.h"

namespace gannet::infer {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, non-empty
  SamplingParams sampling;
  int64_t max_tokens = 16;  // tokens to generate at most (>= 1)
  // Generation stops when the text contains one of these (non-empty) strings; the result and the
  // stream end just before it, and no part of it is ever streamed.
  std::vector<std::string> stop;
  bool ignore_eos = false;  // keep going past the tokenizer's end-of-text token
};

struct GenerationResult {
  std::string text;             // the completion (without the stop string or end-of-text token)
  std::vector<int32_t> tokens;  // every token generated, the end-of-text token included
  // "stop" (end-of-text or a stop string), "length" (max_tokens or the context is full),
  // "cancelled", or "error" (the engine failed; see `error`).
  std::string finish_reason;
  std::string error;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;     // == tokens.size()
  double queue_s = 0;                // from submit() to the start of the prefill
  double prefill_s = 0;              // the prompt's forward pass
  double time_to_first_token_s = 0;  // from submit() to the first token
  double total_s = 0;                // from submit() to the end
};

// A submitted request. Thread-safe.
class Generation {
 public:
  // Waits up to `timeout` for text; moves what was streamed since the last call into `out`
  // (possibly nothing on a timeout). Returns false once the generation has finished and all its
  // text was taken. Pieces end on whole UTF-8 characters, except possibly the very last one.
  bool next_text(std::string& out, std::chrono::milliseconds timeout);
  // Blocks until finished.
  const GenerationResult& wait();
  bool finished() const;
  // Asks the scheduler to stop this generation at its next step (finish_reason "cancelled"; the
  // text so far is kept); its slot is freed then. No effect once finished.
  void cancel();
  bool cancel_requested() const { return cancel_.load(); }
  uint64_t id() const { return id_; }

 private:
  friend class Scheduler;
  explicit Generation(uint64_t id) : id_(id) {}
  void push_text(const std::string& piece);
  void finish(GenerationResult result);

  const uint64_t id_;
  // Polled by the scheduler, which never sleeps while a generation is unfinished.
  std::atomic<bool> cancel_{false};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::string pending_;  // streamed, not yet taken
  bool finished_ = false;
  GenerationResult result_;
};

// submit() refuses a request because the queue is full (HTTP 429), or because the scheduler is
// stopping (HTTP 503). A plain gannet::Error means the request itself is invalid (HTTP 400).
class Overloaded : public Error {
 public:
  explicit Overloaded(const std::string& what) : Error(what) {}
};
class ShuttingDown : public Error {
 public:
  explicit ShuttingDown(const std::string& what) : Error(what) {}
};

// submit() refuses the value of one request field (HTTP 400 naming it in "param").
class InvalidField : public Error {
 public:
  InvalidField(std::string field, const std::string& what) : Error(what), field(std::move(field)) {}
  std::string field;  // "prompt", "max_tokens" or "stop"
};

struct SchedulerOptions {
  int64_t max_queued = 64;       // requests waiting for a slot; more are refused (Overloaded)
  int64_t max_tokens_limit = 0;  // largest max_tokens accepted; 0 = only the context limits it
  int64_t max_stop_strings = 16;
};

// Counts and sums since start, for /metrics.
struct Histogram {
  std::vector<double> bounds;    // upper bounds of the buckets, ascending (+Inf implied)
  std::vector<uint64_t> counts;  // per bucket, not cumulative; one more than bounds (+Inf)
  double sum = 0;
  uint64_t count = 0;

  explicit Histogram(std::vector<double> upper_bounds = {});
  void add(double v);
};

struct SchedulerStats {
  int64_t slots = 0;
  int64_t requests_active = 0;  // holding a slot
  int64_t requests_queued = 0;  // waiting for one
  uint64_t requests_submitted = 0;
  uint64_t requests_rejected = 0;  // queue full or shutting down
  uint64_t finished_stop = 0, finished_length = 0, finished_cancelled = 0, finished_error = 0;
  uint64_t prompt_tokens = 0;  // prefilled
  uint64_t generated_tokens = 0;
  uint64_t decode_steps = 0;  // batched decode calls
  uint64_t decode_rows = 0;   // sequences in them (decode_rows / decode_steps = mean batch)
  double prefill_seconds = 0, decode_seconds = 0;
  Histogram time_to_first_token;    // seconds, from submit to the first token
  Histogram time_per_output_token;  // seconds between consecutive tokens of a sequence
};

class Scheduler {
 public:
  // The engine and the tokenizer must outlive the scheduler; the engine is used only by the
  // scheduler's thread from now on. The tokenizer decodes text for stop strings and streaming; its
  // vocabulary may be smaller than the model's (padded) one, and only its tokens are sampled.
  Scheduler(Engine& engine, const data::TextTokenizer& tokenizer, const SchedulerOptions& options = {});
  ~Scheduler();  // stop(0)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates and queues a request. Throws InvalidField for an invalid request (empty prompt, a
  // token outside the tokenizer's vocabulary, bad sampling values, max_tokens < 1 or over the
  // limit, prompt + max_tokens longer than the context, empty stop strings), Overloaded when
  // max_queued requests already wait, ShuttingDown after stop() began.
  std::shared_ptr<Generation> submit(GenerationRequest request);

  // Refuses new requests, lets queued and running ones finish for up to `grace`, cancels what is
  // left, and joins the thread. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

  SchedulerStats stats() const;
  const Engine& engine() const { return engine_; }
  const data::TextTokenizer& tokenizer() const { return tokenizer_; }
  const SchedulerOptions& options() const { return options_; }
  // The longest max_tokens accepted for a prompt of `prompt_tokens`.
  int64_t max_tokens_for(int64_t prompt_tokens) const;

 private:
  struct Sequence;
  void run();
  void admit(std::unique_ptr<Sequence> seq);
  void decode_step();
  // Takes a sampled token; returns true when the sequence is finished.
  bool accept_token(Sequence& seq, int32_t token);
  void finish(Sequence& seq, const std::string& reason, const std::string& error = {});

  Engine& engine_;
  const data::TextTokenizer& tokenizer_;
  const SchedulerOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> waiting_;  // guarded by mutex_
  bool accepting_ = true;                          // guarded by mutex_
  bool stop_now_ = false;                          // guarded by mutex_: cancel everything and exit
  uint64_t next_id_ = 1;                           // guarded by mutex_
  SchedulerStats stats_;                           // guarded by mutex_

  // Scheduler thread only.
  std::vector<std::unique_ptr<Sequence>> active_;  // by slot; null = free
  std::vector<float> logits_;
  std::thread thread_;
  std::once_flag stopped_;
};

}  // namespace gannet::infer
