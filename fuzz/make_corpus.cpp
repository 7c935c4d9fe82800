// Writes the fuzzers' seed corpora (fuzz/corpus/<fuzzer>/) with gannet's own writers: a tiny model
// (float, checkpoint, quantized four ways), a sharded checkpoint of it, a tiny encoder packed
// binary and ternary, token files and the difficulty index `data analyze` makes of one, a small
// GPT-2 vocabulary, the repository's training configs, quantization configs and request bodies.
// Usage: fuzz_make_corpus SOURCE_DIR (scripts/fuzz.sh --seeds runs it); the files are small and
// kept in the repository.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz_support.h"
#include "gannet/compress/low_bit_encoder_pack.h"
#include "gannet/compress/nm_encoder_pack.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/core/rng.h"
#include "gannet/data/classification_tasks.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/token_file.h"
#include "gannet/gnn/bifeat_compress.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/io/nm_sparse_encoder.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/models/encoder.h"
#include "gannet/models/gpt.h"
#include "small_vocab.h"

namespace fs = std::filesystem;
using namespace gannet;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? std::string(fuzz::kSplit) : "") + parts[i];
  return out;
}

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  fuzz::write_file(dir / name, bytes);
}

models::GptConfig tiny_config() {
  models::GptConfig c;
  c.vocab_size = 40;
  c.n_ctx = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 16;
  return c;
}

void models_and_checkpoints(const fs::path& corpus, const fs::path& tmp) {
  models::Gpt model(tiny_config());
  model.init(7);
  const fs::path ck = tmp / "ck.safetensors";
  io::save_checkpoint(ck.string(), model, nullptr, io::TrainState{3, {1, 2, 3, 4}, "{}"});
  put(corpus / "safetensors", "tiny_checkpoint.safetensors", read_all(ck));
  const io::GptWeights fp = io::read_gpt_weights(ck.string());
  struct Q {
    const char* scheme;
    int64_t group;
    bool symmetric;
  };
  for (const Q& q : {Q{"w8a8", 32, true}, Q{"w4a16", 32, false}, Q{"mixed", 0, true}}) {
    compress::SchemeOptions o;
    o.group = q.group;
    o.symmetric = q.symmetric;
    const fs::path out = tmp / "q.safetensors";
    io::write_gpt_weights(out.string(), compress::quantize_model(fp, compress::scheme_preset(q.scheme, o)));
    put(corpus / "safetensors", std::string("tiny_") + q.scheme + ".safetensors", read_all(out));
  }

  // A sharded checkpoint: every tensor in two pieces (the first and second half of its elements),
  // one in each of two shards.
  const std::string sub = io::shard_directory_name(3, "fuzz");
  std::vector<std::pair<std::string, Tensor>> shard[2];
  io::Manifest m;
  m.model = tiny_config();
  m.layout.world = m.layout.data = 2;
  m.state.step = 3;
  for (const auto& [name, t] : fp.tensors) {
    io::ManifestTensor mt{name, t.shape(), {}};
    const int64_t n = t.numel(), half = n / 2;
    const float* v = t.f32();
    for (int r = 0; r < 2; ++r) {
      io::PiecePlace place = io::whole_place(t.shape());
      place.flat_begin = r ? half : 0;
      place.flat_end = r ? n : half;
      std::vector<float> piece(v + place.flat_begin, v + place.flat_end);
      shard[r].emplace_back(name, Tensor::from_vector(piece, {(int64_t)piece.size()}));
      mt.pieces.push_back({sub + "/" + io::shard_file_name(r), name, place});
    }
    m.tensors.push_back(mt);
  }
  std::vector<std::string> parts(1);
  for (int r = 0; r < 2; ++r) {
    const fs::path f = tmp / sub / io::shard_file_name(r);
    fs::create_directories(f.parent_path());
    io::save_safetensors(f.string(), shard[r]);
    m.shards.push_back({sub + "/" + io::shard_file_name(r), r, (int64_t)fs::file_size(f)});
    parts.push_back(read_all(f));
  }
  parts[0] = io::manifest_to_json(m);
  put(corpus / "manifest", "tiny_two_shards", joined(parts));
}

