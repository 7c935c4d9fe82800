// Continuous batching on a tiny random GPT: a request gives the same tokens batched as alone (greedy
// and sampled), max_tokens, end-of-text and stop strings end it exactly, the stream never shows a
// stop string or half a UTF-8 character, cancel frees the slot, limits are clear errors.
#include "gannet/infer/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/models/gpt.h"

using namespace gannet;
using namespace gannet::infer;
using namespace std::chrono_literals;

namespace {

// Holds the scheduler thread inside the tokenizer's decode() while closed, so that tests can act
// at a known point of a generation (it decodes after every token).
class Gate {
 public:
  void close() {
    std::lock_guard<std::mutex> l(m_);
    closed_ = true;
  }
  void open() {
    {
      std::lock_guard<std::mutex> l(m_);
      closed_ = false;
    }
    cv_.notify_all();
  }
  void pass() {
    std::unique_lock<std::mutex> l(m_);
    if (!closed_) return;
    ++held_;
    cv_.notify_all();
    cv_.wait(l, [&] { return !closed_; });
    --held_;
  }
  // Waits until the scheduler thread is held.
  void wait_held() {
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [&] { return held_ > 0; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool closed_ = false;
  int held_ = 0;
};

// Ids 0..255 are the bytes; 256..259 decode to nothing. The end-of-text id is chosen per test.
class ByteTokenizer : public data::TextTokenizer {
 public:
  mutable Gate gate;
  explicit ByteTokenizer(int eos = 256) : eos_(eos) {}
  using data::TextTokenizer::encode;
  std::vector<int32_t> encode(const std::string& text, data::AllowSpecial) const override {
    return std::vector<int32_t>(text.begin(), text.end());
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    gate.pass();
    std::string s;
    for (int32_t id : ids) {
      GANNET_CHECK(id >= 0 && id < 260, "byte tokenizer: id ", id);
      if (id < 256) s += (char)id;
    }
    return s;
  }
  int vocab_size() const override { return 260; }
  int eos_id() const override { return eos_; }

 private:
  int eos_;
};

io::GptWeights tiny_weights(int64_t n_ctx = 64) {
  models::GptConfig c;
  c.vocab_size = 260;
  c.n_ctx = n_ctx;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 32;
  models::Gpt m(c);
  m.init(7);
  io::GptWeights w;
  w.config = c;
  // Scaled up from GPT-2's init: with small weights the tied head mostly repeats the last token;
  // these make greedy text depend on the prompt and sampled text on the seed.
  for (const auto& p : m.parameters()) {
    Tensor t = p.var.value();
    float scale = p.name == "wte.weight" ? 10.0f : p.name == "wpe.weight" ? 20.0f : 1.0f;
    if (p.name.find("mlp") != std::string::npos && p.name.find("weight") != std::string::npos) scale = 10.0f;
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] *= scale;
    w.tensors[p.name] = t;
  }
  return w;
}

struct Fixture {
  explicit Fixture(int64_t slots, SchedulerOptions so = {}, int eos = 256, int64_t n_ctx = 64)
      : weights(tiny_weights(n_ctx)),
        engine(weights, EngineOptions{WeightFormat::f32, slots, 0}),
        tok(eos),
        sched(engine, tok, so) {}
  io::GptWeights weights;
  Engine engine;
  ByteTokenizer tok;
  Scheduler sched;
};

GenerationRequest request(const std::string& prompt, int64_t max_tokens, uint64_t seed, float temperature = 0.0f) {
  GenerationRequest r;
  r.prompt = std::vector<int32_t>(prompt.begin(), prompt.end());
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.top_k = temperature > 0 ? 50 : 0;
  r.sampling.seed = seed;
  r.ignore_eos = true;
  return r;
}

// Collects the stream until the end; returns the pieces.
std::vector<std::string> stream_all(Generation& g) {
  std::vector<std::string> pieces;
  std::string piece;
  while (g.next_text(piece, 1000ms))
    if (!piece.empty()) pieces.push_back(piece);
  return pieces;
}

std::string join(const std::vector<std::string>& pieces) {
  std::string s;
  for (const auto& p : pieces) s += p;
  return s;
}

// True when `s` ends inside a UTF-8 character (a lead byte missing continuation bytes).
bool ends_mid_char(const std::string& s) {
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    unsigned char c = (unsigned char)s[s.size() - back];
    if ((c & 0xC0) == 0x80) continue;
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back;
  }
  return false;
}

std::vector<GenerationRequest> mixed_requests() {
  std::vector<GenerationRequest> rs;
  const char* prompts[] = {"The cat", "Once upon a time, ", "x", "Hello, world! This is gannet.", "abc", "0123456789"};
  for (int i = 0; i < 6; ++i) rs.push_back(request(prompts[i], 8 + 3 * i, 100 + i, i % 2 ? 0.9f : 0.0f));
  rs[3].sampling.top_p = 0.9f;
  rs[5].sampling.repetition_penalty = 1.3f;
  rs[5].sampling.temperature = 0.7f;
  return rs;
}

}  // namespace

