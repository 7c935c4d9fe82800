#include "gannet/infer/scheduler.h"

#include <algorithm>

namespace gannet::infer {

using Clock = std::chrono::steady_clock;

namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The length of the longest prefix of `text[0, n)` that ends on a whole UTF-8 character: a lead
// byte whose continuation bytes have not all arrived is held back. Bytes that cannot become valid
// UTF-8 are passed through (the client gets replacement characters), not held forever.
size_t utf8_complete(const std::string& text, size_t n) {
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = (unsigned char)text[n - back];
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back for its lead
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

}  // namespace

// ---- Generation ----

bool Generation::next_text(std::string& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || finished_; });
  out = std::move(pending_);
  pending_.clear();
  return !(finished_ && out.empty());
}

const GenerationResult& Generation::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return finished_; });
  return result_;
}

bool Generation::finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finished_;
}

void Generation::cancel() { cancel_.store(true); }

void Generation::push_text(const std::string& piece) {
  if (piece.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ += piece;
  }
  cv_.notify_all();
}

void Generation::finish(GenerationResult result) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    result_ = std::move(result);
    finished_ = true;
  }
  cv_.notify_all();
}

// ---- Histogram ----

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}

void Histogram::add(double v) {
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
  counts[i]++;
  sum += v;
  count++;
}

// ---- Scheduler ----

struct Scheduler::Sequence {
  std::shared_ptr<Generation> gen;
  GenerationRequest req;
  std::unique_ptr<Sampler> sampler;
  int64_t slot = -1;
  int32_t pending = -1;  // sampled, not yet in the cache
  // The last prompt tokens, then the generated ones except end-of-text. Decoding the completion
  // after a little of the prompt keeps what depends on the preceding token (SentencePiece drops
  // the space of a text's first word); `lead` is the decoded prompt part, cut off again.
  std::vector<int32_t> text_ids;
  std::string lead;
  size_t lead_tokens = 0;
  bool lead_decoded = false;
  std::string streamed;  // text handed to the stream so far
  Clock::time_point submitted, last_token;
  GenerationResult result;
};