void tokens_and_indexes(const fs::path& corpus, const fs::path& tmp) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 96; ++i) tokens.push_back(i % 7 == 6 ? 2 : (i * 37) % 50);
  const fs::path tok = tmp / "train.tok";
  data::write_token_file(tok.string(), tokens, 50);
  put(corpus / "token_file", "u16.tok", read_all(tok));
  const fs::path wide = tmp / "wide.tok";
  data::write_token_file(wide.string(), {0, 70000, 5, 69999, 2}, 70001);
  put(corpus / "token_file", "u32.tok", read_all(wide));

  data::AnalyzeOptions a;
  a.token_file = tok.string();
  a.out_dir = (tmp / "difficulty").string();
  a.seq_len = 8;
  data::analyze_difficulty(a);
  for (const std::string& metric : a.metrics)
    put(corpus / "difficulty_index", metric,
        joined({read_all(data::index_to_sample_path(a.out_dir, metric)),
                read_all(data::index_to_metric_path(a.out_dir, metric)),
                read_all(data::percentiles_path(a.out_dir, metric))}));
}

// A prepared directory of three documents (one with a padded window) and the task sets cut from it.
void classification_tasks(const fs::path& corpus, const fs::path& tmp) {
  const fs::path dir = tmp / "prepared";
  fs::create_directories(dir);
  data::write_token_file((dir / "train.tok").string(), {10, 11, 12, 13, 14, 2, 30, 2}, 50);
  data::write_token_file((dir / "val.tok").string(), {40, 41, 42, 2}, 50);
  const std::string tsv =
      "id\tgenre\tsplit\ttoken_offset\ttoken_count\nca01\ta\ttrain\t0\t6\nck01\tk\tval\t0\t4\n"
      "cr01\tr\ttrain\t6\t2\n";
  fuzz::write_file(dir / "docs.tsv", tsv);
  fuzz::write_file(dir / "prepare.json", "{\"options\":{\"seed\":1}}");
  put(corpus / "classification_tasks", "three_docs",
      joined({tsv, read_all(dir / "train.tok"), read_all(dir / "val.tok"), read_all(dir / "prepare.json")}));
  data::TasksOptions opt;
  opt.data_dir = dir.string();
  opt.window = 4;
  data::write_classification_tasks(opt);
  for (const char* task : {"brown-genre", "brown-mode"})
    for (const char* split : {"train", "val"})
      put(corpus / "classification_set", std::string(task) + "_" + split + ".safetensors",
          read_all(data::classification_set_path(opt.data_dir, task, split)));
}

// A one-layer classifier encoder (vocab 40, d 32, 3 classes) with weights from `seed`.
models::Encoder tiny_encoder(uint64_t seed) {
  models::EncoderConfig c;
  c.vocab_size = 40;
  c.n_ctx = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 32;
  c.num_classes = 3;
  models::Encoder model(c);
  model.init(seed);
  return model;
}

// A tiny classifier encoder packed binary and ternary (gannet compress's output).
void low_bit_encoders(const fs::path& corpus, const fs::path& tmp) {
  const models::Encoder model = tiny_encoder(7);
  for (const auto& [scheme, bits] : {std::pair{"w1a8", 1}, std::pair{"w2a8", 2}}) {
    const fs::path path = tmp / (std::string(scheme) + ".safetensors");
    io::save_low_bit_encoder(path.string(), compress::pack_low_bit_encoder(model, {bits, 0}, {bits, 0}, scheme));
    put(corpus / "low_bit_encoder", std::string(scheme) + ".safetensors", read_all(path));
  }
}