TEST(Scheduler, BatchedEqualsAlone) {
  Fixture f(3);
  auto rs = mixed_requests();
  std::vector<GenerationResult> alone;
  for (const auto& r : rs) alone.push_back(f.sched.submit(r)->wait());
  std::vector<std::shared_ptr<Generation>> gens;
  for (const auto& r : rs) gens.push_back(f.sched.submit(r));
  for (size_t i = 0; i < rs.size(); ++i) {
    const GenerationResult& b = gens[i]->wait();
    EXPECT_EQ(b.tokens, alone[i].tokens) << "request " << i;
    EXPECT_EQ(b.text, alone[i].text) << "request " << i;
    EXPECT_EQ(b.finish_reason, "length");
    EXPECT_EQ(b.completion_tokens, rs[i].max_tokens);
    EXPECT_EQ(b.prompt_tokens, (int64_t)rs[i].prompt.size());
    EXPECT_GT(b.time_to_first_token_s, 0.0);
    EXPECT_GE(b.total_s, b.time_to_first_token_s);
  }
  // Sampled requests depend on their seed.
  auto r = rs[1];
  r.sampling.seed += 1;
  EXPECT_NE(f.sched.submit(r)->wait().tokens, alone[1].tokens);
  SchedulerStats s = f.sched.stats();
  EXPECT_EQ(s.requests_submitted, 13u);
  EXPECT_EQ(s.finished_length, 13u);
  EXPECT_EQ(s.requests_active, 0);
  EXPECT_EQ(s.time_to_first_token.count, 13u);
  EXPECT_GT(s.decode_steps, 0u);
  EXPECT_GT(s.decode_rows, s.decode_steps);  // some steps were batched
}

TEST(Scheduler, StreamEqualsTextAndEndsOnWholeCharacters) {
  Fixture f(2);
  int mid_char_pieces = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    auto g = f.sched.submit(request("stream me", 40, seed, 1.0f));
    auto pieces = stream_all(*g);
    const GenerationResult& r = g->wait();
    EXPECT_EQ(join(pieces), r.text);
    // A piece may end in bytes that can never become a character (random bytes), but never
    // before the continuation bytes of its last character.
    for (size_t i = 0; i + 1 < pieces.size(); ++i)
      mid_char_pieces += ends_mid_char(pieces[i]) && ((unsigned char)pieces[i + 1][0] & 0xC0) == 0x80;
  }
  EXPECT_EQ(mid_char_pieces, 0);
}

TEST(Scheduler, StopStringsCutTheTextExactly) {
  Fixture f(2);
  const GenerationResult full = f.sched.submit(request("The stop test", 40, 1, 0.9f))->wait();
  ASSERT_GE(full.text.size(), 30u);
  // A stop string from the middle of the text (spanning several tokens): the same tokens up to it.
  const std::string stop = full.text.substr(17, 3);
  const size_t at = full.text.find(stop);
  auto r = request("The stop test", 40, 1, 0.9f);
  r.stop = {"\xff\xfe never", stop};
  auto g = f.sched.submit(r);
  auto pieces = stream_all(*g);
  const GenerationResult& got = g->wait();
  EXPECT_EQ(got.finish_reason, "stop");
  EXPECT_EQ(got.text, full.text.substr(0, at));
  EXPECT_EQ(join(pieces), got.text);
  // The same tokens, up to the one that completed the stop string.
  EXPECT_EQ(got.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + got.completion_tokens));
  EXPECT_EQ(f.tok.decode(got.tokens), full.text.substr(0, at + stop.size()));

  // A stop string that never occurs: the whole text, finish "length".
  r.stop = {"\x01\x02\x03\x04"};
  const GenerationResult none = f.sched.submit(r)->wait();
  if (full.text.find(r.stop[0]) == std::string::npos) {
    EXPECT_EQ(none.text, full.text);
    EXPECT_EQ(none.finish_reason, "length");
  }
}

