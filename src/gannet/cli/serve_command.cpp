#include "gannet/cli/serve_command.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "gannet/cli/model_options.h"
#include "gannet/cli/number_options.h"
#include "gannet/cli/offload_options.h"
#include "gannet/cli/tensor_parallel_option.h"
#include "gannet/dist/communicator.h"
#include "gannet/infer/engine.h"
#include "gannet/infer/scheduler.h"
#include "gannet/infer/server.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {

struct ServeArgs {
  std::string model, tokenizer, model_name, host = "127.0.0.1", weights = "f32";
  int port = 8080;
  OffloadArgs offload;
  int64_t parallel = 4, ctx = 0, max_tokens_limit = 0, max_queued = 64;
  double shutdown_grace = 5.0, request_timeout = 30.0;
  int threads = 0;
  int64_t max_connections = 0;
  TensorParallelArgs tensor_parallel;
};

// SIGINT/SIGTERM write a byte to a pipe that a watcher thread reads (the only async-signal-safe
// way to hand the signal to ordinary code); a second signal exits at once.
int g_signal_pipe[2] = {-1, -1};
std::atomic<int> g_signals{0};

void on_stop_signal(int) {
  if (g_signals.fetch_add(1) > 0) _exit(130);
  const char c = 1;
  ssize_t ignored = write(g_signal_pipe[1], &c, 1);
  (void)ignored;
}

// A rank other than 0 under --tensor-parallel: no HTTP, the engine calls rank 0's scheduler makes,
// until rank 0 stops. Signals are rank 0's to act on (it shuts down gracefully, then stops us).
void follow_rank_zero(infer::Engine& engine) {
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  engine.follow();
}