// A tiny classifier encoder packed N:M (gannet compress's output for task nxm): 2:4 int8 per row
// (the packed vector path), 1:4 int4 in groups of 32 (the reference) and dense int8 products.
void nm_sparse_encoders(const fs::path& corpus, const fs::path& tmp) {
  const models::Encoder model = tiny_encoder(9);
  std::vector<std::array<compress::NmProductForm, 4>> forms(1);
  forms[0][0].pattern = NmPattern{2, 4};
  forms[0][0].quant = {8, 0};
  forms[0][1].quant = {8, 0};
  forms[0][2].pattern = NmPattern{1, 4};
  forms[0][2].quant = {4, 32};
  forms[0][3].pattern = NmPattern{2, 4};
  forms[0][3].quant = {8, 0};
  std::map<std::string, Tensor> masks;
  for (const nn::Parameter& p : model.parameters())
    for (const char* product : {"h.0.attn.c_attn", "h.0.mlp.c_fc", "h.0.mlp.c_proj"})
      if (p.name == std::string(product) + ".weight") masks.emplace(product, Tensor::full(p.var.value().shape(), 1.f));
  const fs::path path = tmp / "nm.safetensors";
  io::save_nm_sparse_encoder(path.string(), compress::pack_nm_sparse_encoder(model, forms, masks));
  put(corpus / "nm_sparse_encoder", "mixed.safetensors", read_all(path));
}

// A 24-node graph data set (a ring with chords, 8 features, 3 classes) and its features compressed
// by BiFeat: 8-bit and 4-bit SQ levels beside PQ, and PQ alone with 8-bit codebooks.
void graph_files(const fs::path& corpus, const fs::path& tmp) {
  const int64_t n = 24, dim = 8;
  std::vector<std::vector<int32_t>> adj((size_t)n);
  auto link = [&](int64_t a, int64_t b) { adj[a].push_back((int32_t)b), adj[b].push_back((int32_t)a); };
  for (int64_t v = 0; v < n; ++v) link(v, (v + 1) % n);
  for (int64_t v = 0; v < n; v += 4) link(v, (v + 12) % n);
  gnn::CsrGraph g;
  g.num_nodes = n;
  g.indptr = Tensor::zeros({n + 1}, DType::i64);
  std::vector<int32_t> flat;
  for (int64_t v = 0; v < n; ++v) {
    std::sort(adj[v].begin(), adj[v].end());
    adj[v].erase(std::unique(adj[v].begin(), adj[v].end()), adj[v].end());
    flat.insert(flat.end(), adj[v].begin(), adj[v].end());
    g.indptr.data<int64_t>()[v + 1] = (int64_t)flat.size();
  }
  g.indices = Tensor::empty({(int64_t)flat.size()}, DType::i32);
  std::copy(flat.begin(), flat.end(), g.indices.data<int32_t>());
  Tensor labels = Tensor::empty({n}, DType::i32), split = Tensor::empty({n}, DType::u8);
  Tensor features = Tensor::empty({n, dim});
  Rng rng(5);
  std::vector<std::string> names;
  for (int64_t v = 0; v < n; ++v) {
    labels.data<int32_t>()[v] = (int32_t)(v % 3);
    split.data<uint8_t>()[v] = (uint8_t)(v % 5 == 0 ? gnn::kTest : v % 5 == 1 ? gnn::kValidation : gnn::kTrain);
    for (int64_t d = 0; d < dim; ++d) features.f32()[v * dim + d] = (float)rng.uniform() * 2 - 1;
    names.push_back("node" + std::to_string(v));
  }
  const fs::path dir = tmp / "graph";
  gnn::save_graph_files(dir.string(), "debian", g, labels, split, {"a", "b", "c"}, names, "{}");
  gnn::save_feature_file(dir.string(), features);
  put(corpus / "graph_dataset", "ring24",
      joined({read_all(dir / "graph.safetensors"), read_all(dir / "nodes.safetensors"),
              read_all(dir / "features.safetensors")}));
  for (int bits : {8, 4}) {
    gnn::BiFeatOptions opt;
    opt.sq_fraction = 0.25;
    opt.sq_bits = bits;
    opt.pq_subvectors = 2;
    opt.codebook_bits = 32;
    const fs::path path = tmp / ("bifeat" + std::to_string(bits) + ".safetensors");
    gnn::compress_features(features, g, path.string(), opt);
    put(corpus / "bifeat_store", "ring24_sq" + std::to_string(bits) + ".safetensors", read_all(path));
  }
  gnn::BiFeatOptions opt;  // 8-bit PQ codebooks with their scales, every node in the PQ level
  opt.sq_fraction = 0;
  opt.sq_bits = 4;
  opt.pq_subvectors = 4;
  opt.codebook_bits = 8;
  const fs::path path = tmp / "bifeat_pq8.safetensors";
  gnn::compress_features(features, g, path.string(), opt);
  put(corpus / "bifeat_store", "ring24_pq8.safetensors", read_all(path));
}

