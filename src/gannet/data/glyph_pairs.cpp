#include "gannet/data/glyph_pairs.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/data/prepare_stamp.h"
#include "gannet/io/safetensors.h"

namespace gannet::data {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kGlyphFormat = "gannet-glyph-pairs-1";  // bump when the outputs change meaning

uint64_t mix64(uint64_t z) {  // splitmix64's finalizer: spreads every input bit over the output
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t hash_text(uint64_t seed, const std::string& s) {  // FNV-1a, then mixed with the seed
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return mix64(h ^ mix64(seed));
}

std::string code_point_label(int32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", (unsigned)cp);
  return buf;
}

// The UnicodeData.txt entry holding `cp` (entries sorted, disjoint), or nullptr.
const UnicodeEntry* find_entry(const std::vector<UnicodeEntry>& entries, int32_t cp) {
  auto it = std::upper_bound(entries.begin(), entries.end(), cp,
                             [](int32_t c, const UnicodeEntry& e) { return c < e.first; });
  if (it == entries.begin()) return nullptr;
  --it;
  return cp <= it->last ? &*it : nullptr;
}

}  // namespace

const char* glyph_split_name(GlyphSplit s) {
  switch (s) {
    case GlyphSplit::train: return "train";
    case GlyphSplit::test_blocks: return "test_blocks";
    case GlyphSplit::test_chars: return "test_chars";
  }
  return "?";
}

std::string glyph_text(const UnicodeEntry& e, int32_t cp) {
  if (e.is_range) return "";
  if (e.name == "<control>") return e.old_name;
  if (e.name.empty() || e.name.front() == '<') return "";
  const std::string hex = code_point_label(cp).substr(2);
  const std::string tail = "-" + hex;
  if (e.name.size() > tail.size() && e.name.compare(e.name.size() - tail.size(), tail.size(), tail) == 0) return "";
  return e.name;
}

std::vector<GlyphPair> join_glyph_pairs(const std::vector<UnifontGlyph>& glyphs, const std::vector<UnicodeEntry>& entries,
                                        const std::vector<UnicodeBlock>& blocks, GlyphJoinCounts* counts) {
  GlyphJoinCounts c;
  std::vector<GlyphPair> out;
  for (const UnifontGlyph& g : glyphs) {
    ++c.glyphs;
    const UnicodeEntry* e = find_entry(entries, g.code_point);
    if (!e) { ++c.unassigned; continue; }
    if (e->is_range) { ++c.range_entry; continue; }
    const std::string text = glyph_text(*e, g.code_point);
    if (text.empty()) {
      ++(e->name == "<control>" ? c.control_without_name : c.name_repeats_code_point);
      continue;
    }
    const int block = find_unicode_block(blocks, g.code_point);
    if (block < 0) { ++c.no_block; continue; }
    out.push_back(GlyphPair{g, text, e->category, block, GlyphSplit::train});
  }
  std::sort(out.begin(), out.end(),
            [](const GlyphPair& a, const GlyphPair& b) { return a.glyph.code_point < b.glyph.code_point; });
  c.pairs = (int64_t)out.size();
  if (counts) *counts = c;
  return out;
}

std::vector<int> assign_glyph_splits(std::vector<GlyphPair>& pairs, const std::vector<UnicodeBlock>& blocks,
                                     const GlyphSplitOptions& opt) {
  GANNET_CHECK(opt.block_fraction >= 0 && opt.block_fraction < 1 && opt.char_fraction >= 0 && opt.char_fraction < 1,
               "glyph split: fractions ", opt.block_fraction, " and ", opt.char_fraction, " must be in [0, 1)");
  std::map<int, int64_t> block_sizes;
  for (const GlyphPair& p : pairs) ++block_sizes[p.block];
  std::vector<std::pair<uint64_t, int>> order;  // (hash of the name, block)
  for (const auto& [b, n] : block_sizes) order.emplace_back(hash_text(opt.seed, blocks.at(b).name), b);
  std::sort(order.begin(), order.end());
  const int64_t target = (int64_t)(opt.block_fraction * (double)pairs.size() + 0.5);
  int64_t held = 0;
  std::set<int> held_out;
  for (const auto& [h, b] : order) {
    if (held + block_sizes[b] > target) continue;
    held += block_sizes[b];
    held_out.insert(b);
  }
  const uint64_t char_cut = (uint64_t)(opt.char_fraction * 18446744073709551616.0);  // fraction of 2^64
  for (GlyphPair& p : pairs) {
    if (held_out.count(p.block)) p.split = GlyphSplit::test_blocks;
    else if (opt.char_fraction > 0 && mix64((uint64_t)p.glyph.code_point ^ mix64(opt.seed + 1)) < char_cut)
      p.split = GlyphSplit::test_chars;
    else p.split = GlyphSplit::train;
  }
  return std::vector<int>(held_out.begin(), held_out.end());
}

namespace {

const std::vector<std::string> kGlyphOutputs = {"train.safetensors",       "train.jsonl",
                                                "test_blocks.safetensors", "test_blocks.jsonl",
                                                "test_chars.safetensors",  "test_chars.jsonl",
                                                "summary.json"};

// The blocks and categories the pairs use, numbered densely (blocks in code point order,
// categories alphabetically): the class indices a block or category classifier predicts.
struct PairLabels {
  std::map<int, int32_t> block_index;  // index into Blocks.txt -> class index
  std::map<std::string, int32_t> category_index;
  std::vector<std::string> block_names, categories;
};

PairLabels pair_labels(const std::vector<GlyphPair>& pairs, const std::vector<UnicodeBlock>& blocks) {
  PairLabels l;
  for (const GlyphPair& p : pairs) {
    l.block_index.emplace(p.block, 0);
    l.category_index.emplace(p.category, 0);
  }
  for (auto& [b, i] : l.block_index) {
    i = (int32_t)l.block_names.size();
    l.block_names.push_back(blocks.at(b).name);
  }
  for (auto& [c, i] : l.category_index) {
    i = (int32_t)l.categories.size();
    l.categories.push_back(c);
  }
  return l;
}

json pair_json(const GlyphPair& p, const std::vector<UnicodeBlock>& blocks) {
  return json{{"code_point", code_point_label(p.glyph.code_point)}, {"name", p.name},
              {"block", blocks.at(p.block).name}, {"category", p.category}, {"width", p.glyph.width}};
}

// DIR/<split>.safetensors (images u8 [N,16,16], width, code_point, block, category i32 [N]) and
// DIR/<split>.jsonl (one pair a line, same order).
void write_glyph_split(const fs::path& dir, GlyphSplit split, const std::vector<const GlyphPair*>& pairs,
                       const std::vector<UnicodeBlock>& blocks, const PairLabels& labels) {
  const int64_t n = (int64_t)pairs.size();
  Tensor images = Tensor::empty({n, kGlyphHeight, kGlyphCell}, DType::u8);
  Tensor width = Tensor::empty({n}, DType::i32), code_point = Tensor::empty({n}, DType::i32);
  Tensor block = Tensor::empty({n}, DType::i32), category = Tensor::empty({n}, DType::i32);
  std::ostringstream texts;
  for (int64_t i = 0; i < n; ++i) {
    const GlyphPair& p = *pairs[i];
    std::copy(p.glyph.pixels.begin(), p.glyph.pixels.end(), images.data<uint8_t>() + i * kGlyphHeight * kGlyphCell);
    width.data<int32_t>()[i] = p.glyph.width;
    code_point.data<int32_t>()[i] = p.glyph.code_point;
    block.data<int32_t>()[i] = labels.block_index.at(p.block);
    category.data<int32_t>()[i] = labels.category_index.at(p.category);
    texts << pair_json(p, blocks).dump() << '\n';
  }
  const std::string name = glyph_split_name(split);
  const std::map<std::string, std::string> md = {{"format", kGlyphFormat},
                                                 {"split", name},
                                                 {"texts", name + ".jsonl"},
                                                 {"blocks", json(labels.block_names).dump()},
                                                 {"categories", json(labels.categories).dump()}};
  io::save_safetensors((dir / (name + ".safetensors")).string(),
                       {{"images", images}, {"width", width}, {"code_point", code_point}, {"block", block},
                        {"category", category}},
                       md);
  write_file_atomic((dir / (name + ".jsonl")).string(), texts.str());
}

json split_summary(const std::vector<const GlyphPair*>& pairs, const std::vector<UnicodeBlock>& blocks) {
  std::set<int> used;
  int64_t narrow = 0;
  json examples = json::array();
  for (const GlyphPair* p : pairs) {
    used.insert(p->block);
    narrow += p->glyph.width == 8;
  }
  for (size_t k = 0; k < 3 && k < pairs.size(); ++k) examples.push_back(pair_json(*pairs[k * pairs.size() / 3], blocks));
  return json{{"pairs", pairs.size()}, {"blocks", used.size()}, {"width_8", narrow},
              {"width_16", (int64_t)pairs.size() - narrow}, {"examples", examples}};
}

json join_counts_json(const GlyphJoinCounts& c) {
  return json{{"glyphs_in_unifont", c.glyphs},
              {"pairs", c.pairs},
              {"dropped",
               {{"unassigned", c.unassigned},
                {"range_entry", c.range_entry},
                {"name_repeats_code_point", c.name_repeats_code_point},
                {"control_without_name", c.control_without_name},
                {"no_block", c.no_block}}}};
}

json glyphs_options_json(const GlyphsOptions& opt) {
  return json{{"format", kGlyphFormat},
              {"seed", opt.split.seed},
              {"block_fraction", opt.split.block_fraction},
              {"char_fraction", opt.split.char_fraction},
              {"unifont_hex", input_fingerprint(opt.unifont_hex)},
              {"unicode_data", input_fingerprint(opt.unicode_data)},
              {"blocks", input_fingerprint(opt.blocks)}};
}

}  // namespace

PreparedData prepare_glyphs(const GlyphsOptions& opt) {
  GANNET_CHECK(!opt.out_dir.empty(), "data prepare: empty output directory");
  const json want = glyphs_options_json(opt);  // checks the inputs exist before anything is written
  if (auto earlier = earlier_run_if_current(opt.out_dir, want, kGlyphOutputs)) return *earlier;
  PreparedData res;
  res.out_dir = opt.out_dir;
  const fs::path dir(opt.out_dir);
  std::fprintf(stderr, "[data] reading %s, %s, %s\n", opt.unifont_hex.c_str(), opt.unicode_data.c_str(),
               opt.blocks.c_str());
  const std::vector<UnifontGlyph> glyphs = read_unifont_hex(opt.unifont_hex);
  const std::vector<UnicodeEntry> entries = read_unicode_data(opt.unicode_data);
  const std::vector<UnicodeBlock> blocks = read_unicode_blocks(opt.blocks);
  GlyphJoinCounts counts;
  std::vector<GlyphPair> pairs = join_glyph_pairs(glyphs, entries, blocks, &counts);
  GANNET_CHECK(!pairs.empty(), opt.unifont_hex, ": no glyph has a name in ", opt.unicode_data);
  const std::vector<int> held_out = assign_glyph_splits(pairs, blocks, opt.split);
  const PairLabels labels = pair_labels(pairs, blocks);

  std::error_code ec;
  fs::create_directories(dir, ec);
  GANNET_CHECK(!ec, "data prepare: cannot create ", opt.out_dir, ": ", ec.message());
  invalidate_prepare_stamp(opt.out_dir);
  json summary = join_counts_json(counts);
  summary["dataset"] = "glyphs";
  summary["image"] = {{"height", kGlyphHeight}, {"width", kGlyphCell}, {"dtype", "u8"}, {"ink", kGlyphInk},
                      {"narrow_glyphs", "8 wide, left-aligned in the 16x16 cell; the width tensor says which"}};
  summary["blocks"] = labels.block_names.size();
  summary["categories"] = labels.categories;
  json held_names = json::array();
  for (int b : held_out) held_names.push_back(blocks[b].name);
  summary["test_blocks_names"] = held_names;
  for (GlyphSplit s : kGlyphSplits) {
    std::vector<const GlyphPair*> part;
    for (const GlyphPair& p : pairs)
      if (p.split == s) part.push_back(&p);
    write_glyph_split(dir, s, part, blocks, labels);
    summary["splits"][glyph_split_name(s)] = split_summary(part, blocks);
  }
  write_file_atomic((dir / "summary.json").string(), summary.dump(2) + "\n");
  write_prepare_stamp(opt.out_dir, want, kGlyphOutputs);
  res.summary = std::move(summary);
  return res;
}

}  // namespace gannet::data
