#include "gannet/data/fashion_mnist.h"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/io/safetensors.h"

namespace gannet::data {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kImageClassesFormat = "gannet-image-classes-1";  // bump when the outputs change meaning
constexpr int64_t kMaxIdxBytes = int64_t(1) << 32;                        // far above any IDX file here

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

// The whole decompressed stream; a truncated or corrupt one is an error, not a short read.
std::string gunzip_file(const std::string& path) {
  std::error_code ec;
  GANNET_CHECK(fs::is_regular_file(path, ec), path, ": no such file");
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  GANNET_CHECK(f, path, ": cannot open");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f.get(), buf, sizeof buf);
    int err = Z_OK;
    std::string msg = gzerror(f.get(), &err);
    if (msg.rfind(path + ": ", 0) == 0) msg.erase(0, path.size() + 2);  // zlib prefixes the path
    // gzread hands out what it has of a truncated stream and flags it with Z_BUF_ERROR.
    GANNET_CHECK(n >= 0 && err == Z_OK, path, ": corrupt gzip data (", err == Z_BUF_ERROR ? "truncated: " : "",
                 msg, ")");
    if (n == 0) break;
    out.append(buf, n);
    GANNET_CHECK((int64_t)out.size() <= kMaxIdxBytes, path, ": more than ", kMaxIdxBytes, " bytes decompressed");
  }
  return out;
}

uint32_t read_be32(const std::string& s, size_t at) {
  return (uint32_t)(uint8_t)s[at] << 24 | (uint32_t)(uint8_t)s[at + 1] << 16 | (uint32_t)(uint8_t)s[at + 2] << 8 |
         (uint32_t)(uint8_t)s[at + 3];
}

void append_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back((char)(v >> shift));
}

}  // namespace

IdxArray read_idx_gz(const std::string& path) {
  const std::string bytes = gunzip_file(path);
  GANNET_CHECK(bytes.size() >= 4, path, ": ", bytes.size(), " bytes, too short for an IDX header");
  GANNET_CHECK(bytes[0] == 0 && bytes[1] == 0, path, ": not an IDX file (magic does not start with two zero bytes)");
  GANNET_CHECK((uint8_t)bytes[2] == 0x08, path, ": IDX type 0x", std::hex, (int)(uint8_t)bytes[2], std::dec,
               " is not 0x08 (unsigned bytes)");
  const int ndims = (uint8_t)bytes[3];
  GANNET_CHECK(ndims >= 1 && ndims <= 4, path, ": IDX header gives ", ndims, " dimensions, not 1 to 4");
  const size_t header = 4 + 4 * (size_t)ndims;
  GANNET_CHECK(bytes.size() >= header, path, ": IDX header cut short (", bytes.size(), " bytes)");
  IdxArray a;
  int64_t count = 1;
  for (int d = 0; d < ndims; ++d) {
    a.dims.push_back(read_be32(bytes, 4 + 4 * d));
    count *= a.dims.back();
    GANNET_CHECK(count <= kMaxIdxBytes, path, ": IDX dimensions too large");
  }
  GANNET_CHECK((int64_t)(bytes.size() - header) == count, path, ": IDX header promises ", count, " bytes of data, the file has ",
               bytes.size() - header);
  a.data.assign(bytes.begin() + header, bytes.end());
  return a;
}

void write_idx_gz(const std::string& path, const IdxArray& a) {
  std::string bytes = {0, 0, 0x08, (char)a.dims.size()};
  for (int64_t d : a.dims) append_be32(bytes, (uint32_t)d);
  bytes.append(a.data.begin(), a.data.end());
  const std::string tmp = temporary_path(path);
  gzFile f = gzopen(tmp.c_str(), "wb");
  GANNET_CHECK(f, tmp, ": cannot create");
  const int written = gzwrite(f, bytes.data(), (unsigned)bytes.size());
  const int closed = gzclose(f);
  std::error_code ec;
  if (written != (int)bytes.size() || closed != Z_OK) fs::remove(tmp, ec);
  GANNET_CHECK(written == (int)bytes.size() && closed == Z_OK, path, ": cannot write the gzip stream");
  fs::rename(tmp, path, ec);
  GANNET_CHECK(!ec, path, ": cannot rename the temporary into place: ", ec.message());
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

LabelledImages read_idx_split(const std::string& images_path, const std::string& labels_path, int num_classes) {
  const IdxArray images = read_idx_gz(images_path);
  const IdxArray labels = read_idx_gz(labels_path);
  GANNET_CHECK(images.dims.size() == 3, images_path, ": ", images.dims.size(), " dimensions, not 3 (N, H, W)");
  GANNET_CHECK(labels.dims.size() == 1, labels_path, ": ", labels.dims.size(), " dimensions, not 1 (N)");
  GANNET_CHECK(images.dims[0] == labels.dims[0], labels_path, ": ", labels.dims[0], " labels for the ",
               images.dims[0], " images of ", images_path);
  LabelledImages out;
  out.images = Tensor::empty({images.dims[0], images.dims[1], images.dims[2]}, DType::u8);
  std::copy(images.data.begin(), images.data.end(), out.images.data<uint8_t>());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    GANNET_CHECK(labels.data[i] < num_classes, labels_path, ": label ", (int)labels.data[i], " of item ", i,
                 " is not one of the ", num_classes, " classes");
    out.labels.push_back(labels.data[i]);
  }
  return out;
}

