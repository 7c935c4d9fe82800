#include "gannet/train/trainer.h"

#include <csignal>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <omp.h>

#include <nlohmann/json.hpp>

#include "gannet/autograd/tape.h"
#include "gannet/core/allocator.h"
#include "gannet/data/curriculum.h"
#include "gannet/data/token_file.h"
#include "gannet/data/window_sampler.h"
#include "gannet/dist/data_parallel.h"
#include "gannet/dist/expert_placement.h"
#include "gannet/dist/tensor_parallel.h"
#include "gannet/dist/process_groups.h"
#include "gannet/dist/world.h"
#include "gannet/io/checkpoint.h"
#include "gannet/kernels/gemm.h"
#include "gannet/optim/clip.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/progress.h"
#include "gannet/train/sharded_save.h"

namespace gannet::train {

namespace {
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

// Installs SIGINT/SIGTERM handlers for the life of the object, restoring the old ones after.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    old_int_ = std::signal(SIGINT, on_stop_signal);
    old_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

// The last "elapsed_s" and "train_s" logged for `step` in an existing metrics log (0 if none), so
// that a resumed run's clock continues.
std::pair<double, double> logged_clock(const std::string& path, int64_t step) {
  std::pair<double, double> out{0, 0};
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("step", (int64_t)-1) != step || !j.contains("elapsed_s")) continue;
    out = {j.value("elapsed_s", 0.0), j.value("train_s", 0.0)};
  }
  return out;
}

// Per-MoE-layer statistics of one optimizer step, averaged over its micro-batches, for the
// metrics log: balance loss, z-loss, dropped fraction, router entropy and expert load (the
// fraction of routing choices that named each expert, before the capacity limit).
struct MoeLog {
  std::vector<nn::MoeLayerStats> sum;
  double aux = 0;
  int64_t micro = 0;
  double last_dropped = 0;
  void add(const std::vector<nn::MoeLayerStats>& layers, double aux_loss) {
    if (sum.empty()) sum = layers;
    else
      for (size_t i = 0; i < layers.size() && i < sum.size(); ++i) {
        sum[i].balance_loss += layers[i].balance_loss;
        sum[i].z_loss += layers[i].z_loss;
        sum[i].dropped_fraction += layers[i].dropped_fraction;
        sum[i].entropy += layers[i].entropy;
        for (size_t e = 0; e < layers[i].demand.size(); ++e) sum[i].demand[e] += layers[i].demand[e];
      }
    aux += aux_loss;
    ++micro;
  }
  nlohmann::json take() {
    nlohmann::json out = nlohmann::json::array();
    double dropped = 0;
    for (const nn::MoeLayerStats& s : sum) {
      int64_t total = 0;
      for (int64_t d : s.demand) total += d;
      std::vector<double> load;
      for (int64_t d : s.demand) load.push_back(total ? (double)d / (double)total : 0.0);
      const double m = (double)micro;
      out.push_back({{"block", s.block},
                     {"balance_loss", s.balance_loss / m},
                     {"z_loss", s.z_loss / m},
                     {"dropped", s.dropped_fraction / m},
                     {"entropy", s.entropy / m},
                     {"load", load}});
      dropped += s.dropped_fraction / m;
    }
    last_dropped = sum.empty() ? 0.0 : dropped / (double)sum.size();
    nlohmann::json j{{"aux_loss", micro ? aux / (double)micro : 0.0}, {"layers", out}};
    sum.clear();
    aux = 0;
    micro = 0;
    return j;
  }
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
}  // namespace

std::string checkpoint_path(const TrainConfig& config) {
  return (std::filesystem::path(config.out_dir) / "checkpoint.safetensors").string();
}

std::string sharded_checkpoint_dir(const TrainConfig& config) {
  return (std::filesystem::path(config.out_dir) / "checkpoint").string();
}

std::string find_checkpoint(const TrainConfig& config) {
  namespace fs = std::filesystem;
  const std::string whole = checkpoint_path(config);
  const std::string manifest = (fs::path(sharded_checkpoint_dir(config)) / io::kManifestFile).string();
  std::error_code ew, es;
  const auto tw = fs::last_write_time(whole, ew), ts = fs::last_write_time(manifest, es);
  if (ew && es) return "";
  if (ew) return manifest;
  if (es) return whole;
  return ts > tw ? manifest : whole;
}

