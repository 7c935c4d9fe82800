// The HTTP server over real sockets on 127.0.0.1, with a tiny random GPT and a tiny GPT-2 BPE
// vocabulary: OpenAI completion and SSE shapes, concurrent clients getting their solo answers,
// cancellation by disconnect, malformed input, limits, tokenize, metrics, health, shutdown.
#include "gannet/infer/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "command_output.h"
#include "engine_test_util.h"
#include "gannet/core/error.h"
#include "gannet/data/text_tokenizer.h"
#include "gannet/io/checkpoint.h"
#include "gannet/models/gpt.h"
#include "gpt2_vocab_files.h"
#include "raw_http.h"

using namespace gannet;
using namespace gannet::infer;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;
using gannet::testing::RawConnection;

namespace {

// A GPT-2 BPE vocabulary: the 256 bytes, a few merges, <|endoftext|> last.
void write_vocab(const fs::path& dir) {
  const gannet::testing::Gpt2VocabFiles files = gannet::testing::gpt2_vocab_files(
      {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"i", "n"}, {" ", "a"}, {"e", "r"}, {"o", "n"}, {" ", "w"}, {"o", "r"}});
  std::ofstream(dir / "vocab.json") << files.vocab_json;
  std::ofstream(dir / "merges.txt") << files.merges_txt;
}

// The real tokenizer, with a delay per decode (the scheduler decodes after every token) that
// makes generations slow enough to be cancelled mid-way.
class SlowTokenizer : public data::TextTokenizer {
 public:
  explicit SlowTokenizer(std::unique_ptr<data::TextTokenizer> inner) : inner_(std::move(inner)) {}
  using data::TextTokenizer::encode;
  std::vector<int32_t> encode(const std::string& text, data::AllowSpecial allow) const override {
    return inner_->encode(text, allow);
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    if (int ms = delay_ms.load()) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return inner_->decode(ids);
  }
  int vocab_size() const override { return inner_->vocab_size(); }
  int eos_id() const override { return inner_->eos_id(); }
  std::atomic<int> delay_ms{0};

 private:
  std::unique_ptr<data::TextTokenizer> inner_;
};

io::GptWeights tiny_weights(int64_t vocab, int64_t n_ctx) {
  const models::GptConfig c = gannet::testing::small_config(vocab, n_ctx, 2, 32);
  models::Gpt m(c);
  m.init(11);
  io::GptWeights w;
  w.config = c;
  for (const auto& p : m.parameters()) {  // scaled up, so that the text depends on prompt and seed
    Tensor t = p.var.value();
    float scale = p.name == "wte.weight" ? 10.0f : p.name == "wpe.weight" ? 20.0f : 1.0f;
    if (p.name.find("mlp") != std::string::npos && p.name.find("weight") != std::string::npos) scale = 10.0f;
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] *= scale;
    w.tensors[p.name] = t;
  }
  return w;
}