void run(const ServeArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  GANNET_CHECK(a.parallel >= 1, "--parallel must be >= 1, got ", a.parallel);
  GANNET_CHECK(a.ctx >= 0, "--ctx must be >= 0, got ", a.ctx);
  GANNET_CHECK(a.max_tokens_limit >= 0, "--max-tokens-limit must be >= 0, got ", a.max_tokens_limit);
  GANNET_CHECK(a.max_queued >= 0, "--max-queued must be >= 0, got ", a.max_queued);
  GANNET_CHECK(a.shutdown_grace >= 0 && a.shutdown_grace <= 86400, "--shutdown-grace must be in 0..86400 seconds, got ",
               a.shutdown_grace);
  GANNET_CHECK(a.request_timeout > 0 && a.request_timeout <= 86400,
               "--request-timeout must be in (0, 86400] seconds, got ", a.request_timeout);
  GANNET_CHECK(a.max_connections >= 0, "--max-connections must be >= 0, got ", a.max_connections);
  GANNET_CHECK(a.port >= 0 && a.port <= 65535, "--port must be in 0..65535, got ", a.port);

  dist::Communicator* group = tensor_parallel_group(a.tensor_parallel);
  std::unique_ptr<data::TextTokenizer> tok = load_tokenizer_for(a.model, a.tokenizer);
  std::unique_ptr<infer::Engine> engine;
  {
    io::GptWeights w = io::read_gpt_weights(a.model);  // released once the engine has its copy
    infer::EngineOptions o;
    o.weights = infer::parse_weight_format(a.weights);
    o.max_sequences = a.parallel;
    o.max_context = a.ctx;
    o.tensor_parallel = group;
    o.expert_parallel = a.tensor_parallel.expert_parallel;
    o.lead_followers = true;
    apply_offload(a.offload, a.model, o);
    engine = std::make_unique<infer::Engine>(w, o);
  }
  if (group && group->rank() != 0) return follow_rank_zero(*engine);
  infer::SchedulerOptions so;
  so.max_queued = a.max_queued;
  so.max_tokens_limit = a.max_tokens_limit;
  infer::Scheduler scheduler(*engine, *tok, so);

  infer::ServerOptions o;
  o.host = a.host;
  o.port = a.port;
  o.max_connections = (size_t)a.max_connections;
  o.request_timeout = std::chrono::milliseconds((int64_t)std::ceil(a.request_timeout * 1000));
  const std::filesystem::path mp(a.model);
  o.model_name = !a.model_name.empty() ? a.model_name
                 : mp.has_stem()       ? mp.stem().string()
                                       : mp.parent_path().filename().string();
  infer::Server server(scheduler, o);
  const int port = server.bind();

  GANNET_CHECK(pipe2(g_signal_pipe, O_CLOEXEC) == 0, "cannot create a pipe for signals");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error return, not a signal

  const models::GptConfig& c = engine->config();
  const infer::Engine::StreamStats st = engine->stream_stats();
  const std::string where = st.slots == 0 ? "" : str(" streamed from disk through ", st.slots, " x ",
                                                     st.slot_bytes / 1048576, " MiB");
  // Under mpirun the pid to signal for a graceful stop (mpirun itself, signalled, ends the ranks at once).
  const std::string split = group ? str(", split over ", group->size(), " processes (rank 0: pid ", getpid(), ")") : "";
  std::fprintf(stderr,
               "gannet serve: model %s (%ld layers, d %ld, vocabulary %ld), %s weights%s%s, %ld slots of %ld tokens; "
               "listening on http://%s:%d\n",
               o.model_name.c_str(), (long)c.n_layer, (long)c.n_embd, (long)c.vocab_size, a.weights.c_str(),
               where.c_str(), split.c_str(), (long)engine->max_sequences(), (long)engine->max_context(),
               a.host.c_str(), port);
  std::fflush(stderr);

  const auto grace = std::chrono::milliseconds((int64_t)(a.shutdown_grace * 1000));
  std::thread watcher([&] {
    char c = 0;
    while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (c == 1) {
      std::fprintf(stderr, "gannet serve: shutting down (running requests get %.1f s to finish)\n", a.shutdown_grace);
      std::fflush(stderr);
    }
    server.stop(grace);
  });
  server.serve();
  const char quit = 0;  // wakes the watcher when serve() ended by itself
  ssize_t ignored = write(g_signal_pipe[1], &quit, 1);
  (void)ignored;
  watcher.join();
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  close(g_signal_pipe[0]);
  close(g_signal_pipe[1]);
  std::fprintf(stderr, "gannet serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd =
      app.add_subcommand("serve",
                         "OpenAI-compatible HTTP server: /v1/completions (with streaming), /v1/models, /tokenize, "
                         "/detokenize, /health, /metrics");
  add_model_options(cmd, a->model, a->tokenizer);
  cmd->add_option("--host", a->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "port to listen on (0 = any free port)")
      ->capture_default_str()
      ->check(number_in<int>(NumberRange::closed(0, 65535)));
  cmd->add_option("--parallel", a->parallel, "sequences decoded together (KV-cache slots)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  cmd->add_option("--ctx", a->ctx, "tokens per slot, prompt and completion together (0 = the model's n_ctx)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--weights", a->weights, "weight precision in the engine")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
  add_offload_options(cmd, a->offload);
  add_tensor_parallel_option(cmd, a->tensor_parallel);
  add_threads_option(cmd, a->threads);
  cmd->add_option("--max-tokens-limit", a->max_tokens_limit,
                  "largest max_tokens a request may ask for (0 = only the context limits it)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--max-queued", a->max_queued, "requests waiting for a slot; more get HTTP 429")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(0, kMaxBatchOption)));
  cmd->add_option("--model-name", a->model_name,
                  "name reported by /v1/models and in responses (default: the model file's)");
  cmd->add_option("--max-connections", a->max_connections,
                  "connections served at once; more are answered 503 (0 = max(256, 2 x (parallel + max-queued)))")
      ->capture_default_str();
  cmd->add_option("--request-timeout", a->request_timeout,
                  "seconds a request (head and body) may take to arrive; slower clients get 408")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", a->shutdown_grace,
                  "seconds running requests get to finish after SIGINT/SIGTERM before they are cancelled")
      ->capture_default_str()
      ->check(number_in<double>(NumberRange::closed(0, 3600)));
  cmd->callback([a]() { run(*a); });
}

}  // namespace gannet::cli
