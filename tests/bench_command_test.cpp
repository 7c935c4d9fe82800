// `gannet bench` end to end on a small model: the generation bound comes from the probe read
// kernels over the step's own bytes (here a few hundred KB), the winning kernel is named, and a
// model with int8 activations gets the oneDNN peer's exactness stated.
#include <sys/wait.h>

#include <cstdio>

#include "gannet/io/checkpoint.h"
#include "gannet/models/gpt.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;

namespace {
class BenchCommandTest : public TempDirTest {
 protected:
  // Runs the command line; its exit status and stdout + stderr.
  std::pair<int, std::string> run(const std::string& args) {
    return gannet::testing::command_status(std::string(GANNET_BINARY) + " " + args + " 2>&1");
  }
  std::string small_model() {
    models::GptConfig c;
    c.vocab_size = 300, c.n_ctx = 32, c.n_layer = 2, c.n_head = 2, c.n_embd = 64;
    models::Gpt m(c);
    m.init(1);
    const std::string path = file("small.safetensors");
    io::save_checkpoint(path, m, nullptr, {});
    return path;
  }
};
}  // namespace

TEST_F(BenchCommandTest, GenerationBoundFromTheProbeKernels) {
  const std::string model = small_model();
  auto [rc, out] = run("bench -m " + model + " -p 8 -n 4 -r 1 -t 1");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "tg4")) << out;
  EXPECT_TRUE(has(out, "pp8")) << out;
  EXPECT_TRUE(has(out, "best kernel ")) << out;
  EXPECT_FALSE(has(out, "oneDNN's int8 product on this CPU")) << out;  // no int8 activations
}

TEST_F(BenchCommandTest, Int8ModelStatesThePeersExactness) {
  const std::string model = small_model(), q = file("w8a8.safetensors");
  auto [qrc, qout] = run("quantize -i " + model + " -o " + q + " --scheme w8a8");
  ASSERT_EQ(qrc, 0) << qout;
  auto [rc, out] = run("bench -m " + q + " -p 8 -n 4 -r 1 -t 1");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "oneDNN's int8 product on this CPU is")) << out;
  EXPECT_TRUE(has(out, "OP (int8)")) << out;
}