class ServerTest : public ::testing::Test {
 protected:
  void start(int64_t slots = 3, int64_t max_queued = 16, int64_t max_tokens_limit = 0,
             const std::function<void(ServerOptions&)>& configure = {}) {
    dir_ = fs::temp_directory_path() / ("gannet_server_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    write_vocab(dir_);
    tok_ = std::make_unique<SlowTokenizer>(data::load_text_tokenizer(dir_.string()));
    weights_ = tiny_weights(tok_->vocab_size(), 128);
    engine_ = std::make_unique<Engine>(weights_, EngineOptions{WeightFormat::f32, slots, 0});
    SchedulerOptions so;
    so.max_queued = max_queued;
    so.max_tokens_limit = max_tokens_limit;
    sched_ = std::make_unique<Scheduler>(*engine_, *tok_, so);
    ServerOptions o;
    o.port = 0;
    o.model_name = "tiny";
    o.max_connections = 64;
    if (configure) configure(o);
    server_ = std::make_unique<Server>(*sched_, o);
    port_ = server_->bind();
    serve_thread_ = std::thread([this] { server_->serve(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (serve_thread_.joinable()) serve_thread_.join();
    server_.reset();
    sched_.reset();
    engine_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  struct Reply {
    int status = -1;
    json body;
    std::string raw;
    std::string content_type;
  };
  Reply request(const std::string& method, const std::string& path, const std::string& body = "") {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(60, 0);
    httplib::Result r = method == "GET" ? cli.Get(path.c_str()) : cli.Post(path.c_str(), body, "application/json");
    Reply reply;
    if (!r) return reply;
    reply.status = r->status;
    reply.raw = r->body;
    reply.content_type = r->get_header_value("Content-Type");
    reply.body = json::parse(r->body, nullptr, false);
    return reply;
  }
  Reply post(const std::string& path, const json& body) { return request("POST", path, body.dump()); }

  // The completion text of a non-streamed request (asserting success).
  std::string complete(const json& body) {
    Reply r = post("/v1/completions", body);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body.is_object() && r.body.contains("choices") ? r.body["choices"][0]["text"].get<std::string>()
                                                            : "<error>";
  }

  // The `data:` payloads of an SSE body, in order (comments skipped).
  static std::vector<std::string> sse_events(const std::string& raw) {
    std::vector<std::string> events;
    size_t pos = 0;
    while (pos < raw.size()) {
      size_t end = raw.find("\n\n", pos);
      if (end == std::string::npos) end = raw.size();
      std::string e = raw.substr(pos, end - pos);
      pos = end + 2;
      if (e.empty() || e[0] == ':') continue;
      EXPECT_EQ(e.rfind("data: ", 0), 0u) << e;
      events.push_back(e.substr(6));
    }
    return events;
  }

  std::string metric(const std::string& name) {
    Reply r = request("GET", "/metrics");
    size_t at = r.raw.find("\n" + name + " ");
    if (at == std::string::npos) return "";
    size_t start = at + name.size() + 2, end = r.raw.find('\n', start);
    return r.raw.substr(start, end - start);
  }

  fs::path dir_;
  std::unique_ptr<SlowTokenizer> tok_;
  io::GptWeights weights_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Scheduler> sched_;
  std::unique_ptr<Server> server_;
  std::thread serve_thread_;
  int port_ = 0;
};

json completion(const std::string& prompt, int max_tokens, uint64_t seed, double temperature) {
  return {{"model", "tiny"}, {"prompt", prompt},           {"max_tokens", max_tokens},
          {"seed", seed},    {"temperature", temperature}, {"ignore_eos", true}};
}

}  // namespace

TEST_F(ServerTest, CompletionShapeAndUsage) {
  start();
  json body = completion("Hello the world", 12, 1, 0.0);
  Reply r = post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.content_type, "application/json");
  const json& j = r.body;
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_TRUE(j["created"].is_number_integer());
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const int64_t n_prompt = (int64_t)tok_->encode("Hello the world").size();
  EXPECT_EQ(j["usage"]["prompt_tokens"], n_prompt);
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  EXPECT_EQ(j["usage"]["total_tokens"], n_prompt + 12);

  // The same as the scheduler gives directly; token-id prompts (flat or nested) mean the same.
  GenerationRequest g;
  g.prompt = tok_->encode("Hello the world");
  g.max_tokens = 12;
  g.sampling.temperature = 0;
  g.sampling.seed = 1;
  g.ignore_eos = true;
  // (Random bytes are not always UTF-8: JSON carries U+FFFD for those.)
  const std::string direct = sched_->submit(g)->wait().text;
  EXPECT_EQ(j["choices"][0]["text"], json::parse(json(direct).dump(-1, ' ', false, json::error_handler_t::replace)));
  body["prompt"] = g.prompt;
  EXPECT_EQ(complete(body), j["choices"][0]["text"]);
  body["prompt"] = json::array({g.prompt});
  EXPECT_EQ(complete(body), j["choices"][0]["text"]);
  // OpenAI's neutral values of unsupported options are accepted.
  body.update({{"n", 1},
               {"logprobs", nullptr},
               {"echo", false},
               {"user", "me"},
               {"frequency_penalty", 0},
               {"presence_penalty", 0.0},
               {"stop", nullptr},
               {"best_of", 1},
               {"logit_bias", json::object()}});
  EXPECT_EQ(complete(body), j["choices"][0]["text"]);
}

TEST_F(ServerTest, ConcurrentClientsGetTheirSoloAnswers) {
  start(3);
  std::vector<json> bodies;
  const char* prompts[] = {"the cat", "in the", "Hello", "or on", "water", "a", "winter", "the other"};
  for (int i = 0; i < 8; ++i) {
    json b = completion(prompts[i], 10 + i, 100 + i, i % 2 ? 0.8 : 0.0);
    if (i == 3) b["top_p"] = 0.9;
    if (i == 5) b["top_k"] = 20, b["repetition_penalty"] = 1.2;
    bodies.push_back(b);
  }
  std::vector<std::string> solo;
  for (const json& b : bodies) solo.push_back(complete(b));
  std::vector<std::string> together(bodies.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < bodies.size(); ++i)
    clients.emplace_back([&, i] {
      httplib::Client cli("127.0.0.1", port_);
      cli.set_read_timeout(60, 0);
      auto r = cli.Post("/v1/completions", bodies[i].dump(), "application/json");
      if (r && r->status == 200) together[i] = json::parse(r->body)["choices"][0]["text"];
    });
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(together[i], solo[i]) << "client " << i;
  // A different seed gives a different sampled text.
  json other = bodies[1];
  other["seed"] = 999;
  EXPECT_NE(complete(other), solo[1]);
}

TEST_F(ServerTest, StreamingSendsServerSentEvents) {
  start();
  json body = completion("streaming the text", 20, 5, 0.9);
  const std::string whole = complete(body);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  Reply r = post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.content_type, "text/event-stream");
  std::vector<std::string> events = sse_events(r.raw);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  json finish, usage;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i]);
    EXPECT_EQ(e["object"], "text_completion");
    EXPECT_EQ(e["model"], "tiny");
    if (e["choices"].empty()) {  // include_usage: the last chunk before [DONE]
      EXPECT_EQ(i + 2, events.size());
      usage = e["usage"];
      continue;
    }
    text += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, whole);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(usage["completion_tokens"], 20);
  EXPECT_EQ(usage["prompt_tokens"], tok_->encode("streaming the text").size());

  // A stop string ends the stream before it.
  const std::string stop = whole.substr(whole.size() / 2, 2);
  body["stop"] = json::array({stop});
  body.erase("stream_options");
  events = sse_events(post("/v1/completions", body).raw);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  text.clear();
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i]);
    text += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, whole.substr(0, whole.find(stop)));
  EXPECT_EQ(finish, "stop");
}

