#include "gannet/compress/layer_reduction.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "gannet/core/error.h"

namespace gannet::compress {

namespace {

// The teacher's name of a student parameter: "h.<j>.rest" -> "h.<map[j]>.rest"; others unchanged.
std::string teacher_name(const std::string& name, const std::vector<int64_t>& layer_map) {
  if (name.rfind("h.", 0) != 0) return name;
  const size_t dot = name.find('.', 2);
  const int64_t j = std::stoll(name.substr(2, dot - 2));
  return str("h.", layer_map.at((size_t)j), name.substr(dot));
}

bool is_copied(const std::string& name, const std::vector<std::string>& copied) {
  if (name.rfind("h.", 0) == 0) return true;
  const std::string module = name.substr(0, name.find('.'));
  return std::find(copied.begin(), copied.end(), module) != copied.end();
}

}  // namespace

models::EncoderConfig student_config(const models::EncoderConfig& teacher, const std::vector<int64_t>& layer_map) {
  GANNET_CHECK(!layer_map.empty(), "layer reduction: the student keeps no layer");
  for (int64_t l : layer_map)
    GANNET_CHECK(l >= 0 && l < teacher.n_layer, "layer reduction: teacher layer ", l, " is not in [0, ",
                 teacher.n_layer, ")");
  models::EncoderConfig s = teacher;
  s.n_layer = (int64_t)layer_map.size();
  return s;
}

void init_student_from_teacher(const models::Encoder& teacher, models::Encoder& student,
                               const std::vector<int64_t>& layer_map, const std::vector<std::string>& copied) {
  GANNET_CHECK(student.config() == student_config(teacher.config(), layer_map),
               "layer reduction: the student's config is not the teacher's with ", layer_map.size(), " layers");
  std::map<std::string, const nn::Parameter*> by_name;
  for (const nn::Parameter& p : teacher.parameters()) by_name[p.name] = &p;
  for (const nn::Parameter& p : student.parameters()) {
    if (!is_copied(p.name, copied)) continue;
    const std::string from = teacher_name(p.name, layer_map);
    auto it = by_name.find(from);
    GANNET_CHECK(it != by_name.end(), "layer reduction: the teacher has no ", from, " for the student's ", p.name);
    const Tensor& src = it->second->var.value();
    Tensor& dst = p.var.value();
    GANNET_CHECK(src.shape() == dst.shape(), "layer reduction: ", from, " is ", src.describe(), ", the student's ",
                 p.name, " ", dst.describe());
    std::memcpy(dst.raw(), src.raw(), src.nbytes());
  }
}

}  // namespace gannet::compress