Scheduler::Scheduler(Engine& engine, const data::TextTokenizer& tokenizer, const SchedulerOptions& options)
    : engine_(engine), tokenizer_(tokenizer), options_(options) {
  GANNET_CHECK(options.max_queued >= 0, "scheduler: max_queued must be >= 0, got ", options.max_queued);
  GANNET_CHECK(options.max_tokens_limit >= 0, "scheduler: max_tokens_limit must be >= 0, got ",
               options.max_tokens_limit);
  GANNET_CHECK(tokenizer.vocab_size() <= engine.vocab_size(), "the tokenizer has ", tokenizer.vocab_size(),
               " tokens, more than the model's vocabulary of ", engine.vocab_size());
  stats_.slots = engine.max_sequences();
  stats_.time_to_first_token = Histogram({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  stats_.time_per_output_token = Histogram({0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2});
  active_.resize((size_t)engine.max_sequences());
  logits_.resize((size_t)(engine.max_sequences() * engine.vocab_size()));
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { stop(); }

int64_t Scheduler::max_tokens_for(int64_t prompt_tokens) const {
  int64_t n = engine_.max_context() - prompt_tokens;
  if (options_.max_tokens_limit > 0) n = std::min(n, options_.max_tokens_limit);
  return n;
}

std::shared_ptr<Generation> Scheduler::submit(GenerationRequest request) {
  auto check = [](bool ok, const char* field, const auto&... message) {
    if (!ok) throw InvalidField(field, str(message...));
  };
  const int64_t n_prompt = (int64_t)request.prompt.size();
  const int64_t context = engine_.max_context();
  check(n_prompt > 0, "prompt", "the prompt is empty");
  const int64_t vocab = tokenizer_.vocab_size();  // <= the model's; tokens past it are never sampled
  for (int32_t id : request.prompt)
    check(id >= 0 && id < vocab, "prompt", "prompt token ", id, " is outside the vocabulary of ", vocab);
  check(n_prompt < context, "prompt", "the prompt has ", n_prompt, " tokens; the context holds ", context,
        " (prompt and completion together)");
  check(request.max_tokens >= 1, "max_tokens", "max_tokens must be >= 1, got ", request.max_tokens);
  check(options_.max_tokens_limit == 0 || request.max_tokens <= options_.max_tokens_limit, "max_tokens", "max_tokens ",
        request.max_tokens, " is over the server's limit of ", options_.max_tokens_limit);
  check(request.max_tokens <= context - n_prompt, "max_tokens", "the prompt (", n_prompt,  // n_prompt < context
        " tokens) plus max_tokens (", request.max_tokens, ") is longer than the context of ", context,
        " tokens; at most ", context - n_prompt, " tokens can follow this prompt");
  check((int64_t)request.stop.size() <= options_.max_stop_strings, "stop", "at most ", options_.max_stop_strings,
        " stop strings, got ", request.stop.size());
  for (const std::string& s : request.stop) check(!s.empty(), "stop", "stop strings must not be empty");

  auto seq = std::make_unique<Sequence>();
  seq->sampler = std::make_unique<Sampler>(request.sampling, vocab, request.prompt);
  seq->req = std::move(request);
  seq->submitted = Clock::now();
  seq->result.prompt_tokens = n_prompt;

  std::shared_ptr<Generation> gen;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) {
      stats_.requests_rejected++;
      throw ShuttingDown("the server is shutting down");
    }
    if ((int64_t)waiting_.size() >= options_.max_queued) {
      stats_.requests_rejected++;
      throw Overloaded(str("too many requests: ", waiting_.size(), " are waiting for one of ", stats_.slots,
                           " slots (the queue holds ", options_.max_queued, ")"));
    }
    gen = std::shared_ptr<Generation>(new Generation(next_id_++));
    seq->gen = gen;
    waiting_.push_back(std::move(seq));
    stats_.requests_submitted++;
  }
  cv_.notify_all();
  return gen;
}

void Scheduler::stop(std::chrono::milliseconds grace) {
  std::call_once(stopped_, [&] {
    const auto deadline = Clock::now() + grace;
    std::unique_lock<std::mutex> lock(mutex_);
    accepting_ = false;
    cv_.wait_until(lock, deadline, [&] { return waiting_.empty() && stats_.requests_active == 0; });
    stop_now_ = true;
    lock.unlock();
    cv_.notify_all();
    thread_.join();
  });
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SchedulerStats s = stats_;
  s.requests_queued = (int64_t)waiting_.size();
  return s;
}

void Scheduler::run() {
  const int64_t slots = (int64_t)active_.size();
  for (;;) {
    std::vector<std::unique_ptr<Sequence>> admitted, dropped;
    bool exiting = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_now_ || !waiting_.empty() || stats_.requests_active > 0; });
      exiting = stop_now_;
      int64_t free_slots = slots - stats_.requests_active;
      while (!waiting_.empty() && (exiting || free_slots > (int64_t)admitted.size())) {
        std::unique_ptr<Sequence> seq = std::move(waiting_.front());
        waiting_.pop_front();
        (exiting || seq->gen->cancel_requested() ? dropped : admitted).push_back(std::move(seq));
      }
    }
    for (auto& seq : dropped) finish(*seq, "cancelled");
    for (auto& seq : admitted) admit(std::move(seq));
    // Cancellation takes effect here, before the next token, for new sequences too.
    for (auto& seq : active_)
      if (seq && (exiting || seq->gen->cancel_requested())) finish(*seq, "cancelled");
    if (exiting) break;
    decode_step();
  }
}

void Scheduler::admit(std::unique_ptr<Sequence> owned) {
  int64_t slot = 0;
  while (active_[slot]) ++slot;
  Sequence& seq = *owned;
  seq.slot = slot;
  active_[slot] = std::move(owned);
  const auto start = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.requests_active++;
  }
  seq.result.queue_s = seconds_between(seq.submitted, start);
  // The prompt alone in its forward call, so that its numerics do not depend on the batch.
  try {
    engine_.reset(slot);
    Chunk chunk{slot, seq.req.prompt};
    engine_.forward(std::span<const Chunk>(&chunk, 1), logits_.data());
  } catch (const std::exception& e) {
    finish(seq, "error", e.what());
    return;
  }
  seq.result.prefill_s = seconds_between(start, Clock::now());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.prompt_tokens += seq.req.prompt.size();
    stats_.prefill_seconds += seq.result.prefill_s;
  }
  try {
    int32_t token = seq.sampler->sample(std::span<const float>(logits_.data(), (size_t)tokenizer_.vocab_size()));
    if (accept_token(seq, token)) finish(seq, seq.result.finish_reason);
  } catch (const std::exception& e) {  // e.g. a token the tokenizer cannot decode
    finish(seq, "error", e.what());
  }
}