TEST_F(ServerTest, ClientDisconnectCancelsTheStream) {
  start(1);
  tok_->delay_ms = 10;  // about 10 ms per token: 100 tokens would take a second
  json body = completion("cancel the stream", 100, 3, 0.8);
  body["stream"] = true;
  const std::string payload = body.dump();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, (sockaddr*)&addr, sizeof(addr)), 0);
  std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(payload.size()) + "\r\n\r\n" + payload;
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), (ssize_t)req.size());
  std::string got;
  char buf[4096];
  while (got.find("data: ") == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    got.append(buf, (size_t)n);
  }
  ::close(fd);  // gone after the first chunk

  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sched_->stats().finished_cancelled == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  SchedulerStats s = sched_->stats();
  EXPECT_EQ(s.finished_cancelled, 1u);
  EXPECT_LT(s.generated_tokens, 50u);  // stopped soon after the disconnect
  EXPECT_EQ(s.requests_active, 0);
  EXPECT_EQ(metric("gannet_requests_finished_total{reason=\"cancelled\"}"), "1");
  // The one slot is free: the next request runs.
  tok_->delay_ms = 0;
  EXPECT_EQ(complete(completion("next", 5, 1, 0.0)).empty(), false);
}

TEST_F(ServerTest, MalformedRequestsAre400) {
  start();
  auto expect_400 = [&](const std::string& body, const std::string& words,
                        const std::string& path = "/v1/completions") {
    Reply r = request("POST", path, body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.raw;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.raw;
    EXPECT_EQ(r.body["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(r.body["error"].contains("param") && r.body["error"].contains("code")) << r.raw;  // OpenAI's shape
    std::string message = r.body["error"]["message"];
    EXPECT_NE(message.find(words), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  };
  expect_400("{bad json", "invalid JSON");
  expect_400("", "invalid JSON");
  expect_400("[1, 2]", "must be a JSON object");
  expect_400(R"({"max_tokens": 5})", "'prompt' is required");
  expect_400(R"({"prompt": 5})", "'prompt' must be a string");
  expect_400(R"({"prompt": ["a", "b"]})", "2 prompts");
  expect_400(R"({"prompt": [1, -2]})", "out of range");
  expect_400(R"({"prompt": [1, 100000]})", "outside the vocabulary");
  expect_400(R"({"prompt": "hi", "temperature": "hot"})", "'temperature' must be a number");
  expect_400(R"({"prompt": "hi", "temperature": -1})", "temperature");
  expect_400(R"({"prompt": "hi", "max_tokens": 1.5})", "'max_tokens' must be an integer");
  expect_400(R"({"prompt": "hi", "max_tokens": 0})", "max_tokens");
  expect_400(R"({"prompt": "hi", "top_p": 0})", "top_p");
  expect_400(R"({"prompt": "hi", "top_k": true})", "'top_k' must be an integer");
  expect_400(R"({"prompt": "hi", "stream": "yes"})", "'stream' must be a boolean");
  expect_400(R"({"prompt": "hi", "stop": 7})", "'stop' must be a string");
  expect_400(R"({"prompt": "hi", "stop": ["ok", 7]})", "'stop' must be a string");
  expect_400(R"({"prompt": "hi", "seed": -3})", "'seed'");
  expect_400(R"({"prompt": "hi", "foo": 1})", "unknown field 'foo'");
  expect_400(R"({"prompt": "hi", "n": 2})", "'n'");
  expect_400(R"({"prompt": "hi", "logprobs": 2})", "'logprobs' is not supported");
  expect_400(R"({"prompt": "hi", "echo": true})", "'echo' is not supported");
  expect_400(R"({"prompt": "hi", "frequency_penalty": 0.5})", "'frequency_penalty' is not supported");
  expect_400(R"({"prompt": "hi", "presence_penalty": 1})", "'presence_penalty' is not supported");
  expect_400(R"({"prompt": "hi", "stream_options": {"include_usage": true}})", "stream");
  expect_400(R"({"content": 5})", "'content' must be a string", "/tokenize");
  expect_400(R"({"text": "x"})", "unknown field 'text'", "/tokenize");
  expect_400(R"({"tokens": [1, 99999]})", "outside the vocabulary", "/detokenize");
  expect_400(R"({"tokens": "1 2"})", "'tokens' must be an array", "/detokenize");

  Reply missing = request("GET", "/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(missing.body.contains("error")) << missing.raw;
  EXPECT_EQ(missing.body["error"]["type"], "invalid_request_error");  // OpenAI's, for a bad URL too
  Reply wrong_method = request("GET", "/v1/completions");
  EXPECT_EQ(wrong_method.status, 405) << wrong_method.raw;
  EXPECT_EQ(wrong_method.body["error"]["message"], "/v1/completions takes POST, not GET");
  // Still serving after all that.
  EXPECT_EQ(request("GET", "/health").status, 200);
}

TEST_F(ServerTest, LimitsAre400And429) {
  start(1, 1, 30);
  // Context 128: a 120-token prompt leaves 8.
  const std::string long_prompt(120, 'x');
  ASSERT_EQ(tok_->encode(long_prompt).size(), 120u);
  Reply r = post("/v1/completions", completion(long_prompt, 9, 0, 0.0));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.raw.find("longer than the context of 128"), std::string::npos) << r.raw;
  EXPECT_EQ(post("/v1/completions", completion(long_prompt, 8, 0, 0.0)).status, 200);
  // Without max_tokens: OpenAI's 16, or what fits.
  r = post("/v1/completions", {{"prompt", long_prompt}, {"ignore_eos", true}});
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 8);
  r = post("/v1/completions", {{"prompt", "hi"}, {"ignore_eos", true}});
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 16);
  // An empty prompt is <|endoftext|>.
  r = post("/v1/completions", {{"prompt", json::array()}, {"max_tokens", 2}});
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], 1);
  r = post("/v1/completions", completion(std::string(200, 'x'), 1, 0, 0.0));
  EXPECT_EQ(r.status, 400);
  r = post("/v1/completions", completion("hi", 31, 0, 0.0));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.raw.find("limit of 30"), std::string::npos) << r.raw;

  // One slot busy, one request queued: the next is refused with 429.
  tok_->delay_ms = 10;
  std::thread busy([&] { post("/v1/completions", completion("busy", 30, 0, 0.0)); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sched_->stats().requests_active == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  std::thread queued([&] { post("/v1/completions", completion("queued", 2, 0, 0.0)); });
  while (sched_->stats().requests_queued == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  r = post("/v1/completions", completion("refused", 2, 0, 0.0));
  EXPECT_EQ(r.status, 429) << r.raw;
  EXPECT_EQ(r.body["error"]["type"], "server_overloaded");
  busy.join();
  queued.join();
  EXPECT_EQ(metric("gannet_requests_rejected_total"), "1");
}

TEST_F(ServerTest, TokenizeRoundTrip) {
  start();
  const std::string text = "the other winter in Caf\xC3\xA9 <|endoftext|> \xE2\x82\xAC 12";
  Reply t = post("/tokenize", {{"content", text}});
  ASSERT_EQ(t.status, 200) << t.raw;
  std::vector<int32_t> ids = t.body["tokens"];
  EXPECT_EQ(ids, tok_->encode(text));
  EXPECT_LT(ids.size(), text.size());  // merges applied
  // A request's text cannot inject the end of text: "<|endoftext|>" is ordinary text.
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok_->eos_id()), 0) << t.raw;
  const std::vector<int32_t> allowed = tok_->encode(text, data::AllowSpecial::all);
  EXPECT_EQ(std::count(allowed.begin(), allowed.end(), tok_->eos_id()), 1);  // the vocabulary has it
  Reply d = post("/detokenize", {{"tokens", ids}});
  ASSERT_EQ(d.status, 200) << d.raw;
  EXPECT_EQ(d.body["content"], text);
}

