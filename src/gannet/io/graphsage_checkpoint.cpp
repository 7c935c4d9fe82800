#include "gannet/io/graphsage_checkpoint.h"

namespace gannet::io {

namespace {
models::GraphSageConfig config_of(const SafeTensors& f) {
  expect_model_type(f, "graphsage");
  const std::string& text = checkpoint_metadata(f, "model_config");
  const JsonReader r(parse_json_text(text, f.path() + " model_config"), "model_config");
  models::GraphSageConfig c = read_graphsage_config(r, {}, true);
  r.finish();
  try {
    c.validate();
  } catch (const Error& e) {
    fail(str(f.path(), ": model_config: ", e.what()));
  }
  // The first and last layers' shapes fix in_dim and num_classes; a model built from a config that
  // disagrees with them would fail later, less clearly.
  const std::string first = c.is_sage() ? "layers.0.self.weight" : "layers.0.weight";
  const std::string last = str("layers.", c.layers - 1, ".bias");
  for (const auto& [name, dim, want] : {std::tuple{first, 1, c.in_dim}, std::tuple{last, 0, c.num_classes}}) {
    GANNET_CHECK(f.has(name), f.path(), ": graphsage config ", graphsage_config_to_json(c).dump(), " needs tensor '",
                 name, "', which is missing");
    const Tensor t = f.get(name);
    GANNET_CHECK(t.ndim() > dim && t.dim(dim) == want, f.path(), ": tensor '", name, "' is ", shape_str(t.shape()),
                 ", which does not fit graphsage config ", graphsage_config_to_json(c).dump());
  }
  return c;
}
}  // namespace

models::GraphSageConfig read_graphsage_config(const JsonReader& r, const models::GraphSageConfig& defaults,
                                              bool with_data_sizes) {
  models::GraphSageConfig c = defaults;
  c.type = r.get_string("type", c.type);
  c.hidden = r.get_int("hidden", c.hidden, 1, 1 << 16);
  c.layers = r.get_int("layers", c.layers, 1, 8);
  c.dropout = r.get_float("dropout", c.dropout, NumberRange::half_open(0, 1));
  if (with_data_sizes) {
    c.in_dim = r.get_int("in_dim", c.in_dim, 1);
    c.num_classes = r.get_int("num_classes", c.num_classes, 2);
  } else {
    GANNET_CHECK(!r.has("in_dim") && !r.has("num_classes"), r.context(),
                 ": in_dim and num_classes follow from the data set; remove them");
  }
  GANNET_CHECK(c.type == "sage" || c.type == "mlp", r.context(), ".type: '", c.type,
               "' is not a graph model (sage or mlp)");
  return c;
}

nlohmann::json graphsage_config_to_json(const models::GraphSageConfig& c) {
  return {{"type", c.type},           {"in_dim", c.in_dim}, {"hidden", c.hidden}, {"num_classes", c.num_classes},
          {"layers", c.layers},       {"dropout", c.dropout}};
}

void save_graphsage_checkpoint(const std::string& path, const models::GraphSage& model, optim::AdamW* optimizer,
                               const TrainState& state) {
  save_parameter_checkpoint(
      path, model.parameters(),
      {{"model_type", "graphsage"}, {"model_config", graphsage_config_to_json(model.config()).dump()}}, optimizer,
      state);
}

models::GraphSageConfig read_graphsage_checkpoint_config(const std::string& path) {
  return config_of(SafeTensors::open(path));
}

void load_graphsage_checkpoint(const std::string& path, models::GraphSage& model, optim::AdamW* optimizer,
                               TrainState* state) {
  SafeTensors f = SafeTensors::open(path);
  const models::GraphSageConfig stored = config_of(f);
  GANNET_CHECK(stored == model.config(), path, ": checkpoint graphsage config ", graphsage_config_to_json(stored).dump(),
               " does not match the requested model ", graphsage_config_to_json(model.config()).dump());
  load_parameter_checkpoint(f, model.parameters(), optimizer, state);
}

}  // namespace gannet::io
