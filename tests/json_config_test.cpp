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
    "name": "gpt", "dims": [1, 2, 3], "warm": 5})"),
               "model");
  const NumberRange any = NumberRange::any();
  EXPECT_EQ(r.context(), "model");
  EXPECT_EQ(r.get_int("n_layer", 1), 12);
  EXPECT_EQ(r.get_int("missing", 7), 7);
  EXPECT_EQ(r.get_int("big", 0), 1000000);
  EXPECT_EQ(r.get_int("neg", 0), -3);
  EXPECT_DOUBLE_EQ(r.get_double("lr", 0, any), 3e-4);
  EXPECT_DOUBLE_EQ(r.get_double("warm", 0, any), 5.0);  // an integer is a fine double
  EXPECT_DOUBLE_EQ(r.get_double("beta", 0.9, any), 0.9);
  EXPECT_EQ(r.get_float("lr", 0.f, any), 3e-4f);
  EXPECT_TRUE(r.get_bool("tie", false));
  EXPECT_FALSE(r.get_bool("bias", false));
  EXPECT_EQ(r.get_string("name", ""), "gpt");
  EXPECT_EQ(r.get_string("act", "gelu"), "gelu");
  EXPECT_EQ(r.get_int_list("dims", {}), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r.get_int_list("other", {4}), (std::vector<int64_t>{4}));
  EXPECT_EQ(r.get_double_list("betas", {0.9, 0.95}, any), (std::vector<double>{0.9, 0.95}));
  EXPECT_EQ(r.get_double_list("dims", {}, any), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(r.get_string_list("tags", {"a"}), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(r.has("name"));
  EXPECT_FALSE(r.has("missing"));
  r.finish();
}

TEST(JsonConfig, TypeErrorsNameTheKey) {
  JsonReader r(json::parse(R"({"n_layer": "12", "lr": "fast", "tie": 1, "name": 3, "dims": [1, "x"],
    "half": 1.5, "list": 3, "attn": [1]})"),
               "model");
  EXPECT_EQ(message_of([&] { r.get_int("n_layer", 1); }), "model.n_layer: expected integer, got string");
  EXPECT_EQ(message_of([&] { r.get_int("half", 1); }), "model.half: expected integer, got number 1.5");
  EXPECT_EQ(message_of([&] { r.get_double("lr", 1, NumberRange::any()); }), "model.lr: expected number, got string");
  EXPECT_EQ(message_of([&] { r.get_bool("tie", false); }), "model.tie: expected boolean, got number 1");
  EXPECT_EQ(message_of([&] { r.get_string("name", ""); }), "model.name: expected string, got number 3");
  EXPECT_EQ(message_of([&] { r.get_int_list("dims", {}); }), "model.dims[1]: expected integer, got string");
  EXPECT_EQ(message_of([&] { r.get_int_list("list", {}); }), "model.list: expected list of integers, got number 3");
  EXPECT_EQ(message_of([&] { r.get_double_list("dims", {}, NumberRange::any()); }),
            "model.dims[1]: expected number, got string");
  EXPECT_EQ(message_of([&] { r.get_string_list("dims", {}); }), "model.dims[0]: expected string, got number 1");
  EXPECT_EQ(message_of([&] { r.child("attn"); }), "model.attn: expected object, got array");
  EXPECT_EQ(message_of([] { JsonReader(json::parse("[1]"), "root"); }), "root: expected object, got array");
}