TEST(Scheduler, EndOfTextStops) {
  // First find which token greedy decoding emits fifth, then make it the end-of-text id.
  int32_t eos;
  std::vector<int32_t> tokens;
  {
    Fixture f(1);
    tokens = f.sched.submit(request("end of text", 20, 0))->wait().tokens;
    eos = tokens[4];
  }
  const size_t first = std::find(tokens.begin(), tokens.end(), eos) - tokens.begin();
  Fixture f(1, {}, eos);
  auto r = request("end of text", 20, 0);
  r.ignore_eos = false;
  const GenerationResult got = f.sched.submit(r)->wait();
  EXPECT_EQ(got.finish_reason, "stop");
  EXPECT_EQ(got.completion_tokens, (int64_t)first + 1);
  EXPECT_EQ(got.tokens.back(), eos);
  EXPECT_EQ(got.text, f.tok.decode(std::vector<int32_t>(tokens.begin(), tokens.begin() + first)));
  // ignore_eos goes on to max_tokens.
  r.ignore_eos = true;
  EXPECT_EQ(f.sched.submit(r)->wait().tokens, tokens);
}

TEST(Scheduler, CancelFreesTheSlot) {
  Fixture f(1);
  f.tok.gate.close();
  auto running = f.sched.submit(request("cancel me", 50, 3, 1.0f));
  f.tok.gate.wait_held();  // its first token is out
  auto queued = f.sched.submit(request("queued", 5, 4));
  queued->cancel();
  running->cancel();
  f.tok.gate.open();
  const GenerationResult& r = running->wait();
  EXPECT_EQ(r.finish_reason, "cancelled");
  EXPECT_EQ(r.completion_tokens, 1);
  EXPECT_EQ(queued->wait().finish_reason, "cancelled");
  EXPECT_EQ(queued->wait().completion_tokens, 0);
  // The one slot is free again.
  const GenerationResult next = f.sched.submit(request("next", 5, 5))->wait();
  EXPECT_EQ(next.finish_reason, "length");
  SchedulerStats s = f.sched.stats();
  EXPECT_EQ(s.finished_cancelled, 2u);
  EXPECT_EQ(s.requests_active, 0);
  EXPECT_EQ(s.requests_queued, 0);
}

TEST(Scheduler, ManyConcurrentClientsMoreThanSlots) {
  SchedulerOptions so;
  so.max_queued = 100;
  Fixture f(3, so);
  auto rs = mixed_requests();
  std::vector<GenerationResult> alone;
  for (const auto& r : rs) alone.push_back(f.sched.submit(r)->wait());
  const int clients = 4, per_client = 6;
  std::vector<std::vector<int>> mismatches(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < per_client; ++i) {
        size_t k = (size_t)(c + i) % rs.size();
        auto g = f.sched.submit(rs[k]);
        std::string text = join(stream_all(*g));
        const GenerationResult& r = g->wait();
        if (r.tokens != alone[k].tokens || text != alone[k].text) mismatches[c].push_back((int)k);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int c = 0; c < clients; ++c) EXPECT_TRUE(mismatches[c].empty()) << "client " << c;
  SchedulerStats s = f.sched.stats();
  EXPECT_EQ(s.finished_length, (uint64_t)(rs.size() + clients * per_client));
  uint64_t expected_prompt = 0, expected_generated = 0;
  for (const auto& r : rs) expected_prompt += r.prompt.size(), expected_generated += r.max_tokens;
  expected_prompt *= (1 + clients * per_client / rs.size());
  expected_generated *= (1 + clients * per_client / rs.size());
  EXPECT_EQ(s.prompt_tokens, expected_prompt);
  EXPECT_EQ(s.generated_tokens, expected_generated);
}