void Scheduler::decode_step() {
  std::vector<Sequence*> batch;
  std::vector<Chunk> chunks;
  for (auto& seq : active_) {
    if (!seq) continue;
    batch.push_back(seq.get());
    chunks.push_back(Chunk{seq->slot, std::span<const int32_t>(&seq->pending, 1)});
  }
  if (batch.empty()) return;
  const auto start = Clock::now();
  try {
    engine_.forward(chunks, logits_.data());
  } catch (const std::exception& e) {
    for (Sequence* seq : batch) finish(*seq, "error", e.what());
    return;
  }
  const int64_t vocab = engine_.vocab_size();
  std::vector<std::pair<Sequence*, std::string>> done;  // and the error, if any
  for (size_t i = 0; i < batch.size(); ++i) {
    Sequence& seq = *batch[i];
    try {
      int32_t token =
          seq.sampler->sample(std::span<const float>(logits_.data() + i * vocab, (size_t)tokenizer_.vocab_size()));
      if (accept_token(seq, token)) done.emplace_back(&seq, "");
    } catch (const std::exception& e) {
      done.emplace_back(&seq, e.what());
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.decode_steps++;
    stats_.decode_rows += batch.size();
    stats_.decode_seconds += seconds_between(start, Clock::now());
  }
  for (auto& [seq, error] : done) {
    if (error.empty())
      finish(*seq, seq->result.finish_reason);
    else
      finish(*seq, "error", error);
  }
}

bool Scheduler::accept_token(Sequence& seq, int32_t token) {
  const auto now = Clock::now();
  GenerationResult& r = seq.result;
  const bool first = r.tokens.empty();
  r.tokens.push_back(token);
  r.completion_tokens = (int64_t)r.tokens.size();
  if (first) r.time_to_first_token_s = seconds_between(seq.submitted, now);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.generated_tokens++;
    if (first)
      stats_.time_to_first_token.add(r.time_to_first_token_s);
    else
      stats_.time_per_output_token.add(seconds_between(seq.last_token, now));
  }
  seq.last_token = now;

  if (token == tokenizer_.eos_id() && !seq.req.ignore_eos) {
    r.finish_reason = "stop";
    return true;
  }
  if (!seq.lead_decoded) {
    seq.lead_tokens = std::min<size_t>(seq.req.prompt.size(), 4);
    seq.text_ids.assign(seq.req.prompt.end() - seq.lead_tokens, seq.req.prompt.end());
    seq.lead = tokenizer_.decode(seq.text_ids);
    seq.lead_decoded = true;
  }
  seq.text_ids.push_back(token);
  std::string text = tokenizer_.decode(seq.text_ids);
  if (text.compare(0, seq.lead.size(), seq.lead) == 0) {
    text.erase(0, seq.lead.size());
  } else {  // the tokenizer joined the two differently: decode the completion alone
    text = tokenizer_.decode(std::vector<int32_t>(seq.text_ids.begin() + seq.lead_tokens, seq.text_ids.end()));
  }
  size_t cut = std::string::npos;
  for (const std::string& s : seq.req.stop) cut = std::min(cut, text.find(s));
  if (cut != std::string::npos) {
    r.text = text.substr(0, cut);
    r.finish_reason = "stop";
    return true;
  }
  r.text = text;
  if (r.completion_tokens >= seq.req.max_tokens || engine_.length(seq.slot) + 1 > engine_.max_context()) {
    r.finish_reason = "length";
    return true;
  }
  // Stream what can no longer change: hold back a tail that may begin a stop string, and an
  // incomplete UTF-8 character.
  size_t safe = text.size();
  for (const std::string& s : seq.req.stop) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > 0; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        safe = std::min(safe, text.size() - len);
        break;
      }
    }
  }
  safe = utf8_complete(text, safe);
  // A tokenizer may rewrite the end of the text as tokens arrive; stream only a continuation of
  // what was already sent.
  if (safe > seq.streamed.size() && text.compare(0, seq.streamed.size(), seq.streamed) == 0) {
    seq.gen->push_text(text.substr(seq.streamed.size(), safe - seq.streamed.size()));
    seq.streamed.assign(text, 0, safe);
  }
  seq.pending = token;
  return false;
}

void Scheduler::finish(Sequence& seq, const std::string& reason, const std::string& error) {
  GenerationResult& r = seq.result;
  r.finish_reason = reason;
  r.error = error;
  r.total_s = seconds_between(seq.submitted, Clock::now());
  if (r.tokens.empty()) r.queue_s = r.total_s;
  const std::string& text = r.text;
  if (text.size() > seq.streamed.size() && text.compare(0, seq.streamed.size(), seq.streamed) == 0)
    seq.gen->push_text(text.substr(seq.streamed.size()));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (reason == "stop")
      stats_.finished_stop++;
    else if (reason == "length")
      stats_.finished_length++;
    else if (reason == "cancelled")
      stats_.finished_cancelled++;
    else
      stats_.finished_error++;
    if (seq.slot >= 0) stats_.requests_active--;
  }
  std::shared_ptr<Generation> gen = seq.gen;
  if (seq.slot >= 0) {
    const int64_t slot = seq.slot;
    engine_.reset(slot);
    gen->finish(std::move(r));
    active_[slot].reset();  // destroys seq
  } else {
    gen->finish(std::move(r));
  }
  cv_.notify_all();  // stop() waits for the scheduler to run dry
}

}  // namespace gannet::infer
