#include "gannet/io/json_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "gannet/core/error.h"
#include "gannet/core/atomic_file.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::message_of;
using namespace gannet::io;
using json = nlohmann::json;

namespace {

std::string temp_file(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / str("gannet_json_", ::getpid(), "_", name)).string();
}

}  // namespace

TEST(JsonConfig, ParsesFile) {
  std::string p = temp_file("ok.json");
  write_file_atomic(p, std::string(R"({"model": {"n_layer": 2}})"));
  json j = parse_json_file(p);
  EXPECT_EQ(j["model"]["n_layer"].get<int>(), 2);
  std::filesystem::remove(p);
}

TEST(JsonConfig, ParseErrorsGiveLineAndColumn) {
  std::string p = temp_file("config.json");
  write_file_atomic(p, std::string("{\n  \"a\": 1,\n  \"b\": ,\n  \"c\": 3\n}\n"));
  std::string msg = message_of([&] { parse_json_file(p); });
  EXPECT_EQ(msg.rfind(p + ": parse error at line 3, column 8: ", 0), 0u) << msg;
  EXPECT_EQ(msg.find("[json.exception"), std::string::npos) << msg;

  EXPECT_EQ(message_of([&] { parse_json_text("{\"a\": 1", "config.json"); }).rfind("config.json: parse error at line 1, column 8: ", 0), 0u);
  EXPECT_EQ(message_of([&] { parse_json_text("", "c.json"); }).rfind("c.json: parse error at line 1, column 1: ", 0), 0u);
  EXPECT_EQ(message_of([&] { parse_json_text("{} x", "c.json"); }).rfind("c.json: parse error at line 1, column 4: ", 0), 0u);
  std::filesystem::remove(p);

  std::string missing = temp_file("missing.json");
  EXPECT_EQ(message_of([&] { parse_json_file(missing); }), "cannot open " + missing + ": No such file or directory");
}

TEST(JsonConfig, TypedGettersWithDefaults) {
  JsonReader r(json::parse(R"({"n_layer": 12, "lr": 3e-4, "big": 1e6, "neg": -3, "tie": true,
    "name": "gpt", "dims": [1, 2, 3], "none": null, "warm": 5})"),
               "model");
  EXPECT_EQ(r.context(), "model");
  EXPECT_EQ(r.get_int("n_layer", 1), 12);
  EXPECT_EQ(r.get_int("missing", 7), 7);
  EXPECT_EQ(r.get_int("big", 0), 1000000);
  EXPECT_EQ(r.get_int("neg", 0), -3);
  EXPECT_DOUBLE_EQ(r.get_double("lr", 0), 3e-4);
  EXPECT_DOUBLE_EQ(r.get_double("warm", 0), 5.0);  // an integer is a fine double
  EXPECT_DOUBLE_EQ(r.get_double("beta", 0.9), 0.9);
  EXPECT_TRUE(r.get_bool("tie", false));
  EXPECT_FALSE(r.get_bool("bias", false));
  EXPECT_EQ(r.get_string("name", ""), "gpt");
  EXPECT_EQ(r.get_string("act", "gelu"), "gelu");
  EXPECT_EQ(r.get_int_list("dims", {}), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r.get_int_list("other", {4}), (std::vector<int64_t>{4}));
  EXPECT_EQ(r.get_double_list("betas", {0.9, 0.95}), (std::vector<double>{0.9, 0.95}));
  EXPECT_EQ(r.get_double_list("dims", {}), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(r.get_string_list("tags", {"a"}), (std::vector<std::string>{"a"}));
  EXPECT_EQ(r.get_string("none", "dflt"), "dflt");  // null reads as absent
  EXPECT_TRUE(r.has("name"));
  EXPECT_FALSE(r.has("none"));
  EXPECT_FALSE(r.has("missing"));
  r.finish();
}

TEST(JsonConfig, TypeErrorsNameTheKey) {
  JsonReader r(json::parse(R"({"n_layer": "12", "lr": "fast", "tie": 1, "name": 3, "dims": [1, "x"],
    "half": 1.5, "list": 3, "attn": [1]})"),
               "model");
  EXPECT_EQ(message_of([&] { r.get_int("n_layer", 1); }), "model.n_layer: expected integer, got string");
  EXPECT_EQ(message_of([&] { r.get_int("half", 1); }), "model.half: expected integer, got number 1.5");
  EXPECT_EQ(message_of([&] { r.get_double("lr", 1); }), "model.lr: expected number, got string");
  EXPECT_EQ(message_of([&] { r.get_bool("tie", false); }), "model.tie: expected boolean, got number 1");
  EXPECT_EQ(message_of([&] { r.get_string("name", ""); }), "model.name: expected string, got number 3");
  EXPECT_EQ(message_of([&] { r.get_int_list("dims", {}); }), "model.dims[1]: expected integer, got string");
  EXPECT_EQ(message_of([&] { r.get_int_list("list", {}); }), "model.list: expected list of integers, got number 3");
  EXPECT_EQ(message_of([&] { r.get_double_list("dims", {}); }), "model.dims[1]: expected number, got string");
  EXPECT_EQ(message_of([&] { r.get_string_list("dims", {}); }), "model.dims[0]: expected string, got number 1");
  EXPECT_EQ(message_of([&] { r.child("attn"); }), "model.attn: expected object, got array");
  EXPECT_EQ(message_of([] { JsonReader(json::parse("[1]"), "root"); }), "root: expected object, got array");
}

TEST(JsonConfig, UnknownKeysAreErrors) {
  JsonReader r(json::parse(R"({"lr": 1e-3, "lrr": 2e-3, "weight_decay": 0.1})"), "optimizer");
  r.get_double("lr", 0);
  r.get_double("weight_decay", 0);
  r.get_double("eps", 1e-8);  // asked for though absent: listed as known
  std::string msg = message_of([&] { r.finish(); });
  EXPECT_NE(msg.find("unknown key 'lrr' in optimizer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'lr'?"), std::string::npos) << msg;
  EXPECT_NE(msg.find("known: eps, lr, weight_decay"), std::string::npos) << msg;

  // has() alone does not make a key known.
  JsonReader h(json::parse(R"({"x": 1})"), "h");
  EXPECT_TRUE(h.has("x"));
  EXPECT_THROW(h.finish(), Error);
  h.get_int("x", 0);
  h.finish();
}

TEST(JsonConfig, ChildrenAreCheckedToo) {
  JsonReader r(json::parse(R"({"model": {"n_layer": 2, "attn": {"heads": 4, "dropuot": 0.1}}, "seed": 1})"), "config");
  JsonReader model = r.child("model");
  EXPECT_EQ(model.context(), "config.model");
  EXPECT_EQ(model.get_int("n_layer", 0), 2);
  JsonReader attn = model.child("attn");
  EXPECT_EQ(attn.get_int("heads", 1), 4);
  EXPECT_DOUBLE_EQ(attn.get_double("dropout", 0.0), 0.0);
  JsonReader absent = r.child("optimizer");  // absent: an empty object
  EXPECT_EQ(absent.get_double("lr", 0.5), 0.5);
  absent.finish();
  r.get_int("seed", 0);
  std::string msg = message_of([&] { r.finish(); });  // reaches config.model.attn
  EXPECT_NE(msg.find("unknown key 'dropuot' in config.model.attn"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'dropout'?"), std::string::npos) << msg;
  msg = message_of([&] { attn.get_int("heads", 0) == 4 ? attn.finish() : void(); });
  EXPECT_NE(msg.find("dropuot"), std::string::npos) << msg;
}
