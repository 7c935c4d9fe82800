#include "gannet/gnn/graph_dataset.h"

#include <climits>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/core/escape.h"
#include "gannet/core/parse_number.h"
#include "gannet/io/safetensors.h"

namespace gannet::gnn {

namespace {

std::string path_in(const std::string& dir, const char* name) { return (std::filesystem::path(dir) / name).string(); }

// A vector tensor of `dtype`, any length.
Tensor vector_tensor(const io::SafeTensors& f, const std::string& name, DType dtype) {
  const Tensor t = f.get(name);
  GANNET_CHECK(t.dtype() == dtype && t.ndim() == 1, f.path(), ": tensor '", name, "' is ", t.describe(),
               ", expected a vector of ", dtype_name(dtype));
  return t;
}

// The invariants of csr_graph.h, in one pass over the neighbour lists. `where` starts the message.
void check_csr(const CsrGraph& g, const std::string& where) {
  const int64_t n = g.num_nodes;
  const int64_t* off = g.offsets();
  GANNET_CHECK(off[0] == 0, where, ": indptr[0] is ", off[0], ", expected 0");
  for (int64_t v = 0; v < n; ++v)
    GANNET_CHECK(off[v + 1] >= off[v], where, ": indptr decreases at node ", v, " (", off[v], " then ", off[v + 1], ")");
  GANNET_CHECK(off[n] == g.indices.numel(), where, ": indptr ends at ", off[n], " but indices holds ",
               g.indices.numel(), " entries");
  const int32_t* nb = g.neighbours();
  for (int64_t v = 0; v < n; ++v) {
    int64_t prev = -1;
    for (int64_t p = off[v]; p < off[v + 1]; ++p) {
      const int64_t u = nb[p];
      GANNET_CHECK(u >= 0 && u < n, where, ": neighbour ", u, " of node ", v, " is outside [0, ", n, ")");
      GANNET_CHECK(u != v, where, ": node ", v, " lists itself as a neighbour (self loop)");
      GANNET_CHECK(u > prev, where, ": the neighbours of node ", v, " are not strictly ascending (", u, " after ", prev, ")");
      prev = u;
    }
  }
}

// Labels in [0, C) and split values kTrain, kValidation or kTest.
void check_nodes(const Tensor& labels, const Tensor& split, int64_t num_classes, const std::string& where) {
  const int32_t* lab = labels.data<int32_t>();
  const uint8_t* part = split.data<uint8_t>();
  for (int64_t v = 0; v < labels.numel(); ++v) {
    GANNET_CHECK(lab[v] >= 0 && lab[v] < num_classes, where, ": label ", lab[v], " of node ", v, " is outside [0, ",
                 num_classes, ")");
    GANNET_CHECK(part[v] <= kTest, where, ": split value ", (int)part[v], " of node ", v,
                 " is not 0 (train), 1 (validation) or 2 (test)");
  }
}

std::vector<std::string> parse_classes(const io::SafeTensors& f) {
  auto it = f.metadata().find("classes");
  GANNET_CHECK(it != f.metadata().end(), f.path(), ": metadata has no 'classes'");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  GANNET_CHECK(j.is_array() && !j.empty(), f.path(), ": metadata 'classes' is not a non-empty JSON array: ",
               quote_text(it->second));
  std::vector<std::string> classes;
  for (const auto& c : j) {
    GANNET_CHECK(c.is_string(), f.path(), ": metadata 'classes' holds a non-string: ", quote_text(c.dump()));
    classes.push_back(c.get<std::string>());
  }
  GANNET_CHECK(std::set<std::string>(classes.begin(), classes.end()).size() == classes.size(), f.path(),
               ": metadata 'classes' names a class twice");
  return classes;
}

void load_graph(const std::string& path, GraphDataset& d) {
  const io::SafeTensors f = io::SafeTensors::open(path);
  auto source = f.metadata().find("source");
  GANNET_CHECK(source != f.metadata().end() && !source->second.empty(), path, ": metadata has no 'source'");
  d.source = source->second;
  d.graph.indptr = vector_tensor(f, "indptr", DType::i64);
  d.graph.indices = vector_tensor(f, "indices", DType::i32);
  const int64_t n = d.graph.indptr.numel() - 1;
  GANNET_CHECK(n >= 0, path, ": tensor 'indptr' is empty, expected num_nodes + 1 entries");
  GANNET_CHECK(n <= (int64_t)INT32_MAX + 1, path, ": ", n, " nodes exceed the i32 neighbour ids");
  auto meta_n = f.metadata().find("num_nodes");
  GANNET_CHECK(meta_n != f.metadata().end(), path, ": metadata has no 'num_nodes'");
  const int64_t stated = parse_int64(meta_n->second, path + ": metadata num_nodes");
  GANNET_CHECK(stated == n, path, ": metadata num_nodes is ", stated, " but indptr holds ", n, " + 1 entries");
  d.graph.num_nodes = n;
  check_csr(d.graph, path);
}

void load_nodes(const std::string& path, GraphDataset& d) {
  const io::SafeTensors f = io::SafeTensors::open(path);
  d.classes = parse_classes(f);
  d.labels = f.get("labels", DType::i32, {d.num_nodes()});
  d.split = f.get("split", DType::u8, {d.num_nodes()});
  check_nodes(d.labels, d.split, d.num_classes(), path);
}

void load_features(const std::string& path, GraphDataset& d) {
  const io::SafeTensors f = io::SafeTensors::open(path);
  d.features = f.get("features");
  GANNET_CHECK(d.features.dtype() == DType::f32 && d.features.ndim() == 2 && d.features.dim(0) == d.num_nodes() &&
                   d.features.dim(1) >= 1,
               path, ": tensor 'features' is ", d.features.describe(), ", expected f32[", d.num_nodes(), ", D >= 1]");
}

}  // namespace

std::vector<int32_t> GraphDataset::nodes_in(SplitPart part) const {
  std::vector<int32_t> nodes;
  const uint8_t* s = split.data<uint8_t>();
  for (int64_t v = 0; v < num_nodes(); ++v)
    if (s[v] == part) nodes.push_back((int32_t)v);
  return nodes;
}

GraphDataset load_graph_dataset(const std::string& dir) {
  GANNET_CHECK(std::filesystem::is_directory(dir), "graph data set ", dir,
               ": no such directory (write one with `gannet graph prepare`)");
  GraphDataset d;
  d.dir = dir;
  load_graph(path_in(dir, "graph.safetensors"), d);
  load_nodes(path_in(dir, "nodes.safetensors"), d);
  load_features(path_in(dir, "features.safetensors"), d);
  return d;
}

void save_graph_files(const std::string& dir, const std::string& source, const CsrGraph& graph, const Tensor& labels,
                      const Tensor& split, const std::vector<std::string>& classes,
                      const std::vector<std::string>& names, const std::string& summary) {
  const std::string where = str("cannot write the graph data set ", dir);
  const int64_t n = graph.num_nodes;
  GANNET_CHECK(!source.empty(), where, ": empty source");
  GANNET_CHECK(graph.indptr.dtype() == DType::i64 && graph.indptr.shape() == Shape{n + 1}, where, ": indptr is ",
               graph.indptr.describe(), ", expected i64[", n + 1, "]");
  GANNET_CHECK(graph.indices.dtype() == DType::i32 && graph.indices.ndim() == 1, where, ": indices is ",
               graph.indices.describe(), ", expected a vector of i32");
  check_csr(graph, where);
  GANNET_CHECK(labels.dtype() == DType::i32 && labels.shape() == Shape{n}, where, ": labels is ", labels.describe(),
               ", expected i32[", n, "]");
  GANNET_CHECK(split.dtype() == DType::u8 && split.shape() == Shape{n}, where, ": split is ", split.describe(),
               ", expected u8[", n, "]");
  GANNET_CHECK(!classes.empty(), where, ": no classes");
  check_nodes(labels, split, (int64_t)classes.size(), where);
  GANNET_CHECK((int64_t)names.size() == n, where, ": ", names.size(), " names for ", n, " nodes");
  for (const std::string& name : names)
    GANNET_CHECK(!name.empty() && name.find('\n') == std::string::npos, where, ": node name '", escape_bytes(name),
                 "' is empty or holds a line break");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  GANNET_CHECK(!ec, where, ": ", ec.message());
  io::save_safetensors(path_in(dir, "graph.safetensors"), {{"indptr", graph.indptr}, {"indices", graph.indices}},
                       {{"source", source}, {"num_nodes", std::to_string(n)}});
  io::save_safetensors(path_in(dir, "nodes.safetensors"), {{"labels", labels}, {"split", split}},
                       {{"classes", nlohmann::json(classes).dump()}});
  write_file_atomic(path_in(dir, "names.txt"), [&](std::ostream& out) {
    for (const std::string& name : names) out << name << '\n';
  });
  write_file_atomic(path_in(dir, "summary.json"), summary);
}

void save_feature_file(const std::string& dir, const Tensor& features) {
  GANNET_CHECK(features.dtype() == DType::f32 && features.ndim() == 2, "cannot write ", dir,
               "/features.safetensors: features is ", features.describe(), ", expected f32[N, D]");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  GANNET_CHECK(!ec, "cannot write ", dir, "/features.safetensors: ", ec.message());
  io::save_safetensors(path_in(dir, "features.safetensors"), {{"features", features}});
}

}  // namespace gannet::gnn
