#include "gannet/train/data_efficiency.h"

#include <algorithm>

#include "gannet/core/error.h"

namespace gannet::train {

namespace {

data::CurriculumMetric read_metric(const io::JsonReader& m, const std::string& name, int64_t seq_len) {
  const std::string ctx = m.context();
  data::CurriculumMetric cm;
  cm.name = name;
  if (name == "seqlen_truncate") cm.kind = data::CurriculumMetricKind::seqlen_truncate;
  else if (name == "seqlen_reshape") cm.kind = data::CurriculumMetricKind::seqlen_reshape;
  const bool seqlen = cm.kind != data::CurriculumMetricKind::index;

  std::string dtype = m.get_string("difficulty_type", seqlen ? "value" : "percentile");
  GANNET_CHECK(dtype == "value" || dtype == "percentile", ctx, ".difficulty_type: '", dtype,
               "' is not supported (value or percentile)");
  cm.percentile = dtype == "percentile";
  GANNET_CHECK(!(seqlen && cm.percentile), ctx, ".difficulty_type: ", name, " takes a value (a sequence length)");
  std::string clustering = m.get_string("clustering_type", seqlen ? "single_cluster" : "schedule_based");
  GANNET_CHECK(clustering == (seqlen ? "single_cluster" : "schedule_based"), ctx, ".clustering_type: '",
               clustering, "' is not supported for ", name, " (", seqlen ? "single_cluster" : "schedule_based", ")");
  if (seqlen) {
    GANNET_CHECK(!m.has("index_to_sample_path") && !m.has("index_to_metric_path"), ctx, ": ", name,
                 " needs no index files (remove index_to_sample_path / index_to_metric_path)");
  } else {
    cm.index_to_sample_path = m.get_string("index_to_sample_path", "");
    cm.index_to_metric_path = m.get_string("index_to_metric_path", "");
    GANNET_CHECK(!cm.index_to_sample_path.empty() && !cm.index_to_metric_path.empty(), ctx,
                 ": index_to_sample_path and index_to_metric_path are required for metric '", name,
                 "' (files of `gannet data analyze`; seqlen_truncate and seqlen_reshape need none)");
  }
  GANNET_CHECK(m.has("min_difficulty") && m.has("max_difficulty"), ctx, ": min_difficulty and max_difficulty are required");
  data::Pacing& p = cm.pacing;
  p.min_value = m.get_int<int64_t>("min_difficulty", 0);  // checked below, by the kind of metric
  p.max_value = m.get_int<int64_t>("max_difficulty", 0);
  p.type = data::parse_pacing_type(m.get_string("schedule_type", "fixed_linear"), ctx + ".schedule_type");
  io::JsonReader sc = m.child("schedule_config");
  if (p.type == data::PacingType::fixed_discrete) {
    p.discrete_values = sc.get_int_list("difficulty", {});  // each checked below against [min, max]
    p.discrete_max_steps = sc.get_int_list("max_step", {}, 0);
    for (int64_t v : p.discrete_values)
      GANNET_CHECK(v >= p.min_value && v <= p.max_value, ctx, ".schedule_config.difficulty: ", v,
                   " is outside [min_difficulty, max_difficulty]");
  } else {
    GANNET_CHECK(sc.has("total_curriculum_step"), sc.context(), ".total_curriculum_step is required");
    p.total_steps = sc.get_int<int64_t>("total_curriculum_step", 1, 1);
    p.value_step = sc.get_int<int64_t>("difficulty_step", 1, 1);
    if (p.type == data::PacingType::fixed_root) {
      GANNET_CHECK(sc.has("root_degree"), sc.context(), ".root_degree is required for fixed_root");
      p.root_degree = sc.get_double("root_degree", 2, NumberRange::above(0));
    }
  }
  p.validate(ctx);
  if (seqlen)
    GANNET_CHECK(p.min_value >= 1 && p.max_value <= seq_len, ctx, ": difficulties are sequence lengths in [1, data.seq_len = ",
                 seq_len, "], got [", p.min_value, ", ", p.max_value, "]");
  if (cm.percentile)
    GANNET_CHECK(p.min_value >= 0 && p.max_value <= 100, ctx, ": percentile difficulties lie in [0, 100], got [",
                 p.min_value, ", ", p.max_value, "]");
  return cm;
}

}  // namespace

DataEfficiencyConfig read_data_efficiency(const io::JsonReader& r, const nlohmann::json& raw,
                                          const models::GptConfig& model, int64_t seq_len, uint64_t default_seed) {
  DataEfficiencyConfig c;
  const bool on = r.get_bool("enabled", false);
  c.seed = r.get_uint64("seed", default_seed);

  io::JsonReader ds = r.child("data_sampling");
  const bool ds_on = ds.get_bool("enabled", false);
  io::JsonReader cl = ds.child("curriculum_learning");
  const bool cl_on = cl.get_bool("enabled", false);
  if (cl.has("curriculum_metrics")) {
    io::JsonReader metrics = cl.child("curriculum_metrics");
    // JsonReader has checked the types on the way down; the metric names are the object's keys.
    const nlohmann::json& names = raw.at("data_sampling").at("curriculum_learning").at("curriculum_metrics");
    for (auto it = names.begin(); it != names.end(); ++it)
      c.curriculum.metrics.push_back(read_metric(metrics.child(it.key()), it.key(), seq_len));
  }
  c.curriculum.enabled = on && ds_on && cl_on;
  if (c.curriculum.enabled)
    GANNET_CHECK(!c.curriculum.metrics.empty(), cl.context(), ".curriculum_metrics: needs at least one metric");
  int seqlen_metrics = 0;
  for (const auto& m : c.curriculum.metrics) seqlen_metrics += m.kind != data::CurriculumMetricKind::index;
  GANNET_CHECK(seqlen_metrics <= 1, cl.context(), ".curriculum_metrics: seqlen_truncate and seqlen_reshape exclude each other");

  io::JsonReader dr = r.child("data_routing");
  const bool dr_on = dr.get_bool("enabled", false);
  io::JsonReader lt = dr.child("random_ltd");
  const bool lt_on = lt.get_bool("enabled", false);
  const std::string ctx = lt.context();
  if (lt.has("total_layer_num"))
    GANNET_CHECK(lt.get_int<int64_t>("total_layer_num", 0) == model.n_layer, ctx, ".total_layer_num ",
                 lt.get_int<int64_t>("total_layer_num", 0), " does not match model.n_layer ", model.n_layer);
  if (lt.has("model_type"))
    GANNET_CHECK(lt.get_string("model_type", "") == "decoder", ctx, ".model_type: '", lt.get_string("model_type", ""),
                 "' is not supported (gannet trains a GPT: decoder)");
  c.random_ltd.layers = lt.get_int_list("random_ltd_layer_id", {});  // each checked below against n_layer
  if (lt.has("random_ltd_layer_num"))
    GANNET_CHECK(lt.get_int<int64_t>("random_ltd_layer_num", 0) == (int64_t)c.random_ltd.layers.size(), ctx,
                 ".random_ltd_layer_num ", lt.get_int<int64_t>("random_ltd_layer_num", 0), " does not match the ",
                 c.random_ltd.layers.size(), " entries of random_ltd_layer_id");
  for (size_t i = 0; i < c.random_ltd.layers.size(); ++i) {
    int64_t l = c.random_ltd.layers[i];
    GANNET_CHECK(l >= 0 && l < model.n_layer, ctx, ".random_ltd_layer_id[", i, "]: layer ", l,
                 " is outside [0, n_layer = ", model.n_layer, ")");
    GANNET_CHECK(std::count(c.random_ltd.layers.begin(), c.random_ltd.layers.end(), l) == 1, ctx,
                 ".random_ltd_layer_id: layer ", l, " is listed twice");
  }
  io::JsonReader ls = lt.child("random_ltd_schedule");
  data::Pacing& p = c.random_ltd.schedule;
  p.min_value = ls.get_int("min_value", seq_len);  // kept tokens: checked below against data.seq_len
  p.max_value = ls.get_int("max_value", seq_len);
  std::string st = ls.get_string("schedule_type", "fixed_linear");
  p.type = data::parse_pacing_type(st, ls.context() + ".schedule_type");
  GANNET_CHECK(p.type != data::PacingType::fixed_discrete, ls.context(),
               ".schedule_type: fixed_discrete is not supported for random-LTD (fixed_linear or fixed_root)");
  io::JsonReader lsc = ls.child("schedule_config");
  p.total_steps = lsc.get_int<int64_t>("require_steps", 1, 1);
  p.value_step = lsc.get_int<int64_t>("seq_per_step", 1, 1);
  if (p.type == data::PacingType::fixed_root) p.root_degree = lsc.get_double("root_degree", 2, NumberRange::above(0));
  p.validate(ls.context());
  GANNET_CHECK(p.min_value >= 1 && p.max_value <= seq_len, ls.context(), ": kept tokens must lie in [1, data.seq_len = ",
               seq_len, "], got [", p.min_value, ", ", p.max_value, "]");
  c.random_ltd.enabled = on && dr_on && lt_on;
  if (c.random_ltd.enabled) {
    GANNET_CHECK(!c.random_ltd.layers.empty(), ctx, ".random_ltd_layer_id: needs at least one layer");
    GANNET_CHECK(ls.has("min_value") && lsc.has("require_steps"), ls.context(),
                 ": min_value and schedule_config.require_steps are required");
  }

  io::JsonReader lr = lt.child("layer_token_lr_schedule");
  const bool lr_on = lr.get_bool("enabled", false);
  c.layer_token_lr.total_layer_tokens = lr.get_double("total_layer_tokens", 0, NumberRange::at_least(0));
  c.layer_token_lr.warmup_layer_tokens = lr.get_double("warmup_layer_tokens", -1, NumberRange::at_least(0));  // -1: absent
  std::string wt = lr.get_string("warmup_type", "linear");
  GANNET_CHECK(wt == "linear" || wt == "log", lr.context(), ".warmup_type: '", wt, "' is not supported (linear or log)");
  c.layer_token_lr.log_warmup = wt == "log";
  if (c.layer_token_lr.total_layer_tokens > 0)
    GANNET_CHECK(c.layer_token_lr.warmup_layer_tokens <= c.layer_token_lr.total_layer_tokens, lr.context(),
                 ": warmup_layer_tokens is above total_layer_tokens");
  c.layer_token_lr.enabled = on && dr_on && lr_on;
  return c;
}

}  // namespace gannet::train
