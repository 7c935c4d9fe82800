// Numbers given on the command line and figures the CLI reports, through the real `gannet` binary:
// an option outside its range is a one-line error naming it, a non-finite evaluation loss is an
// error with a non-zero exit, and list options take the comma lists the README writes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gannet/data/token_file.h"
#include "gannet/io/checkpoint.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::has;
using gannet::testing::write;

namespace {
struct CliRun {
  int rc;
  std::string out, err;
};

class CliValues : public gannet::testing::TempDirTest {
 protected:
  CliRun run(const std::string& args) {
    const std::string out = file("stdout"), err = file("stderr");
    const int rc = std::system((std::string(GANNET_BINARY) + " " + args + " >" + out + " 2>" + err).c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
  }
  static std::string read_file(const std::string& path) {
    std::string s;
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
      char buf[4096];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
      std::fclose(f);
    }
    return s;
  }
  // The run failed with exactly one line on stderr, holding `part`.
  static void one_line_error(const CliRun& r, const std::string& part) {
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_TRUE(has(r.err, part)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // A small model (with one weight set to `poison` unless it is 0) and a token file for it.
  void write_model(float poison = 0.f) {
    models::GptConfig c;
    c.vocab_size = 16;
    c.n_ctx = 8;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 8;
    models::Gpt m(c);
    m.init(1);
    for (const auto& p : m.parameters())
      if (p.name == "wte.weight" && poison != 0.f) p.var.value().f32()[5] = poison;
    io::save_checkpoint(file("m.safetensors"), m, nullptr, io::TrainState{});
    std::vector<int32_t> tokens(64);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (int32_t)(i * 5 % 16);
    data::write_token_file(file("d.tok"), tokens, 16);
  }
};
}  // namespace

TEST_F(CliValues, NumericOptionsOutsideTheirRangeAreOneLineErrors) {
  write_model();
  const std::string eval = "eval -m " + file("m.safetensors") + " -d " + file("d.tok") + " ";
  one_line_error(run(eval + "--seq-len -5"), "gannet: error: --seq-len: must be >= 0, got -5");
  one_line_error(run(eval + "--batch 0"), "--batch: must be in [1, 1048576], got 0");
  one_line_error(run(eval + "--threads -1"), "--threads: must be in [0, 4096], got -1");
  one_line_error(run(eval + "--threads 4294967297"), "--threads: must be in [0, 4096], got 4294967297");
  one_line_error(run(eval + "--max-batches 1.5"), "--max-batches: expected an integer, got '1.5'");
  one_line_error(run(eval + "--max-batches 99999999999999999999"),
                 "--max-batches: must be in [0, 1099511627776], got 99999999999999999999");
  one_line_error(run(eval + "--seq-len 99999999999999999999"),
                 "--seq-len: '99999999999999999999' is out of range for an integer");
  one_line_error(run(eval + "--seq-len 12abc"), "--seq-len: expected an integer, got '12abc'");
  const std::string gen = "generate -m " + file("m.safetensors") + " -p x ";
  one_line_error(run(gen + "--top-p nan"), "--top-p: must be in (0, 1], got nan");
  one_line_error(run(gen + "--temperature -1"), "--temperature: must be >= 0, got -1");
  one_line_error(run(gen + "--temperature inf"), "--temperature: must be >= 0, got inf");
  one_line_error(run(gen + "--seed -1"), "--seed: must be >= 0, got -1");
  one_line_error(run(gen + "--repeat-penalty 1e39"), "--repeat-penalty: '1e39' is out of range for a float");
  one_line_error(run("data analyze --tokens " + file("d.tok") + " --seq-len -5"), "--seq-len: must be > 0, got -5");
  one_line_error(run("plot " + file("d.tok") + " --tolerance nan"), "--tolerance: must be in [0, 1], got nan");
  // Inside the range, the same commands run.
  const CliRun ok = run(eval + "--seq-len 8 --threads 1 --max-batches 1");
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_TRUE(has(ok.out, "loss ")) << ok.out;
}

TEST_F(CliValues, EvalOfNonFiniteWeightsFailsNamingTheTensor) {
  for (float poison : {NAN, INFINITY}) {
    write_model(poison);
    for (const std::string engine : {"", " --engine"}) {
      const CliRun r = run("eval -m " + file("m.safetensors") + " -d " + file("d.tok") + " --seq-len 8" + engine);
      one_line_error(r, file("m.safetensors") + ": the loss is ");
      EXPECT_TRUE(has(r.err, str(": tensor 'wte.weight' holds ", poison, " at element 5"))) << engine << r.err;
      EXPECT_FALSE(has(r.out, "loss ")) << r.out;  // no figure printed
    }
  }
}

TEST_F(CliValues, PlotTakesACommaListOfLabels) {
  for (const char* run_name : {"a", "b"}) {
    std::filesystem::create_directories(dir_ / run_name);
    write(file(std::string(run_name) + "/metrics.jsonl"),
          "{\"step\": 1, \"tokens\": 10, \"loss\": 3.0}\n{\"step\": 2, \"tokens\": 20, \"val_loss\": 2.5, \"final\": true}\n");
  }
  const std::string runs = "plot " + file("a") + " " + file("b") + " -o " + file("p.svg");
  CliRun r = run(runs + " -l first,second");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.out, "\nfirst ")) << r.out;
  EXPECT_TRUE(has(r.out, "\nsecond ")) << r.out;
  r = run(runs + " -l first -l second");  // repeated, as before
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.out, "\nsecond ")) << r.out;
  one_line_error(run(runs + " -l first,second,third"), "plot: 3 labels for 2 runs");
}

TEST_F(CliValues, PlotNamesTheLineAndKeyOfABadMetricsValue) {
  write(file("m.jsonl"), "{\"step\": 1, \"val_loss\": 2.5}\n{\"step\": \"two\", \"val_loss\": 2.0}\n");
  one_line_error(run("plot " + file("m.jsonl") + " -o " + file("p.svg")), file("m.jsonl") + ":2: 'step' is not a number");
  write(file("m.jsonl"), "{\"step\": 1, \"val_loss\": 2.5, \"final\": 1}\n");
  one_line_error(run("plot " + file("m.jsonl") + " -o " + file("p.svg")), file("m.jsonl") + ":1: 'final' is not a boolean");
  write(file("m.jsonl"), "{\"step\": 1, \"loss\": null}\n{\"step\": 2, \"val_loss\": 2.5}\n");  // a NaN loss, as logged
  EXPECT_EQ(run("plot " + file("m.jsonl") + " -o " + file("p.svg")).rc, 0);
}
