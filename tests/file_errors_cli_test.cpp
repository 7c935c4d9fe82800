// The command line on hostile files (issue 22, classes 1-3 and 7): each run ends with exit status
// 1 and one line on stderr naming the problem, or (for a Hugging Face directory given to eval)
// reads the file it was given.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine_test_util.h"
#include "gannet/core/atomic_file.h"
#include "gannet/data/token_file.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;

namespace {

struct CliRun {
  int rc;
  std::string out, err;
};

class FileErrorsCli : public TempDirTest {
 protected:
  CliRun run_gannet(const std::string& args) {
    const std::string out = file("stdout.txt"), err = file("stderr.txt");
    // `timeout` turns a command that blocks (a FIFO read) into a failure instead of a hung test.
    const std::string cmd = "timeout 60 " + std::string(GANNET_BINARY) + " " + args + " >" + out + " 2>" + err;
    const int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
  }
  // Exit status 1 and exactly one line on stderr, containing `part`.
  void one_line_error(const CliRun& r, const std::string& part) {
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_TRUE(has(r.err, part)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  models::Gpt tiny_model() {
    models::Gpt m(small_config(40, 16, 2, 32));
    m.init(5);
    return m;
  }
  std::string val_tokens() {
    std::vector<int32_t> ids;
    for (int i = 0; i < 200; ++i) ids.push_back((i * 7 + 3) % 40);
    data::write_token_file(file("val.tok"), ids, 40);
    return file("val.tok");
  }
};

Tensor transposed(const Tensor& t) {
  Tensor out = Tensor::empty({t.dim(1), t.dim(0)});
  for (int64_t r = 0; r < t.dim(0); ++r)
    for (int64_t c = 0; c < t.dim(1); ++c) out.f32()[c * t.dim(0) + r] = t.f32()[r * t.dim(1) + c];
  return out;
}

}  // namespace

TEST_F(FileErrorsCli, EvalReadsAHuggingFaceDirectoryWithoutEngine) {
  const models::Gpt m = tiny_model();
  const models::GptConfig& c = m.config();
  std::filesystem::create_directories(file("hf"));
  write(file("hf/config.json"), nlohmann::json{{"model_type", "gpt2"},
                                               {"n_embd", c.n_embd},
                                               {"n_head", c.n_head},
                                               {"n_layer", c.n_layer},
                                               {"n_positions", c.n_ctx},
                                               {"vocab_size", c.vocab_size}}
                                    .dump());
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& p : m.parameters()) {
    const bool conv1d = p.name.ends_with("c_attn.weight") || p.name.ends_with("c_proj.weight") ||
                        p.name.ends_with("c_fc.weight");
    ts.emplace_back(p.name, conv1d ? transposed(p.var.value()) : p.var.value());
  }
  io::save_safetensors(file("hf/model.safetensors"), ts);
  io::write_gpt_weights(file("m.safetensors"), weights_of(m));
  const std::string val = val_tokens();
  const CliRun hf = run_gannet("eval -m " + file("hf") + " -d " + val + " --seq-len 16");
  ASSERT_EQ(hf.rc, 0) << hf.err;
  const CliRun ref = run_gannet("eval -m " + file("m.safetensors") + " -d " + val + " --seq-len 16");
  ASSERT_EQ(ref.rc, 0) << ref.err;
  EXPECT_TRUE(has(hf.out, "loss ")) << hf.out;
  EXPECT_EQ(hf.out, ref.out);  // the same weights, whichever file they came from
}

TEST_F(FileErrorsCli, QuantizeGroupIsBounded) {
  io::write_gpt_weights(file("m.safetensors"), weights_of(tiny_model()));
  CliRun r = run_gannet("quantize -i " + file("m.safetensors") + " -o " + file("q.safetensors") +
                        " --scheme w8a8 --group 1048576");
  one_line_error(r, "gannet: error: weight quantization: group size 1048576 is not supported (a positive multiple "
                    "of 32 up to 65536, or 0 for one scale per row)");
  EXPECT_FALSE(std::filesystem::exists(file("q.safetensors")));
  // Within the limit but wider than every row: one group per row, no padding up to the group.
  r = run_gannet("quantize -i " + file("m.safetensors") + " -o " + file("q.safetensors") + " --scheme w8a8 --group 4096");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_LT(std::filesystem::file_size(file("q.safetensors")), std::filesystem::file_size(file("m.safetensors")));
}

TEST_F(FileErrorsCli, AnalyzeRefusesAHugeDeclaredVocabulary) {
  std::string bytes("GNTOK001", 8);
  auto put32 = [&](uint32_t v) { bytes.append(reinterpret_cast<const char*>(&v), 4); };
  auto put64 = [&](uint64_t v) { bytes.append(reinterpret_cast<const char*>(&v), 8); };
  put32(1), put32(4), put64(20), put32(2147483647), put32(0);
  for (int i = 0; i < 20; ++i) put32((uint32_t)i);
  write(file("v.tok"), bytes);
  const CliRun r = run_gannet("data analyze --tokens " + file("v.tok") + " --out " + file("idx") + " --seq-len 4");
  one_line_error(r, "token file " + file("v.tok") + ": vocab size 2147483647 is outside [1, 4194304]");
}

TEST_F(FileErrorsCli, AFifoAsModelFailsAtOnce) {
  ASSERT_EQ(::mkfifo(file("fifo").c_str(), 0600), 0);
  const CliRun r = run_gannet("eval -m " + file("fifo") + " -d " + val_tokens());
  one_line_error(r, "cannot open " + file("fifo") + ": a FIFO, not a regular file");
}

TEST_F(FileErrorsCli, FileBytesInAnErrorAreEscaped) {
  // A header whose JSON holds a raw 0xff byte and a NUL: the message quotes them escaped.
  const std::string header("{\"\xff\0\": 1}", 9);
  std::string bytes(8, '\0');
  bytes[0] = (char)header.size();
  write(file("bad.safetensors"), bytes + header);
  const CliRun r = run_gannet("eval -m " + file("bad.safetensors") + " -d " + val_tokens());
  one_line_error(r, file("bad.safetensors") + ": not a valid safetensors file: header is not valid JSON");
  EXPECT_FALSE(has(r.err, "\xff")) << r.err;
  EXPECT_EQ(r.err.find('\0'), std::string::npos);
}

// Weight streaming's options: a budget or directory without --offload disk, disk without a budget,
// and a budget below two units are one-line errors; a streamed eval gives the in-memory engine's loss.
TEST_F(FileErrorsCli, OffloadOptionsAreChecked) {
  io::write_gpt_weights(file("m.safetensors"), weights_of(tiny_model()));
  const std::string eval = "eval -m " + file("m.safetensors") + " -d " + val_tokens() + " --max-batches 2 ";
  one_line_error(run_gannet(eval + "--max-resident-mb 10"), "--max-resident-mb and --offload-dir need --offload disk");
  one_line_error(run_gannet(eval + "--offload disk"), "--offload disk needs --max-resident-mb");
  one_line_error(run_gannet(eval + "--offload disk --max-resident-mb 0.001 --offload-dir ."), "fewer than two units");
  one_line_error(run_gannet(eval + "--offload tape --max-resident-mb 1"), "--offload");
  const CliRun memory = run_gannet(eval + "--engine");
  const CliRun disk = run_gannet(eval + "--offload disk --max-resident-mb 16 --offload-dir .");
  ASSERT_EQ(memory.rc, 0) << memory.err;
  ASSERT_EQ(disk.rc, 0) << disk.err;
  EXPECT_EQ(disk.out, memory.out);
  EXPECT_TRUE(has(memory.out, "loss ")) << memory.out;
}

// init's MoE options: --top-k alone, or more than the experts, is a one-line error and no file.
TEST_F(FileErrorsCli, InitMoeOptionsAreChecked) {
  const std::string init = "init --preset gpt2-124m -o " + file("moe.safetensors") + " ";
  one_line_error(run_gannet(init + "--top-k 2"), "--top-k needs --experts");
  one_line_error(run_gannet(init + "--experts 2 --top-k 3"), "moe.k 3");
  EXPECT_FALSE(std::filesystem::exists(file("moe.safetensors")));
}

// --tensor-parallel without mpirun is a one-line error naming the command to run.
TEST_F(FileErrorsCli, TensorParallelNeedsMpirun) {
  io::write_gpt_weights(file("m.safetensors"), weights_of(tiny_model()));
  one_line_error(run_gannet("bench -m " + file("m.safetensors") + " -p 4 -n 2 -r 1 --tensor-parallel 2"),
                 "--tensor-parallel 2 needs `mpirun -np 2`");
  one_line_error(run_gannet("bench -m " + file("m.safetensors") + " -p 4 -n 2 -r 1 --expert-parallel"),
                 "--expert-parallel needs --tensor-parallel N with N > 1");
}