TEST_F(ServerTest, HealthModelsAndMetrics) {
  start(2);
  Reply h = request("GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body["status"], "ok");
  Reply m = request("GET", "/v1/models");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.body["object"], "list");
  EXPECT_EQ(m.body["data"][0]["id"], "tiny");
  EXPECT_EQ(m.body["data"][0]["object"], "model");

  complete(completion("count me", 7, 0, 0.0));
  complete(completion("and me", 3, 0, 0.5));
  Reply metrics = request("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type.rfind("text/plain", 0), 0u);
  for (const char* line :
       {"# TYPE gannet_requests_total counter", "# TYPE gannet_time_to_first_token_seconds histogram",
        "gannet_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2", "gannet_time_to_first_token_seconds_count 2",
        "gannet_time_per_output_token_seconds_count 8", "gannet_slots 2", "gannet_requests_active 0",
        "gannet_requests_queued 0"})
    EXPECT_NE(metrics.raw.find(line), std::string::npos) << line << "\n" << metrics.raw;
  EXPECT_EQ(metric("gannet_requests_total"), "2");
  EXPECT_EQ(metric("gannet_generated_tokens_total"), "10");
  EXPECT_EQ(metric("gannet_prompt_tokens_total"),
            std::to_string(tok_->encode("count me").size() + tok_->encode("and me").size()));
  EXPECT_EQ(metric("gannet_requests_finished_total{reason=\"length\"}"), "2");
}

// A generation cancelled by the shutdown has no OpenAI finish_reason: its stream ends with an error
// event and no [DONE], a non-streaming request gets a 503 (which OpenAI clients retry).
TEST_F(ServerTest, ShutdownEndsStreamsAndServe) {
  start(2);
  tok_->delay_ms = 10;
  json body = completion("shut down", 100, 0, 0.0), streaming = body;
  streaming["stream"] = true;
  Reply streamed, whole;
  std::thread client([&] { streamed = post("/v1/completions", streaming); });
  std::thread plain([&] { whole = post("/v1/completions", body); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((sched_->stats().requests_active < 2 || sched_->stats().generated_tokens < 6) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  server_->stop(0ms);  // cancels the running generations
  serve_thread_.join();
  client.join();
  plain.join();
  std::vector<std::string> events = sse_events(streamed.raw);
  ASSERT_GE(events.size(), 2u) << streamed.raw;
  for (size_t i = 0; i + 1 < events.size(); ++i)
    EXPECT_TRUE(json::parse(events[i])["choices"][0]["finish_reason"].is_null()) << events[i];
  const json last = json::parse(events.back());
  EXPECT_EQ(last["error"]["type"], "unavailable") << events.back();
  EXPECT_NE(last["error"]["message"].get<std::string>().find("shutting down"), std::string::npos);
  EXPECT_EQ(whole.status, 503) << whole.raw;
  EXPECT_NE(whole.body["error"]["message"].get<std::string>().find("cancelled"), std::string::npos) << whole.raw;
  // Nothing listens any more.
  httplib::Client cli("127.0.0.1", port_);
  cli.set_connection_timeout(1, 0);
  EXPECT_FALSE(cli.Get("/health"));
}

// stop() closes idle keep-alive connections and drops requests still arriving at once: it
// waited up to httplib's keep-alive timeout (5 s) before.
TEST_F(ServerTest, StopClosesIdleConnectionsAtOnce) {
  start();
  RawConnection idle(port_), arriving(port_);
  ASSERT_TRUE(idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(RawConnection::status_of(idle.read_response(5000ms)), 200);
  ASSERT_TRUE(arriving.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le"));
  std::this_thread::sleep_for(100ms);
  const auto stopping = std::chrono::steady_clock::now();
  server_->stop(0ms);
  serve_thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 1000ms);
  EXPECT_TRUE(idle.closed_within(1000ms));
  EXPECT_TRUE(arriving.closed_within(1000ms));
}

// Overflowing, out-of-range and wrongly typed numbers are 400s naming the field (in the message and
// in "param"); 1e999 was a 500 (nlohmann's out_of_range escaped as an internal error).
TEST_F(ServerTest, NumbersOutOfRangeAre400NamingTheField) {
  start(1, 4, 0);
  auto expect_400 = [&](const std::string& body, const std::string& param) {
    Reply r = request("POST", "/v1/completions", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.raw;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << body << " -> " << r.raw;
    const json& e = r.body["error"];
    EXPECT_EQ(e["type"], "invalid_request_error") << r.raw;
    EXPECT_EQ(e["param"], param) << body << " -> " << r.raw;
    EXPECT_TRUE(e.contains("code")) << r.raw;
    const std::string message = e["message"];
    EXPECT_NE(message.find(param.substr(param.rfind('.') + 1)), std::string::npos) << message;
  };
  for (const std::string field : {"max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed", "n",
                                  "best_of", "frequency_penalty", "presence_penalty"}) {
    expect_400(R"({"prompt": "hi", ")" + field + R"(": 1e999})", field);
    expect_400(R"({"prompt": "hi", ")" + field + R"(": -1e400})", field);
    expect_400(R"({"prompt": "hi", ")" + field + R"(": "1"})", field);
  }
  expect_400(R"({"prompt": [1, 1e999]})", "prompt");
  expect_400(R"({"prompt": [[1, 99999999999999999999]]})", "prompt");
  expect_400(R"({"prompt": "hi", "stop": ["a", 1e400]})", "stop");
  expect_400(R"({"prompt": "hi", "stream": true, "stream_options": {"include_usage": 1e999}})",
             "stream_options.include_usage");
  expect_400(R"({"prompt": "hi", "max_tokens": 1e20})", "max_tokens");                  // not an integer
  expect_400(R"({"prompt": "hi", "max_tokens": 99999999999999999999})", "max_tokens");  // past uint64: a double
  expect_400(R"({"prompt": "hi", "max_tokens": 18446744073709551615})", "max_tokens");
  // prompt + max_tokens overflowed int64 in the scheduler's context check, and passed it.
  expect_400(R"({"prompt": "hi", "max_tokens": 9223372036854775807})", "max_tokens");
  expect_400(R"({"prompt": "hi", "max_tokens": -9223372036854775808})", "max_tokens");
  expect_400(R"({"prompt": "hi", "temperature": 1e300})", "temperature");
  expect_400(R"({"prompt": "hi", "temperature": -0.5})", "temperature");
  expect_400(R"({"prompt": "hi", "top_p": 1.5})", "top_p");
  expect_400(R"({"prompt": "hi", "top_k": -9223372036854775808})", "top_k");
  expect_400(R"({"prompt": "hi", "repetition_penalty": 0})", "repetition_penalty");
  expect_400(R"({"prompt": "hi", "seed": 18446744073709551616})", "seed");
  expect_400(R"({"prompt": "hi", "seed": -1})", "seed");
  expect_400(R"({"prompt": "hi", "n": 18446744073709551615})", "n");
  expect_400(R"({"prompt": "hi", "stream": 1})", "stream");
  expect_400(R"({"prompt": "hi", "stop": ["", "b"]})", "stop");
  // Invalid JSON outside any field names none.
  Reply r = request("POST", "/v1/completions", R"({"prompt": "hi", 1e999: 2})");
  EXPECT_EQ(r.status, 400) << r.raw;
  EXPECT_TRUE(r.body["error"]["param"].is_null()) << r.raw;
  // The largest values that are valid still work.
  r = post("/v1/completions", {{"prompt", "hi"}, {"max_tokens", 1}, {"seed", UINT64_MAX}, {"top_k", INT64_MAX}});
  EXPECT_EQ(r.status, 200) << r.raw;
}

// POST bodies must say they are JSON (415 otherwise); parameters are allowed, a charset must be
// UTF-8.
TEST_F(ServerTest, PostBodiesMustBeJson) {
  start();
  const std::string body = json{{"prompt", "hi"}, {"max_tokens", 1}}.dump();
  auto status = [&](const std::string& content_type, const std::string& path = "/v1/completions") {
    RawConnection c(port_);
    std::string req =
        "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
    c.send(req + "\r\n" + body);
    const std::string reply = c.read_response(10000ms);
    if (RawConnection::status_of(reply) == 415) {
      const json j = json::parse(reply.substr(reply.find("\r\n\r\n") + 4), nullptr, false);
      EXPECT_NE(j["error"]["message"].get<std::string>().find("application/json"), std::string::npos) << reply;
    }
    return RawConnection::status_of(reply);
  };
  EXPECT_EQ(status("application/json"), 200);
  EXPECT_EQ(status("application/json; charset=utf-8"), 200);
  EXPECT_EQ(status("Application/JSON;charset=\"UTF-8\""), 200);
  EXPECT_EQ(status("application/json; charset=utf-8", "/tokenize"), 400);  // JSON, but no 'content'
  EXPECT_EQ(status(""), 415);
  EXPECT_EQ(status("text/plain"), 415);
  EXPECT_EQ(status("application/x-www-form-urlencoded"), 415);  // curl -d's default
  EXPECT_EQ(status("application/jsonp"), 415);
  EXPECT_EQ(status("application/json; charset=latin-1"), 415);
  EXPECT_EQ(status("text/plain", "/tokenize"), 415);
  EXPECT_EQ(status("text/plain", "/detokenize"), 415);
}

// The body limit (1 MiB) holds for chunked uploads, which httplib buffered whole: 413, with the
// server's memory not growing with the upload.
TEST_F(ServerTest, ChunkedUploadOverTheLimitIs413) {
  start();
  const size_t limit = ServerOptions{}.max_body_bytes;
  auto padded = [&](size_t size) {  // a valid request, padded with whitespace to `size` bytes
    std::string b = json{{"prompt", "hi"}, {"max_tokens", 1}}.dump();
    return b + std::string(size - b.size(), ' ');
  };
  auto chunked = [](const std::string& body) {
    std::string framed;
    for (size_t at = 0; at < body.size(); at += 65536) {
      const size_t n = std::min<size_t>(65536, body.size() - at);
      char size[32];
      std::snprintf(size, sizeof(size), "%zx\r\n", n);
      framed += size + body.substr(at, n) + "\r\n";
    }
    return framed + "0\r\n\r\n";
  };
  const std::string head =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: "
      "chunked\r\n\r\n";
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.send(head + chunked(padded(limit))));
    EXPECT_EQ(RawConnection::status_of(c.read_response(10000ms)), 200);
  }
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.send(head + chunked(padded(limit + 1))));
    const std::string reply = c.read_response(10000ms);
    EXPECT_EQ(RawConnection::status_of(reply), 413) << reply;
    EXPECT_NE(reply.find("over the limit of 1048576 bytes"), std::string::npos) << reply;
  }
  // 16 MiB more: the server stops at the limit; the peak resident memory of this process (server
  // and client) grows by far less than the upload.
  auto rss_kib = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return 0L;
  };
  const long before = rss_kib();
  std::atomic<long> peak{before};
  std::atomic<bool> uploading{true};
  std::thread sampler([&] {
    while (uploading) {
      peak = std::max(peak.load(), rss_kib());
      std::this_thread::sleep_for(2ms);
    }
  });
  RawConnection c(port_);
  std::thread sender([&] {
    if (!c.send(head)) return;
    std::string chunk(65536, ' ');
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    const std::string framed = size + chunk + "\r\n";
    for (int i = 0; i < 256 && c.send(framed); ++i) {
    }
  });
  const std::string reply = c.read_response(20000ms);
  ::shutdown(c.fd, SHUT_RDWR);
  sender.join();
  uploading = false;
  sampler.join();
  EXPECT_EQ(RawConnection::status_of(reply), 413) << reply;
  EXPECT_LT(peak - before, 8 * 1024) << "resident memory grew by " << (peak - before) << " KiB";
}

// ---- The CLI: gannet generate and gannet serve as processes ----

namespace {

struct CliDir {
  CliDir() {
    path = fs::temp_directory_path() / ("gannet_cli_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(path);
    write_vocab(path);
    models::GptConfig c;
    c.vocab_size = 266;  // 256 bytes, 9 merges, <|endoftext|>
    c.n_ctx = 64;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 16;
    models::Gpt m(c);
    m.init(5);
    model = (path / "model.safetensors").string();
    io::save_checkpoint(model, m, nullptr, io::TrainState{});
  }
  ~CliDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
  std::string model;
};

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

struct CliRun {
  int status;
  std::string out, err;
};

CliRun run_gannet(const CliDir& d, const std::string& args) {
  const fs::path out = d.path / "out.txt", err = d.path / "err.txt";
  std::string cmd = std::string(GANNET_BINARY) + " " + args + " >" + out.string() + " 2>" + err.string();
  int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_text(out), read_text(err)};
}

}  // namespace

TEST(ServerCli, GenerateStreamsTextAndSpeeds) {
  CliDir d;
  const std::string base = "generate -m " + d.model + " --tokenizer " + d.path.string() + " -t 1 ";
  CliRun r = run_gannet(d, base + "-p 'the winter' -n 6 --temperature 0 --ignore-eos");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("the winter", 0), 0u) << r.out;
  EXPECT_NE(
      r.err.find("prompt: " + std::to_string(data::load_text_tokenizer(d.path.string())->encode("the winter").size()) +
                 " tokens"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("generation: 6 tokens"), std::string::npos) << r.err;
  // Same seed, same text; sampling options are accepted.
  const std::string sampled = base +
                              "-p 'in the' -n 8 --temperature 0.9 --top-k 20 --top-p 0.9 --repeat-penalty 1.1 "
                              "--seed 4 --ignore-eos --stop zz --stop yy";
  CliRun a = run_gannet(d, sampled), b = run_gannet(d, sampled);
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);

  CliRun bad = run_gannet(d, base + "-p x --temperature -1");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("--temperature: must be >= 0, got -1"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  bad = run_gannet(d, base + "-p x -n 80");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("longer than the model's context of 64"), std::string::npos) << bad.err;
  bad = run_gannet(d, base + "-p x -n 9223372036854775807");  // the prompt plus this overflowed
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("longer than the model's context of 64"), std::string::npos) << bad.err;
  EXPECT_NE(run_gannet(d, base + "-p x --weights int8").status, 0);
}

