#include "gannet/train/sharded_save.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

#include "gannet/dist/checkpoint_shards.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/safetensors.h"

namespace gannet::train {

namespace {
namespace fs = std::filesystem;

std::string tensor_name(const nn::ParameterList& params, const dist::PieceKey& k) {
  const std::string& name = params[(size_t)k.param].name;
  switch (k.kind) {
    case dist::StateTensor::value: return name;
    case dist::StateTensor::first_moment: return "optim.m." + name;
    case dist::StateTensor::second_moment: return "optim.v." + name;
  }
  fail("sharded checkpoint: unknown state tensor kind");
}

// The names of one rank's pieces inside its shard: a tensor's first piece under the tensor's own
// name, further ones as "<name>#1", "<name>#2", ...
std::vector<std::string> entry_names(const nn::ParameterList& params, const std::vector<dist::PieceKey>& keys,
                                     const std::vector<bool>& owned) {
  std::map<std::string, int> seen;
  std::vector<std::string> out;
  for (size_t j = 0; j < keys.size(); ++j) {
    if (!owned[j]) {
      out.emplace_back();
      continue;
    }
    const std::string t = tensor_name(params, keys[j]);
    const int n = seen[t]++;
    out.push_back(n ? str(t, "#", n) : t);
  }
  return out;
}

// Every rank learns whether any rank failed; the failing ranks throw their own message.
void agree(dist::Communicator& world, const std::string& error) {
  int64_t bad = error.empty() ? 0 : 1;
  world.all_reduce_max(&bad, 1);
  if (!error.empty()) fail(error);
  if (bad) fail("sharded checkpoint: another rank failed to save (see its message)");
}

std::string random_tag() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", (unsigned)rd());
  return buf;
}
}  // namespace

std::string save_sharded_checkpoint(const std::string& dir, dist::Communicator& world, const models::Gpt& model,
                                    const std::vector<const dist::ParameterPlacement*>& placements,
                                    dist::DataParallel& dp, const io::ShardedLayout& layout,
                                    const io::TrainState& state) {
  const bool lead = world.rank() == 0;
  const nn::ParameterList& params = model.parameters();
  // The save's directory: named by rank 0, created before the others learn its name.
  char name_buf[64] = {};
  std::string error;
  if (lead) {
    const std::string sub = io::shard_directory_name(state.step, random_tag());
    std::snprintf(name_buf, sizeof name_buf, "%s", sub.c_str());
    std::error_code ec;
    fs::create_directories(fs::path(dir) / sub, ec);
    if (ec) error = str("cannot create checkpoint directory ", (fs::path(dir) / sub).string(), ": ", ec.message());
  }
  agree(world, error);
  world.broadcast(name_buf, sizeof name_buf, 0);
  const std::string sub = name_buf;

  std::map<std::string, Shape> shape_of;
  for (const auto& [name, shape] : io::gpt_weight_shapes(model.config())) shape_of.emplace(name, shape);
  std::vector<Shape> whole;
  for (const auto& p : params) {
    auto it = shape_of.find(p.name);
    GANNET_CHECK(it != shape_of.end(), "sharded checkpoint: parameter ", p.name, " is not a weight of the model config");
    whole.push_back(it->second);
  }
  const std::vector<dist::HeldPiece> held = dist::held_pieces(params, whole, placements, dp);
  std::vector<dist::PieceKey> mine;
  for (const dist::HeldPiece& h : held) mine.push_back(h.key);
  const std::vector<std::vector<dist::PieceKey>> keys = dist::exchange_keys(world, mine);
  const std::vector<std::vector<bool>> owners = dist::piece_owners(keys);

  const int me = world.rank();
  const std::vector<std::string> names = entry_names(params, keys[(size_t)me], owners[(size_t)me]);
  std::vector<std::pair<std::string, Tensor>> entries;
  for (size_t j = 0; j < held.size(); ++j)
    if (owners[(size_t)me][j]) entries.emplace_back(names[j], held[j].data);
  const std::string file = sub + "/" + io::shard_file_name(me);
  error.clear();
  if (!entries.empty()) {
    try {
      io::save_safetensors((fs::path(dir) / file).string(), entries,
                           {{"format", "gannet-checkpoint-shard-1"}, {"rank", std::to_string(me)}, {"save", sub}});
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agree(world, error);  // every shard is on disk

  const std::string manifest = (fs::path(dir) / io::kManifestFile).string();
  error.clear();
  if (lead) {
    try {
      io::Manifest m;
      m.model = model.config();
      m.layout = layout;
      m.state = state;
      m.optim_step = dp.step_count();
      std::map<std::string, size_t> index;  // tensor name -> its place in m.tensors
      for (dist::StateTensor kind :
           {dist::StateTensor::value, dist::StateTensor::first_moment, dist::StateTensor::second_moment})
        for (size_t i = 0; i < params.size(); ++i) {
          const std::string t = tensor_name(params, dist::PieceKey{(int64_t)i, kind, {}, 0, 0});
          index[t] = m.tensors.size();
          m.tensors.push_back({t, whole[i], {}});
        }
      for (size_t r = 0; r < keys.size(); ++r) {
        const std::vector<std::string> rn = entry_names(params, keys[r], owners[r]);
        const std::string rfile = sub + "/" + io::shard_file_name((int)r);
        bool any = false;
        for (size_t j = 0; j < keys[r].size(); ++j) {
          if (!owners[r][j]) continue;
          const dist::PieceKey& k = keys[r][j];
          m.tensors[index.at(tensor_name(params, k))].pieces.push_back(
              {rfile, rn[j], io::PiecePlace{k.box, k.flat_begin, k.flat_end}});
          any = true;
        }
        if (!any) continue;
        std::error_code ec;
        const fs::path f = fs::path(dir) / rfile;
        const auto bytes = fs::file_size(f, ec);
        GANNET_CHECK(!ec, "sharded checkpoint: rank ", r, "'s shard ", f.string(), " is not visible from rank 0 (",
                     ec.message(), "; checkpoint.dir must be on a filesystem every rank shares)");
        m.shards.push_back({rfile, (int)r, (int64_t)bytes});
      }
      io::write_manifest(manifest, m);  // the new checkpoint exists from here on
      for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        std::error_code ec;
        if (n != sub && n.starts_with("step-") && e.is_directory(ec)) fs::remove_all(e.path(), ec);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agree(world, error);
  return manifest;
}

}  // namespace gannet::train
