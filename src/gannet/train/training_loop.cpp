// The training loop every task shares (trainer.h's run_task).
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "gannet/core/allocator.h"
#include "gannet/core/format_number.h"
#include "gannet/dist/world.h"
#include "gannet/optim/clip.h"
#include "gannet/optim/schedule.h"
#include "gannet/train/comm_log.h"
#include "gannet/train/progress.h"
#include "gannet/train/run_directory.h"
#include "gannet/train/trainer.h"

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

std::vector<Tensor> values_of(const nn::ParameterList& ps) {
  std::vector<Tensor> v;
  for (const auto& p : ps) v.push_back(p.var.value());
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

class TrainingLoop {
 public:
  TrainingLoop(TrainTask& task, const TrainConfig& cfg, const TrainOptions& opt);
  TrainResult run();

 private:
  void resume();
  void save(int64_t at_step);  // collective: every rank hands over its optimizer shard
  Figures validate(int64_t batches);
  void write_validation(const Figures& f, bool final);
  void build_layer_token_schedule();
  void print_start() const;
  void run_step();
  void log_step(int64_t done_step, float lr, double norm, double tokens, double dt);
  double step_tokens(int64_t s) const { return (double)(accum_ * task_.micro_tokens(s)); }
  double step_layer_tokens(int64_t s) const { return (double)(accum_ * task_.micro_layer_tokens(s)); }
  double elapsed_now() const { return clock0_.elapsed_s + seconds_since(t_start_); }

  TrainTask& task_;
  const TrainConfig& cfg_;
  const TrainOptions& opt_;
  dist::Communicator& world_;
  dist::ProcessGroups groups_;
  dist::Communicator& dp_group_;
  const int dp_size_, dp_rank_;
  const bool lead_;  // writes the log, the checkpoint and the progress bar
  std::vector<const dist::ParameterPlacement*> placements_;  // what is split over processes
  bool split_ = false;
  std::unique_ptr<dist::DataParallel> dp_;
  std::function<void(int64_t)> block_done_;
  bool sharded_ = false;
  std::string whole_ckpt_, manifest_, ckpt_;  // ckpt_: what this run writes
  // Micro-batches per step over all data-parallel ranks: rank r runs micro-batches m * dp + r, so a
  // run on N ranks computes what one process computes with N times the gradient accumulation.
  int64_t accum_ = 1;
  int64_t step_ = 0;
  LoggedClock clock0_;  // a resumed run's clock continues from its checkpoint's step
  MetricsLog metrics_;
  optim::LayerTokenSchedule lt_schedule_;
  double tokens_done_ = 0, layer_tokens_done_ = 0;
  double ema_tps_ = 0, last_loss_ = 0, train_s_ = 0;
  std::chrono::steady_clock::time_point t_start_;
  std::optional<ProgressBar> bar_;  // made when the loop starts (its clock gives the ETA)
  bool progress_ = false;
};

TrainingLoop::TrainingLoop(TrainTask& task, const TrainConfig& cfg, const TrainOptions& opt)
    : task_(task),
      cfg_(cfg),
      opt_(opt),
      world_(dist::world()),
      groups_(dist::ProcessGroups::create(
          world_, dist::ParallelLayout::make(world_.size(), cfg.tensor_parallel, cfg.expert_parallel))),
      dp_group_(*groups_.data),
      dp_size_(dp_group_.size()),
      dp_rank_(dp_group_.rank()),
      lead_(world_.rank() == 0) {
  if (lead_) prepare_run_directory(cfg, opt.resume);  // refuses to start over an earlier run
  placements_ = task.split(groups_);
  split_ = !placements_.empty();
  const bool tp = cfg.tensor_parallel > 1, ep = cfg.expert_parallel > 1;
  const nn::ParameterList& params = task.model().parameters();
  dp_ = std::make_unique<dist::DataParallel>(params, task.buckets(), dp_group_, ep ? groups_.expert_data.get() : nullptr,
                                             ep ? groups_.expert.get() : nullptr, cfg.zero_stage, cfg.adamw,
                                             task.tensor_sliced(), tp ? groups_.tensor.get() : nullptr);
  dp_->set_tiles(cfg.reduce_bucket_size, cfg.allgather_bucket_size);
  task.attach(*dp_, groups_);
  block_done_ = [this](int64_t block) { dp_->block_done(block); };
  namespace fs = std::filesystem;
  GANNET_CHECK(!cfg.checkpoint_sharded.value_or(false) || task.shards_checkpoints(),
               "checkpoint.sharded: this task writes whole checkpoints only; set it to false");
  sharded_ = cfg.checkpoint_sharded.value_or(world_.size() > 1 && task.shards_checkpoints());
  whole_ckpt_ = checkpoint_path(cfg);
  manifest_ = (fs::path(sharded_checkpoint_dir(cfg)) / io::kManifestFile).string();
  ckpt_ = sharded_ ? manifest_ : whole_ckpt_;
  accum_ = cfg.grad_accum * dp_size_;
  if (opt.resume) resume();
  task.start_at(step_);
  if (lead_) metrics_ = open_metrics_log(cfg, opt.resume, step_, &clock0_);
  train_s_ = clock0_.train_s;
  // What one step processes is a function of the step (curriculum and random-LTD schedules), so
  // the counts of a resumed run are recomputed rather than stored.
  for (int64_t s = 0; s < step_; ++s) tokens_done_ += step_tokens(s), layer_tokens_done_ += step_layer_tokens(s);
  if (cfg.data_efficiency.layer_token_lr.enabled) build_layer_token_schedule();
  progress_ = opt.progress && lead_;
}

void TrainingLoop::resume() {
  // Rank 0 picks the checkpoint, so that every rank reads the same one.
  int64_t pick[1] = {0};  // 0: none, 1: the whole file, 2: the sharded checkpoint
  if (lead_) {
    const std::string found = find_checkpoint(cfg_);
    pick[0] = found.empty() ? 0 : found == whole_ckpt_ ? 1 : 2;
  }
  world_.broadcast(pick, sizeof pick, 0);
  GANNET_CHECK(pick[0] != 0, "--resume: no checkpoint in ", cfg_.out_dir, " (neither ", whole_ckpt_, " nor ", manifest_,
               ")");
  const std::string from = pick[0] == 1 ? whole_ckpt_ : manifest_;
  io::TrainState st;
  st.task_tensors = task_.state_tensors();
  CheckpointModel& model = task_.model();
  // Stage 0 reads the moments straight into the optimizer every rank runs; the sharded stages
  // read them whole and keep their shards.
  std::unique_ptr<optim::AdamW> staged;
  optim::AdamW* replicated = dp_->replicated_optimizer();
  if (!replicated || split_) staged = std::make_unique<optim::AdamW>(model.parameters(), cfg_.adamw);
  optim::AdamW& full = staged ? *staged : *replicated;
  if (split_) {
    std::unique_ptr<CheckpointModel> whole = task_.make_whole_model();
    optim::AdamW whole_opt(whole->parameters(), cfg_.adamw);
    whole->load(from, &whole_opt, &st);
    std::vector<Tensor> mine = values_of(model.parameters());
    dist::slice_whole(placements_, values_of(whole->parameters()), mine);
    dist::slice_whole(placements_, whole_opt.first_moments(), full.first_moments());
    dist::slice_whole(placements_, whole_opt.second_moments(), full.second_moments());
    full.set_step_count(whole_opt.step_count());
  } else {
    model.load(from, &full, &st);
  }
  if (staged) dp_->load_state(full);
  step_ = st.step;
  task_.data_rng().set_state(st.rng);
  GANNET_CHECK(step_ <= cfg_.steps, from, " is at step ", step_, ", past train_steps ", cfg_.steps);
}

void TrainingLoop::save(int64_t at_step) {
  io::TrainState st;
  st.step = at_step;
  st.rng = task_.data_rng().state();
  st.train_config = cfg_.text;
  st.task_tensors = task_.state_tensors();
  const CheckpointModel& model = task_.model();
  if (sharded_) {
    GANNET_CHECK(st.task_tensors.empty(), "sharded checkpoints cannot hold this task's state: set checkpoint.sharded to false");  // each rank writes what it holds: nothing is gathered
    io::ShardedLayout layout{world_.size(), cfg_.tensor_parallel, cfg_.expert_parallel, dp_size_, cfg_.zero_stage};
    model.save_sharded(sharded_checkpoint_dir(cfg_), world_, placements_, *dp_, layout, st);
    return;
  }
  std::unique_ptr<optim::AdamW> gathered;  // the sharded stages' moments, whole
  optim::AdamW* replicated = dp_->replicated_optimizer();
  if (!replicated) {
    gathered = std::make_unique<optim::AdamW>(model.parameters(), cfg_.adamw);
    dp_->gather_state(*gathered);
  }
  optim::AdamW& full = gathered ? *gathered : *replicated;
  if (split_) {
    std::unique_ptr<CheckpointModel> whole = task_.make_whole_model();
    optim::AdamW whole_opt(whole->parameters(), cfg_.adamw);
    std::vector<Tensor> whole_values = values_of(whole->parameters());
    dist::gather_whole(placements_, values_of(model.parameters()), whole_values);
    dist::gather_whole(placements_, full.first_moments(), whole_opt.first_moments());
    dist::gather_whole(placements_, full.second_moments(), whole_opt.second_moments());
    whole_opt.set_step_count(full.step_count());
    if (lead_) whole->save(ckpt_, &whole_opt, st);
  } else if (lead_) {
    model.save(ckpt_, &full, st);
  }
  world_.barrier();
}

// On the lead rank while the others wait for its figures; with a split model every rank takes
// part (each holds part of the model) on the same batches.
Figures TrainingLoop::validate(int64_t batches) {
  Figures f;
  f.keys = task_.validation_keys();
  f.values.assign(f.keys.size(), 0.0);
  if (lead_ || split_) {
    Figures mine = task_.validate(batches);
    GANNET_CHECK(mine.values.size() == f.keys.size(), "validation gave ", mine.values.size(), " figures for ",
                 f.keys.size(), " keys");
    f.values = mine.values;
  }
  world_.broadcast(f.values.data(), f.values.size() * sizeof(double), 0);
  return f;
}

void TrainingLoop::write_validation(const Figures& f, bool final) {
  nlohmann::json line{{"step", step_},
                      {"tokens", tokens_done_},
                      {"layer_tokens", layer_tokens_done_},
                      {"train_s", train_s_},
                      {"elapsed_s", elapsed_now()}};
  for (size_t i = 0; i < f.keys.size(); ++i) line[f.keys[i]] = f.values[i];
  if (final) line["final"] = true;
  metrics_.write(line);
}

void TrainingLoop::build_layer_token_schedule() {
  const auto& lt = cfg_.data_efficiency.layer_token_lr;
  lt_schedule_.max_lr = cfg_.schedule.max_lr;
  lt_schedule_.min_lr = cfg_.schedule.min_lr;
  lt_schedule_.log_warmup = lt.log_warmup;
  double total = 0, warmup = 0;
  for (int64_t s = 0; s < cfg_.steps; ++s) {
    total += step_layer_tokens(s);
    if (s < cfg_.schedule.warmup_steps) warmup = total;
  }
  lt_schedule_.total_layer_tokens = lt.total_layer_tokens > 0 ? lt.total_layer_tokens : total;
  lt_schedule_.warmup_layer_tokens = lt.warmup_layer_tokens >= 0 ? lt.warmup_layer_tokens : warmup;
  GANNET_CHECK(lt_schedule_.warmup_layer_tokens <= lt_schedule_.total_layer_tokens,
               "layer_token_lr_schedule: warmup_layer_tokens ", lt_schedule_.warmup_layer_tokens,
               " is above total_layer_tokens ", lt_schedule_.total_layer_tokens);
}

void TrainingLoop::print_start() const {
  if (!lead_) return;
  if (world_.size() > 1)
    std::fprintf(stderr,
                 "gannet train: %d processes: tensor %d x data %d (expert %d), ZeRO stage %d, %.1f MB of optimizer "
                 "state per rank\n",
                 world_.size(), cfg_.tensor_parallel, dp_size_, cfg_.expert_parallel, cfg_.zero_stage,
                 (double)dp_->optimizer_state_bytes() / 1e6);
  const nn::ParameterList& params = task_.model().parameters();
  std::fprintf(stderr, "gannet train: %.2fM parameters%s, %ld steps of %ld %ss, %s\n",
               task_.whole_parameter_count() / 1e6,
               split_ ? str(" (", (double)nn::count_elements(params) / 1e6, "M on this rank)").c_str() : "",
               (long)cfg_.steps, (long)(accum_ * task_.micro_tokens(cfg_.steps - 1)), task_.unit(),
               task_.describe_data().c_str());
  std::fputs(task_.describe_options().c_str(), stderr);
}

void TrainingLoop::run_step() {
  host_reset_window_peak();
  for (dist::Communicator* g : {&dp_group_, groups_.expert.get(), groups_.tensor.get(), groups_.expert_data.get()})
    g->reset_stats();
  const auto t0 = std::chrono::steady_clock::now();
  const double this_tokens = step_tokens(step_), this_layer_tokens = step_layer_tokens(step_);
  const float lr = cfg_.data_efficiency.layer_token_lr.enabled ? lt_schedule_.at(layer_tokens_done_ + this_layer_tokens)
                                                              : cfg_.schedule.at(step_);
  double loss_sum = 0;
  for (int64_t local = 0; local < cfg_.grad_accum; ++local) {
    // Every rank draws the micro-batches of all ranks (the data order of one process) and keeps its own.
    for (int q = 0; q < dp_size_; ++q) task_.draw(step_, q == dp_rank_);
    dp_->begin_micro_batch((int)local, (int)cfg_.grad_accum);
    const MicroLoss loss = task_.forward({step_, local * dp_size_ + dp_rank_, accum_, &block_done_});
    loss_sum += loss.reported;
    autograd::tape().backward(loss.objective);
    dp_->end_micro_batch();
  }
  dp_group_.all_reduce_sum(&loss_sum, 1);
  const float accum_scale = 1.f / (float)accum_;
  const double norm = dp_->grad_norm(accum_scale);
  GANNET_CHECK(std::isfinite(loss_sum) && std::isfinite(norm), "training diverged at step ", step_, ": loss ",
               loss_sum / cfg_.grad_accum, ", gradient norm ", norm, " (lower the learning rate)");
  dp_->step(lr, accum_scale * optim::clip_factor(norm, cfg_.grad_clip));
  const int64_t done_step = step_;
  ++step_;
  last_loss_ = loss_sum / (double)accum_;
  const double dt = seconds_since(t0);
  tokens_done_ += this_tokens;
  layer_tokens_done_ += this_layer_tokens;
  train_s_ += dt;
  log_step(done_step, lr, norm, this_tokens, dt);
}

void TrainingLoop::log_step(int64_t done_step, float lr, double norm, double tokens, double dt) {
  const double tps = tokens / dt;
  ema_tps_ = ema_tps_ == 0 ? tps : 0.9 * ema_tps_ + 0.1 * tps;
  nlohmann::json line{{"step", step_},          {"loss", last_loss_},
                      {"lr", lr},               {"grad_norm", norm},
                      {"tokens", tokens_done_}, {"layer_tokens", layer_tokens_done_},
                      {"tokens_per_s", tps},    {"elapsed_s", elapsed_now()},
                      {"train_s", train_s_},    {"peak_bytes", host_bytes_window_peak()}};
  task_.describe_step(done_step, line);
  if (world_.size() > 1) {
    line["processes"] = world_.size();
    line["optimizer_bytes"] = dp_->optimizer_state_bytes();
    line["staging_bytes"] = dp_->staging_bytes();
    add_traffic(line, world_, groups_, cfg_.tensor_parallel > 1, cfg_.expert_parallel > 1);
  }
  metrics_.write(line);
  if (progress_)
    bar_->update(step_, "loss " + format_number("%.4f", last_loss_) + " | " + format_number("%.0f", ema_tps_) + " " + task_.unit() + "s/s | lr " +
                           format_number("%.2e", lr) + task_.progress_note());
}

TrainResult TrainingLoop::run() {
  print_start();
  StopSignals signals;
  bar_.emplace(cfg_.steps, step_);
  TrainResult result;
  t_start_ = std::chrono::steady_clock::now();
  const int64_t stop_at = opt_.stop_after >= 0 ? std::min(cfg_.steps, step_ + opt_.stop_after) : cfg_.steps;
  const int64_t first_step = step_;
  while (step_ < stop_at) {
    run_step();
    const bool last = step_ == cfg_.steps;
    if (!last && cfg_.eval_interval > 0 && step_ % cfg_.eval_interval == 0) {
      const Figures f = validate(cfg_.eval_batches);
      write_validation(f, false);
      if (progress_) bar_->message(task_.describe_validation(step_, f));
    }
    if (!last && cfg_.checkpoint_interval > 0 && step_ % cfg_.checkpoint_interval == 0) save(step_);
    int64_t stop = g_stop_signal;  // every rank stops after the same step
    world_.all_reduce_max(&stop, 1);
    if (stop) {
      result.interrupted = true;
      break;
    }
  }
  if (progress_) bar_->finish();
  save(step_);
  result.checkpoint = ckpt_;
  result.rank = world_.rank();
  result.steps_done = step_;
  result.steps_run = step_ - first_step;
  result.final_train_loss = last_loss_;
  result.tokens_per_second = ema_tps_;
  if (result.interrupted) {
    if (lead_)
      std::fprintf(stderr, "interrupted: checkpoint at step %ld written to %s (continue with --resume)\n", (long)step_,
                   ckpt_.c_str());
    return result;
  }
  if (step_ == cfg_.steps) {
    result.validation = validate(0);
    write_validation(result.validation, true);
  }
  return result;
}

}  // namespace

TrainResult run_task(TrainTask& task, const TrainConfig& config, const TrainOptions& options) {
  return TrainingLoop(task, config, options).run();
}

}  // namespace gannet::train