TEST(ServerCli, ServeRefusesBadLimits) {
  CliDir d;
  const std::string base = "serve -m " + d.model + " --tokenizer " + d.path.string() + " --port 0 ";
  for (const std::string& bad : {"--request-timeout 0", "--request-timeout nan", "--shutdown-grace inf",
                                 "--shutdown-grace 1e300", "--max-connections -1"}) {
    CliRun r = run_gannet(d, base + bad);
    EXPECT_EQ(r.status, 1) << bad << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << bad << ": " << r.err;
    const std::string option = bad.substr(0, bad.find(' '));
    EXPECT_NE(r.err.find(option), std::string::npos) << bad << ": " << r.err;
  }
}

// `gannet serve` on d's model and tokenizer with `args` (after `prefix`, e.g. mpirun's words, when
// given) as a child process writing its stderr to `err`; the port it listens on once it says so
// (0 if it did not within 30 s).
struct ServeProcess {
  pid_t pid = -1;
  int port = 0;
};
ServeProcess start_serve(const CliDir& d, const fs::path& err, const std::string& prefix, const std::string& args) {
  ServeProcess p;
  const std::string cmd = str("exec ", prefix, " ", GANNET_BINARY, " serve -m ", d.model, " --tokenizer ",
                              d.path.string(), " --port 0 ", args, " 2>", err.string(), " >/dev/null");
  p.pid = fork();
  if (p.pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  const std::string marker = "listening on http://127.0.0.1:";
  for (int i = 0; i < 3000 && p.port == 0 && p.pid > 0; ++i) {
    std::this_thread::sleep_for(10ms);
    std::string text = read_text(err);
    size_t at = text.find(marker);
    if (at != std::string::npos && text.find('\n', at) != std::string::npos)
      p.port = std::atoi(text.c_str() + at + marker.size());
  }
  return p;
}

TEST(ServerCli, ServeAnswersThenStopsOnSigterm) {
  CliDir d;
  const fs::path err = d.path / "serve.err";
  const auto [pid, port] = start_serve(d, err, "", "--parallel 2 --threads 1 --model-name cli-model");
  ASSERT_GT(pid, 0);
  ASSERT_GT(port, 0) << read_text(err);
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(30, 0);
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto r = cli.Post("/v1/completions", R"({"prompt": "the", "max_tokens": 4, "ignore_eos": true, "model": "x"})",
                    "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["model"], "cli-model");
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);

  // An idle keep-alive connection does not hold the shutdown up (it waited httplib's 5 s before).
  RawConnection idle(port);
  ASSERT_TRUE(idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(RawConnection::status_of(idle.read_response(10000ms)), 200);

  const auto signalled = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 3000ms);
  ASSERT_TRUE(WIFEXITED(status)) << read_text(err);
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_text(err);
  EXPECT_NE(read_text(err).find("shutting down"), std::string::npos);
  EXPECT_TRUE(idle.closed_within(1000ms));
}

// `mpirun -np 2 gannet serve --tensor-parallel 2`: rank 0 serves HTTP, rank 1 follows its engine
// calls; the answers are the one-process server's (greedy and seeded sampling, requests at once
// sharing the batch), and SIGTERM to rank 0 ends both ranks (rank 0 gracefully, then it releases
// rank 1).
TEST(ServerCli, ServeUnderMpirunAnswersAsOneProcess) {
  CliDir d;
  const fs::path err1 = d.path / "one.err", err2 = d.path / "two.err";
  const std::string args = "--parallel 3 --threads 1";
  const ServeProcess one = start_serve(d, err1, "", args);
  const ServeProcess two =
      start_serve(d, err2,
                  str("env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ", GANNET_MPIRUN,
                      " -np 2 --oversubscribe"),
                  args + " --tensor-parallel 2");
  ASSERT_GT(one.port, 0) << read_text(err1);
  ASSERT_GT(two.port, 0) << read_text(err2);
  EXPECT_NE(read_text(err2).find("split over 2 processes"), std::string::npos) << read_text(err2);
  const std::vector<std::string> bodies = {
      R"({"prompt": "the winter", "max_tokens": 12, "temperature": 0, "ignore_eos": true})",
      R"({"prompt": "in the", "max_tokens": 10, "temperature": 0.9, "top_k": 20, "seed": 7, "ignore_eos": true})",
      R"({"prompt": "on her", "max_tokens": 9, "temperature": 0.7, "seed": 3, "ignore_eos": true})"};
  // Each request alone, then all three at once (decoded in one batch).
  auto answers = [&](int port, bool together) {
    std::vector<std::string> texts(bodies.size());
    auto ask = [&](size_t i) {
      httplib::Client cli("127.0.0.1", port);
      cli.set_read_timeout(60, 0);
      auto r = cli.Post("/v1/completions", bodies[i], "application/json");
      texts[i] = r && r->status == 200 ? json::parse(r->body)["choices"][0]["text"].get<std::string>()
                                      : "(failed: " + (r ? r->body : std::string("no answer")) + ")";
    };
    std::vector<std::thread> ts;
    for (size_t i = 0; i < bodies.size(); ++i) {
      if (together) ts.emplace_back(ask, i);
      else ask(i);
    }
    for (std::thread& t : ts) t.join();
    return texts;
  };
  const std::vector<std::string> want = answers(one.port, false);
  EXPECT_EQ(answers(two.port, false), want);
  EXPECT_EQ(answers(two.port, true), want);
  for (const std::string& t : want) EXPECT_EQ(t.find("(failed"), std::string::npos) << t;

  // SIGTERM to rank 0 (the pid its banner names): it drains and stops, then releases rank 1, and
  // mpirun ends with status 0 within seconds.
  const std::string banner = read_text(err2), marker = "(rank 0: pid ";
  const size_t at = banner.find(marker);
  ASSERT_NE(at, std::string::npos) << banner;
  const pid_t rank0 = (pid_t)std::atoi(banner.c_str() + at + marker.size());
  ASSERT_GT(rank0, 0);
  ASSERT_EQ(kill(one.pid, SIGTERM), 0);
  ASSERT_EQ(kill(rank0, SIGTERM), 0);
  for (const ServeProcess& p : {one, two}) {
    int status = -1;
    for (int i = 0; i < 2000 && waitpid(p.pid, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
    if (status == -1 && kill(p.pid, SIGKILL) == 0) waitpid(p.pid, nullptr, 0);  // hung: fail, not hang
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << ": " << read_text(err2);
  }
  EXPECT_NE(read_text(err2).find("gannet serve: stopped"), std::string::npos) << read_text(err2);

}

// A follower rank killed while rank 0 serves: mpirun ends the job (rank 0 included) with an error,
// instead of rank 0 waiting forever in the next request's collective.
TEST(ServerCli, ServeUnderMpirunEndsWhenAFollowerDies) {
  CliDir d;
  const fs::path err = d.path / "two.err";
  const ServeProcess two = start_serve(
      d, err,
      str("env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ", GANNET_MPIRUN,
          " -np 2 --oversubscribe"),
      "--parallel 2 --threads 1 --tensor-parallel 2");
  ASSERT_GT(two.port, 0) << read_text(err);
  const std::string banner = read_text(err), marker = "(rank 0: pid ";
  ASSERT_NE(banner.find(marker), std::string::npos) << banner;
  const pid_t rank0 = (pid_t)std::atoi(banner.c_str() + banner.find(marker) + marker.size());
  // The follower: mpirun's other child.
  pid_t rank1 = 0;
  std::istringstream children(gannet::testing::command_output(str("pgrep -P ", two.pid)));
  for (pid_t p; children >> p;)
    if (p != rank0) rank1 = p;
  ASSERT_GT(rank1, 0);
  ASSERT_EQ(kill(rank1, SIGKILL), 0);
  httplib::Client cli("127.0.0.1", two.port);
  cli.set_read_timeout(30, 0);
  auto r = cli.Post("/v1/completions", R"({"prompt": "the", "max_tokens": 4})", "application/json");
  EXPECT_FALSE(r && r->status == 200) << "answered without its follower";
  int status = -1;
  for (int i = 0; i < 3000 && waitpid(two.pid, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
  if (status == -1 && kill(two.pid, SIGKILL) == 0) waitpid(two.pid, nullptr, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status << ": " << read_text(err);
  // Gone, or a zombie waiting for its new parent to reap it.
  auto running = [](pid_t p) {
    std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
    std::string pid, name, state;
    return stat >> pid >> name >> state && state != "Z";
  };
  for (int i = 0; i < 200 && running(rank0); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(running(rank0)) << "rank 0 outlived the job";
}
