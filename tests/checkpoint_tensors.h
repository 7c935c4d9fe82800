// Every tensor of a safetensors file as f32 values by name, for comparing checkpoints bitwise
// (a resumed run against an uninterrupted one).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "gannet/io/safetensors.h"

namespace gannet::testing {

inline std::map<std::string, std::vector<float>> checkpoint_tensors(const std::string& path) {
  io::SafeTensors f = io::SafeTensors::open(path);
  std::map<std::string, std::vector<float>> out;
  for (const auto& n : f.names()) {
    Tensor t = f.get(n);
    out[n].assign(t.f32(), t.f32() + t.numel());
  }
  return out;
}

}  // namespace gannet::testing
