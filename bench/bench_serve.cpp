// Serving throughput with continuous batching: an in-process `gannet serve` (engine, scheduler,
// HTTP server on 127.0.0.1) and streaming clients over real sockets. Each round runs one client,
// then N concurrent clients, each sending the same number of streaming completions; it prints the
// total generated tokens/s of each phase, their ratio, and the time to first token (client side:
// from sending the request to the first streamed text; median and 90th percentile). The phases
// alternate so that the machine's drift hits both; the summary is the median ratio of the rounds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gannet/data/text_tokenizer.h"
#include "gannet/infer/engine.h"
#include "gannet/infer/scheduler.h"
#include "gannet/infer/server.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/blas_core.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {
struct RequestStats {
  double ttft_s = 0, total_s = 0;
  int64_t tokens = 0;
};

// One streaming completion over a plain socket; returns its timings and token count (from the
// usage chunk).
RequestStats stream_completion(int port, const json& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  GANNET_CHECK(fd >= 0, "socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  GANNET_CHECK(::connect(fd, (sockaddr*)&addr, sizeof addr) == 0, "cannot connect to 127.0.0.1:", port);
  std::string payload = body.dump();
  std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Connection: close\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
  auto t0 = Clock::now();
  GANNET_CHECK(::send(fd, req.data(), req.size(), 0) == (ssize_t)req.size(), "send failed");
  RequestStats s;
  std::string data;
  char buf[4096];
  bool first = false;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, n);
    if (!first && data.find("\"text\":\"") != std::string::npos &&
        data.find("\"text\":\"\"") == std::string::npos) {
      s.ttft_s = std::chrono::duration<double>(Clock::now() - t0).count();
      first = true;
    }
  }
  s.total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(fd);
  GANNET_CHECK(data.rfind("HTTP/1.1 200", 0) == 0, "request failed: ", data.substr(0, 300));
  size_t u = data.rfind("\"usage\":");
  GANNET_CHECK(u != std::string::npos, "no usage chunk in the stream");
  size_t c = data.find("\"completion_tokens\":", u);
  s.tokens = std::stoll(data.substr(c + 20));
  return s;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, (size_t)(p * (v.size() - 1) + 0.5))];
}

struct Phase {
  double tokens_per_s, ttft_median, ttft_p90;
  int64_t tokens;
};

Phase run_phase(int port, int clients, int requests, int64_t max_tokens) {
  std::vector<RequestStats> all;
  std::mutex mu;
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      for (int r = 0; r < requests; ++r) {
        json body = {{"prompt", "The jury said that the city"}, {"max_tokens", max_tokens}, {"stream", true},
                     {"stream_options", {{"include_usage", true}}}, {"temperature", 0.8}, {"top_k", 40},
                     {"seed", c * 1000 + r}, {"ignore_eos", true}};
        RequestStats s = stream_completion(port, body);
        std::lock_guard<std::mutex> lock(mu);
        all.push_back(s);
      }
    });
  for (auto& t : threads) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  Phase p{};
  std::vector<double> ttft;
  for (const auto& s : all) {
    p.tokens += s.tokens;
    ttft.push_back(s.ttft_s);
  }
  p.tokens_per_s = p.tokens / wall;
  p.ttft_median = percentile(ttft, 0.5);
  p.ttft_p90 = percentile(ttft, 0.9);
  return p;
}
}  // namespace

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"gannet serving benchmark: 1 streaming client vs N concurrent ones"};
  std::string model, tokenizer = "data/brown/tokenizer.model", weights = "f32";
  int clients = 8, requests = 2, threads = 2, rounds = 3;
  int64_t max_tokens = 64, ctx = 256;
  app.add_option("--model,-m", model, "model file or HF GPT-2 directory")->required();
  app.add_option("--tokenizer", tokenizer, "tokenizer (its vocabulary must fit the model's)")->capture_default_str();
  app.add_option("--weights", weights, "f32 or bf16")->capture_default_str();
  app.add_option("--clients,-c", clients, "concurrent clients in the second phase")->capture_default_str();
  app.add_option("--requests,-r", requests, "streaming requests per client")->capture_default_str();
  app.add_option("--max-tokens,-n", max_tokens, "tokens per request")->capture_default_str();
  app.add_option("--ctx", ctx, "tokens per KV-cache slot")->capture_default_str();
  app.add_option("--threads,-t", threads, "engine threads")->capture_default_str();
  app.add_option("--rounds", rounds, "rounds of (1 client, N clients)")->capture_default_str()->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  try {
    kernels::set_num_threads(threads);
    io::GptWeights w = io::read_gpt_weights(model);
    infer::EngineOptions eo;
    eo.weights = infer::parse_weight_format(weights);
    eo.max_sequences = clients;
    eo.max_context = std::min<int64_t>(ctx, w.config.n_ctx);
    infer::Engine engine(w, eo);
    auto tok = data::load_text_tokenizer(tokenizer);
    infer::Scheduler scheduler(engine, *tok);
    infer::ServerOptions so;
    so.port = 0;
    infer::Server server(scheduler, so);
    int port = server.bind();
    std::thread serving([&] { server.serve(); });
    std::printf("server on 127.0.0.1:%d: %s, %s weights, %d slots, %d threads; %d requests per client, %ld tokens each\n",
                port, model.c_str(), weights.c_str(), clients, threads, requests, (long)max_tokens);
    run_phase(port, 1, 1, 8);  // warm-up
    std::vector<double> ratios;
    for (int round = 1; round <= rounds; ++round) {
      Phase one = run_phase(port, 1, requests, max_tokens);
      std::printf("round %d, 1 client:   %7.1f tokens/s, time to first token median %.3f s, p90 %.3f s\n", round,
                  one.tokens_per_s, one.ttft_median, one.ttft_p90);
      const infer::SchedulerStats before = scheduler.stats();
      Phase many = run_phase(port, clients, requests, max_tokens);
      const infer::SchedulerStats after = scheduler.stats();
      const double steps = (double)(after.decode_steps - before.decode_steps);
      std::printf("round %d, %d clients: %7.1f tokens/s, time to first token median %.3f s, p90 %.3f s "
                  "(mean decode batch %.2f)\n",
                  round, clients, many.tokens_per_s, many.ttft_median, many.ttft_p90,
                  steps > 0 ? (after.decode_rows - before.decode_rows) / steps : 0.0);
      ratios.push_back(many.tokens_per_s / one.tokens_per_s);
      std::fflush(stdout);
    }
    std::sort(ratios.begin(), ratios.end());
    std::printf("%d clients / 1 client: %.2fx total tokens/s (median of %d rounds; min %.2fx, max %.2fx)\n", clients,
                ratios[ratios.size() / 2], rounds, ratios.front(), ratios.back());
    server.stop();
    serving.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serve: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