TEST(Scheduler, InvalidRequestsAreErrors) {
  SchedulerOptions so;
  so.max_tokens_limit = 20;
  Fixture f(1, so, 256, 32);
  auto expect_error = [&](GenerationRequest r, const std::string& words) {
    try {
      f.sched.submit(std::move(r));
      ADD_FAILURE() << "no error for " << words;
    } catch (const Overloaded&) {
      ADD_FAILURE() << "overloaded for " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error(request("", 5, 0), "empty");
  auto bad_id = request("ab", 5, 0);
  bad_id.prompt[1] = 260;
  expect_error(bad_id, "outside the vocabulary");
  expect_error(request("ab", 0, 0), "max_tokens");
  expect_error(request("ab", 21, 0), "limit of 20");
  expect_error(request(std::string(20, 'a'), 13, 0), "longer than the context of 32");
  expect_error(request(std::string(32, 'a'), 1, 0), "the context holds 32");
  auto bad_t = request("ab", 5, 0);
  bad_t.sampling.temperature = -1;
  expect_error(bad_t, "temperature");
  auto empty_stop = request("ab", 5, 0);
  empty_stop.stop = {""};
  expect_error(empty_stop, "stop strings must not be empty");
  EXPECT_EQ(f.sched.submit(request(std::string(20, 'a'), 12, 0))->wait().completion_tokens, 12);
  EXPECT_EQ(f.sched.max_tokens_for(20), 12);
  EXPECT_EQ(f.sched.max_tokens_for(2), 20);
}

TEST(Scheduler, MaxTokensNearTheInt64LimitIsRefused) {
  // n_prompt + max_tokens would overflow; without a server limit nothing else stops it.
  Fixture f(1, SchedulerOptions{}, 256, 32);
  std::string message;
  try {
    f.sched.submit(request("ab", INT64_MAX, 0));
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message,
            "the prompt (2 tokens) plus max_tokens (9223372036854775807) is longer than the context of 32 tokens; at "
            "most 30 tokens can follow this prompt");
}

TEST(Scheduler, FullQueueIsOverloaded) {
  SchedulerOptions so;
  so.max_queued = 2;
  Fixture f(1, so);
  f.tok.gate.close();
  auto running = f.sched.submit(request("long", 50, 1));
  f.tok.gate.wait_held();
  auto q1 = f.sched.submit(request("q1", 3, 1));
  auto q2 = f.sched.submit(request("q2", 3, 1));
  EXPECT_THROW(f.sched.submit(request("q3", 3, 1)), Overloaded);
  EXPECT_EQ(f.sched.stats().requests_rejected, 1u);
  EXPECT_EQ(f.sched.stats().requests_queued, 2);
  EXPECT_EQ(f.sched.stats().requests_active, 1);
  running->cancel();
  f.tok.gate.open();
  EXPECT_EQ(running->wait().finish_reason, "cancelled");
  EXPECT_EQ(q1->wait().finish_reason, "length");
  EXPECT_EQ(q2->wait().finish_reason, "length");
}

TEST(Scheduler, StopFinishesOrCancels) {
  {
    Fixture f(2);
    std::vector<std::shared_ptr<Generation>> gens;
    for (int i = 0; i < 4; ++i) gens.push_back(f.sched.submit(request("drain", 10, (uint64_t)i)));
    f.sched.stop(10s);  // time enough: everything finishes
    for (auto& g : gens) EXPECT_EQ(g->wait().finish_reason, "length");
    EXPECT_THROW(f.sched.submit(request("late", 3, 0)), ShuttingDown);
  }
  {
    Fixture f(1);
    f.tok.gate.close();
    auto running = f.sched.submit(request("cut short", 50, 1));
    f.tok.gate.wait_held();
    auto queued = f.sched.submit(request("never", 3, 1));
    std::thread stopper([&] { f.sched.stop(0ms); });
    for (;;) {  // until stop() has begun
      try {
        f.sched.submit(request("probe", 1, 0))->cancel();
      } catch (const ShuttingDown&) {
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(20ms);
    f.tok.gate.open();
    stopper.join();
    EXPECT_EQ(running->wait().finish_reason, "cancelled");
    EXPECT_EQ(queued->wait().finish_reason, "cancelled");
  }
}