void configs_and_requests(const fs::path& corpus, const fs::path& source) {
  for (const auto& e : fs::directory_iterator(source / "configs"))
    if (e.path().extension() == ".json") put(corpus / "train_config", e.path().filename().string(), read_all(e.path()));
  put(corpus / "quant_config", "mixed.json", R"({"compression_training": {
  "weight_quantization": {
    "shared_parameters": {"enabled": true, "quantization_type": "asymmetric", "rounding": "nearest",
                          "group_size": 32, "schedule_offset": 0, "quantizer_kernel": true},
    "different_groups": {
      "wq1": {"params": {"start_bits": 8, "target_bits": 8}, "modules": ["attn"]},
      "wq2": {"params": {"start_bits": 4, "target_bits": 4}, "modules": ["mlp", "embedding", "lm_head"]}}},
  "activation_quantization": {
    "shared_parameters": {"enabled": true, "quantization_type": "symmetric", "range_calibration": "static"},
    "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn", "mlp"]}}}}})");
  put(corpus / "quant_config", "w8.json", R"({"compression_training": {"weight_quantization": {
  "shared_parameters": {"enabled": true, "quantization_type": "symmetric", "group_size": 0},
  "different_groups": {"wq1": {"params": {"start_bits": 8, "target_bits": 8}, "modules": ["*"]}}}}})");

  const auto v = fuzz::small_gpt2_vocab();
  put(corpus / "gpt2_tokenizer", "small_vocab",
      joined({v.vocab_json, v.merges_txt, "Hello world, it's 12 o'clock  at the caf\xC3\xA9<|endoftext|>\n\t x\xFF"}));

  const char* requests[][2] = {
      {"completion_text", R"({"prompt": "Hello world", "max_tokens": 4, "temperature": 0.7, "top_p": 0.9, "top_k": 5,
"repetition_penalty": 1.1, "seed": 12, "stop": ["\n", "the"], "stream": true, "stream_options": {"include_usage": true},
"ignore_eos": false, "model": "gannet", "user": "u", "n": 1, "best_of": 1, "logprobs": null, "suffix": null,
"logit_bias": {}, "echo": false, "frequency_penalty": 0, "presence_penalty": 0.0})"},
      {"completion_ids", R"({"prompt": [[1, 2, 3, 256]], "max_tokens": null, "stop": "x"})"},
      {"completion_empty", R"({"prompt": ""})"},
      {"tokenize", R"({"content": "Hello world"})"},
      {"detokenize", R"({"tokens": [72, 101, 260]})"},
  };
  for (const auto& r : requests) put(corpus / "request", r[0], r[1]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus SOURCE_DIR\n");
    return 2;
  }
  try {
    const fs::path source = argv[1], corpus = source / "fuzz" / "corpus";
    const fs::path tmp = fs::temp_directory_path() / ("gannet-make-corpus-" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    models_and_checkpoints(corpus, tmp);
    tokens_and_indexes(corpus, tmp);
    classification_tasks(corpus, tmp);
    low_bit_encoders(corpus, tmp);
    nm_sparse_encoders(corpus, tmp);
    graph_files(corpus, tmp);
    configs_and_requests(corpus, source);
    fs::remove_all(tmp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