TEST(JsonConfig, UnknownKeysAreErrors) {
  JsonReader r(json::parse(R"({"lr": 1e-3, "lrr": 2e-3, "weight_decay": 0.1})"), "optimizer");
  r.get_double("lr", 0, NumberRange::above(0));
  r.get_double("weight_decay", 0, NumberRange::at_least(0));
  r.get_double("eps", 1e-8, NumberRange::above(0));  // asked for though absent: listed as known
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
  EXPECT_DOUBLE_EQ(attn.get_double("dropout", 0.0, NumberRange::closed(0, 1)), 0.0);
  JsonReader absent = r.child("optimizer");  // absent: an empty object
  EXPECT_EQ(absent.get_double("lr", 0.5, NumberRange::above(0)), 0.5);
  absent.finish();
  r.get_int("seed", 0);
  std::string msg = message_of([&] { r.finish(); });  // reaches config.model.attn
  EXPECT_NE(msg.find("unknown key 'dropuot' in config.model.attn"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'dropout'?"), std::string::npos) << msg;
  msg = message_of([&] { attn.get_int("heads", 0) == 4 ? attn.finish() : void(); });
  EXPECT_NE(msg.find("dropuot"), std::string::npos) << msg;
}

TEST(JsonConfig, DuplicateKeysAreErrorsNamingTheirPath) {
  EXPECT_EQ(message_of([] { parse_json_text(R"({"lr": 1, "lr": 2})", "c.json"); }), "c.json: duplicate key 'lr'");
  EXPECT_EQ(message_of([] {
              parse_json_text(R"({"optimizer": {"params": {"lr": 1, "eps": 1e-8, "lr": 2}}})", "c.json");
            }),
            "c.json: duplicate key 'optimizer.params.lr'");
  EXPECT_EQ(message_of([] {
              parse_json_text(R"({"shards": [{"file": "a"}, [1, {"x": 1}], {"file": "b", "file": "c"}]})", "m.json");
            }),
            "m.json: duplicate key 'shards[2].file'");
  EXPECT_EQ(message_of([] { parse_json_text(R"([[], {"a": {"b": 1, "b": 1}}])", "x.json"); }),
            "x.json: duplicate key '[1].a.b'");
  // The same key in different objects, or in sibling objects of a list, is fine.
  json j = parse_json_text(R"({"a": {"k": 1}, "b": {"k": 2}, "l": [{"k": 1}, {"k": 2}], "k": 3})", "ok.json");
  EXPECT_EQ(j["l"][1]["k"].get<int>(), 2);
  EXPECT_EQ(j["k"].get<int>(), 3);
}

TEST(JsonConfig, NullIsAnErrorNamingTheKeyNotTheDefault) {
  JsonReader r(json::parse(R"({"lr": null, "dims": null, "opt": null, "name": null})"), "optimizer");
  EXPECT_TRUE(r.has("lr"));  // present: the getter says what is wrong with it
  const std::string why = ": null is not a value (leave the key out for the default)";
  EXPECT_EQ(message_of([&] { r.get_double("lr", 1e-3, NumberRange::above(0)); }), "optimizer.lr" + why);
  EXPECT_EQ(message_of([&] { r.get_int_list("dims", {1}); }), "optimizer.dims" + why);
  EXPECT_EQ(message_of([&] { r.child("opt"); }), "optimizer.opt" + why);
  EXPECT_EQ(message_of([&] { r.get_string("name", "x"); }), "optimizer.name" + why);
  EXPECT_EQ(message_of([] { JsonReader(json(), "c.json"); }), "c.json: expected object, got null");

  // Files of other tools, where null means "the default" (Hugging Face's config.json).
  JsonReader hf(json::parse(R"({"n_inner": null, "sub": null})"), "config.json", JsonNulls::as_absent);
  EXPECT_FALSE(hf.has("n_inner"));
  EXPECT_EQ(hf.get_int<int64_t>("n_inner", 7), 7);
  EXPECT_EQ(hf.child("sub").get_int("x", 3), 3);
}

TEST(JsonConfig, NumbersOutsideTheirRangeNameTheKeyAndTheRange) {
  JsonReader r(json::parse(R"({"eps": -1, "wd": -0.01, "ratio": 1.5, "beta": 1, "big": 1e39, "tiny": 1e-50,
    "betas": [0.9, 1.0], "ok": 0.5})"),
               "optimizer.params");
  EXPECT_EQ(message_of([&] { r.get_float("eps", 1e-8f, NumberRange::above(0)); }),
            "optimizer.params.eps: must be > 0, got -1");
  EXPECT_EQ(message_of([&] { r.get_float("wd", 0.f, NumberRange::at_least(0)); }),
            "optimizer.params.wd: must be >= 0, got -0.01");
  EXPECT_EQ(message_of([&] { r.get_double("ratio", 0.1, NumberRange::closed(0, 1)); }),
            "optimizer.params.ratio: must be in [0, 1], got 1.5");
  EXPECT_EQ(message_of([&] { r.get_double("beta", 0.9, NumberRange::half_open(0, 1)); }),
            "optimizer.params.beta: must be in [0, 1), got 1");
  EXPECT_EQ(message_of([&] { r.get_double_list("betas", {}, NumberRange::half_open(0, 1)); }),
            "optimizer.params.betas[1]: must be in [0, 1), got 1.0");
  // Checked in the float the value is used as: 1e39 would be inf, 1e-50 would be 0.
  EXPECT_DOUBLE_EQ(r.get_double("big", 0, NumberRange::at_least(0)), 1e39);
  EXPECT_EQ(message_of([&] { r.get_float("big", 0.f, NumberRange::at_least(0)); }),
            "optimizer.params.big: 1e+39 is out of the range of a float (>= 0)");
  EXPECT_EQ(message_of([&] { r.get_float("tiny", 1.f, NumberRange::above(0)); }),
            "optimizer.params.tiny: 1e-50 is out of the range of a float (> 0)");
  EXPECT_EQ(r.get_float("ok", 0.f, NumberRange::closed(0, 1)), 0.5f);
}

TEST(JsonConfig, IntegersAreReadInTheirTypeAndNeverWrap) {
  JsonReader r(json::parse(R"({"tensor": 4294967297, "threads": -1, "huge": 18446744073709551615,
    "e": 1e20, "seed": 18446744073709551615, "neg_seed": -1, "layers": [0, 7]})"),
               "parallel");
  // 2^32 + 1 would be 1 in an int.
  EXPECT_EQ(message_of([&] { r.get_int("tensor", 1, 1); }), "parallel.tensor: must be in [1, 2147483647], got 4294967297");
  EXPECT_EQ(r.get_int<int64_t>("tensor", 1, 1), 4294967297);
  EXPECT_EQ(message_of([&] { r.get_int("threads", 0, 0, 4096); }), "parallel.threads: must be in [0, 4096], got -1");
  EXPECT_EQ(message_of([&] { r.get_int<int64_t>("threads", 0, 0); }), "parallel.threads: must be >= 0, got -1");
  EXPECT_EQ(message_of([&] { r.get_int<int64_t>("huge", 0); }),
            "parallel.huge: must be in [-9223372036854775808, 9223372036854775807], got 18446744073709551615");
  EXPECT_EQ(message_of([&] { r.get_int<int64_t>("e", 0, 0); }),
            "parallel.e: must be in [0, 9223372036854775807], got 1e+20");
  EXPECT_EQ(r.get_uint64("seed", 0), 18446744073709551615u);
  EXPECT_EQ(message_of([&] { r.get_uint64("neg_seed", 0); }), "parallel.neg_seed: must be >= 0, got -1");
  EXPECT_EQ(message_of([&] { r.get_int_list("layers", {}, 0, 3); }), "parallel.layers[1]: must be in [0, 3], got 7");
}