namespace {

const std::vector<std::string> kFashionOutputs = {"train.safetensors", "test.safetensors", "classes.txt",
                                                  "summary.json"};

std::string source_file(const FashionMnistOptions& opt, const char* name) {
  return (fs::path(opt.source_dir) / name).string();
}

// The inputs, train then test: images, labels.
std::vector<std::pair<std::string, std::string>> fashion_sources(const FashionMnistOptions& opt) {
  return {{source_file(opt, "train-images-idx3-ubyte.gz"), source_file(opt, "train-labels-idx1-ubyte.gz")},
          {source_file(opt, "t10k-images-idx3-ubyte.gz"), source_file(opt, "t10k-labels-idx1-ubyte.gz")}};
}

json fashion_options_json(const FashionMnistOptions& opt) {
  json files = json::array();
  for (const auto& [images, labels] : fashion_sources(opt))
    files.push_back({input_fingerprint(images), input_fingerprint(labels)});
  return json{{"format", kImageClassesFormat}, {"sources", files}};
}

// DIR/<split>.safetensors: images u8 [N, H, W], label i32 [N]; the class names in the metadata.
void write_labelled_images(const fs::path& dir, const std::string& split, const LabelledImages& set) {
  const int64_t n = (int64_t)set.labels.size();
  Tensor label = Tensor::empty({n}, DType::i32);
  std::copy(set.labels.begin(), set.labels.end(), label.data<int32_t>());
  const std::map<std::string, std::string> md = {{"format", kImageClassesFormat},
                                                 {"split", split},
                                                 {"texts", "classes.txt"},
                                                 {"classes", json(fashion_mnist_classes()).dump()}};
  io::save_safetensors((dir / (split + ".safetensors")).string(), {{"images", set.images}, {"label", label}}, md);
}

json labelled_summary(const LabelledImages& set) {
  const auto& classes = fashion_mnist_classes();
  json per_class = json::object();
  std::vector<int64_t> counts(classes.size(), 0);
  for (int32_t y : set.labels) ++counts[y];
  for (size_t c = 0; c < classes.size(); ++c) per_class[classes[c]] = counts[c];
  json examples = json::array();
  for (size_t i = 0; i < 3 && i < set.labels.size(); ++i)
    examples.push_back({{"index", i}, {"label", set.labels[i]}, {"text", classes[set.labels[i]]}});
  return json{{"images", set.labels.size()}, {"per_class", per_class}, {"examples", examples}};
}

}  // namespace

PreparedData prepare_fashion_mnist(const FashionMnistOptions& opt) {
  GANNET_CHECK(!opt.out_dir.empty(), "data prepare: empty output directory");
  const json want = fashion_options_json(opt);  // checks the inputs exist before anything is written
  if (auto earlier = earlier_run_if_current(opt.out_dir, want, kFashionOutputs)) return *earlier;
  PreparedData res;
  res.out_dir = opt.out_dir;
  const fs::path dir(opt.out_dir);
  const auto sources = fashion_sources(opt);
  const int num_classes = (int)fashion_mnist_classes().size();
  std::fprintf(stderr, "[data] reading Fashion-MNIST from %s\n", opt.source_dir.c_str());
  const LabelledImages train = read_idx_split(sources[0].first, sources[0].second, num_classes);
  const LabelledImages test = read_idx_split(sources[1].first, sources[1].second, num_classes);
  GANNET_CHECK(test.images.shape()[1] == train.images.shape()[1] && test.images.shape()[2] == train.images.shape()[2],
               sources[1].first, ": images are ", test.images.shape()[1], "x", test.images.shape()[2], ", train's ",
               train.images.shape()[1], "x", train.images.shape()[2]);

  std::error_code ec;
  fs::create_directories(dir, ec);
  GANNET_CHECK(!ec, "data prepare: cannot create ", opt.out_dir, ": ", ec.message());
  invalidate_prepare_stamp(opt.out_dir);
  write_labelled_images(dir, "train", train);
  write_labelled_images(dir, "test", test);
  std::ostringstream classes;
  for (const std::string& c : fashion_mnist_classes()) classes << c << '\n';
  write_file_atomic((dir / "classes.txt").string(), classes.str());
  json summary = {{"dataset", "fashion-mnist"},
                  {"image", {{"height", train.images.shape()[1]}, {"width", train.images.shape()[2]}, {"dtype", "u8"}}},
                  {"classes", fashion_mnist_classes()},
                  {"splits", {{"train", labelled_summary(train)}, {"test", labelled_summary(test)}}}};
  write_file_atomic((dir / "summary.json").string(), summary.dump(2) + "\n");
  write_prepare_stamp(opt.out_dir, want, kFashionOutputs);
  res.summary = std::move(summary);
  return res;
}

}  // namespace gannet::data
