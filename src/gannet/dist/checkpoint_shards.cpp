#include "gannet/dist/checkpoint_shards.h"

#include <algorithm>
#include <set>

#include "gannet/core/error.h"

namespace gannet::dist {

namespace {
const ParameterPlacement* placement_of(const std::vector<const ParameterPlacement*>& placements, size_t i) {
  for (const ParameterPlacement* p : placements)
    if (p && p->owns(i)) return p;
  return nullptr;
}

int64_t volume(const Box& b) {
  int64_t v = 1;
  for (const auto& [lo, hi] : b) v *= hi - lo;
  return v;
}
}  // namespace

std::vector<HeldPiece> held_pieces(const nn::ParameterList& params, const std::vector<Shape>& whole_shapes,
                                   const std::vector<const ParameterPlacement*>& placements, DataParallel& dp) {
  GANNET_CHECK(whole_shapes.size() == params.size(), "checkpoint shards: ", whole_shapes.size(), " shapes for ",
               params.size(), " parameters");
  optim::AdamW* replicated = dp.replicated_optimizer();
  // Per parameter: its boxes and each box's offset in the local data.
  std::vector<std::vector<Box>> boxes(params.size());
  std::vector<std::vector<int64_t>> offsets(params.size());
  std::vector<HeldPiece> out;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& value = params[i].var.value();
    if (const ParameterPlacement* p = placement_of(placements, i)) boxes[i] = p->boxes(i, whole_shapes[i]);
    else {
      Box all;
      for (int64_t n : whole_shapes[i]) all.emplace_back(0, n);
      boxes[i] = {all};
    }
    int64_t at = 0;
    for (const Box& b : boxes[i]) {
      offsets[i].push_back(at);
      at += volume(b);
    }
    GANNET_CHECK(at == value.numel(), "checkpoint shards: parameter ", params[i].name, " holds ", value.numel(),
                 " elements, its boxes ", at);
    auto flat = [](const Tensor& t) { return t.view({t.numel()}); };
    for (size_t k = 0; k < boxes[i].size(); ++k) {
      const int64_t o = offsets[i][k], v = volume(boxes[i][k]);
      auto piece = [&](StateTensor kind, const Tensor& t) {
        out.push_back({PieceKey{(int64_t)i, kind, boxes[i][k], 0, v}, flat(t).slice(o, o + v)});
      };
      piece(StateTensor::value, value);
      if (replicated) {
        piece(StateTensor::first_moment, replicated->first_moments()[i]);
        piece(StateTensor::second_moment, replicated->second_moments()[i]);
      }
    }
  }
  for (const DataParallel::MomentShard& s : dp.moment_shards()) {
    // A run of the local data: cut where it crosses from one box into the next.
    const size_t i = s.param;
    for (size_t k = 0; k < boxes[i].size(); ++k) {
      const int64_t o = offsets[i][k], v = volume(boxes[i][k]);
      const int64_t lo = std::max(s.offset, o), hi = std::min(s.offset + s.length, o + v);
      if (lo >= hi) continue;
      const Box& b = boxes[i][k];
      out.push_back({PieceKey{(int64_t)i, StateTensor::first_moment, b, lo - o, hi - o},
                     s.m.slice(lo - s.offset, hi - s.offset)});
      out.push_back({PieceKey{(int64_t)i, StateTensor::second_moment, b, lo - o, hi - o},
                     s.v.slice(lo - s.offset, hi - s.offset)});
    }
  }
  return out;
}

std::vector<std::vector<PieceKey>> exchange_keys(Communicator& world, const std::vector<PieceKey>& mine) {
  // Each key as integers: param, kind, dimensions, the box's [begin, end) pairs, the element run.
  std::vector<int64_t> packed;
  for (const PieceKey& k : mine) {
    packed.insert(packed.end(), {k.param, (int64_t)k.kind, (int64_t)k.box.size()});
    for (const auto& [lo, hi] : k.box) packed.insert(packed.end(), {lo, hi});
    packed.insert(packed.end(), {k.flat_begin, k.flat_end});
  }
  const int n = world.size();
  int64_t len = (int64_t)packed.size();
  std::vector<int64_t> lens((size_t)n);
  world.all_gather(&len, lens.data(), 1);
  const int64_t width = std::max<int64_t>(1, *std::max_element(lens.begin(), lens.end()));
  packed.resize((size_t)width, 0);
  std::vector<int64_t> all((size_t)(width * n));
  world.all_gather(packed.data(), all.data(), width);
  std::vector<std::vector<PieceKey>> out((size_t)n);
  for (int r = 0; r < n; ++r) {
    const int64_t* p = all.data() + (int64_t)r * width;
    const int64_t* end = p + lens[(size_t)r];
    while (p < end) {
      PieceKey k;
      k.param = *p++;
      k.kind = (StateTensor)*p++;
      const int64_t d = *p++;
      GANNET_CHECK(d >= 0 && p + 2 * d + 2 <= end, "checkpoint shards: rank ", r, " sent a malformed piece list");
      for (int64_t j = 0; j < d; ++j, p += 2) k.box.emplace_back(p[0], p[1]);
      k.flat_begin = *p++;
      k.flat_end = *p++;
      out[(size_t)r].push_back(std::move(k));
    }
  }
  return out;
}

std::vector<std::vector<bool>> piece_owners(const std::vector<std::vector<PieceKey>>& keys) {
  std::set<PieceKey> taken;  // ranks in increasing order: the first to hold a piece writes it
  std::vector<std::vector<bool>> out(keys.size());
  for (size_t r = 0; r < keys.size(); ++r)
    for (const PieceKey& k : keys[r]) out[r].push_back(taken.insert(k).second);
  return out;
}

}  // namespace gannet::dist
