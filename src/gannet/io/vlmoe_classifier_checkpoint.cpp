#include "gannet/io/vlmoe_classifier_checkpoint.h"

#include <filesystem>

#include "gannet/io/json_config.h"
#include "gannet/io/vlmoe_checkpoint.h"

namespace gannet::io {

namespace {
constexpr const char* kModelType = "vlmoe_classifier";

VlMoeClassifierInfo info_of(const SafeTensors& f) {
  expect_model_type(f, kModelType);
  const JsonReader r(parse_json_text(checkpoint_metadata(f, "model_config"), f.path() + " model_config"), "model_config");
  VlMoeClassifierInfo info;
  info.config = read_vlmoe_config(r, {}, true);
  GANNET_CHECK(r.has("n_classes"), f.path(), ": model_config has no n_classes");
  info.n_classes = r.get_int<int64_t>("n_classes", 1, 1, 1 << 20);
  r.finish();
  try {
    info.config.validate();
  } catch (const Error& e) {
    fail(str(f.path(), ": model_config: ", e.what()));
  }
  const nlohmann::json classes = parse_json_text(checkpoint_metadata(f, "classes"), f.path() + " classes");
  GANNET_CHECK(classes.is_array() && (int64_t)classes.size() == info.n_classes, f.path(),
               ": metadata 'classes' is not a list of n_classes = ", info.n_classes, " names");
  for (const auto& c : classes) {
    GANNET_CHECK(c.is_string(), f.path(), ": metadata 'classes' holds a non-string");
    info.classes.push_back(c.get<std::string>());
  }
  info.data_format = checkpoint_metadata(f, "data_format");
  return info;
}

nlohmann::json config_json(const models::VlMoeConfig& c, int64_t n_classes) {
  nlohmann::json j = vlmoe_config_to_json(c);
  j["n_classes"] = n_classes;
  return j;
}
}  // namespace

void save_vlmoe_classifier_checkpoint(const std::string& path, const models::VlMoeClassifier& model,
                                      const std::vector<std::string>& classes, const std::string& data_format,
                                      optim::AdamW* optimizer, const TrainState& state) {
  GANNET_CHECK((int64_t)classes.size() == model.n_classes(), "vlmoe classifier checkpoint: ", classes.size(),
               " class names for ", model.n_classes(), " classes");
  save_parameter_checkpoint(path, model.parameters(),
                            {{"model_type", kModelType},
                             {"model_config", config_json(model.config(), model.n_classes()).dump()},
                             {"classes", nlohmann::json(classes).dump()},
                             {"data_format", data_format}},
                            optimizer, state);
}

VlMoeClassifierInfo read_vlmoe_classifier_info(const std::string& path) { return info_of(SafeTensors::open(path)); }

bool is_vlmoe_classifier_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  try {
    return checkpoint_model_type(SafeTensors::open(path)) == kModelType;
  } catch (const Error&) {
    return false;
  }
}

void load_vlmoe_classifier_checkpoint(const std::string& path, models::VlMoeClassifier& model, optim::AdamW* optimizer,
                                      TrainState* state) {
  SafeTensors f = SafeTensors::open(path);
  const VlMoeClassifierInfo info = info_of(f);
  const std::string stored = config_json(info.config, info.n_classes).dump(),
                    want = config_json(model.config(), model.n_classes()).dump();
  GANNET_CHECK(stored == want, path, ": checkpoint vlmoe_classifier config ", stored,
               " does not match the requested model ", want);
  load_parameter_checkpoint(f, model.parameters(), optimizer, state);
}

}  // namespace gannet::io