TrainResult run_training(const TrainConfig& cfg, const TrainOptions& opt) {
  dist::Communicator& world = dist::world();
  dist::ProcessGroups groups =
      dist::ProcessGroups::create(world, dist::ParallelLayout::make(world.size(), cfg.tensor_parallel, cfg.expert_parallel));
  dist::Communicator& dp_group = *groups.data;
  const int dp_size = dp_group.size(), dp_rank = dp_group.rank();
  const bool lead = world.rank() == 0;  // writes the log, the checkpoint and the progress bar
  if (cfg.threads > 0) kernels::set_num_threads(cfg.threads);
  else if (dist::local_process_count() > 1)  // the cores shared among this machine's processes
    kernels::set_num_threads(std::max(1, omp_get_num_procs() / dist::local_process_count()));
  namespace fs = std::filesystem;
  const fs::path dir(cfg.data_dir);
  for (const char* f : {"train.tok", "val.tok"})
    GANNET_CHECK(fs::exists(dir / f), "missing ", (dir / f).string(), ": run `gannet data prepare --out ",
                 cfg.data_dir, "` first");
  data::TokenFile train_file = data::TokenFile::open((dir / "train.tok").string());
  data::TokenFile val_file = data::TokenFile::open((dir / "val.tok").string());
  GANNET_CHECK(train_file.vocab_size() <= cfg.model.vocab_size, "the data in ", cfg.data_dir, " has vocabulary ",
               train_file.vocab_size(), ", more than model.vocab_size ", cfg.model.vocab_size);

  models::Gpt model(cfg.model);
  model.init(cfg.seed);  // whole on every rank, so that every layout starts from the same weights
  model.set_activation_checkpointing(cfg.activation_checkpointing, cfg.keep_communication);
  const bool ep = cfg.expert_parallel > 1;
  GANNET_CHECK(!ep || cfg.model.moe.enabled(), "parallel.expert ", cfg.expert_parallel,
               " needs a model with a moe block");
  const bool tp = cfg.tensor_parallel > 1;
  std::unique_ptr<dist::TensorParallel> tensor_parallel;
  if (tp)
    tensor_parallel = std::make_unique<dist::TensorParallel>(
        model, *groups.tensor, dist::TensorParallelOptions{cfg.duplicate_token_dropping, cfg.vocab_parallel});
  std::unique_ptr<dist::ExpertPlacement> expert_placement;
  if (ep) expert_placement = std::make_unique<dist::ExpertPlacement>(model, *groups.expert);
  // What is split over processes, for gathering whole checkpoints (none: every rank holds it all).
  const std::vector<const dist::ParameterPlacement*> placements = {tensor_parallel.get(), expert_placement.get()};
  const bool split = tp || ep;
  dist::DataParallel dp(model.parameters(), dist::transformer_buckets(model.parameters(), cfg.model.n_layer), dp_group,
                        ep ? groups.expert_data.get() : nullptr, ep ? groups.expert.get() : nullptr, cfg.zero_stage,
                        cfg.adamw, tp ? tensor_parallel->sliced() : std::vector<bool>{},
                        tp ? groups.tensor.get() : nullptr);
  dp.set_tiles(cfg.reduce_bucket_size, cfg.allgather_bucket_size);
  if (cfg.duplicate_token_dropping) dp.reduce_moe_over_tensor_group(*groups.tensor_data, *groups.tensor_expert_data);
  const std::function<void(int64_t)> block_done = [&dp](int64_t block) { dp.block_done(block); };
  // The optimizer state of this rank's parameters in whole form (each parameter's full moments),
  // from and to the checkpoint's form (with expert parallelism, every expert of every layer).
  auto values_of = [](const nn::ParameterList& ps) {
    std::vector<Tensor> v;
    for (const auto& p : ps) v.push_back(p.var.value());
    return v;
  };
  data::WindowSampler sampler(train_file, cfg.seq_len, cfg.seed + 1);
  const DataEfficiencyConfig& de = cfg.data_efficiency;
  std::unique_ptr<data::CurriculumSampler> curriculum;
  if (de.curriculum.enabled)
    curriculum = std::make_unique<data::CurriculumSampler>(train_file, cfg.seq_len, de.curriculum, de.seed + 1);
  Rng& data_rng = curriculum ? curriculum->rng() : sampler.rng();
  const bool sharded = cfg.checkpoint_sharded.value_or(world.size() > 1);
  const std::string whole_ckpt = checkpoint_path(cfg);
  const std::string manifest = (fs::path(sharded_checkpoint_dir(cfg)) / io::kManifestFile).string();
  const std::string ckpt = sharded ? manifest : whole_ckpt;  // what this run writes
  int64_t step = 0;
  if (opt.resume) {
    // Rank 0 picks the checkpoint, so that every rank reads the same one.
    int64_t pick[1] = {0};  // 0: none, 1: the whole file, 2: the sharded checkpoint
    if (lead) {
      const std::string found = find_checkpoint(cfg);
      pick[0] = found.empty() ? 0 : found == whole_ckpt ? 1 : 2;
    }
    world.broadcast(pick, sizeof pick, 0);
    GANNET_CHECK(pick[0] != 0, "--resume: no checkpoint in ", cfg.out_dir, " (neither ", whole_ckpt, " nor ", manifest, ")");
    const std::string from = pick[0] == 1 ? whole_ckpt : manifest;
    io::TrainState st;
    // Stage 0 reads the moments straight into the optimizer every rank runs; the sharded stages
    // read them whole and keep their shards.
    std::unique_ptr<optim::AdamW> staged;
    optim::AdamW* replicated = dp.replicated_optimizer();
    if (!replicated || split) staged = std::make_unique<optim::AdamW>(model.parameters(), cfg.adamw);
    optim::AdamW& full = staged ? *staged : *replicated;
    if (split) {
      models::Gpt whole(cfg.model);
      optim::AdamW whole_opt(whole.parameters(), cfg.adamw);
      io::load_checkpoint(from, whole, &whole_opt, &st);
      std::vector<Tensor> mine = values_of(model.parameters());
      dist::slice_whole(placements, values_of(whole.parameters()), mine);
      dist::slice_whole(placements, whole_opt.first_moments(), full.first_moments());
      dist::slice_whole(placements, whole_opt.second_moments(), full.second_moments());
      full.set_step_count(whole_opt.step_count());
    } else {
      io::load_checkpoint(from, model, &full, &st);
    }
    if (staged) dp.load_state(full);
    step = st.step;
    data_rng.set_state(st.rng);
    GANNET_CHECK(step <= cfg.steps, from, " is at step ", step, ", past train_steps ", cfg.steps);
  }
  const std::string metrics_path = (fs::path(cfg.out_dir) / "metrics.jsonl").string();
  const auto [elapsed0, train_s0] = opt.resume ? logged_clock(metrics_path, step) : std::pair<double, double>{0, 0};
  std::ofstream metrics;
  if (lead) {
    fs::create_directories(cfg.out_dir);
    metrics.open(metrics_path, opt.resume ? std::ios::app : std::ios::trunc);
    GANNET_CHECK(metrics.good(), "cannot write ", metrics_path);
  }

  const int64_t B = cfg.micro_batch, T = cfg.seq_len;
  // Micro-batches per step over all data-parallel ranks: rank r runs micro-batches m * dp + r, so a
  // run on N ranks computes what one process computes with N times the gradient accumulation.
  const int64_t accum = cfg.grad_accum * dp_size;
  Tensor tokens = Tensor::empty({B, T}, DType::i32);
  Tensor targets = Tensor::empty({B, T}, DType::i32);
  Tensor other_tokens, other_targets;  // the other data-parallel ranks' micro-batches, drawn and dropped
  if (dp_size > 1) {
    other_tokens = Tensor::empty({B, T}, DType::i32);
    other_targets = Tensor::empty({B, T}, DType::i32);
  }

  // What one step processes is a function of the step (curriculum and random-LTD schedules), so
  // the counts of a resumed run are recomputed rather than stored.
  const int64_t L = cfg.model.n_layer;
  const int64_t ltd_layers = de.random_ltd.enabled ? (int64_t)de.random_ltd.layers.size() : 0;
  nn::RandomLtdPlan ltd_plan;
  ltd_plan.layers.assign((size_t)L, false);
  for (int64_t l : de.random_ltd.layers) ltd_plan.layers[(size_t)l] = true;
  auto rows_at = [&](int64_t s) { return curriculum ? curriculum->rows_at(s, B) : B; };
  auto len_at = [&](int64_t s) { return curriculum ? curriculum->len_at(s) : T; };
  auto kept_at = [&](int64_t s) { return ltd_layers ? std::min(de.random_ltd.schedule.at(s), len_at(s)) : len_at(s); };
  auto step_tokens = [&](int64_t s) { return (double)(accum * rows_at(s) * len_at(s)); };
  auto step_layer_tokens = [&](int64_t s) {
    return (double)(accum * rows_at(s) * (len_at(s) * (L - ltd_layers) + kept_at(s) * ltd_layers));
  };
  double tokens_done = 0, layer_tokens_done = 0;
  for (int64_t s = 0; s < step; ++s) tokens_done += step_tokens(s), layer_tokens_done += step_layer_tokens(s);
  optim::LayerTokenSchedule lt_schedule;
  if (de.layer_token_lr.enabled) {
    lt_schedule.max_lr = cfg.schedule.max_lr;
    lt_schedule.min_lr = cfg.schedule.min_lr;
    lt_schedule.log_warmup = de.layer_token_lr.log_warmup;
    double total = 0, warmup = 0;
    for (int64_t s = 0; s < cfg.steps; ++s) {
      total += step_layer_tokens(s);
      if (s < cfg.schedule.warmup_steps) warmup = total;
    }
    lt_schedule.total_layer_tokens = de.layer_token_lr.total_layer_tokens > 0 ? de.layer_token_lr.total_layer_tokens : total;
    lt_schedule.warmup_layer_tokens =
        de.layer_token_lr.warmup_layer_tokens >= 0 ? de.layer_token_lr.warmup_layer_tokens : warmup;
    GANNET_CHECK(lt_schedule.warmup_layer_tokens <= lt_schedule.total_layer_tokens,
                 "layer_token_lr_schedule: warmup_layer_tokens ", lt_schedule.warmup_layer_tokens,
                 " is above total_layer_tokens ", lt_schedule.total_layer_tokens);
  }
  const bool moe = cfg.model.moe.enabled();
  MoeLog moe_log;
  const auto& params = model.parameters();
  const float accum_scale = 1.f / (float)accum;

  auto save = [&](int64_t at_step) {  // collective: every rank hands over its optimizer shard
    io::TrainState st;
    st.step = at_step;
    st.rng = data_rng.state();
    st.train_config = cfg.text;
    if (sharded) {  // each rank writes what it holds: nothing is gathered
      io::ShardedLayout layout{world.size(), cfg.tensor_parallel, cfg.expert_parallel, dp_size, cfg.zero_stage};
      save_sharded_checkpoint(sharded_checkpoint_dir(cfg), world, model, placements, dp, layout, st);
      return;
    }
    std::unique_ptr<optim::AdamW> gathered;  // the sharded stages' moments, whole
    optim::AdamW* replicated = dp.replicated_optimizer();
    if (!replicated) {
      gathered = std::make_unique<optim::AdamW>(model.parameters(), cfg.adamw);
      dp.gather_state(*gathered);
    }
    optim::AdamW& full = gathered ? *gathered : *replicated;
    if (split) {
      models::Gpt whole(cfg.model);
      optim::AdamW whole_opt(whole.parameters(), cfg.adamw);
      std::vector<Tensor> whole_values = values_of(whole.parameters());
      dist::gather_whole(placements, values_of(model.parameters()), whole_values);
      dist::gather_whole(placements, full.first_moments(), whole_opt.first_moments());
      dist::gather_whole(placements, full.second_moments(), whole_opt.second_moments());
      whole_opt.set_step_count(full.step_count());
      if (lead) io::save_checkpoint(ckpt, whole, &whole_opt, st);
    } else if (lead) {
      io::save_checkpoint(ckpt, model, &full, st);
    }
    world.barrier();
  };
  // Validation on the lead rank while the others wait for its figures; with tensor or expert
  // parallelism every rank takes part (each holds part of the model) on the same windows.
  auto validate = [&](int64_t batches) {
    EvalResult ev;
    if (lead || split) ev = evaluate(model, val_file, T, B, batches);
    double v[3] = {ev.loss, ev.perplexity, (double)ev.tokens};
    world.broadcast(v, sizeof v, 0);
    return EvalResult{v[0], v[1], (int64_t)v[2]};
  };

  if (lead && world.size() > 1)
    std::fprintf(stderr,
                 "gannet train: %d processes: tensor %d x data %d (expert %d), ZeRO stage %d, %.1f MB of optimizer "
                 "state per rank\n",
                 world.size(), cfg.tensor_parallel, dp_size, cfg.expert_parallel, cfg.zero_stage,
                 (double)dp.optimizer_state_bytes() / 1e6);
  if (lead) {
    double whole = 0;  // the whole model's parameters: slices counted once per holder
    for (size_t i = 0; i < params.size(); ++i)
      whole += (double)params[i].var.value().numel() *
               (tp && tensor_parallel->owns(i) ? cfg.tensor_parallel : ep && expert_placement->owns(i) ? cfg.expert_parallel : 1);
    std::fprintf(stderr, "gannet train: %.2fM parameters%s, %ld steps of %ld tokens, data %s (%ld train tokens)\n",
                 whole / 1e6,
                 split ? str(" (", (double)nn::count_elements(params) / 1e6, "M on this rank)").c_str() : "",
                 (long)cfg.steps, (long)(B * T * accum), cfg.data_dir.c_str(), (long)train_file.size());
  }
  if (lead && (curriculum || ltd_layers))
    std::fprintf(stderr, "gannet train: data efficiency:%s%s%s\n", curriculum ? " curriculum" : "",
                 ltd_layers ? " random-LTD" : "", de.layer_token_lr.enabled ? " layer-token LR" : "");
  StopSignals signals;
  const bool progress = opt.progress && lead;
  ProgressBar bar(cfg.steps, step);
  TrainResult result;
  auto t_start = std::chrono::steady_clock::now();
  double ema_tps = 0, last_loss = 0, train_s = train_s0;
  auto elapsed_now = [&, elapsed0 = elapsed0] {  // clang 14 cannot capture a structured binding
    return elapsed0 + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  int64_t stop_at = opt.stop_after >= 0 ? std::min(cfg.steps, step + opt.stop_after) : cfg.steps;

  while (step < stop_at) {
    host_reset_window_peak();
    dp_group.reset_stats();
    groups.expert->reset_stats();
    groups.tensor->reset_stats();
    groups.expert_data->reset_stats();
    auto t0 = std::chrono::steady_clock::now();
    const double this_tokens = step_tokens(step), this_layer_tokens = step_layer_tokens(step);
    float lr = de.layer_token_lr.enabled ? lt_schedule.at(layer_tokens_done + this_layer_tokens) : cfg.schedule.at(step);
    double loss_sum = 0;
    ltd_plan.keep = kept_at(step);
    for (int64_t local = 0; local < cfg.grad_accum; ++local) {
      // Every rank draws the micro-batches of all ranks (the data order of one process) and keeps its own.
      for (int q = 0; q < dp_size; ++q) {
        Tensor& tk = q == dp_rank ? tokens : other_tokens;
        Tensor& tg = q == dp_rank ? targets : other_targets;
        if (curriculum) curriculum->next(step, B, tk, tg);
        else sampler.next(tk, tg);
      }
      const int64_t micro = local * dp_size + dp_rank;
      ltd_plan.seed = de.seed + 0x9E3779B97F4A7C15ull * (uint64_t)(step * accum + micro + 1);
      model.set_random_ltd(ltd_layers ? &ltd_plan : nullptr);
      nn::MoePass moe_pass;
      moe_pass.training = true;
      moe_pass.seed = cfg.seed + 0xD1B54A32D192ED03ull * (uint64_t)(step * accum + micro + 1);
      dp.begin_micro_batch((int)local, (int)cfg.grad_accum);
      model.set_block_done_hook(&block_done);
      autograd::Var loss = model.loss(tokens, targets, moe ? &moe_pass : nullptr);
      model.set_random_ltd(nullptr);
      model.set_block_done_hook(nullptr);
      const double aux = moe_pass.aux_loss.defined() ? moe_pass.aux_loss.value().f32()[0] : 0.0;
      loss_sum += loss.value().f32()[0] - aux;  // the language-model loss, comparable with a dense model's
      if (moe) moe_log.add(moe_pass.layers, aux);
      autograd::tape().backward(loss);
      dp.end_micro_batch();
    }
    dp_group.all_reduce_sum(&loss_sum, 1);
    double norm = dp.grad_norm(accum_scale);
    GANNET_CHECK(std::isfinite(loss_sum) && std::isfinite(norm), "training diverged at step ", step,
                 ": loss ", loss_sum / cfg.grad_accum, ", gradient norm ", norm, " (lower the learning rate)");
    dp.step(lr, accum_scale * optim::clip_factor(norm, cfg.grad_clip));
    const int64_t done_step = step;
    ++step;
    last_loss = loss_sum / (double)accum;
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double tps = this_tokens / dt;
    ema_tps = ema_tps == 0 ? tps : 0.9 * ema_tps + 0.1 * tps;
    tokens_done += this_tokens;
    layer_tokens_done += this_layer_tokens;
    train_s += dt;
    nlohmann::json line{{"step", step},         {"loss", last_loss},
                        {"lr", lr},             {"grad_norm", norm},
                        {"tokens", tokens_done}, {"layer_tokens", layer_tokens_done},
                        {"tokens_per_s", tps},  {"elapsed_s", elapsed_now()},
                        {"train_s", train_s},   {"peak_bytes", host_bytes_window_peak()}};
    if (curriculum) {
      line["seq_len"] = len_at(done_step);
      nlohmann::json d = nlohmann::json::object();
      std::vector<int64_t> ds = curriculum->difficulties(done_step);
      for (size_t m = 0; m < ds.size(); ++m) d[de.curriculum.metrics[m].name] = ds[m];
      line["difficulty"] = d;
    }
    if (ltd_layers) line["kept_tokens"] = kept_at(done_step);
    if (moe) line["moe"] = moe_log.take();
    if (world.size() > 1) {
      line["processes"] = world.size();
      line["optimizer_bytes"] = dp.optimizer_state_bytes();
      line["staging_bytes"] = dp.staging_bytes();
      auto traffic = [](const dist::Communicator& g) {
        nlohmann::json comm = nlohmann::json::object();
        for (int c = 0; c < dist::kCollectives; ++c) {
          const dist::CollectiveStats& st = g.stats((dist::Collective)c);
          if (st.calls)
            comm[dist::collective_name((dist::Collective)c)] = {
                {"calls", st.calls}, {"payload_bytes", st.payload_bytes}, {"wire_bytes", st.wire_bytes}};
        }
        return comm;
      };
      line["comm"] = traffic(dp_group);  // this rank's traffic in this step, per group
      if (tp) line["tensor_comm"] = traffic(*groups.tensor);
      if (ep) {
        line["expert_comm"] = traffic(*groups.expert);
        // The all-to-all's rows depend on the routing of each rank; the job's sum is what
        // duplicate-token dropping divides by the tensor-parallel degree.
        double a2a = (double)groups.expert->stats(dist::Collective::all_to_all).payload_bytes;
        world.all_reduce_sum(&a2a, 1);
        line["all_to_all_bytes_all_ranks"] = (int64_t)a2a;
        if (groups.expert_data->size() > 1) line["expert_data_comm"] = traffic(*groups.expert_data);
      }
    }
    if (lead) metrics << line.dump() << "\n";
    if (progress)
      bar.update(step, "loss " + fmt("%.4f", last_loss) + " | " + fmt("%.0f", ema_tps) + " tok/s | lr " +
                           fmt("%.2e", lr) + (moe ? " | dropped " + fmt("%.1f%%", 100 * moe_log.last_dropped) : ""));
    bool last = step == cfg.steps;
    if (!last && cfg.eval_interval > 0 && step % cfg.eval_interval == 0) {
      EvalResult ev = validate(cfg.eval_batches);
      if (lead) metrics << nlohmann::json{{"step", step},         {"val_loss", ev.loss},
                                {"val_ppl", ev.perplexity}, {"tokens", tokens_done},
                                {"layer_tokens", layer_tokens_done}, {"train_s", train_s},
                                {"elapsed_s", elapsed_now()}}
                     .dump()
              << "\n";
      if (progress) bar.message("step " + std::to_string(step) + ": val loss " + fmt("%.4f", ev.loss) +
                                    ", perplexity " + fmt("%.1f", ev.perplexity));
    }
    if (lead) metrics.flush();
    if (!last && cfg.checkpoint_interval > 0 && step % cfg.checkpoint_interval == 0) save(step);
    int64_t stop = g_stop_signal;  // every rank stops after the same step
    world.all_reduce_max(&stop, 1);
    if (stop) {
      result.interrupted = true;
      break;
    }
  }
  if (progress) bar.finish();
  save(step);
  result.checkpoint = ckpt;
  result.rank = world.rank();
  result.steps_done = step;
  result.final_train_loss = last_loss;
  result.tokens_per_second = ema_tps;
  if (result.interrupted) {
    if (lead) std::fprintf(stderr, "interrupted: checkpoint at step %ld written to %s (continue with --resume)\n", (long)step,
                 ckpt.c_str());
    return result;
  }
  if (step == cfg.steps) {
    EvalResult ev = validate(0);
    result.val_loss = ev.loss;
    result.val_perplexity = ev.perplexity;
    if (lead) metrics << nlohmann::json{{"step", step},
                              {"val_loss", ev.loss},
                              {"val_ppl", ev.perplexity},
                              {"final", true},
                              {"tokens", tokens_done},
                              {"layer_tokens", layer_tokens_done},
                              {"train_s", train_s},
                              {"elapsed_s", elapsed_now()}}
                   .dump()
            << "\n";
  }
  return result;
}

}  // namespace gannet::train
